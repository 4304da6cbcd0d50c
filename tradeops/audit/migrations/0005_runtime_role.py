"""What the runtime role may no longer do by itself (issue 19; docs/security.md).

1. The retention purge becomes a function the owner defines: the runtime role has no DELETE on
   ``audit_record`` and no write on ``audit_purged``, so it cannot remove a record at all; it may
   only call ``audit_purge_delete(sequences)``, which runs with the owner's rights (SECURITY
   DEFINER, fixed search_path), opens the purge gate for its own transaction and deletes the given
   records and their search documents. The row trigger of migration 0002 still decides per row:
   past ``retain_until``, no retention hold, tombstone written. EXECUTE is revoked from PUBLIC and
   granted to the runtime role after every migrate (``tradeops.core.db_roles``). SQLite (the
   embedded run) has no roles and keeps the service's own DELETE.
2. The chain head's guard (migration 0004) also refuses a new hash at the same sequence: the
   runtime role may UPDATE the head (the appender moves it), but only forward.
"""

from django.db import migrations

PG_SQL = r"""
CREATE OR REPLACE FUNCTION audit_purge_delete(sequences bigint[]) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    deleted integer;
BEGIN
    PERFORM set_config('tradeops.audit_purge', 'on', true);
    DELETE FROM audit_search_document WHERE sequence = ANY (sequences);
    DELETE FROM audit_record WHERE sequence = ANY (sequences);
    GET DIAGNOSTICS deleted = ROW_COUNT;
    PERFORM set_config('tradeops.audit_purge', 'off', true);
    RETURN deleted;
END
$$;
REVOKE ALL ON FUNCTION audit_purge_delete(bigint[]) FROM PUBLIC;

"""


# The chain head's guard; ``same_sequence`` adds this migration's rule (a new hash at the same
# sequence is refused), without it the function is migration 0004's.
GUARD_SQL = r"""
CREATE OR REPLACE FUNCTION audit_chain_head_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF NEW.last_sequence < OLD.last_sequence THEN
            RAISE EXCEPTION 'audit chain head only moves forward: % -> % refused', OLD.last_sequence,
                NEW.last_sequence USING ERRCODE = 'insufficient_privilege';
        END IF;
        {same_sequence}
        RETURN NEW;
    END IF;
    IF EXISTS (SELECT 1 FROM audit_flush_permit) THEN
        RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NULL END;
    END IF;
    RAISE EXCEPTION 'audit chain head: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END
$$;
"""
SAME_SEQUENCE = r"""IF NEW.last_sequence = OLD.last_sequence AND NEW.last_hash IS DISTINCT FROM OLD.last_hash THEN
            RAISE EXCEPTION 'audit chain head only moves forward: a new hash at the same sequence % refused',
                OLD.last_sequence USING ERRCODE = 'insufficient_privilege';
        END IF;"""
PG_SQL += GUARD_SQL.replace("{same_sequence}", SAME_SEQUENCE)
PG_REVERSE = "DROP FUNCTION IF EXISTS audit_purge_delete(bigint[]);" + GUARD_SQL.replace("{same_sequence}", "")

SQLITE_STATEMENTS = [
    """CREATE TRIGGER audit_chain_head_same_sequence BEFORE UPDATE ON audit_chain_head
       WHEN NEW.last_sequence = OLD.last_sequence AND NEW.last_hash IS NOT OLD.last_hash
       BEGIN SELECT RAISE(ABORT, 'audit chain head only moves forward: a new hash at the same sequence'); END""",
]
SQLITE_REVERSE = ["DROP TRIGGER IF EXISTS audit_chain_head_same_sequence"]


def forwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_SQL, params=None)
    elif vendor == "sqlite":
        for statement in SQLITE_STATEMENTS:
            schema_editor.execute(statement, params=None)


def backwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_REVERSE, params=None)
    elif vendor == "sqlite":
        for statement in SQLITE_REVERSE:
            schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0004_chain_head_guard")]
    operations = [migrations.RunPython(forwards, backwards)]
