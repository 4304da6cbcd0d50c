"""Bearer tokens on the integration API (OAuth2 access tokens from ``/o/token/``).

A request that presents ``Authorization: Bearer ...`` is authenticated by its token or refused
with 401 ``invalid_token`` (it never falls back to the session); the refusal is audited and counted
per address, and an address past ``API_THROTTLE_FAILED_AUTH`` is refused with 429 and
``Retry-After`` before its token is looked at. A request without a bearer token goes on to the
session (browser, with CSRF). The client's bound role is set on its user, so the matrix and the
selectors see that one role and no other.
"""

from __future__ import annotations

from oauth2_provider.contrib.rest_framework import OAuth2Authentication
from rest_framework.exceptions import AuthenticationFailed, Throttled

from tradeops.api.services import api_auth_failure_record, api_auth_throttled_record
from tradeops.api.throttling import client_address, failed_auth_window
from tradeops.core.roles import Role


class BearerTokenAuthentication(OAuth2Authentication):
    www_authenticate_realm = "tradeops"

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if header[:7].lower() != "bearer ":
            return None
        address = client_address(request)
        window = failed_auth_window()
        wait = window.wait(address)
        if wait is not None:
            raise Throttled(wait=wait, detail="too many refused authentications from this address")
        result = super().authenticate(request)
        user, token = result if result is not None else (None, None)
        client = getattr(getattr(token, "application", None), "api_client", None)
        if client is None or not client.is_active or user is None or not user.is_active:
            error = getattr(request, "oauth2_error", None) or {}
            reason = str(error.get("error_description") or "the access token is invalid")
            if result is not None:
                reason = "the API client is revoked or unknown"
            api_auth_failure_record(address=address, endpoint=request.path, reason=reason)
            failures = window.hit(address)
            if failures == window.count:
                api_auth_throttled_record(address=address, endpoint=request.path, failures=failures)
            raise AuthenticationFailed(reason, code="invalid_token")
        user._tradeops_roles = frozenset({Role(client.role)})
        return user, token
