"""Bearer tokens on the integration API (OAuth2 access tokens from ``/o/token/``).

A request that presents ``Authorization: Bearer ...`` is authenticated by its token or refused
with 401 ``invalid_token`` (it never falls back to the session); the refusal is audited and counted
per address, and past ``API_THROTTLE_FAILED_AUTH`` the address's refused attempts get 429 with
``Retry-After`` and are no longer recorded one by one. A valid token is never refused for its
address: tokens are too long to guess, so the limit stops floods of bad attempts (and the audit
records they would write), not a search, and an integration behind the same NAT as a
misconfigured one keeps working. The success path costs no cache round trip.

A request without a bearer token goes on to the session (browser, with CSRF). The client's bound
role is set on its user, so the matrix and the selectors see that one role and no other.

A token that is plainly valid (found, unexpired, not bound to a resource, its application
usable) is accepted straight from the same lookup django-oauth-toolkit's validator makes
(``tradeops.api.oauth.access_token_lookup``, revocations included) without building oauthlib's
request around it (a millisecond of a small read); anything else goes through
django-oauth-toolkit and oauthlib unchanged, so every refusal keeps their answer.
"""

from __future__ import annotations

import hashlib

from oauth2_provider.contrib.rest_framework import OAuth2Authentication
from rest_framework.exceptions import AuthenticationFailed, Throttled

from tradeops.api.oauth import access_token_cached, access_token_lookup
from tradeops.api.services import (
    api_auth_failure_record,
    api_auth_throttled_record,
    api_tokens_generation_key,
    api_tokens_generation_parse,
)
from tradeops.api.throttling import (
    ClientRateThrottle,
    SlidingWindow,
    client_address,
    failed_auth_window,
    redis_counters,
)
from tradeops.core.roles import Role


class BearerTokenAuthentication(OAuth2Authentication):
    www_authenticate_realm = "tradeops"

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if header[:7].lower() != "bearer ":
            return None
        result = self._plainly_valid(request, header[7:])
        if result is None:
            result = super().authenticate(request)
        user, token = result if result is not None else (None, None)
        client = getattr(getattr(token, "application", None), "api_client", None)
        if client is None or not client.is_active or user is None or not user.is_active:
            error = getattr(request, "oauth2_error", None) or {}
            reason = str(error.get("error_description") or "the access token is invalid")
            if result is not None:
                reason = "the API client is revoked or unknown"
            self._refuse(request, reason)
        user._tradeops_roles = frozenset({Role(client.role)})
        return user, token

    @staticmethod
    def _plainly_valid(request, value: str):
        """(user, token) for a token that passes every check of django-oauth-toolkit's
        ``validate_bearer_token`` with no scope asked, else None (the full path decides)."""
        if not value or value != value.strip() or " " in value:
            return None
        token = _token_counted(request, hashlib.sha256(value.encode("utf-8")).hexdigest())
        if token is None or token.resource or not token.is_valid([]) or token.user is None:
            return None
        application = token.application
        if application is None or not application.is_usable(request):
            return None
        return token.user, token

    def _refuse(self, request, reason: str):
        """401, audited and counted for the address; past the limit 429 (no record each time)."""
        address = client_address(request)
        verdict = failed_auth_window().count_event(address)
        if not verdict.allowed:
            raise Throttled(wait=verdict.wait, detail="Too many refused authentications from this address.")
        api_auth_failure_record(address=address, endpoint=request.path, reason=reason)
        if verdict.full:
            api_auth_throttled_record(address=address, endpoint=request.path, failures=verdict.current)
        raise AuthenticationFailed(reason, code="invalid_token")


def _token_counted(request, checksum: str):
    """The token with this checksum (``access_token_lookup``: revocations included), or None.

    When this process already holds the token (so its client is known) and the view limits
    requests per client (``ClientRateThrottle``), the request is counted against the client's
    rate in the same Redis round trip that reads the token generation (one round trip instead of
    two); the throttle then judges with that count instead of counting again. So a request that
    the scope or role check then refuses has counted against its client's rate too."""
    cached = access_token_cached(checksum)
    view = request.parser_context.get("view") if request.parser_context else None
    if cached is None or view is None or redis_counters() is None:
        return access_token_lookup(checksum)
    generation, token = cached
    client = getattr(token.application, "api_client", None) if token.application_id else None
    if client is None or not any(issubclass(c, ClientRateThrottle) for c in view.throttle_classes):
        return access_token_lookup(checksum)
    rate = ClientRateThrottle.rate_of(client)
    verdict, raw = SlidingWindow(ClientRateThrottle.scope, rate).count_event_and_read(
        str(client.pk), api_tokens_generation_key()
    )
    request._request._tradeops_counted = (ClientRateThrottle.scope, rate, str(client.pk), verdict)
    current = api_tokens_generation_parse(raw)
    return token if current == generation else access_token_lookup(checksum, generation=current)
