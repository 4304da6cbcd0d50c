"""Logins, logouts, failed logins and lock-outs into the audit trail (Django auth signals, and
django-axes' ``user_locked_out`` when an account or an address reaches the failure limit).

The auth signals are the only place these facts exist, so this is the one exception to "services
write explicitly": the receivers call the audit service and nothing else. Passwords never reach
the trail (Django masks them in ``credentials``; only the username is kept).
"""

from __future__ import annotations

from axes.signals import user_locked_out
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from tradeops.audit.actors import username_actor
from tradeops.audit.models import Category
from tradeops.audit.services import audit_append
from tradeops.core.clock import utcnow


def _client(request) -> dict:
    if request is None:
        return {}
    meta = getattr(request, "META", {})
    return {"ip": meta.get("REMOTE_ADDR", ""), "user_agent": meta.get("HTTP_USER_AGENT", "")[:200]}


def _session_audit(action: str, request, user) -> None:
    """A known user's session began or ended (``auth.login``, ``auth.logout``): the user is both
    the actor and the object."""
    username = user.get_username()
    audit_append(
        action=action,
        object_type="user",
        object_id=str(user.pk),
        occurred_at=utcnow(),
        payload={"username": username, **_client(request)},
        actor=username_actor(username),
        category=Category.SECURITY,
    )


@receiver(user_logged_in, dispatch_uid="audit_login")
def audit_login(sender, request, user, **kwargs):
    _session_audit("auth.login", request, user)


@receiver(user_logged_out, dispatch_uid="audit_logout")
def audit_logout(sender, request, user, **kwargs):
    if user is None:
        return
    _session_audit("auth.logout", request, user)


@receiver(user_login_failed, dispatch_uid="audit_login_failed")
def audit_login_failed(sender, credentials, request=None, **kwargs):
    username = str(credentials.get("username", ""))[:128]
    audit_append(
        action="auth.login_failed",
        object_type="user",
        object_id=username or "unknown",
        occurred_at=utcnow(),
        payload={"username": username, **_client(request)},
        actor=username_actor(username or "unknown"),
        category=Category.SECURITY,
    )


@receiver(user_locked_out, dispatch_uid="audit_locked_out")
def audit_locked_out(sender, request, username, ip_address, **kwargs):
    name = str(username or "")[:128]
    audit_append(
        action="auth.locked_out",
        object_type="user",
        object_id=name or "unknown",
        occurred_at=utcnow(),
        payload={"username": name, "ip": ip_address or "", **_client(request)},
        actor=username_actor(name or "unknown"),
        category=Category.SECURITY,
    )
