"""Audit trail screens: officers and auditors search, read a record, verify the chain; others are refused."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

T0 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


@pytest.fixture
def records(db):
    from tradeops.audit.services import AuditEntry, audit_append_many

    return audit_append_many(
        entries=[
            AuditEntry(
                action=action,
                object_type="order",
                object_id=oid,
                actor=actor,
                payload=payload,
                occurred_at=T0 + timedelta(minutes=i),
                event_id=uuid.uuid4(),
            )
            for i, (action, oid, actor, payload) in enumerate(
                [
                    ("order.created", "CO-1", "service:execution-worker", {"symbol": "EURUSD"}),
                    ("order.cancelled", "CO-1", "user:trader1", {"reason": "fat finger"}),
                    ("order.created", "CO-2", "algorithm:momentum-v2", {"symbol": "GBPUSD"}),
                ]
            )
        ]
    )


def _login(client, role):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    user = get_user_model().objects.create_user(username=f"u-{role}", password="a-long-enough-password")
    user.groups.add(Group.objects.get_or_create(name=role)[0])
    client.force_login(user)
    return user


def test_a_bare_until_date_takes_in_that_whole_day(client, records):
    _login(client, "auditor")

    def count(**period):
        body = client.get("/compliance/audit/", period).content.decode()
        return body.split('id="audit-results"')[1].count("order.c")

    assert count(since="2026-03-02", until="2026-03-02") == 3
    assert count(since="2026-03-01", until="2026-03-01") == 0
    assert count(until="2026-03-02T09:31") == 1  # a date-time bound stays excluded


@pytest.mark.parametrize("role", ["compliance_officer", "auditor"])
def test_officers_and_auditors_search_with_facets(client, records, role):
    _login(client, role)
    response = client.get("/compliance/audit/", {"actor": "user:trader1"})
    assert response.status_code == 200
    body = response.content.decode()
    assert "order.cancelled" in body and "momentum-v2" not in body.split('id="audit-results"')[1]
    assert "1 record " in body
    response = client.get("/compliance/audit/", {"q": "GBPUSD"})
    assert "CO-2" in response.content.decode() and "CO-1</td>" not in response.content.decode()


def test_traders_are_refused(client, records):
    _login(client, "trader")
    assert client.get("/compliance/audit/").status_code == 403


def test_record_page_shows_corrections_and_proof(client, records):
    from tradeops.audit.services import audit_correct

    _login(client, "auditor")
    fix = audit_correct(corrects=records[1].event_id, actor="user:officer", reason="wrong reason", corrected={"x": 1})
    body = client.get(f"/compliance/audit/records/{records[1].sequence}/").content.decode()
    assert records[1].hash in body and f"#{fix.sequence}" in body and "Inclusion proof" in body


def test_record_page_of_today_refuses_the_proof_as_the_command_does(client, records):
    """A record of today has no proof any digest file will match: the page says why, in the words
    of ``audit_digest --proof`` and the API, and when the day's digest can be made."""
    from django.core.management import call_command
    from django.core.management.base import CommandError

    from tradeops.audit.services import audit_correct
    from tradeops.core.clock import utcnow

    _login(client, "auditor")
    today_record = audit_correct(corrects=records[0].event_id, actor="user:officer", reason="r", corrected={"x": 2})
    body = client.get(f"/compliance/audit/records/{today_record.sequence}/").content.decode()
    with pytest.raises(CommandError) as refused:
        call_command("audit_digest", "--proof", str(today_record.event_id))
    assert f"No proof yet: {refused.value}." in body.replace("&#x27;", "'")
    tomorrow = utcnow().date() + timedelta(days=1)
    assert f"can be made from {tomorrow} 00:00 UTC" in body and "Leaf " not in body
    # a record of a finished day still has its proof on the page
    from tradeops.audit.services import AuditEntry, audit_append_many

    yesterday = utcnow() - timedelta(days=1)
    (old,) = audit_append_many(
        entries=[AuditEntry(action="order.created", object_type="order", object_id="CO-9", occurred_at=yesterday)],
        recorded_at=yesterday,
    )
    page = client.get(f"/compliance/audit/records/{old.sequence}/").content.decode()
    assert "Leaf 0 of 1" in page and "No proof yet" not in page


def test_verify_page_reports_an_intact_chain(client, records):
    _login(client, "compliance_officer")
    response = client.post("/compliance/audit/verify/")
    assert response.status_code == 200
    assert "Intact." in response.content.decode()
    # the run is recorded in the trail, and every audit screen says when and by whom it was last run
    from tradeops.audit.models import AuditRecord

    run = AuditRecord.objects.get(action="audit.verified")
    assert (
        run.actor_id == "u-compliance_officer"
        and run.payload_data["ok"]
        and run.payload_data["checked"] >= len(records)
    )
    search = client.get("/compliance/audit/").content.decode()
    assert 'id="chain-status"' in search and "intact" in search and "by user:u-compliance_officer" in search
    head = run.payload_data["head_sequence"]
    assert f"Records after #{head} (this run's own record, #{run.sequence}, among them)" in search
    n = run.payload_data["checkpoints"]
    assert f"{n} signed checkpoint{'' if n == 1 else 's'}" in search
    # the search's status card leads to the verify page; the verify page has its own button, not a link to itself
    assert "Verify the chain now" in search
    verify = client.get("/compliance/audit/verify/").content.decode()
    assert "Verify the chain now" not in verify and "Verify now" in verify


def test_the_search_says_when_the_chain_was_never_verified(client, records):
    _login(client, "auditor")
    body = client.get("/compliance/audit/").content.decode()
    assert "not verified yet" in body and "Daily digests" in body and "Signed checkpoints" in body
