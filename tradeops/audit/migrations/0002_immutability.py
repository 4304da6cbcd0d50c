"""Immutability in the database itself (issue 4): triggers, by vendor.

PostgreSQL
- ``audit_record``: a row-level BEFORE UPDATE OR DELETE trigger and a statement-level BEFORE
  TRUNCATE trigger. UPDATE is always refused. DELETE is let through only when the transaction
  set ``SET LOCAL tradeops.audit_purge = 'on'`` (the purge service does), the row is past its
  ``retain_until`` and no active ``audit_retention_hold`` covers its category; the trigger then
  writes the row's tombstone into ``audit_purged`` itself. TRUNCATE is refused unless the
  database carries a flush permit (below).
- ``audit_purged`` and ``audit_digest``: insert-only the same way.
- A superuser session through Django is refused like any other; only the table owner can
  ``ALTER TABLE ... DISABLE TRIGGER`` (and ``audit_verify`` / the digests then detect the edit).

SQLite (the embedded first run): the same rules as BEFORE UPDATE / BEFORE DELETE triggers. SQLite
has no session settings, so the purge transaction inserts a row in ``audit_purge_grant`` instead.

Flush permit: ``audit_flush_permit`` is a plain table with no Django model, so ``flush`` never
empties it. The test harness (tests/conftest.py) puts one row in a disposable test database so
that Django's TransactionTestCase can empty the tables between tests. Production databases never
carry that row.
"""

from django.db import migrations

PG_SQL = r"""
CREATE TABLE IF NOT EXISTS audit_flush_permit (reason text NOT NULL);

CREATE OR REPLACE FUNCTION audit_record_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        IF EXISTS (SELECT 1 FROM audit_flush_permit) THEN
            RETURN NULL;
        END IF;
        RAISE EXCEPTION 'audit trail is append-only: TRUNCATE of % refused', TG_TABLE_NAME
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF TG_OP = 'DELETE' THEN
        IF coalesce(current_setting('tradeops.audit_purge', true), '') = 'on'
           AND OLD.retain_until < now()
           AND NOT EXISTS (SELECT 1 FROM audit_retention_hold h
                           WHERE h.category = OLD.category AND h.released_at IS NULL) THEN
            INSERT INTO audit_purged (sequence, event_id, category, recorded_at, retain_until, prev_hash, hash, purged_at)
            VALUES (OLD.sequence, OLD.event_id, OLD.category, OLD.recorded_at, OLD.retain_until,
                    OLD.prev_hash, OLD.hash, now());
            RETURN OLD;
        END IF;
        RAISE EXCEPTION 'audit trail is append-only: DELETE of record % refused (retained until %, purge %)',
            OLD.sequence, OLD.retain_until, coalesce(current_setting('tradeops.audit_purge', true), 'off')
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RAISE EXCEPTION 'audit trail is append-only: UPDATE of record % refused; append a correction instead',
        OLD.sequence USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE OR REPLACE FUNCTION audit_insert_only_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' AND EXISTS (SELECT 1 FROM audit_flush_permit) THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'audit trail is append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_record_immutable BEFORE UPDATE OR DELETE ON audit_record
    FOR EACH ROW EXECUTE FUNCTION audit_record_guard();
CREATE TRIGGER audit_record_no_truncate BEFORE TRUNCATE ON audit_record
    FOR EACH STATEMENT EXECUTE FUNCTION audit_record_guard();
CREATE TRIGGER audit_purged_immutable BEFORE UPDATE OR DELETE ON audit_purged
    FOR EACH ROW EXECUTE FUNCTION audit_insert_only_guard();
CREATE TRIGGER audit_purged_no_truncate BEFORE TRUNCATE ON audit_purged
    FOR EACH STATEMENT EXECUTE FUNCTION audit_insert_only_guard();
CREATE TRIGGER audit_digest_immutable BEFORE UPDATE OR DELETE ON audit_digest
    FOR EACH ROW EXECUTE FUNCTION audit_insert_only_guard();
CREATE TRIGGER audit_digest_no_truncate BEFORE TRUNCATE ON audit_digest
    FOR EACH STATEMENT EXECUTE FUNCTION audit_insert_only_guard();

-- Full-text search (PostgreSQL backend): a GIN index on the same expression the selector uses.
CREATE INDEX audit_record_fts_idx ON audit_record USING gin (
    to_tsvector('simple'::regconfig,
        action || ' ' || actor_type || ' ' || actor_id || ' ' || object_type || ' ' || object_id || ' ' || payload)
);
"""

PG_REVERSE = r"""
DROP INDEX IF EXISTS audit_record_fts_idx;
DROP TRIGGER IF EXISTS audit_record_immutable ON audit_record;
DROP TRIGGER IF EXISTS audit_record_no_truncate ON audit_record;
DROP TRIGGER IF EXISTS audit_purged_immutable ON audit_purged;
DROP TRIGGER IF EXISTS audit_purged_no_truncate ON audit_purged;
DROP TRIGGER IF EXISTS audit_digest_immutable ON audit_digest;
DROP TRIGGER IF EXISTS audit_digest_no_truncate ON audit_digest;
DROP FUNCTION IF EXISTS audit_record_guard();
DROP FUNCTION IF EXISTS audit_insert_only_guard();
DROP TABLE IF EXISTS audit_flush_permit;
"""

_SQLITE_NOW = "strftime('%Y-%m-%d %H:%M:%f', 'now')"
_SQLITE_PERMIT = "EXISTS (SELECT 1 FROM audit_flush_permit)"
SQLITE_STATEMENTS = [
    "CREATE TABLE IF NOT EXISTS audit_flush_permit (reason text NOT NULL)",
    "CREATE TABLE IF NOT EXISTS audit_purge_grant (granted_at text NOT NULL)",
    """CREATE TRIGGER audit_record_no_update BEFORE UPDATE ON audit_record
       BEGIN SELECT RAISE(ABORT, 'audit trail is append-only: UPDATE refused; append a correction instead'); END""",
    f"""CREATE TRIGGER audit_record_no_delete BEFORE DELETE ON audit_record
       WHEN NOT {_SQLITE_PERMIT} AND NOT (
           EXISTS (SELECT 1 FROM audit_purge_grant)
           AND OLD.retain_until < {_SQLITE_NOW}
           AND NOT EXISTS (SELECT 1 FROM audit_retention_hold h
                           WHERE h.category = OLD.category AND h.released_at IS NULL))
       BEGIN SELECT RAISE(ABORT, 'audit trail is append-only: DELETE refused (within retention or no purge)'); END""",
    f"""CREATE TRIGGER audit_record_tombstone AFTER DELETE ON audit_record
       WHEN NOT {_SQLITE_PERMIT}
       BEGIN
         INSERT INTO audit_purged (sequence, event_id, category, recorded_at, retain_until, prev_hash, hash, purged_at)
         VALUES (OLD.sequence, OLD.event_id, OLD.category, OLD.recorded_at, OLD.retain_until, OLD.prev_hash, OLD.hash,
                 strftime('%Y-%m-%d %H:%M:%f000', 'now'));
       END""",
]
for _table in ("audit_purged", "audit_digest"):
    SQLITE_STATEMENTS += [
        f"""CREATE TRIGGER {_table}_no_update BEFORE UPDATE ON {_table}
           BEGIN SELECT RAISE(ABORT, 'audit trail is append-only: UPDATE on {_table} refused'); END""",
        f"""CREATE TRIGGER {_table}_no_delete BEFORE DELETE ON {_table} WHEN NOT {_SQLITE_PERMIT}
           BEGIN SELECT RAISE(ABORT, 'audit trail is append-only: DELETE on {_table} refused'); END""",
    ]

SQLITE_REVERSE = [
    "DROP TRIGGER IF EXISTS audit_record_no_update",
    "DROP TRIGGER IF EXISTS audit_record_no_delete",
    "DROP TRIGGER IF EXISTS audit_record_tombstone",
    "DROP TRIGGER IF EXISTS audit_purged_no_update",
    "DROP TRIGGER IF EXISTS audit_purged_no_delete",
    "DROP TRIGGER IF EXISTS audit_digest_no_update",
    "DROP TRIGGER IF EXISTS audit_digest_no_delete",
    "DROP TABLE IF EXISTS audit_purge_grant",
    "DROP TABLE IF EXISTS audit_flush_permit",
]


def forwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_SQL, params=None)
    elif vendor == "sqlite":
        for statement in SQLITE_STATEMENTS:
            schema_editor.execute(statement, params=None)
    else:
        raise RuntimeError(f"no audit immutability triggers for database vendor {vendor!r}")


def backwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_REVERSE, params=None)
    elif vendor == "sqlite":
        for statement in SQLITE_REVERSE:
            schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]
    operations = [migrations.RunPython(forwards, backwards)]
