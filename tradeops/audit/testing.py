"""Test-harness support: let a flush of a disposable test database empty the audit tables.

The audit tables refuse TRUNCATE (PostgreSQL) and DELETE (SQLite) unless ``audit_flush_permit``
holds a row (migration 0002). ``flush_permit`` puts that row in a *test* database for the length
of one ``flush`` (``tradeops/core/management/commands/flush.py``, run as the database owner: the
runtime role can neither write the permit table nor truncate), and takes it out again, so tests
run against triggers armed exactly as in production. A database that is not a test database
never gets the row.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from django.db import connections


def is_test_database(alias: str = "default") -> bool:
    connection = connections[alias]
    name = str(connection.settings_dict.get("NAME", ""))
    test_name = (connection.settings_dict.get("TEST") or {}).get("NAME") or ""
    return name.startswith("test_") or name == test_name or "memory" in name or name == ""


def flush_permit_grant(alias: str = "default") -> None:
    """Put the flush permit in a test database (refuses any other database)."""
    if not is_test_database(alias):
        name = connections[alias].settings_dict.get("NAME")
        raise RuntimeError(f"refusing to mark {name!r} flushable: only test databases may carry the flush permit")
    with connections[alias].cursor() as cursor:
        cursor.execute("DELETE FROM audit_flush_permit")
        cursor.execute("INSERT INTO audit_flush_permit (reason) VALUES ('disposable test database')")


def flush_permit_revoke(alias: str = "default") -> None:
    with connections[alias].cursor() as cursor:
        cursor.execute("DELETE FROM audit_flush_permit")


@contextlib.contextmanager
def flush_permit(alias: str = "default") -> Iterator[None]:
    """The permit for the block, on a test database whose audit tables exist; else nothing."""
    connection = connections[alias]
    if not is_test_database(alias) or "audit_flush_permit" not in connection.introspection.table_names():
        yield
        return
    flush_permit_grant(alias)
    try:
        yield
    finally:
        flush_permit_revoke(alias)
