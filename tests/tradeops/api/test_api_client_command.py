"""``manage.py api_client create|list|revoke``."""

from __future__ import annotations

import re

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from tests.tradeops.api.conftest import basic
from tradeops.api.models import ApiClient
from tradeops.audit.models import AuditRecord


def _create(capsys, *args) -> tuple[str, str]:
    call_command("api_client", "create", *args)
    out = capsys.readouterr().out
    client_id = re.search(r"client_id:\s+(\S+)", out).group(1)
    secret = re.search(r"client_secret:\s+(\S+)", out).group(1)
    return client_id, secret


def test_create_prints_the_credentials_once_and_they_work(roles, capsys):
    client_id, secret = _create(
        capsys, "--name", "bi-warehouse", "--role", "auditor", "--scopes", "trading:read,audit:read", "--user", "ops"
    )
    client = ApiClient.objects.get(name="bi-warehouse")
    assert client.scopes == ["audit:read", "trading:read"] and client.role == "auditor"
    assert client.application.client_secret != secret  # only the hash is kept
    assert client.user.username == "api.bi-warehouse" and not client.user.has_usable_password()
    assert not client.user.is_staff
    response = APIClient().post(
        "/o/token/",
        {"grant_type": "client_credentials"},
        format="multipart",
        HTTP_AUTHORIZATION=basic(client_id, secret),
    )
    assert response.status_code == 200 and sorted(response.json()["scope"].split()) == ["audit:read", "trading:read"]
    created = AuditRecord.objects.get(action="api_client.created")
    assert created.actor == "user:ops" and created.category == "security"
    assert secret not in created.payload and created.payload_data["after"]["role"] == "auditor"


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["--role", "auditor", "--scopes", "trading:write"], "scope_beyond_role"),
        (["--role", "trader", "--scopes", "compliance:read"], "scope_beyond_role"),
        (["--role", "risk_manager", "--scopes", "orders:everything"], "unknown_scope"),
        (["--role", "trader", "--scopes", "trading:read", "--rate", "fast"], "invalid_throttle_rate"),
    ],
)
def test_create_refuses_more_than_the_role_and_bad_input(roles, args, code):
    with pytest.raises(CommandError, match=code):
        call_command("api_client", "create", "--name", "feed", *args)
    assert not ApiClient.objects.exists()


def test_names_are_unique(roles, capsys):
    _create(capsys, "--name", "feed", "--role", "trader", "--scopes", "trading:read")
    with pytest.raises(CommandError, match="api_client_exists"):
        call_command("api_client", "create", "--name", "feed", "--role", "trader", "--scopes", "trading:read")


def test_list_and_revoke(roles, capsys):
    client_id, secret = _create(capsys, "--name", "risk-feed", "--role", "risk_manager", "--scopes", "trading:read")
    call_command("api_client", "list")
    out = capsys.readouterr().out
    assert "risk-feed" in out and client_id in out and "active" in out and "risk:write" in out
    call_command("api_client", "revoke", "--name", "risk-feed", "--reason", "contract ended", "--user", "ops")
    assert "revoked" in capsys.readouterr().out
    call_command("api_client", "list")
    assert capsys.readouterr().out.strip() == "no API clients"
    call_command("api_client", "list", "--all")
    assert "revoked" in capsys.readouterr().out
    response = APIClient().post(
        "/o/token/",
        {"grant_type": "client_credentials"},
        format="multipart",
        HTTP_AUTHORIZATION=basic(client_id, secret),
    )
    assert response.status_code == 401
    with pytest.raises(CommandError, match="api_client_revoked"):
        call_command("api_client", "revoke", "--name", "risk-feed", "--reason", "again")
    with pytest.raises(CommandError, match="api_client_not_found"):
        call_command("api_client", "revoke", "--name", "nobody", "--reason", "x")


def test_the_admin_lists_clients_read_only_and_has_no_oauth_pages(roles, capsys, person, client):
    from tradeops.core.roles import Role

    _create(capsys, "--name", "bi", "--role", "auditor", "--scopes", "audit:read")
    client.force_login(person(Role.ADMIN))
    listing = client.get("/admin/api/apiclient/")
    assert listing.status_code == 200 and b"bi" in listing.content
    assert client.get("/admin/api/apiclient/add/").status_code == 403
    for page in ("application", "accesstoken", "refreshtoken", "grant", "idtoken"):
        assert client.get(f"/admin/oauth2_provider/{page}/").status_code == 404, page
