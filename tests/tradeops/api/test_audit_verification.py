"""The audit verification over the integration API names no database address (an integration
token with the audit scope needs no host, port or name of the infrastructure: reconnaissance for
whoever steals it), and says whose checkpoints it compared, adopted or skipped."""

from __future__ import annotations

import pytest
from django.db import connection

from tests.tradeops.audit.test_checkpoint import FIRST_RUN, OLD_HOME, _signed_checkpoint
from tradeops.audit.checkpoint import audit_checkpoint_create, database_identity, database_label
from tradeops.audit.services import audit_append_many
from tradeops.core.roles import Role

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("role", [Role.AUDITOR, Role.ADMIN])
def test_the_verification_names_no_address_and_lists_whose_checkpoints(
    role, roles, issue_token, bearer, audit_checkpoint_dir
):
    from tests.tradeops.audit.conftest import entries

    chain = audit_append_many(entries=entries(10))
    _signed_checkpoint(audit_checkpoint_dir, sequence=5, hash=chain[4].hash, database=OLD_HOME)
    _signed_checkpoint(audit_checkpoint_dir, sequence=3, hash="ab" * 32, database=FIRST_RUN)
    audit_checkpoint_create()
    token, _ = issue_token(role)  # an integration token with the audit scope; an admin's too
    response = bearer(token).post("/api/v1/audit/verification/")
    assert response.status_code == 201, response.content
    raw = response.content.decode()
    config = connection.settings_dict
    for address in (database_identity(), f"{config['HOST']}:{config['PORT']}", config["NAME"], OLD_HOME, FIRST_RUN):
        assert address not in raw, address
    body = response.json()
    assert body["ok"] is True and body["database"] == database_label(database_identity())
    assert body["checkpoints"] == 2 and body["skipped_checkpoints"] == 1
    sources = [(s["role"], s["database"], s["count"], s["compared"]) for s in body["checkpoint_sources"]]
    assert sources == [
        ("this", database_label(database_identity()), 1, True),
        ("adopted", database_label(OLD_HOME), 1, True),
        ("skipped", database_label(FIRST_RUN), 1, False),
    ]
    adopted = body["checkpoint_sources"][1]
    assert (adopted["first_sequence"], adopted["last_sequence"]) == (5, 5)
    assert adopted["newest_created_at"].endswith("Z")
    # the run is recorded, as the screen's are (the walk of 2026-12-06: the audit screen said
    # "not verified yet" after an integration's runs), with databases by label
    from tradeops.audit.models import AuditRecord

    (run,) = AuditRecord.objects.filter(action="audit.verified")
    assert run.actor_id.startswith("api.") and database_identity() not in str(run.payload_data)
    assert body["sequence"] == run.sequence and body["actor"] == run.actor
    # read back, as it was reported: the latest recorded verification, labels and sources alike
    latest = bearer(token).get("/api/v1/audit/verification/")
    assert latest.status_code == 200 and latest.json() == body
    for address in (database_identity(), OLD_HOME, FIRST_RUN):
        assert address not in latest.content.decode(), address


def test_reading_the_verification_runs_nothing_and_records_nothing(roles, issue_token, bearer):
    """A GET has no side effect (walk45: a crawler, a monitoring probe or a browser prefetch of
    ``GET /api/v1/audit/verification/`` walked the whole chain and wrote an ``audit.verified``
    record each time): it answers the newest recorded run, whoever made it."""
    from unittest import mock

    from tests.tradeops.audit.conftest import entries
    from tradeops.audit.models import AuditRecord
    from tradeops.audit.services import audit_verification_record
    from tradeops.audit.verify import audit_verify

    audit_append_many(entries=entries(5))
    token, _ = issue_token(Role.AUDITOR)
    http = bearer(token)
    none_yet = http.get("/api/v1/audit/verification/")
    assert none_yet.status_code == 404 and none_yet.json()["error"]["code"] == "audit_not_verified"
    older = audit_verification_record(report=audit_verify(checkpoints=False), actor="user:olga")
    newest = audit_verification_record(report=audit_verify(checkpoints=False), actor="service:audit-verify-nightly")
    assert older.sequence < newest.sequence
    records = AuditRecord.objects.count()
    with mock.patch("tradeops.audit.verify.audit_verify", side_effect=AssertionError("a GET ran a verification")):
        for _ in range(3):
            response = http.get("/api/v1/audit/verification/")
            assert response.status_code == 200, response.content
    assert AuditRecord.objects.count() == records  # nothing written, by the read or for it
    body = response.json()
    assert body["sequence"] == newest.sequence and body["actor"] == "service:audit-verify-nightly"
    assert body["ok"] is True and body["problem"] is None and body["findings"] == []
    assert body["checked"] == older.sequence and body["verified_at"].endswith("Z")  # all before it


def test_the_proof_of_a_record_of_today_is_refused_as_the_command_refuses_it(roles, issue_token, bearer):
    from datetime import timedelta

    from django.core.management import call_command
    from django.core.management.base import CommandError

    from tests.tradeops.audit.conftest import entries
    from tradeops.core.clock import utcnow

    yesterday = utcnow() - timedelta(days=1)
    (old,) = audit_append_many(entries=entries(1), recorded_at=yesterday)
    (new,) = audit_append_many(entries=entries(1))
    token, _ = issue_token(Role.AUDITOR)
    http = bearer(token)
    refused = http.get(f"/api/v1/audit/records/{new.sequence}/proof/")
    assert refused.status_code == 409, refused.content
    error = refused.json()["error"]
    with pytest.raises(CommandError) as command:
        call_command("audit_digest", "--proof", str(new.event_id))
    assert error["code"] == "audit_proof_day_open" and error["message"] == str(command.value)
    tomorrow = utcnow().date() + timedelta(days=1)
    assert error["extra"] == {"day": utcnow().date().isoformat(), "digest_from": f"{tomorrow}T00:00:00Z"}
    assert f"can be made from {tomorrow} 00:00 UTC" in error["message"]
    proof = http.get(f"/api/v1/audit/records/{old.sequence}/proof/")  # a finished day's record: its proof
    assert proof.status_code == 200 and proof.json()["day"] == yesterday.date().isoformat()


OLD_FINDING = (
    "no signed checkpoint names this database ({identity}), but 1 of other databases do; checkpoints of "
    "postgresql://10.0.4.7:5432/tradeops (2) and db01.prod.internal:5432/tradeops skipped"
)


def _old_verification_record():
    """An ``audit.verified`` record written before findings named databases by field: its text
    holds full identities (the trail is immutable: it keeps them)."""
    from tradeops.audit.models import Category
    from tradeops.audit.services import audit_append
    from tradeops.core.clock import utcnow

    detail = OLD_FINDING.format(identity=database_identity())
    return audit_append(
        action="audit.verified",
        object_type="audit_chain",
        object_id="chain",
        occurred_at=utcnow(),
        payload={"ok": False, "findings": [{"kind": "checkpoint", "sequence": 0, "detail": detail}]},
        actor="user:before",
        category=Category.SYSTEM,
    )


def test_an_older_verification_record_shows_no_address_over_the_api(roles, issue_token, bearer):
    record = _old_verification_record()
    assert "10.0.4.7" in record.payload  # as recorded, for ever
    token, _ = issue_token(Role.AUDITOR)
    http = bearer(token)
    for url in (
        f"/api/v1/audit/records/{record.sequence}/",
        "/api/v1/audit/records/?action=audit.verified",
        "/api/v1/audit/verification/",  # the latest verification: that record, labelled the same
    ):
        response = http.get(url)
        assert response.status_code == 200, response.content
        raw = response.content.decode()
        config = connection.settings_dict
        for address in (database_identity(), f"{config['HOST']}:{config['PORT']}", "10.0.4.7", ":5432", "db01.prod"):
            assert address not in raw, (url, address)
        assert (
            database_label(database_identity()) in raw and database_label("postgresql://10.0.4.7:5432/tradeops") in raw
        )

    latest = http.get("/api/v1/audit/verification/").json()
    assert latest["sequence"] == record.sequence and latest["ok"] is False and latest["checkpoint_sources"] == []
    assert latest["problem"].startswith("checkpoint: record 0: no signed checkpoint names this database (")


def test_the_api_search_does_not_match_an_older_verification_record_by_address(roles, issue_token, bearer):
    """The API labels databases for every token, admins' too: its search never matches the
    addresses an older ``audit.verified`` record names (no oracle for them)."""
    record = _old_verification_record()
    for role in (Role.AUDITOR, Role.ADMIN):
        token, _ = issue_token(role)
        http = bearer(token)
        for text in ("10.0.4.7", "5432/tradeops", "/tradeops", connection.settings_dict["HOST"] or "localhost"):
            response = http.get("/api/v1/audit/records/", {"q": text})
            assert response.status_code == 200, response.content
            # (the host may be in other records: a sign-in's client address)
            assert record.sequence not in [r["sequence"] for r in response.json()["results"]], (role, text)
        found = http.get("/api/v1/audit/records/", {"q": "skipped"}).json()["results"]
        assert [r["sequence"] for r in found] == [record.sequence]
