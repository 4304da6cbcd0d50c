"""``row_insert``: one row in one plain statement, exactly as the ORM's ``save`` writes it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from django.db import connection, connections, transaction

from tests.tradeops.conftest import tick
from tradeops.core.rows import row_insert
from tradeops.outbox.models import Outbox
from tradeops.outbox.services import outbox_append


def _raw(model, pk) -> tuple:
    columns = [f.column for f in model._meta.concrete_fields if f.column not in ("id", "event_id")]
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(columns)} FROM {model._meta.db_table} WHERE id = %s", [pk])
        row = cursor.fetchone()
    return tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)


def _outbox_row(**overrides) -> Outbox:
    values = {
        "event_id": uuid.uuid4(),
        "topic": "market-data-events",
        "key": "EURUSD",
        "event_type": "tick",
        "version": 1,
        "occurred_at": datetime(2017, 3, 1, 9, 0, 0, 250_000, tzinfo=UTC),
        "traceparent": "",
        "message": b'{"x": "\\u00e9"}\x00\xff',
        "created_at": datetime(2026, 12, 4, 13, 0, 0, 1, tzinfo=UTC),
    }
    return Outbox(**{**values, **overrides})


def test_a_row_inserted_in_one_statement_is_the_row_the_orm_saves(db):
    ours, theirs = _outbox_row(), _outbox_row()
    with transaction.atomic():
        assert row_insert(ours) is True
        theirs.save(force_insert=True)
    assert ours.pk is not None and ours.pk != theirs.pk
    assert not ours._state.adding and ours._state.db == "default"
    assert _raw(Outbox, ours.pk) == _raw(Outbox, theirs.pk)
    ours.refresh_from_db()  # a saved instance in every respect
    assert ours.sent_at is None and ours.attempts == 0


def test_a_conflict_on_the_named_column_is_skipped_not_raised(db):
    first = _outbox_row()
    again = _outbox_row(event_id=first.event_id, key="GBPUSD")
    with transaction.atomic():
        assert row_insert(first, on_conflict_skip="event_id") is True
        assert row_insert(again, on_conflict_skip="event_id") is False  # the transaction goes on
        assert again.pk is None and again._state.adding
    assert Outbox.objects.get().key == "EURUSD"


def test_outbox_append_writes_through_it(db):
    with transaction.atomic():
        row = outbox_append(event=tick("EURUSD", 1))
    stored = Outbox.objects.get()
    assert stored.pk == row.pk and bytes(stored.message) == bytes(row.message)


# ---------------------------------------------------------------- value_adapters


def _models():
    from compliance.models import PreTradeDecision
    from tradeops.audit.models import AuditRecord, ChainHead
    from trading.models import AccountRiskSnapshot, Execution, Order, Position

    return [Order, Execution, Position, AccountRiskSnapshot, Outbox, AuditRecord, ChainHead, PreTradeDecision]


def _samples(field) -> list:
    """Values of the types the write paths hand a field, None, and some of other types (the field's own path)."""
    from decimal import Decimal
    from zoneinfo import ZoneInfo

    from django.db import models

    common = [None, "", "1", 0, 7, True, False]
    if isinstance(field, models.DecimalField):
        return [None, Decimal("1.10"), Decimal("-0.00008"), Decimal("0E-8"), Decimal(3), 7, "2.50", 1.25]
    if isinstance(field, models.DateTimeField):
        return [
            None,
            datetime(2017, 4, 23, 21, 0, tzinfo=UTC),
            datetime(2026, 12, 4, 13, 0, 0, 1, tzinfo=UTC),
            datetime(2026, 12, 4, 13, 0, tzinfo=ZoneInfo("Europe/Paris")),
        ]
    if isinstance(field, models.UUIDField):
        return [None, uuid.UUID("5d0f3f7e-8a43-4c1e-9a8e-2f6b1c9f0b11"), "5d0f3f7e8a434c1e9a8e2f6b1c9f0b11"]
    if isinstance(field, models.JSONField):
        return [None, {"a": [1, "b"]}, [], "x"]
    if isinstance(field, models.BinaryField):
        return [None, b"\x00\xff"]
    if isinstance(field, models.BooleanField):
        return [None, True, False, 1, 0]
    if isinstance(field, models.IntegerField | models.ForeignKey):
        return [None, 0, 7, 2**40, "12", True]
    return common


def _same(ours, theirs) -> bool:
    if type(ours) is not type(theirs):
        return False
    return ours == theirs or repr(ours) == repr(theirs)  # psycopg's Binary wrapper has no __eq__


def test_value_adapters_give_what_the_fields_give_on_postgresql_and_sqlite(db):
    """Every concrete column of the models the plain-statement writers write, on this database
    (PostgreSQL) and on SQLite (the embedded run's), for the values they are handed and others."""
    from django.db.backends.sqlite3.base import DatabaseWrapper

    from tradeops.core.rows import value_adapters

    sqlite = DatabaseWrapper({"NAME": ":memory:", "TIME_ZONE": None, "OPTIONS": {}})
    paris = DatabaseWrapper({"NAME": ":memory:", "TIME_ZONE": "Europe/Paris", "OPTIONS": {}})  # not UTC
    checked = 0
    for conn in (connections["default"], sqlite, paris):
        for model in _models():
            fields = list(model._meta.concrete_fields)
            for field, adapt in zip(fields, value_adapters(fields, conn), strict=True):
                for value in _samples(field):
                    try:
                        theirs = field.get_db_prep_save(value, conn)
                    except Exception as exc:
                        theirs = type(exc)
                    try:
                        ours = adapt(value, conn)
                    except Exception as exc:
                        ours = type(exc)
                    assert _same(ours, theirs), (conn.vendor, model.__name__, field.name, value, ours, theirs)
                    checked += 1
    assert checked > 300
