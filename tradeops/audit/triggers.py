"""The audit trail's append-only triggers on PostgreSQL, declared with django-pgtrigger (issue 18):
each model lists its own in ``Meta.triggers``, and ``makemigrations`` writes them into the
migrations (``pgtrigger.migrations.AddTrigger``), so a change to a rule is a reviewed migration,
never hand-written SQL that can drift from the models.

- ``audit_record``: a row-level BEFORE UPDATE OR DELETE trigger and a statement-level BEFORE
  TRUNCATE trigger. UPDATE is always refused. DELETE is let through only when the transaction set
  ``tradeops.audit_purge = 'on'`` (only ``audit_purge_delete``, the owner's function, does), the
  row is past its ``retain_until`` and no active ``audit_retention_hold`` covers its category;
  the trigger then writes the row's tombstone into ``audit_purged`` itself. TRUNCATE is refused
  unless the database carries a flush permit (a test database: migration 0002).
- ``audit_purged`` and ``audit_digest``: insert-only the same way.

pgtrigger lets a session skip a trigger by naming it in the ``pgtrigger.ignore`` setting, which
any role can set. That gives nobody a way in here: the runtime role has no UPDATE, DELETE or
TRUNCATE on these three tables at all (``AuditConfig.runtime_table_privileges``), so the triggers
stand against the owner's own sessions, and the owner can disable them anyway (which the chain,
the digests and the signed checkpoints then show). The chain head, which the runtime role may
UPDATE (forward only), keeps its guard outside pgtrigger for that reason (migrations 0004, 0005),
and the purge function stays the owner's SECURITY DEFINER function (0005). SQLite (the embedded
first run) has no pgtrigger: its triggers stay those of migration 0002.
"""

from __future__ import annotations

import pgtrigger

RECORD_GUARD = """
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
"""

INSERT_ONLY_GUARD = """
IF TG_OP = 'TRUNCATE' AND EXISTS (SELECT 1 FROM audit_flush_permit) THEN
    RETURN NULL;
END IF;
RAISE EXCEPTION 'audit trail is append-only: % on % refused', TG_OP, TG_TABLE_NAME
    USING ERRCODE = 'insufficient_privilege';
"""


def append_only(table: str, func: str) -> list[pgtrigger.Trigger]:
    """The row trigger (UPDATE, DELETE) and the statement trigger (TRUNCATE) of one table."""
    return [
        pgtrigger.Trigger(
            name=f"{table}_immutable", when=pgtrigger.Before, operation=pgtrigger.Update | pgtrigger.Delete, func=func
        ),
        pgtrigger.Trigger(
            name=f"{table}_no_truncate",
            when=pgtrigger.Before,
            operation=pgtrigger.Truncate,
            level=pgtrigger.Statement,
            func=func,
        ),
    ]
