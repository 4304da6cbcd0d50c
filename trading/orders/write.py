"""How a plan's rows reach the database. Nothing here decides what is written (``plan``).

* PostgreSQL: ONE statement, ``SELECT trading_order_write(%s::jsonb, %b::bytea[])`` (trading
  migrations 0003, 0005, 0008), carrying the order, its fills, the positions, the account's risk
  snapshot, the outbox rows and the audit records in the jsonb, the outbox messages apart in binary;
  outside a transaction it is its own transaction (one round trip, one commit). Ids are reserved
  from the sequences in blocks beforehand (the records' event ids derive from them). The positions
  are computed from the rows the caller last wrote (the execution worker's hot state; else read
  first): the statement writes a position only if it still holds what the computation started from,
  and otherwise refuses the whole write; the writer then locks the rows in a transaction of its own
  and computes again (three round trips, only when another writer moved a position in between). The
  audit records are numbered and hashed in the database under the chain-head lock
  (``tradeops.audit.services.audit_server_rows``).
* Statements (SQLite, and every later step of an existing order on both databases): inside the
  recorder's transaction, the position rows locked (created if the fill needs one) before the
  chain head, then a few plain INSERT/UPDATE statements on the DB-API cursor with the values
  Django's fields prepare; the records handed to the recorder, written at the transaction's end.

Both answer the same three ways (``Written.status``): written; the ``client_order_id`` exists
(nothing written: idempotency); a broker deal is already recorded (nothing written; the caller
plans again without it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

import orjson
import psycopg
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connection, connections, transaction

from tradeops.audit.canonical import chain_hash, ts
from tradeops.audit.models import AuditRecord, ChainHead
from tradeops.audit.services import COLUMNS as AUDIT_COLUMNS
from tradeops.audit.services import (
    AuditEntry,
    audit_append_many,
    audit_appends_count,
    audit_index_on_commit,
    audit_known_event_ids,
    audit_server_rows,
)
from tradeops.core.clock import utcnow
from tradeops.core.errors import ApplicationError
from tradeops.core.pgpipeline import Batch, ByteaArray
from tradeops.core.rows import value_adapters
from tradeops.events import Envelope
from tradeops.outbox.models import Outbox
from tradeops.outbox.services import OUTBOX_COLUMNS, outbox_rows, outbox_written
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
    """Write ``plan``: on PostgreSQL a new order (or marks alone) in one statement, else in a few
    statements (``orm=True`` forces those). ``rows`` (instrument id -> position row as last
    written) spares the PostgreSQL writer reading them. Preconditions: the statements writer runs inside ``recorder``'s
    transaction; the one-statement writer outside any transaction or inside the recorder's."""
    one_statement = not orm and one_statement_available() and (plan.order is None or plan.created)
    if one_statement:
        return _write_one_statement(plan, recorder=recorder, rows=rows)
    return _write_statements(plan, recorder=recorder, rows=rows)


# ================================================================ statements


class _Table:
    """A model's table as the statements writer writes it: its columns (``id`` left to the
    database) and Django's own value adapters (``get_db_prep_save``, through
    ``tradeops.core.rows.value_adapters``), so every value reaches the database exactly as the
    ORM would send it (SQLite's text datetimes and decimals included)."""

    def __init__(self, model):
        self.name = model._meta.db_table
        self.fields = [f for f in model._meta.concrete_fields if not f.primary_key]
        self.columns = [f.column for f in self.fields]
        self.attnames = [f.attname for f in self.fields]

    def field_list(self) -> list:
        return self.fields

    def values(self, obj, conn) -> list:
        adapters = _adapters(self.name, self.field_list, conn)
        return [adapt(getattr(obj, a), conn) for adapt, a in zip(adapters, self.attnames, strict=True)]


_ORDERS, _FILLS, _POSITIONS = _Table(Order), _Table(Execution), _Table(Position)
_SNAPSHOT_COLUMNS = (
    "balance",
    "equity",
    "unrealised_pnl",
    "peak_equity",
    "drawdown",
    "daily_pnl",
    "used_margin",
    "trading_state",
    "breaker_state",
    "as_of",
    "updated_at",
)
_POSITION_SET = ("net_quantity", "average_price", "realised_pnl", "unrealised_pnl", "mark_price", "as_of", "updated_at")


def _statements(vendor: str) -> dict[str, str]:
    """The statements writer's SQL, with the DB-API's placeholder (SQLite ``?``, psycopg ``%s``)."""
    mark = "?" if vendor == "sqlite" else "%s"
    same = "IS" if vendor == "sqlite" else "IS NOT DISTINCT FROM"  # NULL-safe equality
    lock = "" if vendor == "sqlite" else " FOR UPDATE"  # SQLite: the IMMEDIATE transaction holds the write lock

    def marks(n: int) -> str:
        return ", ".join([mark] * n)

    snapshot = AccountRiskSnapshot._meta.db_table
    return {
        "order_insert": (
            f"INSERT INTO {_ORDERS.name} ({', '.join(_ORDERS.columns)}) VALUES ({marks(len(_ORDERS.columns))}) "
            "ON CONFLICT (client_order_id) DO NOTHING RETURNING id"
        ),
        "order_update": (
            f"UPDATE {_ORDERS.name} SET {', '.join(f'{c} = {mark}' for c in _ORDERS.columns)} WHERE id = {mark}"
        ),
        "fill_insert": (
            f"INSERT INTO {_FILLS.name} ({', '.join(_FILLS.columns)}) "
            f"VALUES ({marks(len(_FILLS.columns))}) RETURNING id"
        ),
        "position_update": (
            f"UPDATE {_POSITIONS.name} SET {', '.join(f'{c} = {mark}' for c in _POSITION_SET)} WHERE id = {mark}"
        ),
        "snapshot_upsert": (
            f"INSERT INTO {snapshot} (account_id, {', '.join(_SNAPSHOT_COLUMNS)}) "
            f"VALUES ({marks(len(_SNAPSHOT_COLUMNS) + 1)}) ON CONFLICT (account_id) DO UPDATE SET "
            + ", ".join(f"{c} = excluded.{c}" for c in _SNAPSHOT_COLUMNS)
        ),
        "deals_recorded": (
            f"SELECT broker_deal_id FROM {_FILLS.name} WHERE account_id = {mark} AND broker_deal_id IN ({{}})"
        ),
        "position_update_if": (
            f"UPDATE {_POSITIONS.name} SET {', '.join(f'{c} = {mark}' for c in _POSITION_SET)} WHERE id = {mark} AND "
            + " AND ".join(f"{c} {same} {mark}" for c in EXPECTED)
        ),
        "outbox_insert": (
            f"INSERT INTO {Outbox._meta.db_table} ({', '.join(OUTBOX_COLUMNS)}) VALUES ({marks(len(OUTBOX_COLUMNS))})"
        ),
        "head_lock": f"SELECT last_sequence, last_hash FROM {ChainHead._meta.db_table} WHERE id = 1{lock}",
        "audit_insert": (
            f"INSERT INTO {AuditRecord._meta.db_table} ({', '.join(AUDIT_COLUMNS)}) "
            f"VALUES ({marks(len(AUDIT_COLUMNS))})"
        ),
        "head_move": (
            f"UPDATE {ChainHead._meta.db_table} SET last_sequence = {mark}, last_hash = {mark}, updated_at = {mark} "
            "WHERE id = 1"
        ),
        "mark": mark,
    }


_SQL_BY_VENDOR: dict[str, dict[str, str]] = {}


def _sql() -> dict[str, str]:
    sql = _SQL_BY_VENDOR.get(connection.vendor)
    if sql is None:
        sql = _SQL_BY_VENDOR[connection.vendor] = _statements(connection.vendor)
    return sql


def _write_statements(
    plan: OrderPlan | MarksPlan, *, recorder: Recorder, rows: dict[int, Position] | None = None
) -> Written:
    """The write in a few plain statements on the DB-API cursor, inside the recorder's transaction
    (on SQLite an IMMEDIATE one: it holds the write lock), in the order every writer locks rows:
    positions, order, fills, snapshot, outbox, audit chain head. A single position is computed
    from ``rows`` (what the caller last wrote) and written only if the row still holds that;
    otherwise (or with several) the rows are read locked first. The transaction's records so far
    and the plan's are written here, at its end (the audit records chained after the locked head
    exactly as ``tradeops.audit.canonical`` does, like ``trading_order_write`` on PostgreSQL)."""
    sql = _sql()
    order = plan.order
    connection.ensure_connection()
    db = connections[DEFAULT_DB_ALIAS]  # the thread's connection itself: the value adapters read its ops
    with connection.wrap_database_errors:
        cursor = connection.connection.cursor()
        try:
            if plan.executions:
                deal_ids = [e.broker_deal_id for e in plan.executions]
                cursor.execute(
                    sql["deals_recorded"].format(", ".join([sql["mark"]] * len(deal_ids))), [plan.account_id, *deal_ids]
                )
                taken = tuple(row[0] for row in cursor.fetchall())
                if taken:
                    return Written(DEALS_RECORDED, deal_ids=taken)
            if not _positions_as_hinted(cursor, sql, plan, rows):
                plan.apply_positions(_positions_locked(plan))
                for position in plan.positions.values():
                    cursor.execute(sql["position_update"], [*_position_values(position), position.pk])
            if order is not None:
                if plan.created:
                    cursor.execute(sql["order_insert"], _ORDERS.values(order, db))
                    inserted = cursor.fetchone()
                    if inserted is None:  # the client_order_id exists: nothing of this order is written
                        existing = Order.objects.select_related("instrument").get(client_order_id=order.client_order_id)
                        return Written(EXISTS, order=existing)
                    order.pk = inserted[0]
                else:
                    cursor.execute(sql["order_update"], [*_ORDERS.values(order, db), order.pk])
                for execution in plan.executions:
                    execution.order_id = order.pk
                    cursor.execute(sql["fill_insert"], _FILLS.values(execution, db))
                    execution.pk = cursor.fetchone()[0]
                for obj in (order, *plan.executions):
                    obj._state.adding, obj._state.db = False, connection.alias
            if plan.figures is not None:
                values = {**plan.figures.row_values(), "updated_at": plan.recorded_at}
                adapters = _adapters("snapshot", _snapshot_fields, db)
                cursor.execute(
                    sql["snapshot_upsert"],
                    [plan.account_id]
                    + [adapt(values[c], db) for adapt, c in zip(adapters, _SNAPSHOT_COLUMNS, strict=True)],
                )
            entries, events = plan.records() if order is not None else ([], [])
            pending_entries, pending_events = recorder.drain()  # the transaction's records so far go first
            events = [*pending_events, *events]
            if events:
                _outbox_insert(cursor, sql, events)
            sequences = _audit_append(cursor, sql, [*pending_entries, *entries])
        finally:
            cursor.close()
    recorder.written(events, sequences)
    return Written(
        WRITTEN, order=order, positions=dict(plan.positions), events=tuple(events), audit_sequences=tuple(sequences)
    )


def _positions_as_hinted(cursor, sql, plan, rows) -> bool:
    """One position, computed from the row the caller last wrote and written only if the row
    still holds it (no read). False: nothing written; read the rows and compute."""
    ids = plan.instrument_ids
    if rows is None or len(ids) != 1:
        return False
    (instrument_id,) = ids
    base = rows.get(instrument_id)
    if base is None:
        return False
    plan.apply_positions({instrument_id: base})
    position = plan.positions[instrument_id]
    db = connections[DEFAULT_DB_ALIAS]
    fields, adapters = _expected_fields(), _adapters("expected", _expected_fields, db)
    expect = [adapt(getattr(base, f.attname), db) for f, adapt in zip(fields, adapters, strict=True)]
    cursor.execute(sql["position_update_if"], [*_position_values(position), position.pk, *expect])
    return cursor.rowcount == 1


def _position_values(position: Position) -> list:
    db = connections[DEFAULT_DB_ALIAS]
    fields, adapters = _position_set_fields(), _adapters("position_set", _position_set_fields, db)
    return [adapt(getattr(position, f.attname), db) for f, adapt in zip(fields, adapters, strict=True)]


def _outbox_insert(cursor, sql, events) -> None:
    db = connections[DEFAULT_DB_ALIAS]
    adapters = _adapters("outbox", _outbox_fields, db)
    rows = [[adapters[c](v, db) for c, v in row.items()] for row in outbox_rows(events)]
    cursor.executemany(sql["outbox_insert"], rows)
    outbox_written()


def audit_append_statements(*, entries: list[AuditEntry]) -> list[int]:
    """Append ``entries`` (each with its ``event_id``) to the chain in the caller's transaction,
    in the statements writer's plain statements on the DB-API cursor: what ``audit_append_many``
    writes, byte for byte (the same numbering, header and hash), without Django's cursor wrapper
    per statement. Idempotent by event id: ids the trail holds already (a redelivered signal),
    or repeated in ``entries``, are skipped, looked up after the chain head is locked, as
    ``audit_append_many`` does. Returns the sequences written. Precondition: inside
    ``transaction.atomic`` (on SQLite an IMMEDIATE one: it holds the write lock). The execution
    worker's ``signal.skipped`` records (one transaction per skipped signal, durable before the
    signal counts as handled)."""
    unique: dict = {}
    for entry in entries:
        if entry.event_id is None:
            raise OrderWriteError("audit_append_statements: every entry carries its event id")
        unique.setdefault(entry.event_id, entry)
    if not unique:
        return []
    sql = _sql()
    connection.ensure_connection()
    with connection.wrap_database_errors:
        cursor = connection.connection.cursor()
        try:
            return _audit_append(cursor, sql, list(unique.values()), fresh_only=True)
        finally:
            cursor.close()


def _audit_append(cursor, sql, entries, *, fresh_only: bool = False) -> list[int]:
    """Audit entries chained after the head, locked here (SQLite: the transaction's write lock);
    ``fresh_only``: those whose event id the trail holds are left out (looked up under the
    lock). The first record ever goes through ``audit_append_many``, which creates the head
    (and skips the ids it holds)."""
    if not entries:
        return []
    prepared = audit_server_rows(entries)  # validates; canonical payload and header text
    cursor.execute(sql["head_lock"])
    head = cursor.fetchone()
    if head is None:
        return [r.sequence for r in audit_append_many(entries=entries)]
    if fresh_only:
        known = audit_known_event_ids([row["event_id"] for row in prepared])  # the trail's own lookup
        if known:
            prepared = [row for row in prepared if row["event_id"] not in known]
            if not prepared:
                return []
    sequence, prev = head
    now = utcnow()
    recorded = ts(now)
    db = connections[DEFAULT_DB_ALIAS]
    adapters = _adapters("audit", _audit_fields, db)
    rows = []
    for row in prepared:
        sequence += 1
        retain = now + timedelta(microseconds=row["retain_us"])
        header = f'[{sequence},{row["lead"]},"{recorded}","{ts(retain)}",{row["rest"]}]'.encode()
        digest = chain_hash(prev, header, row["payload"])
        values = (
            sequence,
            row["event_id"],
            row["occurred_at"],
            now,
            retain,
            row["category"],
            row["actor_type"],
            row["actor_id"],
            row["action"],
            row["object_type"],
            row["object_id"],
            row["payload"],
            row["corrects"],
            prev,
            digest,
        )
        rows.append([adapt(v, db) for adapt, v in zip(adapters, values, strict=True)])
        prev = digest
    cursor.executemany(sql["audit_insert"], rows)
    cursor.execute(
        sql["head_move"], [sequence, prev, ChainHead._meta.get_field("updated_at").get_db_prep_save(now, connection)]
    )
    sequences = [r[0] for r in rows]
    audit_index_on_commit(sequences)
    audit_appends_count(row["category"] for row in prepared)
    return sequences


_FIELDS: dict[str, object] = {}
_ADAPTERS: dict[tuple[str, str], object] = {}  # (fields' name, vendor) -> their value adapters


def _adapters(name: str, fields, db):
    """The value adapters (``tradeops.core.rows.value_adapters``) of the fields ``fields()``
    returns, for the vendor of ``db`` (the connection itself, not the proxy), built once and kept:
    a dict by attname when ``fields()`` returns a dict. Every table and field list the statements
    writer adapts goes through this one cache (``_Table`` by its table name)."""
    key = (name, db.vendor)
    adapters = _ADAPTERS.get(key)
    if adapters is None:
        wanted = fields()
        if isinstance(wanted, dict):
            adapters = dict(zip(wanted, value_adapters(list(wanted.values()), db), strict=True))
        else:
            adapters = value_adapters(wanted, db)
        _ADAPTERS[key] = adapters
    return adapters


def _expected_fields() -> list:
    if "expected" not in _FIELDS:
        _FIELDS["expected"] = [Position._meta.get_field(c) for c in EXPECTED]
    return _FIELDS["expected"]


def _snapshot_fields() -> list:
    if "snapshot" not in _FIELDS:
        _FIELDS["snapshot"] = [AccountRiskSnapshot._meta.get_field(c) for c in _SNAPSHOT_COLUMNS]
    return _FIELDS["snapshot"]


def _outbox_fields() -> dict:
    if "outbox" not in _FIELDS:
        _FIELDS["outbox"] = {f.attname: f for f in Outbox._meta.concrete_fields}
    return _FIELDS["outbox"]


def _audit_fields() -> list:
    if "audit" not in _FIELDS:
        _FIELDS["audit"] = [AuditRecord._meta.get_field(c) for c in AUDIT_COLUMNS]
    return _FIELDS["audit"]


_POSITION_SET_FIELDS: list = []


def _position_set_fields() -> list:
    if not _POSITION_SET_FIELDS:
        _POSITION_SET_FIELDS.extend(Position._meta.get_field(c) for c in _POSITION_SET)
    return _POSITION_SET_FIELDS


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

# %b: the messages go in binary (tradeops.core.pgpipeline), each message's bytes as they are
_SQL = "SELECT trading_order_write(%s::jsonb, %b::bytea[])"


def _write_one_statement(plan, *, recorder: Recorder, rows: dict[int, Position] | None) -> Written:
    # The connection's wrapper once: each ``django.db.connection.x`` goes through asgiref's
    # context-local lookup (~5-20 us each on the shared machine; nine per order here before).
    db = connections[DEFAULT_DB_ALIAS]
    if db.connection is not None and db.connection.closed:
        db.close()  # lost (server restart, network): Django opens a new one below
    db.ensure_connection()
    conn = db.connection
    alias = db.alias
    order = plan.order
    with db.wrap_database_errors:
        if order is not None:
            order.pk = _reserve(conn, Order, 1)[0]
            for execution, execution_id in zip(
                plan.executions, _reserve(conn, Execution, len(plan.executions)), strict=True
            ):
                execution.pk, execution.order_id = execution_id, order.pk
            for obj in (order, *plan.executions):
                obj._state.adding, obj._state.db = False, alias
        bases = _positions_read(plan) if rows is None else {i: rows.get(i) for i in plan.instrument_ids}
        pending_entries, pending_events = recorder.drain()  # the transaction's records so far go first
        audited: list[dict] = []  # the audit rows of the last attempt (counted once written)

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
                "audit": audit_server_rows([*pending_entries, *entries]),
            }
            statement["outbox"], messages = _outbox_apart(outbox_rows(events))
            audited[:] = statement["audit"]
            if order is not None:
                statement["order"] = _row(order, ORDER_COLUMNS)
                statement["fills"] = [_row(e, EXECUTION_COLUMNS) for e in plan.executions]
            if plan.figures is not None:
                statement["snapshot"] = {
                    "account_id": plan.account_id,
                    **plan.figures.row_values(),
                    "updated_at": plan.recorded_at,
                }
            return _execute(conn, (orjson.dumps(statement, default=_json_default).decode(), messages)), events

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
        position._state.adding, position._state.db = False, alias
    sequences = tuple(range(result["first_sequence"], result["last_sequence"] + 1)) if result["first_sequence"] else ()
    if sequences:
        audit_index_on_commit(list(sequences))
        audit_appends_count(row["category"] for row in audited)
    if events:
        outbox_written()
    recorder.written(events, list(sequences))
    return Written(
        WRITTEN,
        order=order,
        positions=dict(plan.positions),
        events=tuple(events),
        audit_sequences=sequences,
        one_statement=True,
    )


def _execute(conn, params: tuple[str, ByteaArray | None]) -> tuple[str, object]:
    """Run the statement with ``params`` (the jsonb's text, the outbox messages); ('ok', result)
    or the refusal the function raised: ('position_moved', None) or ('deal_recorded', [deal
    ids]). Inside a transaction the call runs in a savepoint, so a refusal leaves the caller's
    transaction usable."""

    def call() -> dict:
        # tradeops.core.pgpipeline.Batch: the statement prepared once per connection and sent
        # with its Sync in one write; measured against psycopg's cursor and psycopg's pipeline
        # for this one statement in bench/order_path.py (bench/README.md), the least CPU per order.
        with Batch(conn) as batch:
            pending = batch.execute(_SQL, params)
            batch.sync()
            result = pending.raw()  # the function's json as sent: orjson, not psycopg's json loader
        return orjson.loads(result)

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


def _outbox_apart(rows: list[dict]) -> tuple[list[dict], ByteaArray]:
    """The outbox rows without their messages, and the messages (each an encoded envelope: JSON,
    UTF-8 bytes) in the rows' order: the function stores the i-th message in the i-th row
    (trading 0008). Sent in binary beside the jsonb, the messages are neither escaped nor parsed:
    inside it as text (trading 0005) they were ~6 KB of a ~17 KB parameter the server parsed as
    jsonb (their share of the parse 17-41 us an order, ``bench/order_statement_items.py``); as hex
    before that, ~14 KB of ~22 KB."""
    return rows, ByteaArray(row.pop("message") for row in rows)


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
