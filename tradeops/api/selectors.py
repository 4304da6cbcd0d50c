"""Readers of API clients."""

from __future__ import annotations

from django.db.models import QuerySet

from tradeops.api.models import ApiClient
from tradeops.core.errors import NotFound


def api_client_list(*, include_revoked: bool = False) -> QuerySet[ApiClient]:
    qs = ApiClient.objects.select_related("application", "user")
    return qs if include_revoked else qs.filter(revoked_at__isnull=True)


def api_client_get(*, name: str) -> ApiClient:
    try:
        return ApiClient.objects.select_related("application", "user").get(name=name)
    except ApiClient.DoesNotExist:
        raise NotFound(f"no API client named {name!r}", code="api_client_not_found") from None


def api_client_for_application(application) -> ApiClient | None:
    """The active client of an OAuth2 application; None for an application that is not an API
    client (made in the admin, say) or a revoked one: neither gets a token."""
    if application is None:
        return None
    client = ApiClient.objects.filter(application_id=application.pk, revoked_at__isnull=True).first()
    return client
