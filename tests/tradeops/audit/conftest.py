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
    """The triggers armed exactly as in production: the test database carries a flush permit only
    while Django flushes it (tradeops/audit/testing.py), so this is ``db`` under a name that says so."""


TAMPERED_TABLES = ("audit_record", "audit_chain_head", "audit_purged")


@contextlib.contextmanager
def owner_bypass():
    """What only the database owner can do: switch the audit triggers off.

    PostgreSQL: as the owner (``tests.conftest.owner_cursor``: its own connection, committed at
    the end, so the test must be transactional), ``ALTER TABLE ... DISABLE TRIGGER USER`` on the
    trail, the chain head and the tombstones, re-enabled before the commit. The runtime role the
    application runs as cannot do this (tests/tradeops/audit/test_roles.py). SQLite, which has
    no roles and cannot disable a trigger: drop them on the test's connection (rolled back with
    the test)."""
    if connection.vendor == "postgresql":
        from tests.conftest import owner_cursor, requires_roles

        requires_roles()
        with owner_cursor() as cursor:
            cursor.execute("SET lock_timeout = '10s'")  # a test holding a lock on the trail fails, not hangs
            for table in TAMPERED_TABLES:
                cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
            yield cursor
            for table in TAMPERED_TABLES:
                cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
        return
    with connection.cursor() as cursor:
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
