"""Test-harness support: mark a disposable test database so Django can flush the audit tables.

The audit tables refuse TRUNCATE (PostgreSQL) and DELETE (SQLite) unless ``audit_flush_permit``
holds a row (migration 0002). ``flush_permit_grant`` puts that row in the *test* database; it is
called from tests/conftest.py after the test database is created and never in production.
"""

from __future__ import annotations

from django.db import connections


def flush_permit_grant(alias: str = "default") -> None:
    connection = connections[alias]
    name = str(connection.settings_dict.get("NAME", ""))
    test_name = (connection.settings_dict.get("TEST") or {}).get("NAME") or ""
    if not (name.startswith("test_") or name == test_name or "memory" in name or name == ""):
        raise RuntimeError(f"refusing to mark {name!r} flushable: only test databases may carry the flush permit")
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_flush_permit")
        cursor.execute("INSERT INTO audit_flush_permit (reason) VALUES ('disposable test database')")
