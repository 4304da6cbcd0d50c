"""Daily Merkle digests and inclusion proofs: anchoring that catches a rewrite of the whole table."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from hypothesis import given
from hypothesis import strategies as st

from tests.tradeops.audit.conftest import entries, owner_bypass
from tradeops.audit.digest import DigestError, audit_digest_check, audit_digest_create, audit_proof, proof_verify
from tradeops.audit.merkle import EMPTY_ROOT, inclusion_proof, inclusion_verify, merkle_root
from tradeops.audit.services import audit_append_many
from tradeops.core.clock import utcnow


def _hashes(n: int) -> list[str]:
    return [hashlib.sha256(str(i).encode()).hexdigest() for i in range(n)]


def _reference_root(leaves: list[bytes]) -> bytes:
    """RFC 6962 section 2.1, recursively, as written in the RFC."""
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + _reference_root(leaves[:k]) + _reference_root(leaves[k:])).digest()


@given(st.integers(min_value=1, max_value=70))
def test_root_matches_the_rfc_definition_and_every_proof_verifies(n):
    hashes = _hashes(n)
    root = merkle_root(hashes)
    assert root == _reference_root([bytes.fromhex(h) for h in hashes]).hex()
    for index in range(n):
        proof = inclusion_proof(hashes, index)
        assert inclusion_verify(record_hash=hashes[index], index=index, size=n, proof=proof, root=root)


@given(st.integers(min_value=2, max_value=40), st.data())
def test_a_proof_for_another_record_or_position_fails(n, data):
    hashes = _hashes(n)
    root = merkle_root(hashes)
    index = data.draw(st.integers(min_value=0, max_value=n - 1))
    other = data.draw(st.integers(min_value=0, max_value=n - 1).filter(lambda i: i != index))
    proof = inclusion_proof(hashes, index)
    assert not inclusion_verify(record_hash=hashes[other], index=index, size=n, proof=proof, root=root)
    assert not inclusion_verify(record_hash=hashes[index], index=other, size=n, proof=proof, root=root)


def test_empty_day_has_the_empty_root():
    assert merkle_root([]) == EMPTY_ROOT


@pytest.fixture
def yesterday_chain(db):
    day = utcnow().date() - timedelta(days=1)
    from datetime import UTC, datetime, time

    at = datetime.combine(day, time(10), tzinfo=UTC)
    records = audit_append_many(entries=entries(7), recorded_at=at)
    audit_append_many(entries=entries(2))  # today: not in yesterday's digest
    return day, records


def test_digest_file_checks_against_the_table(yesterday_chain, tmp_path):
    day, records = yesterday_chain
    digest, path = audit_digest_create(day=day, directory=tmp_path)
    document = json.loads(path.read_text())
    assert document["record_count"] == 7 and document["first_sequence"] == 1 and document["last_sequence"] == 7
    assert document["merkle_root"] == merkle_root([r.hash for r in records])
    assert document["chain_hash"] == records[-1].hash
    assert audit_digest_check(document=document).ok


def test_a_day_not_over_cannot_be_digested(db, tmp_path):
    with pytest.raises(DigestError):
        audit_digest_create(day=utcnow().date(), directory=tmp_path)


def test_the_proof_command_refuses_a_record_of_today_and_says_when_it_can_be_had(yesterday_chain, tmp_path):
    """A proof of a day still growing could never match that day's digest file: no file is written."""
    today = utcnow().date()
    (record,) = audit_append_many(entries=entries(1))
    proof_file = tmp_path / "proof.json"
    with pytest.raises(CommandError) as refused:
        call_command("audit_digest", "--proof", str(record.event_id), "--out", str(proof_file))
    message = str(refused.value)
    assert f"recorded on {today} (UTC), a day not over yet" in message
    assert f"{today + timedelta(days=1)} 00:00 UTC" in message and f"audit_digest --day {today}" in message
    assert not proof_file.exists()
    with pytest.raises(DigestError) as error:
        audit_proof(event_id=record.event_id)  # the one refusal: the screen and the API ask the same way
    assert error.value.code == "audit_proof_day_open" and str(error.value) == message
    assert error.value.extra == {"day": today.isoformat(), "digest_from": f"{today + timedelta(days=1)}T00:00:00Z"}


@pytest.mark.django_db(transaction=True)  # the owner rewrites committed rows on its own connection
def test_rewrite_of_the_whole_table_passes_verify_but_fails_the_digest(yesterday_chain, tmp_path, armed):
    """The attack audit_verify cannot see on its own: every row rewritten with fresh hashes."""
    from tradeops.audit.canonical import GENESIS_HASH, chain_hash
    from tradeops.audit.models import AuditRecord
    from tradeops.audit.verify import FIELDS, _header, audit_verify

    day, _ = yesterday_chain
    _, path = audit_digest_create(day=day, directory=tmp_path)
    rows = list(AuditRecord.objects.order_by("sequence").values_list(*FIELDS))
    with owner_bypass() as cursor:
        prev = GENESIS_HASH
        for row in rows:
            payload = '{"rewritten":true}' if row[0] == 3 else row[12]
            digest = chain_hash(prev, _header(row), payload)
            cursor.execute(
                "UPDATE audit_record SET payload = %s, prev_hash = %s, hash = %s WHERE sequence = %s",
                [payload, prev, digest, row[0]],
            )
            prev = digest
        cursor.execute("UPDATE audit_chain_head SET last_hash = %s WHERE id = 1", [prev])
    assert audit_verify().ok  # the forged chain is internally consistent
    check = audit_digest_check(document=json.loads(path.read_text()))
    assert not check.ok and "root" in check.detail


def test_inclusion_proof_verifies_offline_against_the_digest_file(yesterday_chain, tmp_path):
    day, records = yesterday_chain
    _, digest_path = audit_digest_create(day=day, directory=tmp_path)
    proof = audit_proof(event_id=records[4].event_id)
    digest = json.loads(digest_path.read_text())
    assert proof_verify(proof=proof, digest=digest).ok
    forged = {**proof, "record_hash": records[3].hash}
    assert not proof_verify(proof=forged, digest=digest).ok


def test_commands_write_check_and_prove(yesterday_chain, tmp_path, capsys):
    day, records = yesterday_chain
    call_command("audit_digest", "--day", day.isoformat(), "--dir", str(tmp_path))
    digest_file = tmp_path / f"{day.isoformat()}.json"
    assert digest_file.exists()
    proof_file = tmp_path / "proof.json"
    call_command("audit_digest", "--proof", str(records[0].event_id), "--out", str(proof_file))
    call_command("audit_digest_verify", str(digest_file))
    call_command("audit_digest_verify", str(digest_file), "--proof", str(proof_file))
    out = capsys.readouterr().out
    assert out.count(": OK:") == 2
    tampered = json.loads(digest_file.read_text())
    tampered["merkle_root"] = "0" * 64
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(tampered))
    with pytest.raises(SystemExit):
        call_command("audit_digest_verify", str(bad))
    assert "MISMATCH" in capsys.readouterr().err


def test_verify_names_a_digest_file_it_cannot_read_and_still_checks_the_others(yesterday_chain, tmp_path, capsys):
    """docs/audit-trail.md's ``audit_digest_verify --proof proof.json var/audit/digests/DAY.json``
    for a day not digested yet ended in a FileNotFoundError traceback."""
    day, _ = yesterday_chain
    call_command("audit_digest", "--day", day.isoformat(), "--dir", str(tmp_path))
    digest_file = tmp_path / f"{day.isoformat()}.json"
    missing = tmp_path / f"{(day + timedelta(days=1)).isoformat()}.json"  # today: not digested yet
    garbled = tmp_path / "garbled.json"
    garbled.write_text("{not json")
    with pytest.raises(SystemExit):
        call_command("audit_digest_verify", str(missing), str(garbled), str(digest_file))
    captured = capsys.readouterr()
    assert f"{missing}: cannot read: No such file or directory" in captured.err
    assert f"{garbled}: not a JSON document" in captured.err
    assert ": OK:" in captured.out  # the readable file was still checked
    with pytest.raises(CommandError, match="proof.json: cannot read"):
        call_command("audit_digest_verify", str(digest_file), "--proof", str(tmp_path / "proof.json"))


def test_daily_task_digests_yesterday_into_the_export_dir(yesterday_chain, tmp_path, settings):
    from tradeops.audit.tasks import audit_digest_daily, audit_verify_nightly

    settings.AUDIT_EXPORT_DIR = str(tmp_path)
    day, _ = yesterday_chain
    result = audit_digest_daily()
    assert result["day"] == day.isoformat() and result["records"] == 7
    assert (tmp_path / "digests" / f"{day.isoformat()}.json").exists()
    assert audit_verify_nightly()["ok"]
