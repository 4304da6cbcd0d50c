"""A few statements sent to PostgreSQL as ONE write per round trip, in libpq's pipeline mode.

psycopg's ``Connection.pipeline()`` sends each statement as it is executed (a poll and a send
per statement, and the server woken for each); for a hot path of fixed statements that is most
of the client's database CPU (``bench/order_path.py``: 0.30 ms against 0.08 ms for the same 8
statements). ``Batch`` queues statements in libpq's buffer and sends them with the round trip's
Sync, through psycopg's documented libpq layer (``psycopg.pq``) and its adapters, so values go
and come back exactly as through a cursor (Django's loaders included). The order path's one
statement (``trading.orders.write``) goes through it: for that single statement it still costs
less client CPU than psycopg's cursor or psycopg's pipeline (``bench/order_path.py``)::

    with Batch(conn) as batch:
        batch.execute("BEGIN")
        inserted = batch.execute("INSERT ... RETURNING id", [...])
        batch.send()                       # on its way; the server works while we do
        ...
        batch.sync()                       # read the round trip's results; raises the first error
        inserted.fetchone()
        batch.execute("COMMIT")
        batch.sync()

Statements are server-side prepared once per connection (unnamed ``BEGIN``/``COMMIT`` aside),
with parameter types inferred by the server from the statement, so a statement's parameters
must sit where their type is known (a column, a cast). Placeholders are ``%s`` (the value sent as
text) or ``%b`` (sent in binary, as psycopg's ``%b``: bytes, and a ``ByteaArray`` of bytes, go as
they are, neither escaped nor parsed by the server: the order write's outbox messages). The caller owns
the transaction: after an error, ``sync`` raises it (a ``psycopg.Error``, as a cursor would),
the batch leaves pipeline mode on exit and the caller rolls back.
"""

from __future__ import annotations

import itertools
import re
import select
import struct
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import pq
from psycopg.adapt import Dumper, PyFormat, Transformer
from psycopg.errors import error_from_result

_OK = (pq.ExecStatus.TUPLES_OK, pq.ExecStatus.COMMAND_OK)
_BYTEA_OID, _BYTEA_ARRAY_OID = 17, 1001
_ARRAY_HEADER = struct.Struct("!iiIii")  # dimensions, has nulls, element type; length, lower bound
_EMPTY_ARRAY = struct.pack("!iiI", 0, 0, _BYTEA_OID)
_LENGTH = struct.Struct("!i")


class ByteaArray(tuple):
    """Bytes values sent as ONE ``bytea[]`` parameter in binary (``%b``): the order write's outbox
    messages. psycopg's own list dumper walks the list in Python, element by element (~0.2 ms of
    client CPU an order, profiled); this one joins the wire form at once. A tuple, so a connection
    without the dumper fails loudly (psycopg adapts no tuple) rather than sending it otherwise."""

    __slots__ = ()


class ByteaArrayDumper(Dumper):
    """PostgreSQL's binary array format (``array_recv``) of a one-dimensional ``bytea[]``."""

    format = pq.Format.BINARY
    oid = _BYTEA_ARRAY_OID

    def dump(self, obj: ByteaArray) -> bytes:
        if not obj:
            return _EMPTY_ARRAY
        parts = [b""]
        nulls = 0
        for value in obj:
            if value is None:
                nulls = 1
                parts.append(b"\xff\xff\xff\xff")  # length -1: NULL
            else:
                parts += (_LENGTH.pack(len(value)), value)
        parts[0] = _ARRAY_HEADER.pack(1, nulls, _BYTEA_OID, len(obj), 1)
        return b"".join(parts)


def bytea_array_register(conn: psycopg.Connection) -> None:
    """Let ``conn`` send a ``ByteaArray`` (``Batch`` does it for its connections; a psycopg
    cursor on the same connection then sends it the same way)."""
    conn.adapters.register_dumper(ByteaArray, ByteaArrayDumper)


_NAMES = itertools.count(1)  # prepared statement names, unique in the process


class Pending:
    """The result of one queued statement, readable after the ``sync`` that sent it."""

    __slots__ = ("_tx", "_result", "rows")

    def __init__(self, tx: Transformer) -> None:
        self._tx = tx
        self._result: pq.abc.PGresult | None = None
        self.rows: list[tuple] | None = None

    def fetchall(self) -> list[tuple]:
        if self.rows is None:
            if self._result is None:
                raise psycopg.ProgrammingError("the statement's round trip has not been synced yet")
            tx = self._tx
            tx.set_pgresult(self._result)
            self.rows = tx.load_rows(0, self._result.ntuples, tuple) if self._result.ntuples else []
        return self.rows

    def fetchone(self) -> tuple | None:
        rows = self.fetchall()
        return rows[0] if rows else None

    def raw(self) -> bytes | None:
        """The first row's first value as the server sent it (text format), not loaded: for a
        caller that parses it itself (the order write's json answer, read with orjson) and so
        spares the row loading (~20-40 us a call on the shared machine). None: SQL NULL."""
        if self._result is None:
            raise psycopg.ProgrammingError("the statement's round trip has not been synced yet")
        if not self._result.ntuples:
            raise psycopg.ProgrammingError("the statement returned no row")
        return self._result.get_value(0, 0)


class Batch:
    """Queue statements; ``sync`` sends them with one write and reads their results."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self._pgconn = conn.pgconn
        self._encoding = conn.info.encoding
        # (kind, Pending | prepared name): one per statement queued since the last sync
        self._queued: list[tuple[str, Any]] = []
        self._sent: list[list[tuple[str, Any]]] = []  # sent with their Sync, results not read yet
        prepared = getattr(conn, "_tradeops_prepared", None)
        if prepared is None or prepared[0] != conn.info.backend_pid:
            prepared = (conn.info.backend_pid, {})
            conn._tradeops_prepared = prepared  # per server connection: a reconnect prepares again
            bytea_array_register(conn)
        self._tx = Transformer(conn)
        self._names: dict[str, bytes] = prepared[1]

    def __enter__(self) -> Batch:
        self._pgconn.enter_pipeline_mode()
        return self

    def __exit__(self, *exc) -> None:
        pgconn = self._pgconn
        if pgconn.status != pq.ConnStatus.OK:
            return  # the connection is gone; psycopg reports it closed, Django replaces it
        try:
            if self._queued or self._sent:
                self._settle(raise_first=False)  # an error before the sync: settle what was sent
        finally:
            if pgconn.pipeline_status != pq.PipelineStatus.OFF:
                pgconn.exit_pipeline_mode()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Pending:
        pgconn = self._pgconn
        pending = Pending(self._tx)
        if sql in ("BEGIN", "COMMIT", "ROLLBACK"):
            pgconn.send_query_params(sql.encode(), None)
            self._queued.append(("result", pending))
            return pending
        name = self._names.get(sql)
        if name is None:
            name = b"tradeops_batch_%d" % next(_NAMES)
            pgconn.send_prepare(name, _numbered(sql).encode(self._encoding), None)
            self._queued.append(("prepare", (sql, name)))
        formats = _formats(sql)
        if not params:
            pgconn.send_query_prepared(name, None)
        elif formats is None:  # every placeholder %s: text
            pgconn.send_query_prepared(name, self._tx.dump_sequence(params, [PyFormat.TEXT] * len(params)))
        else:
            values = self._tx.dump_sequence(params, formats)
            # each value in the format its dumper wrote (an empty list is '{}' in text whatever
            # was asked), as psycopg's cursor sends it
            pgconn.send_query_prepared(name, values, self._tx.formats)
        self._queued.append(("result", pending))
        return pending

    def send(self) -> None:
        """Send what was queued, with a Sync, without waiting: the server starts on it while the
        caller works; ``sync`` then reads the results."""
        if not self._queued:
            return
        pgconn = self._pgconn
        self._sent.append(self._queued)
        self._queued = []
        pgconn.pipeline_sync()
        while pgconn.flush():
            _wait(pgconn.socket, select.POLLIN | select.POLLOUT)  # the socket's buffer is full
            pgconn.consume_input()

    def sync(self) -> None:
        """Send what is queued (``send``) and read every result sent so far. Raises the first
        statement's error; the server skipped the statements after it up to their Sync."""
        self._settle(raise_first=True)

    def _settle(self, *, raise_first: bool) -> None:
        self.send()
        fileno = self._pgconn.socket
        error: psycopg.Error | None = None
        segments, self._sent = self._sent, []
        for queued in segments:
            for kind, target in queued:
                result = self._next_result(fileno)
                if result.status in _OK:
                    if kind == "prepare":
                        self._names[target[0]] = target[1]
                    else:
                        target._result = result
                elif error is None and result.status == pq.ExecStatus.FATAL_ERROR:
                    error = error_from_result(result, encoding=self._encoding)
            sync = self._next_result(fileno)
            if sync.status != pq.ExecStatus.PIPELINE_SYNC:
                raise psycopg.InternalError(f"pipeline out of step: expected its Sync, got {sync.status.name}")
        if error is not None and raise_first:
            raise error

    def _next_result(self, fileno: int) -> pq.abc.PGresult:
        pgconn = self._pgconn
        while True:
            while pgconn.is_busy():
                _wait(fileno, select.POLLIN)
                pgconn.consume_input()
            result = pgconn.get_result()
            if result is not None:
                return result
            # None separates one statement's results from the next one's


def _wait(fileno: int, events: int) -> None:
    """Block until the socket is ready (poll, not select: no limit on the descriptor's number)."""
    poller = select.poll()
    poller.register(fileno, events)
    poller.poll()


_PLACEHOLDER = re.compile("%[sb]")
_FORMATS: dict[str, list[PyFormat] | None] = {}


def _numbered(sql: str) -> str:
    """``%s`` and ``%b`` placeholders as ``$1, $2, ...``."""
    parts = _PLACEHOLDER.split(sql)
    return "".join(f"{part}${i}" for i, part in enumerate(parts[:-1], start=1)) + parts[-1]


def _formats(sql: str) -> list[PyFormat] | None:
    """The formats asked of the parameters' dumpers, in placeholder order; None when every
    placeholder is ``%s``. Kept per statement."""
    try:
        return _FORMATS[sql]
    except KeyError:
        marks = _PLACEHOLDER.findall(sql)
        formats = [PyFormat.BINARY if m == "%b" else PyFormat.TEXT for m in marks] if "%b" in marks else None
        _FORMATS[sql] = formats
        return formats
