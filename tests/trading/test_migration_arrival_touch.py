"""Trading 0009: each fill keeps the arrival touch (``arrival_bid``, ``arrival_ask``) as two
nullable columns. Adding a nullable column without a default is a catalogue change on
PostgreSQL (no rewrite of the executions table); the fills recorded before it read as None, which
the best-execution report measures against the mid (tests/compliance/reports)."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.loader import MigrationLoader


def test_0009_adds_two_nullable_columns_after_0008_and_nothing_else():
    loader = MigrationLoader(None, ignore_no_migrations=True)
    migration = loader.get_migration("trading", "0009_execution_arrival_touch")
    assert migration.dependencies == [("trading", "0008_order_write_messages_bytea")]
    assert [(op.__class__.__name__, op.model_name, op.name) for op in migration.operations] == [
        ("AddField", "execution", "arrival_bid"),
        ("AddField", "execution", "arrival_ask"),
    ]
    assert all(op.field.null for op in migration.operations)


@pytest.mark.django_db
def test_0009_forward_sql_is_two_plain_add_columns_and_it_reverses():
    out = io.StringIO()
    call_command("sqlmigrate", "trading", "0009", stdout=out)
    statements = [s for s in out.getvalue().splitlines() if s.startswith("ALTER")]
    assert len(statements) == 2 and all("ADD COLUMN" in s and "DEFAULT" not in s for s in statements)
    back = io.StringIO()
    call_command("sqlmigrate", "trading", "0009", "--backwards", stdout=back)
    assert back.getvalue().count("DROP COLUMN") == 2


@pytest.mark.django_db
def test_the_execution_table_has_the_touch_nullable():
    with connection.cursor() as cursor:
        columns = {c.name: c for c in connection.introspection.get_table_description(cursor, "trading_execution")}
    for name in ("arrival_bid", "arrival_ask"):
        assert columns[name].null_ok
