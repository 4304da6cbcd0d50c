"""reports 0003/0004: the records written before ``TransactionRecord.trade_date`` existed get
their fill's UTC trading date, in batches, then the column is NOT NULL and indexed. Run from
0003 (the column, nullable) forward on the test database, as its owner (PostgreSQL; SQLite
too)."""

from __future__ import annotations

import importlib
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from tests.screens.world import order_filled

BEFORE = [("reports", "0003_transactionrecord_trade_date")]
AFTER = [("reports", "0004_transactionrecord_trade_date_backfill")]
BACKFILL = importlib.import_module("compliance.reports.migrations.0004_transactionrecord_trade_date_backfill")


def _migrate(targets):
    """Migrate as ``manage.py migrate`` does: connected as the owner of the tables."""
    from tradeops.core.db_roles import database_owner

    with database_owner():
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(targets)
        return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_existing_records_are_dated_as_their_fills_in_batches(account, instrument, monkeypatch):
    from trading.models import Execution

    monkeypatch.setattr(BACKFILL, "BATCH", 2)  # 7 records: four batches, the last one short
    order = order_filled(account=account, instrument=instrument, at=datetime(2026, 3, 2, 9, tzinfo=UTC))
    fills = [
        datetime(2026, 3, 2, 23, 59, 59, 999999, tzinfo=UTC),  # the last microsecond of a date
        datetime(2026, 3, 3, 0, 0, tzinfo=UTC),  # the first of the next
        datetime(2026, 3, 3, 0, 30, tzinfo=timezone(timedelta(hours=2))),  # 2 March, 22:30 UTC
        datetime(2026, 3, 4, 12, tzinfo=UTC),
    ]
    made = Execution.objects.bulk_create(
        Execution(
            order=order,
            account=account,
            instrument=instrument,
            side="BUY",
            quantity=1,
            price=1,
            broker_deal_id=f"MIG{n}",
            executed_at=at,
            recorded_at=at,
        )
        for n, at in enumerate(fills)
    )
    own = Execution.objects.exclude(pk__in=[e.pk for e in made]).get(order=order)
    try:
        apps = _migrate(BEFORE)
        run = apps.get_model("reports", "ReportRun").objects.create(
            reference="MIGRUN1",
            kind="transaction",
            period_start=date(2026, 3, 2),
            period_end=date(2026, 3, 4),
            as_of=fills[-1],
            file_format="xml",
            status="validated",
            created_at=fills[-1],
            generated_by_label="service:test",
        )
        records = apps.get_model("reports", "TransactionRecord")
        for n, execution in enumerate([*made, own, made[0], made[1]]):
            records.objects.create(
                run=run,
                execution_id=execution.pk,
                trn=f"T{n}",
                report_status="NEWT" if n < 5 else "CANC",
                state="reported",
                active=n < 5,
            )
        assert records.objects.filter(trade_date__isnull=True).count() == 7
    finally:
        _migrate(AFTER)  # forward again whatever happened: the rest of the session needs the schema

    from compliance.reports.models import TransactionRecord

    dated = dict(TransactionRecord.objects.values_list("trn", "trade_date"))
    assert dated == {
        "T0": date(2026, 3, 2),
        "T1": date(2026, 3, 3),
        "T2": date(2026, 3, 2),
        "T3": date(2026, 3, 4),
        "T4": date(2026, 3, 2),  # the order's own fill, 09:00
        "T5": date(2026, 3, 2),
        "T6": date(2026, 3, 3),
    }
    field = TransactionRecord._meta.get_field("trade_date")
    with connection.cursor() as cursor:
        columns = connection.introspection.get_table_description(cursor, TransactionRecord._meta.db_table)
        constraints = connection.introspection.get_constraints(cursor, TransactionRecord._meta.db_table)
    assert not next(c for c in columns if c.name == field.column).null_ok  # NOT NULL
    assert "record_reported_run_date" in constraints
