"""Verification that does not trust the database (issue 19): signed checkpoints of the chain head
name what the database's own owner can make consistent again behind the triggers: a deleted tail
with a rewound head, a re-hashed range, an emptied trail, a forged tombstone.

Each attack is done as the owner on committed rows (tests.conftest.owner_cursor), and each test
shows that the chain checked against itself alone (``checkpoints=False``, what ``audit_verify``
did before) still passes it.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import override_settings

from tests.tradeops.audit.conftest import entries, owner_bypass
from tradeops.audit.canonical import chain_hash
from tradeops.audit.checkpoint import audit_checkpoint_create, audit_checkpoint_if_due, checkpoints_load
from tradeops.audit.models import AuditRecord
from tradeops.audit.services import audit_append_many, audit_purge
from tradeops.audit.verify import FIELDS, _header, audit_verify
from tradeops.core.clock import utcnow

pytestmark = pytest.mark.django_db(transaction=True)


def _findings(report) -> dict[str, list]:
    found: dict[str, list] = {}
    for finding in report.findings:
        found.setdefault(finding.kind, []).append(finding)
    return found


def _verify_exits_non_zero(capsys) -> str:
    with pytest.raises(SystemExit) as info:
        call_command("audit_verify")
    assert info.value.code == 1
    return capsys.readouterr().err


def _cut_chain(chain, *, keep: int) -> None:
    """What the database's owner can do: delete the records after ``keep`` and rewind the head to
    the last one kept."""
    with owner_bypass() as cursor:
        cursor.execute("DELETE FROM audit_record WHERE sequence > %s", [keep])
        cursor.execute("UPDATE audit_chain_head SET last_sequence = %s, last_hash = %s", [keep, chain[keep - 1].hash])


def test_a_checkpoint_is_signed_and_written_through_the_storage(chain, audit_checkpoint_dir, capsys):
    call_command("audit_checkpoint")
    (path,) = audit_checkpoint_dir.iterdir()
    document = json.loads(path.read_text())
    assert (document["sequence"], document["hash"]) == (10, chain[-1].hash)
    assert document["algorithm"] == "hmac-sha256" and len(document["signature"]) == 64
    anchors, problems = checkpoints_load()
    assert [a.sequence for a in anchors] == [10] and problems == []
    report = audit_verify()
    assert report.ok and report.checkpoints == 1
    call_command("audit_verify")
    assert "1 signed checkpoints" in capsys.readouterr().out


def test_a_forged_or_edited_checkpoint_is_a_finding(chain, audit_checkpoint_dir):
    audit_checkpoint_create()
    (path,) = audit_checkpoint_dir.iterdir()
    document = json.loads(path.read_text())
    document["sequence"] = 3  # pretend the trail was shorter
    path.write_text(json.dumps(document))
    with override_settings(AUDIT_CHECKPOINT_KEY="another key"):
        audit_checkpoint_create()  # signed, but not with the configured key
    report = audit_verify()
    assert [f.kind for f in report.findings] == ["checkpoint", "checkpoint"]
    assert "content changed after signing" in report.findings[0].detail
    assert "signed with another key" in str(report.findings)


def test_tail_deletion_and_head_rewind_by_the_owner_are_named(chain, capsys):
    audit_checkpoint_create()
    _cut_chain(chain, keep=7)
    assert audit_verify(checkpoints=False).ok  # consistent with itself: what audit_verify said before
    found = _findings(audit_verify())
    assert found["missing_tail"][0].sequence == 8 and "records 8..10 are missing" in found["missing_tail"][0].detail
    assert "is at record 7" in found["rewound_head"][0].detail and "at record 10" in found["rewound_head"][0].detail
    err = _verify_exits_non_zero(capsys)
    assert "missing_tail: record 8" in err and "rewound_head" in err


def test_a_range_re_hashed_by_the_owner_with_the_apps_own_hash_function_is_named(db, capsys):
    records = audit_append_many(entries=entries(4))
    audit_checkpoint_create()  # anchors record 4
    records += audit_append_many(entries=entries(6))
    audit_checkpoint_create()  # anchors record 10
    rows = list(AuditRecord.objects.order_by("sequence").values_list(*FIELDS))
    with owner_bypass() as cursor:
        prev = records[5].prev_hash
        for row in rows[5:]:  # from record 6 on: one payload changed, every later hash recomputed
            payload = '{"quantity":"100"}' if row[0] == 6 else row[12]
            digest = chain_hash(prev, _header(row), payload)
            cursor.execute(
                "UPDATE audit_record SET payload = %s, prev_hash = %s, hash = %s WHERE sequence = %s",
                [payload, prev, digest, row[0]],
            )
            prev = digest
        cursor.execute("UPDATE audit_chain_head SET last_hash = %s", [prev])
    assert audit_verify(checkpoints=False).ok
    found = _findings(audit_verify())
    (rehashed,) = found["rehashed"]
    assert rehashed.sequence == 5 and "records 5..10 were re-hashed" in rehashed.detail
    assert "records up to 4 still match" in rehashed.detail
    assert "rehashed: record 5" in _verify_exits_non_zero(capsys)


def test_the_erase_sequence_by_the_owner_is_named(chain, capsys):
    audit_checkpoint_create()
    from tests.conftest import owner_cursor

    with owner_cursor() as cursor:  # the issue's sequence, triggers on, as the tables' owner
        cursor.execute("INSERT INTO audit_flush_permit (reason) VALUES ('x')")
        cursor.execute("TRUNCATE audit_record CASCADE")
        cursor.execute("DELETE FROM audit_chain_head")
        cursor.execute("DELETE FROM audit_flush_permit")
    assert AuditRecord.objects.count() == 0
    assert audit_verify(checkpoints=False).ok  # "OK: chain intact. 0 records checked"
    found = _findings(audit_verify())
    assert "records 1..10 are missing" in found["missing_tail"][0].detail
    assert "the chain head is missing" in found["rewound_head"][0].detail
    assert "missing_tail" in _verify_exits_non_zero(capsys)


def test_a_forged_tombstone_is_named(chain, capsys):
    target = chain[4]  # record 5: young, within retention
    with owner_bypass() as cursor:
        cursor.execute(
            "INSERT INTO audit_purged (sequence, event_id, category, recorded_at, retain_until, prev_hash, hash,"
            " purged_at) VALUES (%s, %s, %s, %s, %s, %s, %s, now())",
            [
                target.sequence,
                target.event_id,
                target.category,
                target.recorded_at,
                target.retain_until,
                target.prev_hash,
                target.hash,
            ],
        )
        cursor.execute("DELETE FROM audit_record WHERE sequence = %s", [target.sequence])
    assert audit_verify(checkpoints=False).findings  # the tombstone checks are new too
    report = audit_verify()
    details = [f.detail for f in report.findings if f.kind == "tombstone" and f.sequence == 5]
    assert any("before its retention ended" in d for d in details)
    assert any("no audit.purged record in the chain authorises this purge" in d for d in details)
    assert report.bridged_purged == 1  # the links alone still verify
    assert "tombstone: record 5" in _verify_exits_non_zero(capsys)


def test_a_forged_tombstone_with_a_forged_retention_is_still_named(chain):
    target = chain[4]
    long_ago = utcnow() - timedelta(days=10)
    with owner_bypass() as cursor:
        cursor.execute(
            "INSERT INTO audit_purged (sequence, event_id, category, recorded_at, retain_until, prev_hash, hash,"
            " purged_at) VALUES (%s, %s, %s, %s, %s, %s, %s, now())",
            [target.sequence, target.event_id, "trading", long_ago, long_ago, target.prev_hash, target.hash],
        )
        cursor.execute("DELETE FROM audit_record WHERE sequence = %s", [target.sequence])
    details = [f.detail for f in audit_verify().findings if f.kind == "tombstone"]
    assert any("less than the 5 years the law requires" in d for d in details)
    assert any("authorises" in d for d in details)


def test_a_real_purge_passes_and_an_extra_tombstone_in_its_range_does_not(db, tmp_path):
    old = audit_append_many(entries=entries(4), recorded_at=utcnow() - timedelta(days=6 * 366))
    audit_append_many(entries=entries(3))
    audit_purge(actor="user:records-officer", archive_dir=tmp_path, limit=3)  # records 1..3
    audit_checkpoint_create()
    report = audit_verify()
    assert report.ok, report.findings
    assert report.bridged_purged == 3
    fourth = old[3]
    with owner_bypass() as cursor:  # slip record 4 in as if the same purge had taken it
        cursor.execute(
            "INSERT INTO audit_purged (sequence, event_id, category, recorded_at, retain_until, prev_hash, hash,"
            " purged_at) SELECT %s, event_id, category, recorded_at, retain_until, prev_hash, hash, %s"
            " FROM audit_record WHERE sequence = %s",
            [fourth.sequence, utcnow(), fourth.sequence],
        )
        cursor.execute("DELETE FROM audit_record WHERE sequence = %s", [fourth.sequence])
    details = [f.detail for f in audit_verify().findings if f.kind == "tombstone"]
    assert any("authorises" in d for d in details), details


@override_settings(AUDIT_CHECKPOINT_EVERY_RECORDS=5, AUDIT_CHECKPOINT_EVERY_MINUTES=60)
def test_checkpoints_are_written_every_n_records(db):
    assert audit_checkpoint_if_due(force_check=True) is None  # empty chain: nothing to anchor
    audit_append_many(entries=entries(3))
    assert audit_checkpoint_if_due(force_check=True).sequence == 3  # the first one at once
    audit_append_many(entries=entries(3))
    assert audit_checkpoint_if_due(force_check=True) is None  # 3 records since: not due
    audit_append_many(entries=entries(3))
    assert audit_checkpoint_if_due(force_check=True).sequence == 9
    assert [a.sequence for a in checkpoints_load()[0]] == [3, 9]


def test_the_audit_trail_stage_writes_checkpoints(db):
    from tests.tradeops.samples import sample_event
    from tradeops.audit.consumers import AuditTrailConsumer
    from tradeops.events import Fill, OrderEvent

    events = [sample_event(OrderEvent), sample_event(Fill)]
    AuditTrailConsumer().handle_batch(events)
    (anchor,) = checkpoints_load()[0]
    assert anchor.sequence == AuditRecord.objects.count() > 0


def test_the_verify_screen_lists_every_finding(chain, client):
    from django.contrib.auth import get_user_model

    root = get_user_model().objects.create_superuser(username="root", password="a-long-enough-password", email="")
    client.force_login(root)  # audited: record 11
    audit_checkpoint_create()
    _cut_chain(chain, keep=8)
    body = client.post("/compliance/audit/verify/").content.decode()
    assert "missing_tail" in body and "records 9..11 are missing" in body and "rewound_head" in body


# ---------------------------------------------------------------- one storage, several databases

FIRST_RUN = "sqlite:/home/newcomer/tradeops/var/tradeops.sqlite3"


def _signed_checkpoint(directory, *, sequence: int, hash: str, database: str | None) -> None:
    """A checkpoint signed with the configured key, as another database's process (or, with
    ``database`` None, a version before checkpoints named their database) would have written it."""
    from tradeops.audit.checkpoint import ALGORITHM, KIND, _keys, _sign, key_id

    key = _keys()[0]
    created_at = utcnow() - timedelta(hours=1)
    document = {
        "kind": KIND,
        "version": 1 if database is None else 2,
        "sequence": sequence,
        "hash": hash,
        "head_updated_at": None,
        "created_at": created_at.isoformat(),
        "algorithm": ALGORITHM,
        "key_id": key_id(key),
    }
    if database is not None:
        document["database"] = database
    document["signature"] = _sign(document, key)
    name = f"checkpoint-{sequence:015d}-{created_at:%Y%m%dT%H%M%S%f}Z.json"
    (directory / name).write_text(json.dumps(document))


def test_a_checkpoint_names_its_database_from_the_settings(chain, audit_checkpoint_dir, capsys):
    from django.db import connection

    from tradeops.audit.checkpoint import database_identity

    identity = database_identity()
    config = connection.settings_dict
    assert identity == f"{connection.vendor}://{config['HOST']}:{config['PORT']}/{config['NAME']}"
    call_command("audit_checkpoint")
    (path,) = audit_checkpoint_dir.iterdir()
    document = json.loads(path.read_text())
    assert document["version"] == 2 and document["database"] == identity
    (anchor,) = checkpoints_load()[0]
    assert anchor.database == identity
    with override_settings(AUDIT_CHECKPOINT_DATABASE="postgresql://db.internal:5432/tradeops"):  # a moved database
        assert database_identity() == "postgresql://db.internal:5432/tradeops"
    call_command("audit_checkpoint", "--list")
    out = capsys.readouterr().out
    assert f"this database: {identity}" in out and f"* {anchor.name}" in out


def test_another_databases_checkpoints_are_skipped_and_said_so(chain, audit_checkpoint_dir, capsys):
    """The newcomer's case: a first run on SQLite left checkpoints far ahead of a fresh
    PostgreSQL chain in the same directory. They are not this chain's: skipped, and counted."""
    _signed_checkpoint(audit_checkpoint_dir, sequence=500, hash="ab" * 32, database=FIRST_RUN)
    report = audit_verify()
    # none of this database's own yet, while others exist: nothing outside vouches for the chain
    (finding,) = report.findings
    assert finding.kind == "checkpoint" and "no signed checkpoint names this database" in finding.detail
    assert "manage.py audit_checkpoint" in finding.detail and "AUDIT_CHECKPOINT_DATABASE" in finding.detail
    assert "missing_tail" not in str(report.findings) and "rewound_head" not in str(report.findings)
    assert "no signed checkpoint names this database" in _verify_exits_non_zero(capsys)

    # the scheduler leaves the first to a person (nothing vouches for this chain), who takes it
    assert audit_checkpoint_if_due(force_check=True) is None
    # manage.py audit_checkpoint; the newer is not ours (11: audit_verify's run above is recorded)
    assert audit_checkpoint_create().sequence == 11
    report = audit_verify()
    assert report.ok, report.findings
    assert report.checkpoints == 1 and report.skipped_checkpoints == 1
    assert any(f"1 checkpoint(s) of other databases skipped: {FIRST_RUN} (1)" in n for n in map(str, report.notes))
    call_command("audit_verify")
    out = capsys.readouterr().out
    assert "OK: chain intact" in out and "1 of other databases skipped" in out and FIRST_RUN in out


def test_tampering_is_still_caught_beside_other_databases_checkpoints(chain, audit_checkpoint_dir, capsys):
    """Skipping other databases' checkpoints opens nothing: the owner who deletes the tail and
    rewinds the head of THIS database's chain is named as before."""
    _signed_checkpoint(audit_checkpoint_dir, sequence=3, hash="cd" * 32, database=FIRST_RUN)
    audit_checkpoint_create()
    _cut_chain(chain, keep=7)
    found = _findings(audit_verify())
    assert "records 8..10 are missing" in found["missing_tail"][0].detail
    assert "is at record 7" in found["rewound_head"][0].detail
    assert "rehashed" not in found  # the other database's record 3 is not compared with this one's
    err = _verify_exits_non_zero(capsys)
    assert "missing_tail: record 8" in err and f"other databases skipped: {FIRST_RUN}" in err


def test_the_erased_chain_is_still_named_and_an_empty_fresh_one_is_not(chain, audit_checkpoint_dir):
    from tests.conftest import owner_cursor

    _signed_checkpoint(audit_checkpoint_dir, sequence=40, hash="ef" * 32, database=FIRST_RUN)
    audit_checkpoint_create()
    with owner_cursor() as cursor:
        cursor.execute("INSERT INTO audit_flush_permit (reason) VALUES ('x')")
        cursor.execute("TRUNCATE audit_record CASCADE")
        cursor.execute("DELETE FROM audit_chain_head")
        cursor.execute("DELETE FROM audit_flush_permit")
    found = _findings(audit_verify())
    assert "records 1..10 are missing" in found["missing_tail"][0].detail
    assert "the chain head is missing" in found["rewound_head"][0].detail
    # a fresh, empty database beside another's checkpoints: nothing to anchor yet, not a finding
    for path in audit_checkpoint_dir.iterdir():
        if FIRST_RUN not in path.read_text():
            path.unlink()
    report = audit_verify()
    assert report.ok and report.skipped_checkpoints == 1


def test_checkpoints_written_before_they_named_their_database_count_as_this_ones(chain, audit_checkpoint_dir):
    """Decided: an unlabelled (version 1) checkpoint keeps anchoring the one database a deployment
    had, so an upgrade opens no window; if it was in fact another database's, verify says so
    rather than skipping it silently."""
    _signed_checkpoint(audit_checkpoint_dir, sequence=10, hash=chain[-1].hash, database=None)
    report = audit_verify()
    assert report.ok and report.checkpoints == 1
    assert any("1 checkpoint(s) name no database" in n for n in map(str, report.notes))
    _cut_chain(chain, keep=7)
    found = _findings(audit_verify())
    assert "records 8..10 are missing" in found["missing_tail"][0].detail
    assert "names no database" in found["rewound_head"][0].detail
    assert "move it out of the checkpoint storage" in found["rewound_head"][0].detail


OLD_HOME = "postgresql://db-old.internal:5432/tradeops"


def test_a_moved_databases_checkpoints_still_anchor_its_chain(chain, audit_checkpoint_dir, capsys):
    """The database moved (another host, port or name in DATABASE_URL, or renamed by its owner)
    and its tail was deleted with the head rewound on the way: the scheduler anchors the rewound
    head under the new identity at once, and the old identity's checkpoints would be skipped as
    another database's, the truncated chain reported OK. A checkpoint that signs a record of THIS
    chain (same sequence, same hash) is this chain's history whatever database it names: that
    database's checkpoints are compared, and the deleted tail is named."""
    _signed_checkpoint(audit_checkpoint_dir, sequence=5, hash=chain[4].hash, database=OLD_HOME)
    _signed_checkpoint(audit_checkpoint_dir, sequence=10, hash=chain[9].hash, database=OLD_HOME)
    _cut_chain(chain, keep=7)
    assert audit_checkpoint_if_due(force_check=True).sequence == 7  # the scheduler, under the new identity
    report = audit_verify()
    found = _findings(report)
    assert "records 8..10 are missing" in found["missing_tail"][0].detail, report.findings
    assert "at record 10" in found["rewound_head"][0].detail
    assert report.skipped_checkpoints == 0 and report.checkpoints == 3
    assert any(f"{OLD_HOME} (2) sign records of this chain" in n for n in map(str, report.notes))
    assert "missing_tail: record 8" in _verify_exits_non_zero(capsys)


def test_a_moved_intact_chain_passes_with_its_old_checkpoints(chain, audit_checkpoint_dir):
    _signed_checkpoint(audit_checkpoint_dir, sequence=5, hash=chain[4].hash, database=OLD_HOME)
    _signed_checkpoint(audit_checkpoint_dir, sequence=8, hash=chain[7].hash, database=OLD_HOME)
    _signed_checkpoint(audit_checkpoint_dir, sequence=3, hash="ab" * 32, database=FIRST_RUN)  # not this chain's
    audit_checkpoint_create()
    report = audit_verify()
    assert report.ok, report.findings
    assert report.checkpoints == 3 and report.skipped_checkpoints == 1
    assert any(f"{OLD_HOME} (2) sign records of this chain" in n for n in map(str, report.notes))
    assert any(f"other databases skipped: {FIRST_RUN} (1)" in n for n in map(str, report.notes))


def test_the_scheduler_does_not_sign_a_first_checkpoint_no_other_one_vouches_for(chain, audit_checkpoint_dir, caplog):
    """The database moved AND its chain was cut below the old name's oldest checkpoint on the way:
    no old checkpoint signs a record of it any more. Signed by the scheduler, the cut chain would
    be anchored as it is and pass with the old checkpoints skipped; so the scheduler leaves the
    first to a person, and audit_verify meanwhile reports the chain unanchored."""
    _signed_checkpoint(audit_checkpoint_dir, sequence=5, hash=chain[4].hash, database=OLD_HOME)
    _signed_checkpoint(audit_checkpoint_dir, sequence=10, hash=chain[9].hash, database=OLD_HOME)
    _cut_chain(chain, keep=3)
    with caplog.at_level("ERROR", logger="tradeops.audit.checkpoint"):
        assert audit_checkpoint_if_due(force_check=True) is None
    assert "not signing its first automatically" in caplog.text
    assert not audit_verify().ok


def test_the_scheduler_signs_the_first_when_an_old_checkpoint_vouches_or_none_exists(chain, audit_checkpoint_dir):
    """Another database's checkpoint of another chain (a SQLite first run beside this one) does
    not vouch: the first is a person's; once taken, the scheduler goes on by itself."""
    _signed_checkpoint(audit_checkpoint_dir, sequence=3, hash="ab" * 32, database=FIRST_RUN)
    assert audit_checkpoint_if_due(force_check=True) is None
    first = audit_checkpoint_create()  # manage.py audit_checkpoint
    assert first.sequence == len(chain)
    assert audit_verify().ok
