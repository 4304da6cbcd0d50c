"""Order path latency: intent → persisted fill, on the paper broker and PostgreSQL, with baselines.

    python bench/order_path.py [--orders 10000] [--statements-orders 2000] [--gate 100000]
                               [--transports batch,execute,execute-unprepared,psycopg-pipeline]
                               [--no-api-version-variant] [--no-inside-variant]

1. Order path: ``ExecutionWorker.execute(intent)`` from the call until it returns, i.e. gate
   (15 risk checks + the compliance checks) → paper broker fill → ONE committed write holding
   the order (created, risk-approved, submitted, filled), the risk decision, the execution, the
   position, the account's marks and risk snapshot, their outbox rows and audit records
   (``trading.orders.services.order_commit``: ONE statement on PostgreSQL, the
   ``trading_order_write`` function, which numbers and hashes the audit records under the chain
   head lock). Market orders of 0.10 lots, BUY and SELL alternating (the position stays small).
   p50 / p99 / max over ``--orders``, for each way of sending that one statement
   (``--transports``), interleaved in blocks of 500 orders so each sees the same minutes:
   ``batch`` ``tradeops.core.pgpipeline.Batch`` (libpq's pipeline mode driven directly: what the
   code does); ``execute`` psycopg's cursor, server-side prepared; ``execute-unprepared`` the same
   without preparing; ``psycopg-pipeline`` psycopg's ``Connection.pipeline()``. One more variant
   in the rotation (unless ``--no-api-version-variant``): the first transport with the API's
   data-version trigger (api migration 0002, deferred, on ``trading_position``) disabled by the
   owner for its blocks: what that trigger costs the order; and (unless ``--no-inside-variant``)
   the first transport with the outbox messages sent inside the jsonb as text, as before trading
   0008 (the function still takes them so): what sending them apart in binary saves.
2. The same through the statements writer (what SQLite uses; a few statements in a transaction),
   over ``--statements-orders``.
3. Gate alone: ``PreTradeGate.evaluate`` with every risk check active (limits set high enough
   to pass, so each check does its full work) plus the compliance checks of
   ``PRETRADE_COMPLIANCE_CHECKS`` (no compliance rules in force in the bench database, so they
   pass at once), p50 / p99 / max over ``--gate`` evaluations.
4. Same-run baselines: a bare one-row INSERT + COMMIT round trip through the same connection
   (the floor for anything durable), in blocks of its own in the same rotation as the order
   path's (so both see the same minutes of a shared machine: the targets' ratios are taken
   against it), and the paper broker's ``send_order`` alone.
5. The server's part alone, last: the order's statement replayed in transactions rolled back,
   the order really written each time (captured from an order whose own write was rolled back;
   until 2026-12-04 it was captured from a committed order and every replay was the no-op of
   ``ON CONFLICT (client_order_id) DO NOTHING``), beside the INSERT+COMMIT p50.
6. Statements per order, this process's CPU time per order, garbage collections (the startup
   heap frozen out of collection as ``run_execution_worker`` does, ``settle_heap``).

Targets (issue 12): order path p50 at most 2x INSERT+COMMIT p50, p99 at most 2.5x its p99.

Runs in a throwaway database (``test_tradeops_bench_orders``, or ``BENCH_DATABASE_NAME``: two
runs at once need two names; created and dropped by the owner role, ``MIGRATE_DATABASE_URL``),
measured as the runtime role, like the application. Needs the
local PostgreSQL of scripts/services.sh (or DATABASE_URL). DEBUG is off, as in production.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradeops.settings.local")
os.environ.setdefault("DATABASE_URL", "postgres://tradeops:tradeops@127.0.0.1:5432/tradeops")
os.environ.setdefault("MIGRATE_DATABASE_URL", "postgres://tradeops_owner:tradeops_owner@127.0.0.1:5432/tradeops")
os.environ["TEST_DATABASE_NAME"] = os.environ.get("BENCH_DATABASE_NAME", "test_tradeops_bench_orders")
os.environ.setdefault("DEBUG", "False")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from tradeops.bus.runner import settle_heap  # noqa: E402
from tradeops.core.db_roles import database_owner, runtime_grants_apply  # noqa: E402
from tradeops.core.identifiers import lei_with_check_digits  # noqa: E402
from trading.brokers import OrderRequest, Quote  # noqa: E402
from trading.brokers.paper import PaperBroker, PaperConfig  # noqa: E402
from trading.intents import OrderIntent  # noqa: E402
from trading.models import Execution, Instrument, Order, TradingAccount  # noqa: E402
from trading.orders import write as order_write  # noqa: E402
from trading.risk import RiskLimits  # noqa: E402
from workers.execution import ExecutionConfig, ExecutionWorker  # noqa: E402

T0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(name: str, samples_s: list[float], unit: str = "ms") -> dict:
    scale = 1e3 if unit == "ms" else 1e6
    row = {
        "name": name,
        "n": len(samples_s),
        "p50": pct(samples_s, 0.50) * scale,
        "p99": pct(samples_s, 0.99) * scale,
        "max": max(samples_s) * scale,
        "mean": statistics.fmean(samples_s) * scale,
        "unit": unit,
    }
    print(
        f"{name:<44} n={row['n']:>6}  p50 {row['p50']:8.3f} {unit}  p99 {row['p99']:8.3f} {unit}  "
        f"max {row['max']:8.3f} {unit}  mean {row['mean']:8.3f} {unit}"
    )
    return row


def setup_world():
    instrument = Instrument.objects.create(
        symbol="EURUSD",
        asset_class="FX",
        currency="EUR",
        quote_currency="USD",
        digits=5,
        tick_size=Decimal("0.00001"),
        contract_size=Decimal(100000),
        venue_mic="XOFF",
    )
    account = TradingAccount.objects.create(
        name="bench",
        mt5_login=1,
        mt5_server="paper",
        firm_lei=lei_with_check_digits("TRADEOPSBENCH00000"),
        client_id="C1",
    )
    broker = PaperBroker.from_instruments([instrument], config=PaperConfig(balance=Decimal(10_000_000)))
    broker.connect()
    broker.update_quote(Quote("EURUSD", Decimal("1.10000"), Decimal("1.10002"), T0))
    limits = RiskLimits(
        max_position_lots=Decimal(1000),
        max_gross_exposure=Decimal(10**12),
        max_net_exposure=Decimal(10**12),
        daily_loss_limit=Decimal(10**9),
        max_drawdown=Decimal("0.99"),
        max_submits_per_second=10**6,
        max_modifies_per_second=10**6,
        max_open_orders=10**6,
        duplicate_window_ms=None,  # the bench sends the same size over and over on purpose
    )
    worker = ExecutionWorker(
        brokers={account.pk: broker}, config=ExecutionConfig(default_limits=limits, stale_after=None)
    ).start()
    worker.on_quote(Quote("EURUSD", Decimal("1.10000"), Decimal("1.10002"), T0))
    return instrument, account, broker, worker


def intent(account_id: int, n: int, at: datetime) -> OrderIntent:
    return OrderIntent(
        client_order_id=f"B{n:012d}",
        account_id=account_id,
        symbol="EURUSD",
        side="BUY" if n % 2 == 0 else "SELL",
        quantity=Decimal("0.10"),
        reference_price=Decimal("1.10001"),
        ts=at,
        algo_id="bench",
        signal_id=f"s{n}",
    )


def bench_order_path(
    worker, account, orders: int, first: int = 200_000, warm: int = 200
) -> tuple[list[float], list[float]]:
    """Wall-clock samples, and this process's CPU time per order (the rest is waiting on PostgreSQL)."""
    samples, cpu = [], []
    for n in range(-warm, orders):  # warm-up orders (connection, caches, cold pages)
        i = intent(account.pk, n + first, T0 + timedelta(microseconds=n + warm))
        cpu_start = time.process_time()
        start = time.perf_counter()
        order = worker.execute(i)
        elapsed = time.perf_counter() - start
        cpu_elapsed = time.process_time() - cpu_start
        assert order is not None and order.status == "FILLED", (order, order and order.reject_reason)
        if n >= 0:
            samples.append(elapsed)
            cpu.append(cpu_elapsed)
    return samples, cpu


class GcPauses:
    """Garbage collection pauses while active: generation -> list of milliseconds."""

    def __init__(self) -> None:
        self.pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
        self._started = 0.0

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses[info["generation"]].append((time.perf_counter() - self._started) * 1e3)

    def __enter__(self) -> GcPauses:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc) -> None:
        gc.callbacks.remove(self)

    def report(self) -> str:
        return "; ".join(
            f"gen {g}: {len(p)}" + (f" (longest {max(p):.1f} ms)" if p else "") for g, p in self.pauses.items()
        )


def count_statements(worker, account) -> int:
    """Statements one order sends on the one-statement path (psycopg cursors' and ``Batch``'s)."""
    import psycopg

    from tradeops.core.pgpipeline import Batch

    counts = {"statements": 0}
    originals = {(psycopg.Cursor, "execute"): psycopg.Cursor.execute, (Batch, "execute"): Batch.execute}

    def counting(original):
        def counted(self, *args, **kwargs):
            counts["statements"] += 1
            return original(self, *args, **kwargs)

        return counted

    for (cls, name), original in originals.items():
        setattr(cls, name, counting(original))
    try:
        worker.execute(intent(account.pk, 3, T0))
    finally:
        for (cls, name), original in originals.items():
            setattr(cls, name, original)
    return counts["statements"]


class statements_writer:
    """The statements writer (as on SQLite) while active."""

    def __enter__(self):
        self.real = order_write.one_statement_available
        order_write.one_statement_available = lambda: False

    def __exit__(self, *exc):
        order_write.one_statement_available = self.real


def _fetch(result):
    import orjson

    return orjson.loads(result) if isinstance(result, str | bytes) else result


def psycopg_params(params) -> list:
    """The order statement's parameters as psycopg's own cursors send them: the messages a list
    (psycopg's list dumper; Django's client-side cursor quotes it as an array literal) rather than
    ``pgpipeline.ByteaArray``, which only ``Batch`` and server-binding cursors dump."""
    text, messages = params
    return [text, None if messages is None else list(messages)]


def _cursor(prepare: bool):
    def send(conn, params):
        with conn.cursor() as cursor:
            cursor.execute(order_write._SQL, psycopg_params(params), prepare=prepare)
            return "ok", _fetch(cursor.fetchone()[0])

    return send


def _psycopg_pipeline(conn, params):
    with conn.pipeline(), conn.cursor() as cursor:
        cursor.execute(order_write._SQL, psycopg_params(params), prepare=True)
        return "ok", _fetch(cursor.fetchone()[0])


TRANSPORTS = {
    "batch": None,  # what trading.orders.write does: tradeops.core.pgpipeline.Batch
    "execute": _cursor(True),
    "execute-unprepared": _cursor(False),
    "psycopg-pipeline": _psycopg_pipeline,
}


class transport:
    """Send the one statement another way while active (the bench's comparison only)."""

    def __init__(self, name: str):
        self.send = TRANSPORTS[name]

    def __enter__(self):
        self.real = order_write._execute
        if self.send is not None:
            order_write._execute = self.send

    def __exit__(self, *exc):
        order_write._execute = self.real


def bench_transports_alone(names: list[str], size: int, rounds: int = 20, calls: int = 100) -> dict[str, float]:
    """Client CPU per call (median of ``rounds`` rounds of ``calls``, interleaved) of sending one
    statement with a jsonb parameter of ``size`` bytes (an order statement's size) each way,
    the server only parsing it: the transport's own cost, without the order's noise."""
    from tradeops.core.pgpipeline import Batch

    sql = "SELECT jsonb_build_object('n', length(%s::jsonb->>'x'))"
    payload = '{"x": "' + "a" * size + '"}'
    conn = connection.connection

    def batch():
        with Batch(conn) as b:
            pending = b.execute(sql, [payload])
            b.sync()
            return pending.fetchone()

    def cursor(prepare):
        def send():
            with conn.cursor() as c:
                c.execute(sql, [payload], prepare=prepare)
                return c.fetchone()

        return send

    def pipeline():
        with conn.pipeline(), conn.cursor() as c:
            c.execute(sql, [payload], prepare=True)
            return c.fetchone()

    ways = {"batch": batch, "execute": cursor(True), "execute-unprepared": cursor(False), "psycopg-pipeline": pipeline}
    ways = {name: ways[name] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in ways}
    for send in ways.values():
        for _ in range(20):
            send()
    for _ in range(rounds):
        for name, send in ways.items():
            start = time.process_time()
            for _ in range(calls):
                send()
            cpu[name].append((time.process_time() - start) / calls)
    return {name: statistics.median(values) for name, values in cpu.items()}


def bench_statement_alone(worker, account, trigger, rounds: int = 10, calls: int = 200) -> dict[str, float]:
    """The server's part: one order's statement run again and again in a transaction rolled back,
    the deferred triggers fired before the rollback by ``SET CONSTRAINTS ALL IMMEDIATE``;
    interleaved rounds with the API data-version trigger on and off. Medians in seconds: the
    statement, and the trigger-firing round trip. A third state in the rotation: the indexes the
    index diet dropped put back (``api_version_trigger.old_indexes``).

    The statement is captured from a real order whose write is rolled back, so the database
    still stands where that statement expects it (the order new, the positions as it computed
    them from) and every replay WRITES the order (checked: ``written`` true). Before
    2026-12-04 the statement was captured from an order that committed, so every replay met
    its own ``client_order_id`` and returned at ``ON CONFLICT DO NOTHING``: a no-op measured
    as the order's server time. Replayed through a server-binding ``psycopg.Cursor`` (parameters
    apart, the messages in binary, as ``Batch`` sends them); until 2026-12-05 (wip/ord16) through
    Django's client-binding cursor, the 17 KB jsonb quoted into the SQL text. Call it last: the
    worker's in-memory state has moved by the rolled-back order (its next write finds the
    positions moved and computes again)."""
    captured = []
    real = order_write._execute

    def capture(conn, params):
        captured.append(params)
        return real(conn, params)

    order_write._execute = capture
    try:
        with transaction.atomic():
            worker.execute(intent(account.pk, 4, T0))
            transaction.set_rollback(True)
    finally:
        order_write._execute = real
    import psycopg

    params, conn = captured[-1], connection.connection
    times: dict[str, list[float]] = {key: [] for s in ("on", "off", "old indexes") for key in (s, f"{s}, fire")}
    times["round trip"] = []  # a bare SELECT 1: the firing's own round trip, which a commit does not add
    for _ in range(rounds):
        states = (("on", contextlib.nullcontext), ("off", trigger.off), ("old indexes", trigger.old_indexes))
        for state, differs in states:
            with differs():
                for _ in range(calls):
                    conn.execute("BEGIN")
                    start = time.perf_counter()
                    with psycopg.Cursor(conn) as cursor:  # server-side binding, as Batch sends it
                        result = cursor.execute(order_write._SQL, params, prepare=True).fetchone()[0]
                    done = time.perf_counter()
                    conn.execute("SET CONSTRAINTS ALL IMMEDIATE")
                    fired = time.perf_counter()
                    conn.execute("ROLLBACK")
                    assert _fetch(result)["written"] is True, result  # the real write, not the no-op
                    times[state].append(done - start)
                    times[f"{state}, fire"].append(fired - done)
                    if state == "on":
                        trip = time.perf_counter()
                        conn.execute("SELECT 1", prepare=True).fetchone()
                        times["round trip"].append(time.perf_counter() - trip)
    return {"bytes": statement_bytes(params), **{key: statistics.median(values) for key, values in times.items()}}


def bench_gate(worker, account, evaluations: int) -> list[float]:
    gate, risk = worker.gate, worker.risk
    samples = []
    at = T0 + timedelta(hours=1)
    probe = intent(account.pk, 999_999_999, at)
    for _ in range(evaluations):
        start = time.perf_counter()
        ctx = risk.context(probe)
        decision = gate.evaluate(probe, ctx)
        samples.append(time.perf_counter() - start)
    assert decision.approved, decision.reason
    return samples


def bench_insert_commit(count: int) -> list[float]:
    samples = []
    for n in range(count):
        start = time.perf_counter()
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("INSERT INTO bench_roundtrip (payload) VALUES (%s)", [f"row {n}"])
        samples.append(time.perf_counter() - start)
    return samples


def owner_connect():
    """A connection of the owner role (``settings.DATABASE_OWNER``, each blank key taken from the
    runtime's settings) to the bench database, in autocommit: for schema changes the runtime role
    may not make."""
    import psycopg

    owner = {key: value or connection.settings_dict[key] for key, value in settings.DATABASE_OWNER.items()}
    return psycopg.connect(
        host=owner["HOST"],
        port=owner["PORT"] or 5432,
        user=owner["USER"],
        password=owner["PASSWORD"],
        dbname=connection.settings_dict["NAME"],
        autocommit=True,
    )


class api_version_trigger:
    """The API's data-version trigger on ``trading_position`` (api migration 0002), switched by
    the owner on a connection of its own (the runtime role may not): ``enabled(False)`` for a
    block measures the order path without it."""

    TRIGGER = "api_data_version_trading_position"

    def __enter__(self):
        self.conn = owner_connect()
        return self

    def __exit__(self, *exc):
        self._set(True)
        self.conn.close()

    def _set(self, on: bool) -> None:
        self.conn.execute(f"ALTER TABLE trading_position {'ENABLE' if on else 'DISABLE'} TRIGGER {self.TRIGGER}")

    # The indexes trading 0006, audit 0007 and outbox 0003 dropped (outbox: the full sent_at
    # index beside today's partial one), put back for a block: what they cost the order's statement.
    OLD_INDEXES = (
        ("trading_order", "account_id"),
        ("trading_order", "instrument_id"),
        ("trading_order", "broker_order_id"),
        ("trading_order", "broker_order_id varchar_pattern_ops"),
        ("trading_order", "client_order_id varchar_pattern_ops"),
        ("trading_order", "algo_id varchar_pattern_ops"),
        ("trading_order", "signal_id varchar_pattern_ops"),
        ("trading_execution", "account_id"),
        ("audit_record", "hash varchar_pattern_ops"),
        ("outbox", "sent_at"),
    )

    @contextlib.contextmanager
    def old_indexes(self):
        for n, (table, column) in enumerate(self.OLD_INDEXES):
            self.conn.execute(f"CREATE INDEX bench_old_index_{n} ON {table} ({column})")
        try:
            yield
        finally:
            for n in range(len(self.OLD_INDEXES)):
                self.conn.execute(f"DROP INDEX bench_old_index_{n}")

    @contextlib.contextmanager
    def off(self):
        self._set(False)
        try:
            yield
        finally:
            self._set(True)


def statement_bytes(params) -> int:
    """An order statement's size: its jsonb's text and its outbox messages' bytes."""
    text, messages = params
    return len(text.encode()) + sum(len(m) for m in messages or ())


def messages_inside_rows(rows: list[dict]) -> tuple[list[dict], None]:
    """``order_write._outbox_apart`` as the writer was before trading 0008: each message inside
    its row as text (the jsonb), none apart (the function's ``messages`` NULL)."""
    for row in rows:
        row["message"] = row["message"].decode()
    return rows, None


@contextlib.contextmanager
def messages_inside():
    """The outbox messages sent inside the jsonb as text, as the writer did before trading 0008
    (the function still takes them so): what sending them apart in binary saves."""
    real = order_write._outbox_apart
    order_write._outbox_apart = messages_inside_rows
    try:
        yield
    finally:
        order_write._outbox_apart = real


def bench_broker(broker, count: int) -> list[float]:
    samples = []
    for n in range(count):
        request = OrderRequest(
            client_order_id=f"P{n:012d}", symbol="EURUSD", side="BUY" if n % 2 else "SELL", volume=Decimal("0.10")
        )
        start = time.perf_counter()
        broker.send_order(request)
        samples.append(time.perf_counter() - start)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=10_000, help="per transport")
    parser.add_argument("--statements-orders", type=int, default=2_000)
    parser.add_argument("--gate", type=int, default=100_000)
    parser.add_argument("--transports", default=",".join(TRANSPORTS))
    parser.add_argument("--block", type=int, default=500, help="orders per transport in turn")
    parser.add_argument(
        "--no-api-version-variant", action="store_true", help="leave out the API version trigger off variant"
    )
    parser.add_argument(
        "--no-inside-variant", action="store_true", help="leave out the messages-inside-the-jsonb variant"
    )
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("order_path needs PostgreSQL: set DATABASE_URL")
    names = [t for t in args.transports.split(",") if t]
    old_name = connection.settings_dict["NAME"]
    with database_owner():  # creates and migrates the database, and the baseline's scratch table
        connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
        with connection.cursor() as cursor:
            cursor.execute("CREATE TABLE bench_roundtrip (id bigserial PRIMARY KEY, payload text NOT NULL)")
        runtime_grants_apply()
    try:
        print(
            f"machine: {platform.machine()}, {os.cpu_count()} CPUs (shared with other work), "
            f"Python {platform.python_version()}"
        )
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_user, current_setting('server_version')")
            user, version = cursor.fetchone()
            print(f"PostgreSQL {version} on {connection.settings_dict['HOST']} as {user}; paper broker in process")
        instrument, account, broker, worker = setup_world()

        worker.execute(intent(account.pk, 1, T0))  # the first order also creates the position row
        with CaptureQueriesContext(connection) as queries, statements_writer():
            worker.execute(intent(account.pk, 2, T0))
        print(f"statements writer: statements per filled order: {len(queries.captured_queries)} through Django "
              "(BEGIN, the position read, COMMIT; the rest on the DB-API cursor)")  # fmt: skip
        print(
            f"one-statement writer: statements per filled order: {count_statements(worker, account)} "
            f"(plus one id reservation per {order_write.ID_BLOCK} orders)"
        )
        results = {"broker": summary("baseline: paper broker send_order alone", bench_broker(broker, 2000))}
        frozen = settle_heap()  # as run_execution_worker does after start
        with api_version_trigger() as trigger:
            # (label, transport, what else differs for its blocks)
            variants = [(name, name, contextlib.nullcontext) for name in names]
            if not args.no_api_version_variant:
                variants.append((f"{names[0]}, API version trigger off", names[0], trigger.off))
            if not args.no_inside_variant:
                variants.append(
                    (f"{names[0]}, messages inside the jsonb (before trading 0008)", names[0], messages_inside)
                )
            load_before = os.getloadavg()
            samples = {label: ([], []) for label, _, _ in variants}
            baseline: list[float] = []
            first = 200_000
            with GcPauses() as collections:
                bench_insert_commit(200)  # warm the baseline's table
                for _label, name, differs in variants:  # warm each way once
                    with transport(name), differs():
                        bench_order_path(worker, account, 0, first=first, warm=100)
                    first += 1000
                done = 0
                while done < args.orders:  # rotate: baseline block, then each variant's block
                    block = min(args.block, args.orders - done)
                    baseline.extend(bench_insert_commit(block))
                    for label, name, differs in variants:
                        with transport(name), differs():
                            wall, cpu = bench_order_path(worker, account, block, first=first, warm=0)
                        samples[label][0].extend(wall)
                        samples[label][1].extend(cpu)
                        first += block
                    done += block
            load_after = os.getloadavg()
        base = results["insert"] = summary("baseline: INSERT one row + COMMIT (same rotation)", baseline)
        print(f"order path, intent -> persisted fill (load average {load_before[0]:.2f} -> {load_after[0]:.2f}):")
        for label, _, _ in variants:
            row = summary(f"  one statement via {label}", samples[label][0])
            cpu = statistics.fmean(samples[label][1]) * 1e3
            print(
                f"    CPU {cpu:.3f} ms/order; / INSERT+COMMIT: p50 {row['p50'] / base['p50']:.2f}x, "
                f"p99 {row['p99'] / base['p99']:.2f}x"
            )
            results[label] = row
        print(f"  garbage collections meanwhile: {collections.report()}; startup heap frozen ({frozen} objects)")
        with statements_writer():
            st_samples, st_cpu = bench_order_path(worker, account, args.statements_orders, first=900_000)
        statements = summary("same through the statements writer", st_samples)
        print(f"  of which CPU time in this process: mean {statistics.fmean(st_cpu) * 1e3:.3f} ms")
        gate_samples = bench_gate(worker, account, args.gate)
        gate = summary(f"gate alone: context + {len(worker.gate.checks)} checks", gate_samples, unit="us")
        assert Order.objects.filter(status="FILLED").count() >= args.orders
        assert Execution.objects.count() >= args.orders
        with api_version_trigger() as trigger:  # last: its rolled-back order moves the worker's state
            server = bench_statement_alone(worker, account, trigger)
        print(
            f"statement alone, the order really written ({server['bytes']:,} bytes, rolled back; medians): "
            f"API version trigger on {server['on'] * 1e3:.3f} ms + firing the deferred triggers "
            f"{server['on, fire'] * 1e3:.3f} ms; off {server['off'] * 1e3:.3f} ms + "
            f"{server['off, fire'] * 1e3:.3f} ms; "
            f"with the 10 indexes of before trading 0006 / audit 0007 / outbox 0003 put back "
            f"{server['old indexes'] * 1e3:.3f} ms + {server['old indexes, fire'] * 1e3:.3f} ms"
        )
        floor = (server["on"] + server["on, fire"]) * 1e3
        print(
            f"  the order's own server floor (statement + deferred triggers, no commit) {floor:.3f} ms = "
            f"{floor / base['p50']:.2f}x the INSERT+COMMIT p50 of the rotation"
        )
        # The firing above is a round trip of its own; at commit the triggers fire in the
        # statement's round trip (autocommit), so that trip is not part of the order's floor.
        net = floor - server["round trip"] * 1e3
        print(
            f"  less the firing's own round trip (SELECT 1: {server['round trip'] * 1e3:.3f} ms): {net:.3f} ms = "
            f"{net / base['p50']:.2f}x the INSERT+COMMIT p50"
        )
        alone = bench_transports_alone(names, server["bytes"])
        print(
            f"transport alone, client CPU per call of one {server['bytes']:,}-byte jsonb statement (median of 20 "
            "interleaved rounds of 100): " + ", ".join(f"{name} {us * 1e6:.1f} us" for name, us in alone.items())
        )
        path = results[names[0]]
        print(
            f"ratio order path ({names[0]}) / INSERT+COMMIT: p50 {path['p50'] / base['p50']:.2f}x "
            f"(target <= 2), p99 {path['p99'] / base['p99']:.2f}x (target <= 2.5); statements writer / one "
            f"statement: p50 {statements['p50'] / path['p50']:.1f}x; gate p99 {gate['p99']:.1f} us"
        )
    finally:
        with database_owner():
            connection.creation.destroy_test_db(old_name, verbosity=0, keepdb=False)


if __name__ == "__main__":
    main()
