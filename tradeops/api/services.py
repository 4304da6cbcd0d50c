"""Writers of API clients, and the security records of the integration API.

Clients: ``api_client_create`` (an OAuth2 application for client credentials, its service user in
the bound role's group, the scopes it may ask for; the secret is returned once and stored only
hashed) and ``api_client_revoke`` (no new token, every live token deleted, the service user
disabled). Both audited with before and after.

Security records (category ``security``, 2017/565 Art. 72: who did what, and who tried): a token
issued, a token revoked, a write scope used, an authentication refused, an address throttled for
refused authentications. Secrets and tokens never reach the trail.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.db import IntegrityError, transaction
from oauth2_provider.generators import generate_client_secret
from oauth2_provider.models import AccessToken, Application, RefreshToken

from tradeops.api.matrix import Scope, scopes_for_role
from tradeops.api.models import ApiClient
from tradeops.api.throttling import rate_parse
from tradeops.audit.actors import user_actor
from tradeops.audit.models import Category
from tradeops.audit.services import audit_append, audit_record_change
from tradeops.core.clock import ensure_utc, utcnow
from tradeops.core.errors import ApplicationError, Conflict
from tradeops.core.roles import Role

SERVICE_USER_PREFIX = "api."


class ApiClientError(ApplicationError):
    code = "api_client_invalid"


def api_client_snapshot(client: ApiClient) -> dict:
    return {
        "name": client.name,
        "client_id": client.application.client_id,
        "role": client.role,
        "scopes": list(client.scopes),
        "throttle_rate": client.throttle_rate,
        "user": client.user.get_username(),
        "created_at": client.created_at.isoformat(),
        "created_by": client.created_by,
        "revoked_at": client.revoked_at.isoformat() if client.revoked_at else None,
        "revoked_by": client.revoked_by,
    }


def _check_scopes(role: Role, scopes) -> list[str]:
    wanted = []
    for raw in scopes:
        try:
            wanted.append(Scope(raw))
        except ValueError:
            raise ApiClientError(
                f"unknown scope {raw!r}; scopes are {', '.join(s.value for s in Scope)}", code="unknown_scope"
            ) from None
    if not wanted:
        raise ApiClientError("an API client needs at least one scope", code="scope_required")
    beyond = sorted(set(wanted) - scopes_for_role(role))
    if beyond:
        allowed = ", ".join(sorted(scopes_for_role(role))) or "none"
        raise ApiClientError(
            f"the {role} role cannot use {', '.join(beyond)} (it may hold: {allowed})", code="scope_beyond_role"
        )
    return sorted(set(wanted))


@transaction.atomic
def api_client_create(
    *, name: str, role: str, scopes, actor: str, throttle_rate: str = "", at: datetime | None = None
) -> tuple[ApiClient, str]:
    """Create a client bound to ``role`` with ``scopes`` (each one the role can use). Returns the
    client and its secret: show the secret once; only its hash is stored.

    Side effects: a service user ``api.<name>`` (no password, not staff) in the role's group, an
    OAuth2 application (confidential, client credentials), audit ``api_client.created``."""
    try:
        role = Role(role)
    except ValueError:
        raise ApiClientError(
            f"unknown role {role!r}; roles are {', '.join(r.value for r in Role)}", code="unknown_role"
        ) from None
    granted = _check_scopes(role, scopes)
    if throttle_rate:
        try:
            rate_parse(throttle_rate)
        except ValueError as exc:
            raise ApiClientError(str(exc), code="invalid_throttle_rate") from None
    if not name or len(name) > 80 or not all(ch.isalnum() or ch in "-_" for ch in name):
        raise ApiClientError("a client name is 1-80 letters, digits, '-' or '_'", code="invalid_name")
    now = ensure_utc(at) if at else utcnow()
    User = get_user_model()
    try:
        with transaction.atomic():
            user = User.objects.create_user(username=f"{SERVICE_USER_PREFIX}{name}")
    except IntegrityError:
        raise Conflict(f"an API client or user named {name!r} exists already", code="api_client_exists") from None
    user.set_unusable_password()
    user.save(update_fields=["password"])
    user.groups.add(Group.objects.get_or_create(name=str(role))[0])
    secret = generate_client_secret()
    application = Application.objects.create(
        name=name,
        user=user,
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
        client_secret=secret,
        hash_client_secret=True,
        skip_authorization=True,
    )
    client = ApiClient.objects.create(
        name=name,
        application=application,
        user=user,
        role=str(role),
        scopes=[str(s) for s in granted],
        throttle_rate=throttle_rate,
        created_at=now,
        created_by=actor,
    )
    audit_record_change(
        action="api_client.created",
        actor=actor,
        object_type="api_client",
        object_id=name,
        before=None,
        after=api_client_snapshot(client),
        occurred_at=now,
        category=Category.SECURITY,
    )
    return client, secret


@transaction.atomic
def api_client_revoke(*, client: ApiClient, actor: str, reason: str, at: datetime | None = None) -> ApiClient:
    """Revoke a client: its live tokens are deleted (every request with one is refused from the
    next request on), the token endpoint refuses it, its service user is disabled.
    Audit ``api_client.revoked`` with the number of tokens revoked."""
    if not reason.strip():
        raise ApiClientError("revoking an API client needs a reason", code="reason_required")
    now = ensure_utc(at) if at else utcnow()
    client = ApiClient.objects.select_for_update().select_related("application", "user").get(pk=client.pk)
    if client.revoked_at is not None:
        raise Conflict(f"API client {client.name} was revoked at {client.revoked_at}", code="api_client_revoked")
    before = api_client_snapshot(client)
    RefreshToken.objects.filter(application=client.application).delete()
    tokens, _ = AccessToken.objects.filter(application=client.application).delete()
    client.revoked_at, client.revoked_by, client.revoke_reason = now, actor, reason
    client.save(update_fields=["revoked_at", "revoked_by", "revoke_reason"])
    client.user.is_active = False
    client.user.save(update_fields=["is_active"])
    api_tokens_changed()
    audit_record_change(
        action="api_client.revoked",
        actor=actor,
        object_type="api_client",
        object_id=client.name,
        before=before,
        after={**api_client_snapshot(client), "tokens_revoked": tokens},
        occurred_at=now,
        reason=reason,
        category=Category.SECURITY,
    )
    return client


# ---------------------------------------------------------------- revocations reach every process

TOKENS_GENERATION_KEY = "api:tokens:generation"


def api_tokens_generation() -> int | None:
    """The generation of tokens in the shared cache, or None without one (the web processes then
    keep no token between requests: ``tradeops.api.oauth.access_token_lookup``)."""
    from tradeops.api.throttling import REDIS_CACHE, redis_counters

    if settings.CACHES["default"]["BACKEND"] != REDIS_CACHE:
        return None
    # the raw client (as the throttles): Django's cache builds a client object on every call.
    # The value is what Django's cache stores for a small integer (``cache.incr``/``add``): the
    # number itself, unpickled.
    return api_tokens_generation_parse(redis_counters().get(api_tokens_generation_key()))


def api_tokens_generation_key() -> str:
    """The generation's raw Redis key (read in the throttle's round trip by the authentication)."""
    return cache.make_key(TOKENS_GENERATION_KEY)


def api_tokens_generation_parse(raw: bytes | None) -> int:
    return int(raw or 0)


def api_tokens_changed() -> None:
    """Tokens were revoked: after the commit, every web process looks tokens up again."""

    def bump():
        if not cache.add(TOKENS_GENERATION_KEY, 1, timeout=None):
            cache.incr(TOKENS_GENERATION_KEY)

    transaction.on_commit(bump)


# ---------------------------------------------------------------- security records


def _security(*, action: str, actor: str, object_id: str, payload: dict) -> None:
    audit_append(
        action=action,
        object_type="api_client",
        object_id=object_id,
        occurred_at=utcnow(),
        payload=payload,
        actor=actor,
        category=Category.SECURITY,
    )


def api_token_issued_record(*, client: ApiClient, token: AccessToken, address: str) -> None:
    """A token was issued to ``client`` (inside the token endpoint's transaction)."""
    _security(
        action="api.token_issued",
        actor=user_actor(client.user),
        object_id=client.name,
        payload={
            "client_id": client.application.client_id,
            "token_id": token.pk,
            "scopes": token.scope.split(),
            "expires": token.expires.isoformat(),
            "address": address,
        },
    )


def api_token_revoked_record(*, client: ApiClient | None, token_ids: list[int], address: str) -> None:
    """Tokens were revoked by their client at the revocation endpoint (RFC 7009)."""
    name = client.name if client else "unknown"
    _security(
        action="api.token_revoked",
        actor=user_actor(client.user) if client else "system",
        object_id=name,
        payload={"token_ids": token_ids, "address": address},
    )


def api_write_scope_use_record(*, client: ApiClient, scope: str, method: str, path: str, resource: str, verb: str):
    """A token used a write scope (before the service it authorises runs)."""
    _security(
        action="api.write_scope_used",
        actor=user_actor(client.user),
        object_id=client.name,
        payload={"scope": scope, "method": method, "path": path, "resource": resource, "verb": verb},
    )


def api_auth_failure_record(*, address: str, endpoint: str, reason: str, client_id: str = "") -> None:
    """An authentication was refused: a bad, expired or revoked token on the API, or a bad client
    at the token endpoint. Names what was presented, never a secret."""
    _security(
        action="api.auth_failed",
        actor="system",
        object_id=client_id or "unknown",
        payload={"address": address, "endpoint": endpoint, "reason": reason[:200], "client_id": client_id[:100]},
    )


def api_auth_throttled_record(*, address: str, endpoint: str, failures: int) -> None:
    """An address reached the failed-authentication limit; its attempts are refused (429) until
    the window moves on. Recorded once per window, not once per refused attempt."""
    _security(
        action="api.auth_throttled",
        actor="system",
        object_id="unknown",
        payload={"address": address, "endpoint": endpoint, "failures": failures},
    )
