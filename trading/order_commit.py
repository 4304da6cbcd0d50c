"""One order's write: a new order and everything that happened to it on its way to the broker
and back (its risk decision, submission, fills, the position, the trading-events and the audit
records) in ONE transaction. The execution worker's only writer on the order path (issue 7).

Two ways to write it, with the same rows, events and audit records (tests/trading/
test_order_commit.py commits every outcome both ways and compares them):

* **pipelined** (PostgreSQL, outside any transaction): libpq's pipeline mode on the raw
  connection (``tradeops.core.pgpipeline.Batch``: one write per round trip), two round trips.
  The order is built in memory through the same state machine and mutators the services use
  (``order_apply_transition``, ``execution_new``, ``order_apply_fill``, ``position_apply_fill``)
  and its row written once, in its final state; the audit trail still gets one record per step,
  each with the snapshot of that step.

      1. BEGIN; INSERT the order; INSERT the fills; lock the position row; lock the audit chain
         head (sent at once; the audit records and events of every step are built while the
         server runs it: the ids they derive from are reserved beforehand, ``_Ids``)  -> sync
      2. UPDATE the position; INSERT the outbox rows; INSERT the audit records chained after
         the head just read and move the head; COMMIT                                -> sync

  Statements are server-side prepared. The ORM path costs ~17 statements, each a round trip
  and several hundred microseconds of Python; ``bench/order_path.py`` has the figures. Locks are
  taken in the ORM path's order (order, position, chain head), so the two never deadlock.

* **ORM** (SQLite; inside a caller's transaction, e.g. tests or reconciliation; or when the
  pipelined write declines): ``order_create`` / ``order_transition`` / ``execution_record`` in
  ``transaction.atomic`` with ``recording.batched()``.

The pipelined write declines, rolls back and leaves the order to the ORM path when the
``client_order_id`` already exists (the ORM path then returns that order: idempotency), when a
fill's deal id is already recorded (``execution_record`` is idempotent by deal id), on an
account's first fill of an instrument (the ORM path creates the position row: creating it here,
after the chain-head lock, would take the locks in the other order and deadlock against an ORM
writer creating the same row), and before the first audit record ever (``audit_append_many``
creates the chain head). Any database error
rolls the whole transaction back and is raised as Django's error
(``connection.wrap_database_errors``), so the worker's recovery sees the same exceptions on
both paths.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

import psycopg
from django.conf import settings
from django.db import connection, transaction

from tradeops.audit.identity import recorded_event_id
from tradeops.audit.services import HEAD_LOCK_SQL, audit_append_queue, audit_index_on_commit, audit_prepare
from tradeops.core.clock import ensure_utc, utcnow
from tradeops.core.pgpipeline import Batch
from tradeops.core.sql import json_insert_sql, json_rows
from tradeops.events import Envelope
from tradeops.outbox.services import outbox_append_queue, outbox_prepare
from trading import recording
from trading.models import Execution, Instrument, Order, OrderType, Position, TradingAccount
from trading.recording import audit_entry, outbox_event_for
from trading.services import (
    _as_stored,
    execution_new,
    execution_record,
    execution_snapshot,
    order_apply_fill,
    order_apply_transition,
    order_create,
    order_new,
    order_snapshot,
    order_step_record,
    order_transition,
    position_apply_fill,
    position_snapshot,
)


def _fields(obj) -> dict:
    return {name: getattr(obj, name) for name in obj.__dataclass_fields__}


@dataclass(frozen=True)
class OrderDraft:
    """The terms of a new order (``order_create``'s arguments); ``at`` is when it was received."""

    client_order_id: str
    account: TradingAccount
    instrument: Instrument
    side: str
    quantity: Decimal
    at: datetime
    order_type: str = OrderType.MARKET
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    time_in_force: str = "GTC"
    algo_id: str = ""
    trader: object = None
    desk: str = ""
    signal_id: str = ""

    def kwargs(self) -> dict:
        """``order_create``'s keyword arguments."""
        return _fields(self)


@dataclass(frozen=True)
class OrderStep:
    """One move of the order's state machine (``order_transition``'s arguments)."""

    to: str
    at: datetime
    reason: str = ""
    broker_order_id: str | None = None

    def kwargs(self) -> dict:
        """``order_transition``'s (and ``order_apply_transition``'s) keyword arguments."""
        return _fields(self)


@dataclass(frozen=True)
class FillDraft:
    """A broker deal to record as a fill of the order (``execution_record``'s arguments); ``fee``
    is our sign (a positive cost)."""

    broker_deal_id: str
    quantity: Decimal
    price: Decimal
    executed_at: datetime
    fee: Decimal = Decimal(0)
    arrival_mid: Decimal | None = None

    def kwargs(self) -> dict:
        """``execution_record``'s (and ``execution_new``'s) keyword arguments."""
        return _fields(self)


@dataclass(frozen=True)
class OrderCommit:
    """What ``order_commit`` wrote. ``created`` False: the ``client_order_id`` existed and nothing
    was written (``order`` is the existing one). ``fills``: the fills recorded. ``events``: the
    outbox events written, in order (for in-process consumers). ``pipelined``: which path wrote."""

    order: Order
    created: bool
    fills: tuple[FillDraft, ...] = ()
    events: tuple[Envelope, ...] = ()
    pipelined: bool = False
    audit_sequences: tuple[int, ...] = field(default=(), repr=False)


def order_commit(
    *,
    draft: OrderDraft,
    steps: Sequence[OrderStep] = (),
    fills: Sequence[FillDraft] = (),
    after_fills: Sequence[OrderStep] = (),
    events: Sequence[Envelope] = (),
    actor: str = "system",
) -> OrderCommit:
    """Create the order, apply ``steps``, record ``fills`` (order status, position), apply
    ``after_fills``, and append ``events`` (e.g. the risk decision) right after the order's
    creation event: all in one transaction, with one audit record and one trading-event per step.

    Idempotent by ``client_order_id``: an existing order is returned with ``created=False`` and
    nothing is written. Refuses what ``order_create``, ``order_transition`` and
    ``execution_record`` refuse, before writing anything. Regulation: RTS 6 Art. 17 (one record
    per order, settled with the broker), 2017/565 Art. 72 (the audit trail)."""
    if _can_pipeline():
        written = _commit_pipelined(draft, steps, fills, after_fills, events, actor)
        if written is not None:
            return written
    return _commit_orm(draft, steps, fills, after_fills, events, actor)


def _can_pipeline() -> bool:
    return (
        settings.ORDER_COMMIT_PIPELINE
        and connection.vendor == "postgresql"
        and not connection.in_atomic_block
        and connection.get_autocommit()
    )


# ================================================================ ORM


def _commit_orm(draft, steps, fills, after_fills, events, actor) -> OrderCommit:
    recorded: list[FillDraft] = []
    with transaction.atomic(), recording.batched() as (_, written):
        order, created = order_create(**draft.kwargs(), actor=actor)
        if not created:
            return OrderCommit(order=order, created=False)
        for event in events:
            recording.outbox_event(event)
        for step in steps:
            order_transition(order=order, **step.kwargs(), actor=actor)
        for fill in fills:
            result = execution_record(order=order, **fill.kwargs(), actor=actor)
            if result.created:
                recorded.append(fill)
        for step in after_fills:
            order_transition(order=order, **step.kwargs(), actor=actor)
    return OrderCommit(order=order, created=True, fills=tuple(recorded), events=tuple(written))


# ================================================================ pipelined

_ORDER_COLUMNS = tuple(f.attname for f in Order._meta.concrete_fields)
_ORDER_INSERT = f"{json_insert_sql(Order, _ORDER_COLUMNS)} ON CONFLICT (client_order_id) DO NOTHING RETURNING id"
_EXECUTION_COLUMNS = tuple(f.attname for f in Execution._meta.concrete_fields)
# Fills go in with the order (their ids are reserved); a deal id already recorded inserts nothing
# and the write declines to the ORM path, whose execution_record is idempotent by deal id.
_FILLS_INSERT = (
    f"{json_insert_sql(Execution, _EXECUTION_COLUMNS)} ON CONFLICT (account_id, broker_deal_id) DO NOTHING RETURNING id"
)
_POSITION_FIELDS = ("id", "net_quantity", "average_price", "realised_pnl", "unrealised_pnl", "mark_price", "updated_at")
_POSITION_LOCK = (
    f"SELECT {', '.join(_POSITION_FIELDS)} FROM {Position._meta.db_table} "
    "WHERE account_id = %s AND instrument_id = %s FOR UPDATE"
)
_POSITION_UPDATE = (
    f"UPDATE {Position._meta.db_table} SET net_quantity = %s, average_price = %s, realised_pnl = %s, "
    "unrealised_pnl = %s, updated_at = %s WHERE id = %s"
)
ID_BLOCK = 256  # ids reserved per round trip; unused ones are skipped (gaps), never reused


class _Decline(Exception):
    """The pipelined write cannot take this order; roll back and use the ORM path."""


class _Ids:
    """Primary keys reserved from a table's sequence in blocks, per connection: the order's and
    its fills' ids are known before the write, so their audit records and events (whose ids
    derive from the object's id) are built while the server runs the first round trip. One
    extra round trip per ``ID_BLOCK`` rows; a block is tied to the server connection that
    reserved it, so a forked or reconnected process never reuses another's ids. Ids are
    therefore unique but not in creation order (a block reserved earlier hands out lower ids
    than an ORM insert made meanwhile): order by ``created_at``, as the models do."""

    def __init__(self, model):
        table = model._meta.db_table
        self.sql = f"SELECT nextval(pg_get_serial_sequence('{table}', 'id')) FROM generate_series(1, %s)"
        self.free: list[int] = []
        self.backend = None

    def take(self, conn, count: int) -> list[int]:
        backend = (os.getpid(), conn.info.backend_pid)
        if backend != self.backend:
            self.free, self.backend = [], backend
        if len(self.free) < count:
            with conn.cursor() as cursor:
                cursor.execute(self.sql, [max(count, ID_BLOCK)])
                self.free.extend(row[0] for row in cursor.fetchall())
        taken, self.free = self.free[:count], self.free[count:]
        return taken


_reserved = threading.local()


def _ids(model) -> _Ids:
    key = f"{connection.alias}:{model._meta.db_table}"
    ids = getattr(_reserved, key, None)
    if ids is None:
        ids = _Ids(model)
        setattr(_reserved, key, ids)
    return ids


def _plan(draft: OrderDraft, steps, fills, after_fills) -> tuple[Order, list[Execution], list[tuple], datetime]:
    """The order's life in memory, through the services' own mutators and state machine (every
    refusal raises here, before any write): the order in its final state, its fills, and one
    ``(action, object, payload, time)`` per step to record; a fill's ``position.updated`` has
    no payload yet (it needs the locked row). Also returns the clock read for the fills."""
    order = order_new(**draft.kwargs())
    # (action, object, payload, time); a fill's position record waits for the locked row (None)
    actions: list[tuple] = [("order.created", order, order_snapshot(order), order.created_at)]
    _as_stored(order)

    def transition(step: OrderStep) -> None:
        before = order.status
        at = ensure_utc(step.at)
        target = order_apply_transition(
            order, to=step.to, at=at, reason=step.reason, broker_order_id=step.broker_order_id
        )
        action, payload = order_step_record(order, target=target, before=before, reason=step.reason)
        actions.append((action, order, payload, at))

    for step in steps:
        transition(step)
    now = utcnow()
    executions: list[Execution] = []
    for fill in fills:
        execution = execution_new(order=order, **fill.kwargs(), recorded_at=now)
        before = order.status
        target = order_apply_fill(order, execution=execution, at=now)
        executions.append(execution)
        actions.append(("execution.recorded", execution, execution_snapshot(execution), now))
        action, payload = order_step_record(order, target=target, before=before)
        actions.append((action, order, payload, now))
        actions.append(("position.updated", execution, None, now))
        _as_stored(order)
    for step in after_fills:
        transition(step)
    return order, executions, actions, now


def _commit_pipelined(draft, steps, fills, after_fills, events, actor) -> OrderCommit | None:
    if not draft.client_order_id:
        return None  # the ORM path refuses it with its message
    order, executions, actions, now = _plan(draft, steps, fills, after_fills)
    if connection.connection is not None and connection.connection.closed:
        connection.close()  # lost (server restart, network): Django opens a new one below
    connection.ensure_connection()
    conn = connection.connection
    with connection.wrap_database_errors:
        order.pk = _ids(Order).take(conn, 1)[0]
        for execution, execution_id in zip(executions, _ids(Execution).take(conn, len(executions)), strict=True):
            execution.pk, execution.order_id = execution_id, order.pk
        for obj in (order, *executions):
            obj._state.adding, obj._state.db = False, connection.alias
        try:
            with Batch(conn) as batch:
                # ---- round trip 1: the order and fill rows and the locks (position, then chain
                # head), sent now; the records are built while the server runs them.
                batch.execute("BEGIN")
                inserting = batch.execute(_ORDER_INSERT, [json_rows([_values(order, _ORDER_COLUMNS)], _ORDER_COLUMNS)])
                if executions:
                    rows = [_values(e, _EXECUTION_COLUMNS) for e in executions]
                    filling = batch.execute(_FILLS_INSERT, [json_rows(rows, _EXECUTION_COLUMNS)])
                    locking = batch.execute(_POSITION_LOCK, [order.account_id, order.instrument_id])
                head_locking = batch.execute(HEAD_LOCK_SQL)
                batch.send()

                # One slot per action, in order: (prepared audit rows, events, prepared outbox rows).
                slots: list = []
                for name, obj, payload, at in actions:
                    slots.append(None if payload is None else _records(name, obj, payload, at, actor))
                    if name == "order.created":
                        slots.append(([], list(events), outbox_prepare(events)))

                batch.sync()
                if inserting.fetchone() is None:
                    raise _Decline  # the client_order_id exists: the ORM path returns that order
                head = head_locking.fetchone()
                if head is None:
                    raise _Decline  # no audit record yet: audit_append_many creates the chain head
                if executions:
                    if len(filling.fetchall()) != len(executions):
                        raise _Decline  # a deal already recorded: the ORM path's execution_record settles it
                    row = locking.fetchone()
                    if row is None:
                        # The account's first fill on this instrument: the ORM path creates the row
                        # before it locks the chain head; creating it now would invert that order.
                        raise _Decline
                    position = Position(**dict(zip(_POSITION_FIELDS, row, strict=True)))
                    position.account_id, position.instrument = order.account_id, order.instrument
                    position._state.adding, position._state.db = False, connection.alias
                    fills_left = iter(executions)
                    for index, slot in enumerate(slots):
                        if slot is None:
                            position_apply_fill(position, execution=next(fills_left), at=now)
                            slots[index] = _records(
                                "position.updated", position, position_snapshot(position), now, actor
                            )
                            _as_stored(position)

                # ---- round trip 2: position, events, audit records, commit
                if executions:
                    batch.execute(
                        _POSITION_UPDATE,
                        [
                            position.net_quantity,
                            position.average_price,
                            position.realised_pnl,
                            position.unrealised_pnl,
                            position.updated_at,
                            position.pk,
                        ],
                    )
                outbox_append_queue(cursor=batch, rows=[row for slot in slots for row in slot[2]])
                sequences = audit_append_queue(
                    cursor=batch, head=head, prepared=[row for slot in slots for row in slot[0]]
                )
                batch.execute("COMMIT")
                batch.sync()
        except _Decline:
            _rollback(conn)
            return None
        except BaseException:
            _rollback(conn)
            raise
    audit_index_on_commit(sequences)
    return OrderCommit(
        order=order,
        created=True,
        fills=tuple(fills),
        events=tuple(event for slot in slots for event in slot[1]),
        pipelined=True,
        audit_sequences=tuple(sequences),
    )


def _values(obj, columns: tuple[str, ...]) -> list:
    return [getattr(obj, column) for column in columns]


def _records(action: str, obj, payload: dict, at: datetime, actor: str) -> tuple[list, list, list]:
    """One action's audit record and trading-event, sharing one derived event id (so the audit
    consumer skips the event), prepared for the pipelined write: (audit rows, events, outbox rows)."""
    event_id = recorded_event_id(action=action, obj=obj, payload=payload, at=at)
    entry = audit_entry(action=action, actor=actor, obj=obj, payload=payload, at=at, event_id=event_id)
    event = outbox_event_for(action=action, obj=obj, payload=payload, at=at, event_id=event_id)
    events = [] if event is None else [event]
    return audit_prepare([entry]), events, outbox_prepare(events)


def _rollback(conn) -> None:
    """End the pipelined transaction after a failure (the connection may be gone: then there is
    nothing to roll back, and Django replaces the connection on its next use)."""
    if conn.closed or conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
        return
    try:
        conn.execute("ROLLBACK")
    except psycopg.Error:
        pass
