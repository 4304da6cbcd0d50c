"""The application's own database role cannot erase or rewrite the audit trail (issue 19).

The runtime role (``DATABASE_URL``) has only the rights each table needs (tradeops.core.db_roles):
the erase sequence that emptied the trail when the application ran as a superuser or as the
tables' owner is refused at its first step, and so is every other way round the triggers.
"""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction

from tests.conftest import requires_roles
from tradeops.audit.models import AuditRecord, ChainHead, Digest, PurgedRecord
from tradeops.audit.verify import audit_verify

# The database names of the append-only triggers (and of their functions): django-pgtrigger's.
PGIDS = [t.get_pgid(m) for m in (AuditRecord, PurgedRecord, Digest) for t in m._meta.triggers]
RECORD_PGID = AuditRecord._meta.triggers[0].get_pgid(AuditRecord)

ERASE_SEQUENCE = (
    "INSERT INTO audit_flush_permit (reason) VALUES ('x')",
    "TRUNCATE audit_record CASCADE",
    "DELETE FROM audit_chain_head",
)


@pytest.fixture
def roles(db):
    requires_roles()


def _refusal(sql: str) -> str:
    with pytest.raises(DatabaseError) as info, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql)
    return str(info.value)


def test_the_erase_sequence_is_refused_for_the_runtime_role(roles, chain):
    refused = pytest.raises(DatabaseError, match="permission denied for table audit_flush_permit")
    with refused, transaction.atomic(), connection.cursor() as cursor:
        for statement in ERASE_SEQUENCE:
            cursor.execute(statement)
    # and each step on its own
    for statement in ERASE_SEQUENCE:
        assert "permission denied" in _refusal(statement), statement
    assert AuditRecord.objects.count() == 10
    assert ChainHead.objects.get().last_sequence == 10
    assert audit_verify().ok


@pytest.mark.parametrize(
    "statement",
    [
        "ALTER TABLE audit_record DISABLE TRIGGER USER",
        "ALTER TABLE audit_chain_head DISABLE TRIGGER USER",
        f"DROP TRIGGER {RECORD_PGID} ON audit_record",
        f"CREATE OR REPLACE FUNCTION {RECORD_PGID}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN OLD; END $$",
        "SET session_replication_role = replica",
        "DELETE FROM audit_record WHERE sequence > 7",
        "UPDATE audit_record SET payload = '{}' WHERE sequence = 3",
        "INSERT INTO audit_purged (sequence, event_id, category, recorded_at, retain_until, prev_hash, hash, purged_at)"
        " VALUES (99, gen_random_uuid(), 'trading', now(), now(), 'x', 'y', now())",
        "DELETE FROM audit_flush_permit",
        "UPDATE audit_digest SET merkle_root = 'x'",
        "SELECT * FROM audit_flush_permit",
    ],
)
def test_no_way_round_the_triggers_for_the_runtime_role(roles, chain, statement):
    refusal = _refusal(statement)
    assert "permission denied" in refusal or "must be owner" in refusal, refusal
    assert audit_verify().ok


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_record SET payload = '{}' WHERE sequence = 3",
        "DELETE FROM audit_record WHERE sequence > 7",
        "TRUNCATE audit_record CASCADE",
        "UPDATE audit_digest SET merkle_root = 'x'",
        "UPDATE audit_chain_head SET last_sequence = 1",
    ],
)
def test_pgtriggers_ignore_setting_opens_no_way_round_for_the_runtime_role(roles, chain, statement):
    """django-pgtrigger skips a trigger a session names in ``pgtrigger.ignore``, a setting any
    role may set: the runtime role has no right to rewrite the trail's tables anyway, and the
    chain head it may update keeps its own guard outside pgtrigger (tradeops/audit/triggers.py)."""
    names = "{" + ",".join(PGIDS) + "}"
    with pytest.raises(DatabaseError) as info, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT set_config('pgtrigger.ignore', %s, true)", [names])
        cursor.execute(statement)
    refusal = str(info.value)
    assert "permission denied" in refusal or "only moves forward" in refusal, refusal
    assert AuditRecord.objects.count() == 10 and ChainHead.objects.get().last_sequence == 10
    assert audit_verify().ok


def test_the_runtime_role_may_append_and_read_the_trail_and_move_the_head_forward(roles):
    from tests.tradeops.audit.conftest import entries
    from tradeops.audit.services import audit_append_many

    records = audit_append_many(entries=entries(3))
    assert [r.sequence for r in records] == [1, 2, 3]
    assert ChainHead.objects.get().last_sequence == 3
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT privilege_type FROM information_schema.role_table_grants"
            " WHERE grantee = current_user AND table_name = 'audit_record' ORDER BY 1"
        )
        assert [row[0] for row in cursor.fetchall()] == ["INSERT", "SELECT"]


def test_a_migration_gives_new_tables_the_runtime_rights(roles):
    """The grants follow every migrate: the table list comes from the database, not a fixed list."""
    with connection.cursor() as cursor:
        tables = (
            "SELECT c.oid, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public' AND c.relkind = 'r'"
        )
        cursor.execute(
            f"SELECT relname FROM ({tables}) t WHERE relname <> 'audit_flush_permit'"
            " AND NOT has_table_privilege(current_user, t.oid, 'SELECT')"
        )
        assert cursor.fetchall() == []
        cursor.execute(f"SELECT relname FROM ({tables}) t WHERE has_table_privilege(current_user, t.oid, 'TRUNCATE')")
        assert cursor.fetchall() == []
