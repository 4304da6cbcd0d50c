"""``row_insert``: one row in one plain statement, exactly as the ORM's ``save`` writes it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from django.db import connection, transaction

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
