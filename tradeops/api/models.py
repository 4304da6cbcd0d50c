"""API clients: an OAuth2 application (django-oauth-toolkit) bound to one role and a set of scopes.

Each client acts as its own service user (``api.<name>``, no password, in its role's group), so
every service that checks a role or a person (four eyes) sees the client as one identity, and the
audit trail names it. Created, listed and revoked with ``manage.py api_client`` (the services in
``tradeops.api.services``), never edited: a change of role or scopes is a new client.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from oauth2_provider.settings import oauth2_settings

from tradeops.core.roles import Role


class ApiClient(models.Model):
    name = models.SlugField(max_length=80, unique=True)
    application = models.OneToOneField(
        oauth2_settings.APPLICATION_MODEL, on_delete=models.PROTECT, related_name="api_client"
    )
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="api_client")
    role = models.CharField(max_length=32, choices=[(str(r), str(r)) for r in Role])
    scopes = models.JSONField(default=list, help_text="The most its tokens may carry; within the role's scopes")
    throttle_rate = models.CharField(
        max_length=32, blank=True, help_text='Requests per period, e.g. "600/min"; empty: API_THROTTLE_CLIENT'
    )
    created_at = models.DateTimeField()
    created_by = models.CharField(max_length=150)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.CharField(max_length=150, blank=True)
    revoke_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        state = "revoked" if self.revoked_at else "active"
        return f"{self.name} ({self.role}; {' '.join(self.scopes)}; {state})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
