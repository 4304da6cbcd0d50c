"""Authentication of the integration API: OAuth2 client credentials at /o/token/, bearer tokens,
sessions with CSRF; refusals audited and throttled; tokens issued, revoked and write scopes used
all in the audit trail."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from oauth2_provider.models import AccessToken
from rest_framework.test import APIClient

from tests.tradeops.api.conftest import basic, token_request
from tests.tradeops.api.endpoints import ENDPOINTS
from tradeops.api.matrix import Scope
from tradeops.audit.models import AuditRecord
from tradeops.audit.verify import audit_verify
from tradeops.core.roles import Role


def _records(action: str) -> list[AuditRecord]:
    return list(AuditRecord.objects.filter(action=action).order_by("sequence"))


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.label)
def test_every_endpoint_refuses_a_request_without_credentials_with_401(endpoint, db):
    path = "/api/v1/" + endpoint.route.replace("<int:pk>", "1").replace("<int:sequence>", "1")
    path = (
        path.replace("<str:symbol>", "EURUSD")
        .replace("<str:client_order_id>", "X")
        .replace("<isoday:day>", "2026-01-01")
    )
    if endpoint.route.startswith("legacy:"):
        path = "/api/trading/" + endpoint.route.removeprefix("legacy:").replace("<int:pk>", "1")
    http = APIClient()
    response = http.get(path) if endpoint.method == "GET" else http.post(path, {}, format="json")
    assert response.status_code == 401, response.content
    assert response.json()["error"]["code"] == "not_authenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_client_credentials_give_a_token_with_the_clients_scopes_and_it_is_audited(make_api_client):
    client, secret = make_api_client(Role.RISK_MANAGER, scopes=["trading:read", "risk:write"])
    response = token_request(APIClient(), client, secret)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    assert sorted(body["scope"].split()) == ["risk:write", "trading:read"]
    token = AccessToken.objects.get()
    assert token.user == client.user and token.application == client.application
    (record,) = _records("api.token_issued")
    assert record.category == "security" and record.object_id == client.name
    assert record.actor == f"user:{client.user.username}"
    assert sorted(record.payload_data["scopes"]) == ["risk:write", "trading:read"]
    assert body["access_token"] not in record.payload and secret not in record.payload

    narrower = token_request(APIClient(), client, secret, scope="trading:read")
    assert narrower.status_code == 200 and narrower.json()["scope"] == "trading:read"


def test_a_client_never_gets_more_than_it_was_granted(make_api_client):
    client, secret = make_api_client(Role.RISK_MANAGER, scopes=["trading:read"])
    for scope in ("risk:write", "audit:read", "trading:read compliance:read"):
        response = token_request(APIClient(), client, secret, scope=scope)
        assert response.status_code == 400 and response.json()["error"] == "invalid_scope", scope
    assert not AccessToken.objects.exists()
    refusals = _records("api.auth_failed")
    assert [r.payload_data["reason"] for r in refusals] == ["invalid_scope"] * 3
    assert all(r.payload_data["client_id"] == client.application.client_id for r in refusals)


def test_a_wrong_secret_is_refused_audited_and_the_address_throttled(make_api_client, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "failed_auth": "3/min"},
    }
    client, secret = make_api_client(Role.AUDITOR)
    http = APIClient(REMOTE_ADDR="10.9.8.7")
    for _ in range(3):
        response = token_request(http, client, "not-the-secret")
        assert response.status_code == 401 and response.json()["error"] == "invalid_client"
    # the fourth attempt is refused before the credentials are looked at, even the right ones
    response = token_request(http, client, secret)
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 120
    assert response.json()["error"] == "throttled"
    # another address is not affected
    assert token_request(APIClient(REMOTE_ADDR="10.9.8.6"), client, secret).status_code == 200
    refusals = _records("api.auth_failed")
    assert len(refusals) == 3
    assert {r.payload_data["address"] for r in refusals} == {"10.9.8.7"}
    assert all("not-the-secret" not in r.payload for r in refusals)
    (throttled,) = _records("api.auth_throttled")
    assert throttled.payload_data == {"address": "10.9.8.7", "endpoint": "/o/token/", "failures": 3}


def test_bad_tokens_are_refused_with_401_audited_and_throttled(issue_token, bearer, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "failed_auth": "2/min"},
    }
    token, _ = issue_token(Role.TRADER)
    expired = AccessToken.objects.get()
    expired.expires = timezone.now() - timedelta(seconds=1)
    expired.save()
    response = bearer(token, REMOTE_ADDR="10.1.1.1").get("/api/v1/positions/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_token"
    assert "expired" in response.json()["error"]["message"]
    response = bearer("made-up", REMOTE_ADDR="10.1.1.1").get("/api/v1/positions/")
    assert response.status_code == 401 and 'error="invalid_token"' in response["WWW-Authenticate"]
    response = bearer("made-up", REMOTE_ADDR="10.1.1.1").get("/api/v1/positions/")
    assert response.status_code == 429 and response.json()["error"]["code"] == "throttled"
    assert int(response["Retry-After"]) >= 1 and response.json()["error"]["retry_after"] >= 1
    # two sentences (it read "...from this address Expected available in 43 seconds.")
    assert re.fullmatch(
        r"Too many refused authentications from this address\. Expected available in \d+ seconds?\.",
        response.json()["error"]["message"],
    ), response.json()["error"]["message"]
    assert [r.payload_data["reason"] for r in _records("api.auth_failed")] == [
        "The access token has expired.",
        "The access token is invalid.",
    ]
    assert len(_records("api.auth_throttled")) == 1


def test_a_token_without_the_scope_gets_403_and_with_it_200(issue_token, bearer, book):
    token, _ = issue_token(Role.COMPLIANCE_OFFICER, scopes=["compliance:read"])
    response = bearer(token).get("/api/v1/positions/")
    assert response.status_code == 403
    assert response.json()["error"] == {
        "code": "insufficient_scope",
        "message": "this needs a token with the trading:read scope",
    }
    token, _ = issue_token(Role.COMPLIANCE_OFFICER, scopes=["trading:read"])
    assert bearer(token).get("/api/v1/positions/").status_code == 200


def test_revoking_a_client_stops_its_tokens_at_once_and_is_audited(
    make_api_client, bearer, book, django_capture_on_commit_callbacks
):
    from tradeops.api.services import api_client_revoke

    client, secret = make_api_client(Role.TRADER)
    token = token_request(APIClient(), client, secret).json()["access_token"]
    assert bearer(token).get("/api/v1/orders/").status_code == 200
    assert bearer(token).get("/api/v1/orders/").status_code == 200  # now from the process's token cache
    with django_capture_on_commit_callbacks(execute=True):
        api_client_revoke(client=client, actor="user:ops", reason="contract ended")
    assert bearer(token).get("/api/v1/orders/").status_code == 401
    response = token_request(APIClient(), client, secret)
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"
    (record,) = _records("api_client.revoked")
    assert record.payload_data["after"]["tokens_revoked"] == 1 and record.payload_data["reason"] == "contract ended"
    client.user.refresh_from_db()
    assert not client.user.is_active


def test_a_client_revokes_its_own_token_at_the_revocation_endpoint(
    make_api_client, bearer, book, django_capture_on_commit_callbacks
):
    client, secret = make_api_client(Role.AUDITOR)
    token = token_request(APIClient(), client, secret).json()["access_token"]
    assert bearer(token).get("/api/v1/orders/").status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        response = APIClient().post(
            "/o/revoke_token/",
            {"token": token},
            format="multipart",
            HTTP_AUTHORIZATION=basic(client.application.client_id, secret),
        )
    assert response.status_code == 200, response.content
    assert bearer(token).get("/api/v1/orders/").status_code == 401
    (record,) = _records("api.token_revoked")
    assert record.object_id == client.name and len(record.payload_data["token_ids"]) == 1


def test_an_oauth_application_that_is_not_an_api_client_gets_no_token(db):
    from oauth2_provider.models import Application

    app = Application.objects.create(
        name="made in the admin",
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
        client_secret="s3cret-s3cret",
        hash_client_secret=True,
    )
    response = APIClient().post(
        "/o/token/",
        {"grant_type": "client_credentials"},
        format="multipart",
        HTTP_AUTHORIZATION=basic(app.client_id, "s3cret-s3cret"),
    )
    assert response.status_code == 401


def test_write_scope_use_is_audited_before_the_service_runs(issue_token, bearer, book):
    token, client = issue_token(Role.TRADER)
    response = bearer(token).post(
        "/api/v1/kill-switch/", {"scope": "algo", "scope_value": "algo-9", "reason": "runaway"}, format="json"
    )
    assert response.status_code == 201
    (used,) = _records("api.write_scope_used")
    engaged = _records("killswitch.engaged")[0]
    assert used.sequence < engaged.sequence
    assert used.payload_data == {
        "scope": "trading:write",
        "method": "POST",
        "path": "/api/v1/kill-switch/",
        "resource": "kill_switch",
        "verb": "engage",
    }
    assert engaged.actor == f"user:{client.user.username}"
    # reads are not recorded one by one
    bearer(token).get("/api/v1/kill-switch/")
    assert len(_records("api.write_scope_used")) == 1
    assert audit_verify().ok


def test_a_browser_session_works_and_its_writes_need_the_csrf_token(person, book):
    trader = person(Role.TRADER)
    http = APIClient(enforce_csrf_checks=True)
    http.force_login(trader)
    assert http.get("/api/v1/positions/").status_code == 200
    response = http.post("/api/v1/kill-switch/", {"scope": "all", "reason": "panic"}, format="json")
    assert response.status_code == 403 and "CSRF" in response.json()["error"]["message"]


def test_an_api_client_acts_with_its_bound_role_only(make_api_client, bearer, book):
    """A group added to a client's service user by hand does not widen what its tokens may do:
    an auditor client made a compliance officer on the side still cannot draft a STOR."""
    from django.contrib.auth.models import Group

    from tests.tradeops.api.endpoints import Ctx

    client, secret = make_api_client(Role.AUDITOR)
    client.user.groups.add(Group.objects.get(name=str(Role.COMPLIANCE_OFFICER)))
    token = token_request(APIClient(), client, secret).json()["access_token"]
    case = Ctx(book=book, person=None, tmp_path=None).alert().case
    assert bearer(token).get(f"/api/v1/cases/{case.pk}/").status_code == 200
    response = bearer(token).get(f"/api/v1/cases/{case.pk}/stor-draft/")
    assert response.status_code == 403 and response.json()["error"]["code"] == "role_forbidden"
    assert Scope.COMPLIANCE_READ in client.scopes
