"""The authorisation matrix, endpoint by endpoint and role by role (tradeops/api/matrix.py).

For every endpoint: each role on a browser session, each role as an API client holding every
scope its role allows, each role as a client missing the endpoint's scope, and an authenticated
user without a role. Allowed calls must succeed (the setup makes what they need); refused ones
must be 403 with the stable code, and must change nothing (no record outside the security ones).
"""

from __future__ import annotations

import pytest
from django.urls import URLResolver, get_resolver
from rest_framework.test import APIClient

from tests.tradeops.api.endpoints import ENDPOINTS, Ctx, Endpoint
from tradeops.api.matrix import MATRIX, WRITE_SCOPES, rule_for, scopes_for_role
from tradeops.audit.models import AuditRecord
from tradeops.core.roles import Role

NOT_IN_MATRIX = {"", "schema/", "docs/", "docs/redoc/", "events/schema/"}  # the index and the public documents


def _routes() -> dict[tuple[str, str], tuple[str, str]]:
    """(method, route) -> matrix entry, for every view under /api/v1/ and /api/trading/."""
    found: dict[tuple[str, str], tuple[str, str]] = {}

    def walk(patterns, prefix: str):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, prefix + str(pattern.pattern))
                continue
            full = prefix + str(pattern.pattern)
            if full.startswith("api/v1/"):
                route = full.removeprefix("api/v1/")
            elif full.startswith("api/trading/"):
                route = "legacy:" + full.removeprefix("api/trading/")
            else:
                continue
            view = getattr(pattern.callback, "view_class", None)
            matrix = getattr(view, "matrix", None)
            if route in NOT_IN_MATRIX:
                assert not matrix
                continue
            assert matrix, f"{full}: an API view must declare its matrix entries"
            for method, entry in matrix.items():
                found[(method, route)] = entry

    walk(get_resolver().url_patterns, "")
    return found


def test_the_endpoint_table_covers_every_route_and_every_row_of_the_matrix():
    routes = _routes()
    table = {(e.method, e.route): e.matrix for e in ENDPOINTS}
    assert table == routes
    used = set(routes.values())
    assert used == set(MATRIX)


def _call(http: APIClient, endpoint: Endpoint, path: str, body):
    if endpoint.method == "GET":
        return http.get(path)
    return http.post(path, body or {}, format="json")


def _business_records() -> int:
    return AuditRecord.objects.exclude(category="security").count()


@pytest.fixture
def ctx(book, person, tmp_path, settings):
    settings.AUDIT_EXPORT_DIR = str(tmp_path)
    return Ctx(book=book, person=person, tmp_path=tmp_path)


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.label)
def test_every_role_and_scope(endpoint: Endpoint, ctx, person, issue_token, bearer):
    rule = rule_for(*endpoint.matrix)
    outcomes = []

    def check(who: str, http: APIClient, *, allowed: bool, code: str = ""):
        path, body = endpoint.setup(ctx)
        before = _business_records()
        writes_before = AuditRecord.objects.filter(action="api.write_scope_used").count()
        response = _call(http, endpoint, path, body)
        if allowed:
            assert response.status_code == endpoint.ok, (who, response.status_code, response.content[:400])
        else:
            assert response.status_code == 403, (who, response.status_code, response.content[:400])
            assert response.json()["error"]["code"] == code, (who, response.json())
            assert _business_records() == before, f"{who}: a refused call changed something"
        writes = AuditRecord.objects.filter(action="api.write_scope_used").count() - writes_before
        outcomes.append((who, response.status_code, writes))

    for role in [*Role, None]:
        http = APIClient()
        http.force_login(person(role))
        allowed = role in rule.roles
        check(f"session {role}", http, allowed=allowed, code=rule.refusal_code)

    for role in Role:
        token, client = issue_token(role)
        allowed = role in rule.roles
        code = rule.refusal_code if str(rule.scope) in client.scopes else "insufficient_scope"
        check(f"client {role}", bearer(token), allowed=allowed, code=code)
        if endpoint.method == "POST" and allowed and rule.scope in WRITE_SCOPES:
            assert outcomes[-1][2] == 1, "a write scope used by a token is audited once"
        others = sorted(scopes_for_role(role) - {rule.scope})
        if others:
            token, _ = issue_token(role, scopes=others)
            check(f"client {role} without {rule.scope}", bearer(token), allowed=False, code="insufficient_scope")
            assert outcomes[-1][2] == 0
