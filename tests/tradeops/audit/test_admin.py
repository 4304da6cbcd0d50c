"""The admin shows the audit trail read-only, with filters and search."""

from __future__ import annotations

import pytest


@pytest.fixture
def admin_client_logged(db, client):
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_superuser(username="root", password="a-long-enough-password", email="")
    client.force_login(user)
    return client


def test_list_filters_and_search(admin_client_logged, chain):
    response = admin_client_logged.get("/admin/audit/auditrecord/", {"q": "CO-3"})
    assert response.status_code == 200
    body = response.content.decode()
    assert "CO-3" in body and "CO-4" not in body
    response = admin_client_logged.get("/admin/audit/auditrecord/", {"category__exact": "trading"})
    assert response.status_code == 200


def test_record_page_has_no_save_and_edits_are_refused(admin_client_logged, chain):
    response = admin_client_logged.get(f"/admin/audit/auditrecord/{chain[0].sequence}/change/")
    assert response.status_code == 200
    assert b'name="_save"' not in response.content
    assert chain[0].hash.encode() in response.content
    response = admin_client_logged.post(f"/admin/audit/auditrecord/{chain[0].sequence}/delete/", {"post": "yes"})
    assert response.status_code == 403


def test_placing_a_hold_is_audited(admin_client_logged):
    from tradeops.audit.models import AuditRecord, RetentionHold

    response = admin_client_logged.post(
        "/admin/audit/retentionhold/add/", {"category": "trading", "reason": "FCA request 2026-11"}
    )
    assert response.status_code == 302
    assert RetentionHold.objects.get().placed_by == "user:root"
    assert AuditRecord.objects.filter(action="audit.retention_hold_placed", actor_id="root").exists()
