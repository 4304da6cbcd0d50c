"""An auditor downloads a record's inclusion proof and its day's digest from the audit screens
and checks one against the other with the documented command (walked on 2026-12-06, wip/walk45:
the record page showed the proof's hashes and named ``audit_digest_verify --proof``, which takes
two files, but offered neither; only someone with a shell on the server could make them)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta

import pytest
from django.core.management import call_command

from tests.screens.world import user_make
from tests.tradeops.audit.conftest import entries
from tradeops.audit.digest import audit_digest_create
from tradeops.audit.services import audit_append_many
from tradeops.core.clock import utcnow
from tradeops.core.roles import Role

pytestmark = pytest.mark.django_db


@pytest.fixture
def auditor_client(client):
    client.force_login(user_make("audrey", Role.AUDITOR))
    return client


def test_an_auditor_downloads_a_proof_and_the_digest_and_checks_them_with_the_documented_command(
    auditor_client, tmp_path, capsys
):
    day = utcnow().date() - timedelta(days=1)
    records = audit_append_many(entries=entries(5), recorded_at=datetime.combine(day, time(10), tzinfo=UTC))
    record = records[3]

    page = auditor_client.get(f"/compliance/audit/records/{record.sequence}/").content.decode()
    assert f"/compliance/audit/records/{record.sequence}/proof.json" in page
    assert "The day's digest is not made yet" in page  # offered once the day is digested
    audit_digest_create(day=day, directory=tmp_path / "export")
    page = auditor_client.get(f"/compliance/audit/records/{record.sequence}/").content.decode()
    assert f"/compliance/audit/digests/{day.isoformat()}.json" in page
    command = f"audit_digest_verify --proof proof-{record.sequence}.json {day.isoformat()}.json"
    assert command in page

    proof = auditor_client.get(f"/compliance/audit/records/{record.sequence}/proof.json")
    assert proof.status_code == 200 and proof["Content-Type"] == "application/json"
    assert f'filename="proof-{record.sequence}.json"' in proof["Content-Disposition"]
    digest = auditor_client.get(f"/compliance/audit/digests/{day.isoformat()}.json")
    assert digest.status_code == 200
    assert json.loads(digest.content) == json.loads((tmp_path / "export" / f"{day.isoformat()}.json").read_text())
    search = auditor_client.get("/compliance/audit/").content.decode()
    assert f"/compliance/audit/digests/{day.isoformat()}.json" in search  # the status card's digests

    (tmp_path / f"proof-{record.sequence}.json").write_bytes(proof.content)
    (tmp_path / f"{day.isoformat()}.json").write_bytes(digest.content)
    capsys.readouterr()
    call_command(
        "audit_digest_verify",
        "--proof",
        str(tmp_path / f"proof-{record.sequence}.json"),
        str(tmp_path / f"{day.isoformat()}.json"),
    )
    assert f"record {record.sequence}: record is in the digest" in capsys.readouterr().out


def test_a_proof_of_today_is_refused_in_a_sentence_and_a_missing_digest_is_a_404(auditor_client):
    (record,) = audit_append_many(entries=entries(1))
    refused = auditor_client.get(f"/compliance/audit/records/{record.sequence}/proof.json")
    assert refused.status_code == 409
    assert refused.content.decode().startswith(f"No proof yet: record {record.sequence} was recorded on ")
    assert auditor_client.get("/compliance/audit/digests/2020-01-01.json").status_code == 404


@pytest.mark.parametrize("role", [Role.TRADER, Role.RISK_MANAGER])
def test_who_may_not_read_the_trail_gets_neither_file(client, role):
    day = utcnow().date() - timedelta(days=1)
    (record,) = audit_append_many(entries=entries(1), recorded_at=datetime.combine(day, time(10), tzinfo=UTC))
    client.force_login(user_make("someone", role))
    assert client.get(f"/compliance/audit/records/{record.sequence}/proof.json").status_code == 403
    assert client.get(f"/compliance/audit/digests/{day.isoformat()}.json").status_code == 403


def test_a_records_payload_reads_as_json_not_as_python(auditor_client):
    from tradeops.audit.services import audit_append

    record = audit_append(
        action="case.commented",
        object_type="case",
        object_id="7",
        occurred_at=utcnow(),
        payload={"note": "l'ordre", "closed": False, "owner": None},
        actor="user:olga",
        category="compliance",
    )
    page = auditor_client.get(f"/compliance/audit/records/{record.sequence}/").content.decode()
    shown = page.split('<pre id="payload">')[1].split("</pre>")[0]
    import html

    assert json.loads(html.unescape(shown)) == {"note": "l'ordre", "closed": False, "owner": None}
