"""The admin's audit and alert pages follow the screens' role rules (issue 19): the trail carries
alert evidence, so a risk manager, who holds every ``view_*`` permission for the trading admin,
must not read it through ``/admin/audit/auditrecord/`` when ``/compliance/audit/`` refuses them."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from tradeops.audit.services import audit_append
from tradeops.core.clock import utcnow
from tradeops.core.roles import Role
from tradeops.core.services import roles_sync, user_ensure_with_role

READERS = {"compliance": 200, "auditor": 200, "admin": 200, "risk": 403, "trader": 403}
ROLES = {
    "compliance": Role.COMPLIANCE_OFFICER,
    "auditor": Role.AUDITOR,
    "admin": Role.ADMIN,
    "risk": Role.RISK_MANAGER,
    "trader": Role.TRADER,
}


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # forty users per run


@pytest.fixture
def evidence(db):
    roles_sync()
    return audit_append(
        action="alert.raised",
        object_type="alert",
        object_id="spoofing:EURUSD:7",
        occurred_at=utcnow(),
        payload={"alert_type": "spoofing", "account": "7", "evidence": {"orders": ["CO-1", "CO-2"]}},
        actor="service:surveillance",
        category="compliance",
    )


def _client_as(client, who: str):
    user, _ = user_ensure_with_role(username=who, role=ROLES[who])
    client.force_login(get_user_model().objects.get(pk=user.pk))
    return client


@pytest.mark.parametrize("who", sorted(READERS))
@pytest.mark.parametrize(
    "path",
    [
        "/admin/audit/auditrecord/",
        "/admin/audit/auditrecord/{seq}/change/",
        "/admin/audit/auditrecord/?q=spoofing",
        "/admin/audit/purgedrecord/",
        "/admin/audit/digest/",
        "/admin/audit/retentionhold/",
        "/compliance/audit/",
        "/compliance/audit/records/{seq}/",
    ],
)
def test_audit_pages_role_matrix(client, evidence, who, path):
    response = _client_as(client, who).get(path.format(seq=evidence.sequence))
    assert response.status_code == READERS[who], (who, path, response.status_code)
    if READERS[who] == 403:
        assert b"spoofing" not in response.content


@pytest.mark.parametrize("who,expected", [("compliance", 200), ("auditor", 200), ("risk", 403), ("trader", 403)])
@pytest.mark.parametrize("path", ["/admin/compliance/alert/", "/admin/compliance/case/"])
def test_alert_pages_role_matrix(client, evidence, who, expected, path):
    assert _client_as(client, who).get(path).status_code == expected


def test_the_admin_index_does_not_list_the_trail_for_a_risk_manager(client, evidence):
    body = _client_as(client, "risk").get("/admin/").content.decode()
    assert "Audit trail" not in body and "Audit records" not in body
    assert "Risk limits" in body  # their own pages are still there


@pytest.mark.parametrize("who,expected", [("compliance", 302), ("auditor", 403), ("risk", 403)])
def test_retention_holds_are_placed_by_compliance_officers(client, evidence, who, expected):
    response = _client_as(client, who).post("/admin/audit/retentionhold/add/", {"category": "trading", "reason": "x"})
    assert response.status_code == expected
