"""audit_verify names the first broken record for each way the table can be edited behind the
triggers (the database owner disabling them is the only way in)."""

from __future__ import annotations

import uuid

import pytest
from django.core.management import call_command

from tests.tradeops.audit.conftest import owner_bypass
from tradeops.audit.canonical import chain_hash, record_header
from tradeops.audit.models import AuditRecord
from tradeops.audit.verify import FIELDS, audit_verify

# The owner tampers on its own connection, so the chain must be committed first.
pytestmark = pytest.mark.django_db(transaction=True)


def _forge(sequence: int, prev_hash: str) -> tuple:
    """A well-formed record an attacker who knows the algorithm can compute."""
    template = AuditRecord.objects.values_list(*FIELDS).get(sequence=1)
    row = dict(zip(FIELDS, template, strict=True))
    row.update(sequence=sequence, event_id=uuid.uuid4(), payload='{"forged":true}', prev_hash=prev_hash)
    header = record_header(**{k: row[k] for k in FIELDS if k not in ("payload", "prev_hash", "hash")})
    row["hash"] = chain_hash(prev_hash, header, row["payload"])
    return row


def _insert(cursor, row: dict) -> None:
    from django.db import connection

    values = [row[f] for f in FIELDS]
    if connection.vendor == "sqlite":  # what Django's adapters would do for this backend
        values = [
            v.hex
            if isinstance(v, uuid.UUID)
            else connection.ops.adapt_datetimefield_value(v)
            if hasattr(v, "tzinfo")
            else v
            for v in values
        ]
    placeholders = ", ".join(["%s"] * len(FIELDS))
    cursor.execute(f"INSERT INTO audit_record ({', '.join(FIELDS)}) VALUES ({placeholders})", values)


def test_intact_chain_passes_and_the_command_says_so(chain, capsys):
    call_command("audit_verify")
    assert "OK" in capsys.readouterr().out


def test_tampered_payload_is_named(chain, armed):
    with owner_bypass() as cursor:
        cursor.execute("UPDATE audit_record SET payload = %s WHERE sequence = 6", ['{"quantity":"100"}'])
    problem = audit_verify().problem
    assert (problem.kind, problem.sequence) == ("tampered", 6)


def test_tampered_timestamp_is_named(chain, armed):
    with owner_bypass() as cursor:
        cursor.execute(
            "UPDATE audit_record SET occurred_at = (SELECT occurred_at FROM audit_record WHERE sequence = 5) "
            "WHERE sequence = 4"
        )
    problem = audit_verify().problem
    assert (problem.kind, problem.sequence) == ("tampered", 4)


def test_rewritten_record_with_a_fresh_hash_is_named(chain, armed):
    row = _forge(3, chain[1].hash)
    with owner_bypass() as cursor:
        cursor.execute("DELETE FROM audit_record WHERE sequence = 3")
        _insert(cursor, row)
    problem = audit_verify().problem
    assert (problem.kind, problem.sequence) == ("tampered", 3)


def test_deleted_record_is_named(chain, armed):
    with owner_bypass() as cursor:
        cursor.execute("DELETE FROM audit_record WHERE sequence = 5")
    problem = audit_verify().problem
    assert (problem.kind, problem.sequence) == ("deleted", 5)


def test_deleted_record_with_renumbering_is_named(chain, armed):
    with owner_bypass() as cursor:
        cursor.execute("DELETE FROM audit_record WHERE sequence = 5")
        for seq in range(6, 11):
            cursor.execute("UPDATE audit_record SET sequence = %s WHERE sequence = %s", [seq - 1, seq])
    problem = audit_verify().problem
    assert (problem.kind, problem.sequence) == ("deleted", 5)


def test_deleted_tail_is_named(chain, armed):
    with owner_bypass() as cursor:
        cursor.execute("DELETE FROM audit_record WHERE sequence >= 9")
    problem = audit_verify().problem
    assert (problem.kind, problem.sequence) == ("deleted", 9)


def test_inserted_record_is_named(chain, armed):
    with owner_bypass() as cursor:
        for seq in range(10, 5, -1):  # make room at 6
            cursor.execute("UPDATE audit_record SET sequence = %s WHERE sequence = %s", [seq + 1, seq])
        _insert(cursor, _forge(6, chain[4].hash))
    problem = audit_verify().problem
    assert (problem.kind, problem.sequence) == ("inserted", 6)


def test_record_appended_behind_the_writer_is_named(chain, armed):
    with owner_bypass() as cursor:
        _insert(cursor, _forge(11, chain[-1].hash))
    problem = audit_verify().problem
    assert (problem.kind, problem.sequence) == ("inserted", 11)


def test_reordered_records_are_named(chain, armed):
    with owner_bypass() as cursor:
        cursor.execute("UPDATE audit_record SET sequence = -1 WHERE sequence = 4")
        cursor.execute("UPDATE audit_record SET sequence = 4 WHERE sequence = 5")
        cursor.execute("UPDATE audit_record SET sequence = 5 WHERE sequence = -1")
    problem = audit_verify().problem
    assert (problem.kind, problem.sequence) == ("reordered", 4)


def test_command_exits_non_zero_and_names_the_record(chain, armed, capsys):
    with owner_bypass() as cursor:
        cursor.execute("UPDATE audit_record SET actor_id = 'mallory' WHERE sequence = 7")
    with pytest.raises(SystemExit) as exit_info:
        call_command("audit_verify")
    assert exit_info.value.code == 1
    assert "tampered: record 7" in capsys.readouterr().err


def test_the_command_records_its_run_as_the_screen_and_the_api_do(chain, capsys):
    """walk45: ``manage.py audit_verify`` recorded nothing, so the screens' "last verification"
    and the ``tradeops_audit_chain_verified*`` metrics never saw an operator's runs."""
    import getpass

    from tradeops.observability.collectors import audit_verification_last

    head = AuditRecord.objects.order_by("-sequence").values_list("sequence", flat=True).first()
    call_command("audit_verify")
    out = capsys.readouterr().out
    assert out.startswith("OK: chain intact.")  # what it prints is unchanged, the record said last
    (run,) = AuditRecord.objects.filter(action="audit.verified")
    assert run.sequence == head + 1 and run.actor == f"service:manage.py audit_verify ({getpass.getuser()})"
    assert run.payload_data["ok"] is True and run.payload_data["checked"] == head
    assert f"recorded in the trail as audit record {run.sequence}" in out.splitlines()[-1]
    intact, _ = audit_verification_last()  # what every process's scrape exports
    assert intact is True


def test_no_record_is_a_dry_look(chain, capsys):
    before = AuditRecord.objects.count()
    call_command("audit_verify", "--no-record")
    out = capsys.readouterr().out
    assert out.startswith("OK: chain intact.") and "recorded" not in out
    assert AuditRecord.objects.count() == before


def test_a_broken_run_is_recorded_broken_and_still_exits_1(chain, armed, capsys):
    from tradeops.observability.collectors import audit_verification_last

    with owner_bypass() as cursor:
        cursor.execute("UPDATE audit_record SET actor_id = 'mallory' WHERE sequence = 7")
    with pytest.raises(SystemExit) as exit_info:
        call_command("audit_verify")
    assert exit_info.value.code == 1
    assert "BROKEN: tampered: record 7" in capsys.readouterr().err
    (run,) = AuditRecord.objects.filter(action="audit.verified")
    assert run.payload_data["ok"] is False and run.payload_data["findings"][0]["sequence"] == 7
    assert audit_verification_last()[0] is False  # the metric reads broken: the alert fires
