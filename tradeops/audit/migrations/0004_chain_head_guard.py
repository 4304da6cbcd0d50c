"""The chain head only moves forward: the database refuses to delete it or to lower its sequence.

Without this, deleting the newest records (by the table owner, triggers disabled) and then
rewinding or deleting the head would leave a shorter chain that still verifies; with it the head
keeps the true length and ``audit_verify`` reports the missing tail. Test databases' flush permit
(migration 0002) lets Django empty the table between tests.
"""

from django.db import migrations

PG_SQL = r"""
CREATE OR REPLACE FUNCTION audit_chain_head_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF NEW.last_sequence < OLD.last_sequence THEN
            RAISE EXCEPTION 'audit chain head only moves forward: % -> % refused', OLD.last_sequence,
                NEW.last_sequence USING ERRCODE = 'insufficient_privilege';
        END IF;
        RETURN NEW;
    END IF;
    IF EXISTS (SELECT 1 FROM audit_flush_permit) THEN
        RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NULL END;
    END IF;
    RAISE EXCEPTION 'audit chain head: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_chain_head_guard BEFORE UPDATE OR DELETE ON audit_chain_head
    FOR EACH ROW EXECUTE FUNCTION audit_chain_head_guard();
CREATE TRIGGER audit_chain_head_no_truncate BEFORE TRUNCATE ON audit_chain_head
    FOR EACH STATEMENT EXECUTE FUNCTION audit_chain_head_guard();
"""

PG_REVERSE = r"""
DROP TRIGGER IF EXISTS audit_chain_head_guard ON audit_chain_head;
DROP TRIGGER IF EXISTS audit_chain_head_no_truncate ON audit_chain_head;
DROP FUNCTION IF EXISTS audit_chain_head_guard();
"""

SQLITE_STATEMENTS = [
    """CREATE TRIGGER audit_chain_head_forward BEFORE UPDATE ON audit_chain_head
       WHEN NEW.last_sequence < OLD.last_sequence
       BEGIN SELECT RAISE(ABORT, 'audit chain head only moves forward'); END""",
    """CREATE TRIGGER audit_chain_head_no_delete BEFORE DELETE ON audit_chain_head
       WHEN NOT EXISTS (SELECT 1 FROM audit_flush_permit)
       BEGIN SELECT RAISE(ABORT, 'audit chain head: DELETE refused'); END""",
]
SQLITE_REVERSE = [
    "DROP TRIGGER IF EXISTS audit_chain_head_forward",
    "DROP TRIGGER IF EXISTS audit_chain_head_no_delete",
]


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
    dependencies = [("audit", "0003_search_document")]
    operations = [migrations.RunPython(forwards, backwards)]
