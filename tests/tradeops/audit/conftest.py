"""Audit test helpers: arm the triggers fully, and the DB owner's bypass used to tamper."""

from __future__ import annotations

import contextlib
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

T0 = datetime(2026, 3, 2, 9, 30, 0, 123456, tzinfo=UTC)

SQLITE_TRIGGERS = ("audit_record_no_update", "audit_record_no_delete", "audit_record_tombstone")


@pytest.fixture
def armed(db):
    """Remove the test database's flush permit inside this test's transaction (rolled back
    after), so the triggers behave exactly as in production."""
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_flush_permit")


@contextlib.contextmanager
def owner_bypass():
    """What only the database owner can do: switch the audit triggers off. On PostgreSQL
    ``ALTER TABLE ... DISABLE TRIGGER USER`` (transactional: the test's rollback restores it);
    on SQLite, which cannot disable a trigger, drop them (also rolled back with the test)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE audit_record DISABLE TRIGGER USER")
            yield cursor
            cursor.execute("ALTER TABLE audit_record ENABLE TRIGGER USER")
        else:
            saved = {}
            for name in SQLITE_TRIGGERS:
                cursor.execute("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = %s", [name])
                saved[name] = cursor.fetchone()[0]
                cursor.execute(f"DROP TRIGGER {name}")
            yield cursor
            for sql in saved.values():
                cursor.execute(sql)


def entries(n: int, *, start: datetime = T0, **overrides):
    from tradeops.audit.services import AuditEntry

    base = {
        "action": "order.created",
        "object_type": "order",
        "actor": "service:execution-worker",
        "category": "trading",
    }
    base.update(overrides)
    return [
        AuditEntry(
            object_id=f"CO-{i}",
            occurred_at=start + timedelta(seconds=i),
            payload={"client_order_id": f"CO-{i}", "quantity": "0.10", "n": i},
            event_id=uuid.uuid4(),
            **base,
        )
        for i in range(n)
    ]


@pytest.fixture
def chain(db):
    """Ten records in a fresh chain."""
    from tradeops.audit.services import audit_append_many

    return audit_append_many(entries=entries(10))
