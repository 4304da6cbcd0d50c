"""OAuth2 for the integration API (django-oauth-toolkit): client credentials only.

- ``ApiClientScopes``: a client may ask for the scopes it was granted and nothing else (they are
  within its role's, ``tradeops.api.services.api_client_create``); asking for none gives all of them.
- ``ApiOAuth2Validator``: only an active ``ApiClient`` authenticates; its token names its service
  user (client credentials carry no user otherwise); every token issued is audited in the token
  endpoint's transaction; a token lookup loads the client with it (one query per API request).
- ``TokenView`` / ``RevokeTokenView`` (``/o/token/``, ``/o/revoke_token/``): refusals are audited
  and counted per address; past ``API_THROTTLE_FAILED_AUTH`` the address gets 429 with
  ``Retry-After`` before its credentials are even looked at.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import time
from types import SimpleNamespace
from urllib.parse import unquote_plus

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.http.request import HttpHeaders
from django.utils import timezone
from oauth2_provider.models import AccessToken
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauth2_provider.scopes import SettingsScopes
from oauth2_provider.views import RevokeTokenView as DotRevokeTokenView
from oauth2_provider.views import TokenView as DotTokenView

from tradeops.api.selectors import api_client_for_application
from tradeops.api.services import (
    api_auth_failure_record,
    api_auth_throttled_record,
    api_token_issued_record,
    api_token_revoked_record,
    api_tokens_changed,
    api_tokens_generation,
)
from tradeops.api.throttling import client_address, failed_auth_window


def address_of(meta) -> str:
    """The caller's address from a request's META (or oauthlib's copy of it), read as the
    throttles read it (``NUM_PROXIES``)."""
    return client_address(SimpleNamespace(META=meta, headers=HttpHeaders(meta)))


# ---------------------------------------------------------------- token lookup, with a process cache
#
# A bearer token is looked up on every request: one query joining the token, its application, its
# client and its user (~3 ms of ORM and planning per request, the largest single cost of a small
# read). Each web process keeps what it looked up for ``API_TOKEN_CACHE_SECONDS`` (never past the
# token's expiry), tagged with the generation of tokens it saw in the shared cache (Redis) before
# the lookup: every revocation (``api_client_revoke``, ``/o/revoke_token/``) moves the generation
# after its commit, so the next request anywhere looks the token up again and finds it gone.
# Without a shared cache (the embedded run) nothing is kept. Other edits to a client or its user
# outside those services (the admin) take effect within ``API_TOKEN_CACHE_SECONDS``.

_TOKEN_CACHE_MAX = 10_000
_tokens: dict[str, tuple[float, int, AccessToken]] = {}


_UNREAD = object()


def access_token_cached(checksum: str) -> tuple[int, AccessToken] | None:
    """(generation, token) as this process last looked the token up, while its time to keep it
    lasts; whether the generation is still the current one is the caller's to check."""
    if getattr(settings, "API_TOKEN_CACHE_SECONDS", 30) <= 0:
        return None
    hit = _tokens.get(checksum)
    if hit is None or hit[0] <= time.monotonic():
        return None
    return hit[1], hit[2]


def access_token_lookup(checksum: str, *, generation=_UNREAD) -> AccessToken | None:
    """The token with this checksum, with its application, client and user loaded; None if none.
    ``generation``: the current token generation if the caller has just read it."""
    ttl = getattr(settings, "API_TOKEN_CACHE_SECONDS", 30)
    if ttl <= 0:
        generation = None
    elif generation is _UNREAD:
        generation = api_tokens_generation()
    now = time.monotonic()
    if generation is not None:
        hit = _tokens.get(checksum)
        if hit is not None and hit[0] > now and hit[1] == generation:
            return hit[2]
    token = (
        AccessToken.objects.select_related("application", "application__api_client", "user")
        .filter(token_checksum=checksum)
        .first()
    )
    if generation is not None and token is not None:
        if len(_tokens) >= _TOKEN_CACHE_MAX:
            _tokens.clear()
        until = now + min(ttl, max(0.0, (token.expires - timezone.now()).total_seconds()))
        _tokens[checksum] = (until, generation, token)
    return token


class ApiClientScopes(SettingsScopes):
    def get_available_scopes(self, application=None, request=None, *args, **kwargs):
        client = getattr(request, "api_client", None) or api_client_for_application(application)
        return list(client.scopes) if client is not None else []

    def get_default_scopes(self, application=None, request=None, *args, **kwargs):
        return self.get_available_scopes(application=application, request=request)


class ApiOAuth2Validator(OAuth2Validator):
    def authenticate_client(self, request, *args, **kwargs):
        if not super().authenticate_client(request, *args, **kwargs):
            return False
        client = api_client_for_application(request.client)
        if client is None:  # not an API client, or revoked
            return False
        request.api_client = client
        return True

    def _create_access_token(self, expires, request, token, source_refresh_token=None):
        request.user = request.client.user  # the client acts as its service user
        access_token = super()._create_access_token(expires, request, token, source_refresh_token)
        request.issued_access_token = access_token
        return access_token

    def _save_bearer_token(self, token, request, *args, **kwargs):
        result = super()._save_bearer_token(token, request, *args, **kwargs)
        api_token_issued_record(
            client=request.api_client, token=request.issued_access_token, address=address_of(request.headers)
        )
        return result

    def _load_access_token(self, token):
        checksum = hashlib.sha256(token.encode("utf-8")).hexdigest()
        return access_token_lookup(checksum)

    def revoke_token(self, token, token_type_hint, request, *args, **kwargs):
        checksum = hashlib.sha256(token.encode("utf-8")).hexdigest()
        application_id = getattr(request.client, "pk", None)
        ids = list(
            AccessToken.objects.filter(token_checksum=checksum, application_id=application_id).values_list(
                "pk", flat=True
            )
        )
        super().revoke_token(token, token_type_hint, request, *args, **kwargs)
        api_tokens_changed()
        if ids:
            api_token_revoked_record(
                client=getattr(request, "api_client", None), token_ids=ids, address=address_of(request.headers)
            )


def _presented_client_id(request) -> str:
    """The client id a token request presented (HTTP Basic or form field), never the secret."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header[:6].lower() == "basic ":
        try:
            decoded = base64.b64decode(header[6:].strip()).decode("utf-8")
            return unquote_plus(decoded.split(":", 1)[0])[:100]
        except (ValueError, UnicodeDecodeError):
            return ""
    return str(request.POST.get("client_id", ""))[:100]


class _RefusalsCounted:
    """Count and audit the endpoint's refusals per address; throttle an address past the limit."""

    endpoint = ""

    def post(self, request, *args, **kwargs):
        address = address_of(request.META)
        window = failed_auth_window()
        # checked before the credentials: checking a secret is a deliberately slow hash
        verdict = window.peek(address)
        if not verdict.allowed:
            seconds = max(1, math.ceil(verdict.wait))
            response = JsonResponse(
                {
                    "error": "throttled",
                    "error_description": f"too many refused requests from this address; retry in {seconds} s",
                },
                status=429,
            )
            response["Retry-After"] = str(seconds)
            return response
        response = super().post(request, *args, **kwargs)
        if response.status_code in (400, 401, 403):
            self._refused(request, response, address, window)
        return response

    def _refused(self, request, response: HttpResponse, address: str, window) -> None:
        try:
            body = json.loads(response.content or b"{}")
        except ValueError:
            body = {}
        reason = str(body.get("error", f"http {response.status_code}"))
        verdict = window.count_event(address)
        api_auth_failure_record(
            address=address, endpoint=self.endpoint, reason=reason, client_id=_presented_client_id(request)
        )
        if verdict.full:
            api_auth_throttled_record(address=address, endpoint=self.endpoint, failures=verdict.current)


class TokenView(_RefusalsCounted, DotTokenView):
    """``POST /o/token/`` (``grant_type=client_credentials``; client id and secret by HTTP Basic
    or form fields; optional ``scope``)."""

    endpoint = "/o/token/"


class RevokeTokenView(_RefusalsCounted, DotRevokeTokenView):
    """``POST /o/revoke_token/`` (RFC 7009; ``token``, client authenticated as for a token)."""

    endpoint = "/o/revoke_token/"
