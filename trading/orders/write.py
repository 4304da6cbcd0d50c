"""How a plan's rows reach the database. Nothing here decides what is written (``plan``).

* PostgreSQL: ONE statement, ``SELECT trading_order_write(%s::json)`` (trading migration 0003),
  carrying the order, its fills, the positions, the account's risk snapshot, the outbox rows and
  the audit records; outside a transaction it is its own transaction (one round trip, one
  commit). Ids are reserved from the sequences in blocks beforehand (the records' event ids
  derive from them). The positions are computed from the rows the caller last wrote (the
  execution worker's hot state; else read first): the statement writes a position only if it
  still holds what the computation started from, and otherwise refuses the whole write; the
  writer then locks the rows in a transaction of its own and computes again (three round trips,
  only when another writer moved a position in between). The audit records are numbered and hashed in
  the database under the chain-head lock (``tradeops.audit.services.audit_server_rows``).
* The ORM (SQLite, and every later step of an existing order on both databases): inside the
  recorder's transaction, the position rows locked (created if the fill needs one) before the
  chain head, rows saved, the records handed to the recorder, written at the transaction's end.

Both answer the same three ways (``Written.status``): written; the ``client_order_id`` exists
(nothing written: idempotency); a broker deal is already recorded (nothing written; the caller
plans again without it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from decimal import Decimal

import orjson
import psycopg
from django.db import IntegrityError, connection, transaction

from tradeops.audit.services import audit_index_on_commit, audit_server_rows
from tradeops.core.errors import ApplicationError
from tradeops.events import Envelope
from tradeops.outbox.services import outbox_rows
from tradeops.recorder import Recorder
from trading.models import AccountRiskSnapshot, Execution, Order, Position
from trading.orders.plan import MarksPlan, OrderPlan

ORDER_COLUMNS = tuple(f.attname for f in Order._meta.concrete_fields)
EXECUTION_COLUMNS = tuple(f.attname for f in Execution._meta.concrete_fields)
POSITION_COLUMNS = tuple(f.attname for f in Position._meta.concrete_fields)
EXPECTED = ("net_quantity", "average_price", "realised_pnl", "mark_price")  # what a position is computed from
ID_BLOCK = 256  # ids reserved per round trip; unused ones are skipped (gaps), never reused

WRITTEN, EXISTS, DEALS_RECORDED = "written", "exists", "deals_recorded"


class OrderWriteError(ApplicationError):
    code = "order_write_failed"


@dataclass
class Written:
    """What a writer did. ``status``: ``written``; ``exists`` (``order`` is the existing one);
    ``deals_recorded`` (``deal_ids`` are recorded already). ``events``: the outbox events of the
    write, in order; ``one_statement``: which writer."""

    status: str
    order: Order | None = None
    deal_ids: tuple[str, ...] = ()
    positions: dict[int, Position] = field(default_factory=dict)
    events: tuple[Envelope, ...] = ()
    audit_sequences: tuple[int, ...] = ()
    one_statement: bool = False


def one_statement_available() -> bool:
    """Whether new orders go through the one-statement writer (PostgreSQL)."""
    return connection.vendor == "postgresql"


def plan_write(
    plan: OrderPlan | MarksPlan, *, recorder: Recorder, rows: dict[int, Position] | None = None, orm: bool = False
) -> Written:
    """Write ``plan``: on PostgreSQL a new order (or marks alone) in one statement, else through
    the ORM. ``rows`` (instrument id -> position row as last written) spares the PostgreSQL
    writer reading them. Preconditions: an ORM write runs inside ``recorder``'s transaction; the
    one-statement write runs outside any transaction or inside the recorder's."""
    one_statement = not orm and one_statement_available() and (plan.order is None or plan.created)
    if one_statement:
        return _write_one_statement(plan, recorder=recorder, rows=rows)
    return _write_orm(plan, recorder=recorder)


# ================================================================ the ORM


def _write_orm(plan: OrderPlan | MarksPlan, *, recorder: Recorder) -> Written:
    order = plan.order
    if order is not None and plan.created:
        existing = Order.objects.select_related("instrument").filter(client_order_id=order.client_order_id).first()
        if existing is not None:
            return Written(EXISTS, order=existing)
    if plan.executions:
        taken = tuple(
            Execution.objects.filter(
                account_id=plan.account_id, broker_deal_id__in=[e.broker_deal_id for e in plan.executions]
            ).values_list("broker_deal_id", flat=True)
        )
        if taken:
            return Written(DEALS_RECORDED, deal_ids=taken)
    plan.apply_positions(_positions_locked(plan))
    if order is not None:
        if plan.created:
            try:
                with transaction.atomic():
                    order.save(force_insert=True)
            except IntegrityError:
                # A concurrent writer created the same key between our read and insert.
                existing = Order.objects.select_related("instrument").get(client_order_id=order.client_order_id)
                return Written(EXISTS, order=existing)
        else:
            order.save()
        if plan.executions:
            Execution.objects.bulk_create(plan.executions)
    for position in plan.positions.values():
        position.save()
    if plan.figures is not None:
        values = {**plan.figures.row_values(), "updated_at": plan.recorded_at}
        if not AccountRiskSnapshot.objects.filter(account_id=plan.account_id).update(**values):
            AccountRiskSnapshot.objects.create(account_id=plan.account_id, **values)
    events: list[Envelope] = []
    if order is not None:
        entries, events = plan.records()
        for entry in entries:
            recorder.audit(entry)
        for event in events:
            recorder.event(event)
    return Written(WRITTEN, order=order, positions=dict(plan.positions), events=tuple(events))


def _positions_locked(plan: OrderPlan | MarksPlan) -> dict[int, Position | None]:
    """The rows the write changes, locked ``FOR UPDATE`` (before the chain head, as every writer
    locks them); the filled instrument's row is created first when there is none, in a
    savepoint (a concurrent creator's row is locked instead)."""
    ids = plan.instrument_ids
    if not ids:
        return {}

    def read() -> dict[int, Position]:
        rows = Position.objects.select_for_update(of=("self",)).select_related("instrument")
        return {p.instrument_id: p for p in rows.filter(account_id=plan.account_id, instrument_id__in=sorted(ids))}

    rows = read()
    if plan.executions and plan.order.instrument_id not in rows:
        try:
            with transaction.atomic():
                Position.objects.create(
                    account_id=plan.account_id, instrument=plan.order.instrument, updated_at=plan.recorded_at
                )
        except IntegrityError:
            pass  # created concurrently; lock theirs
        rows = read()
    return dict(rows)


# ================================================================ one statement (PostgreSQL)

_SQL = "SELECT trading_order_write(%s::json)"


def _write_one_statement(plan, *, recorder: Recorder, rows: dict[int, Position] | None) -> Written:
    if connection.connection is not None and connection.connection.closed:
        connection.close()  # lost (server restart, network): Django opens a new one below
    connection.ensure_connection()
    conn = connection.connection
    order = plan.order
    with connection.wrap_database_errors:
        if order is not None:
            order.pk = _reserve(conn, Order, 1)[0]
            for execution, execution_id in zip(
                plan.executions, _reserve(conn, Execution, len(plan.executions)), strict=True
            ):
                execution.pk, execution.order_id = execution_id, order.pk
            for obj in (order, *plan.executions):
                obj._state.adding, obj._state.db = False, connection.alias
        bases = _positions_read(plan) if rows is None else {i: rows.get(i) for i in plan.instrument_ids}
        pending_entries, pending_events = recorder.drain()  # the transaction's records so far go first

        def attempt(bases) -> tuple[tuple[str, object], list[Envelope]]:
            plan.apply_positions(bases)
            for position in plan.positions.values():
                if position.pk is None:
                    position.pk = _reserve(conn, Position, 1)[0]
            entries, events = plan.records() if order is not None else ([], [])
            events = [*pending_events, *events]
            statement = {
                "account_id": plan.account_id,
                "positions": [
                    {"row": _row(p, POSITION_COLUMNS), "expect": _expect(plan.position_bases.get(i))}
                    for i, p in plan.positions.items()
                ],
                "outbox": outbox_rows(events),
                "audit": audit_server_rows([*pending_entries, *entries]),
            }
            if order is not None:
                statement["order"] = _row(order, ORDER_COLUMNS)
                statement["fills"] = [_row(e, EXECUTION_COLUMNS) for e in plan.executions]
            if plan.figures is not None:
                statement["snapshot"] = {
                    "account_id": plan.account_id,
                    **plan.figures.row_values(),
                    "updated_at": plan.recorded_at,
                }
            return _execute(conn, orjson.dumps(statement, default=_json_default).decode()), events

        outcome, events = attempt(bases)
        if outcome[0] == "position_moved":
            # Another writer moved a position since it was read: this time lock the rows first
            # (a transaction of three round trips), so they cannot move again.
            with transaction.atomic():
                outcome, events = attempt(_positions_read(plan, lock=True))
            if outcome[0] == "position_moved":
                raise OrderWriteError(f"account {plan.account_id}: a locked position moved under the write")
    if outcome[0] == "deal_recorded":
        recorder.entries[:0], recorder.events[:0] = pending_entries, pending_events
        return Written(DEALS_RECORDED, deal_ids=tuple(outcome[1]))
    result = outcome[1]
    if not result["written"]:
        recorder.entries[:0], recorder.events[:0] = pending_entries, pending_events
        existing = Order.objects.select_related("instrument").get(pk=result["order_id"])
        return Written(EXISTS, order=existing)
    for position in plan.positions.values():
        position._state.adding, position._state.db = False, connection.alias
    sequences = tuple(range(result["first_sequence"], result["last_sequence"] + 1)) if result["first_sequence"] else ()
    if sequences:
        audit_index_on_commit(list(sequences))
    recorder.written(events, list(sequences))
    return Written(
        WRITTEN,
        order=order,
        positions=dict(plan.positions),
        events=tuple(events),
        audit_sequences=sequences,
        one_statement=True,
    )


def _execute(conn, statement: str) -> tuple[str, object]:
    """Run the statement; ('ok', result) or the refusal the function raised: ('position_moved',
    None) or ('deal_recorded', [deal ids]). Inside a transaction the call runs in a savepoint,
    so a refusal leaves the caller's transaction usable."""

    def call() -> dict:
        with conn.cursor() as cursor:
            cursor.execute(_SQL, [statement], prepare=True)
            result = cursor.fetchone()[0]
            return orjson.loads(result) if isinstance(result, str | bytes) else result

    try:
        if connection.in_atomic_block:
            with transaction.atomic():
                return "ok", call()
        return "ok", call()
    except psycopg.errors.RaiseException as exc:
        message = exc.diag.message_primary or ""
        if message == "tradeops:position_moved":
            return "position_moved", None
        if message == "tradeops:deal_recorded":
            return "deal_recorded", orjson.loads(exc.diag.message_detail or "[]")
        raise


def _positions_read(plan, *, lock: bool = False) -> dict[int, Position | None]:
    ids = sorted(plan.instrument_ids)
    if not ids:
        return {}
    rows = Position.objects.select_related("instrument").filter(account_id=plan.account_id, instrument_id__in=ids)
    if lock:
        rows = rows.select_for_update(of=("self",)).order_by("pk")
    return {p.instrument_id: p for p in rows}


def _row(obj, columns: tuple[str, ...]) -> dict:
    return {column: getattr(obj, column) for column in columns}


def _expect(base: Position | None) -> dict | None:
    return None if base is None else {name: getattr(base, name) for name in EXPECTED}


def _json_default(value):
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return "\\x" + bytes(value).hex()
    raise TypeError(f"cannot send {type(value).__name__} in an order write: {value!r}")


def _reserve(conn, model, count: int) -> list[int]:
    """Primary keys reserved from ``model``'s sequence in blocks of ``ID_BLOCK``, per server
    connection (kept on the connection: a forked or reconnected process never reuses another's
    block). Ids are unique but not in creation order: order rows by their times."""
    if count == 0:
        return []
    backend = (os.getpid(), conn.info.backend_pid)
    blocks = getattr(conn, "_tradeops_reserved", None)
    if blocks is None or blocks[0] != backend:
        blocks = (backend, {})
        conn._tradeops_reserved = blocks
    table = model._meta.db_table
    free = blocks[1].setdefault(table, [])
    if len(free) < count:
        with conn.cursor() as cursor:
            cursor.execute(
                f"SELECT nextval(pg_get_serial_sequence('{table}', 'id')) FROM generate_series(1, %s)",
                [max(count, ID_BLOCK)],
            )
            free.extend(row[0] for row in cursor.fetchall())
    taken = free[:count]
    del free[:count]
    return taken
