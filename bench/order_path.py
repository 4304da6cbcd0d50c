"""Order path latency: intent → persisted fill, on the paper broker and PostgreSQL, with baselines.

    python bench/order_path.py [--orders 10000] [--orm-orders 2000] [--gate 100000] [--no-settle]

1. Order path: ``ExecutionWorker.execute(intent)`` from the call until it returns, i.e. gate
   (14 risk checks + the compliance checks) → paper broker fill → ONE committed write holding
   the order (created, risk-approved, submitted, filled), the risk decision, the execution, the
   position, the account's marks and risk snapshot, their outbox rows and audit records
   (``trading.orders.services.order_commit``: one statement on PostgreSQL). Market orders of
   0.10 lots, BUY and SELL alternating (the position stays small). p50 / p99 / max over
   ``--orders``.
2. The same through the ORM writer (what SQLite uses), measured in the same run over
   ``--orm-orders``.
3. Gate alone: ``PreTradeGate.evaluate`` with every risk check active (limits set high enough
   to pass, so each check does its full work) plus the compliance checks of
   ``PRETRADE_COMPLIANCE_CHECKS`` (no compliance rules in force in the bench database, so they
   pass at once), p50 / p99 / max over ``--gate`` evaluations.
4. Same-run baselines: a bare one-row INSERT + COMMIT round trip through the same Django
   connection (the floor for anything durable), and the paper broker's ``send_order`` alone.
5. Statements and round trips per order, and this process's CPU time per order.
6. Garbage collections during the order path run (``gc.callbacks``): count and longest pause per
   generation. As ``manage.py run_execution_worker`` does, the startup heap is frozen out of
   collection once the worker has started (``settle_heap``); ``--no-settle`` leaves it in, to see
   what that buys.

Runs in a throwaway database (``test_tradeops_bench_orders``, created and dropped here). Needs
DATABASE_URL (default: the local PostgreSQL of scripts/services.sh). DEBUG is off, as in
production (Django's debug query log would otherwise be timed too).
"""

from __future__ import annotations

import argparse
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
os.environ["TEST_DATABASE_NAME"] = "test_tradeops_bench_orders"
os.environ.setdefault("DEBUG", "False")

import django

django.setup()

from django.db import connection, transaction  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from tradeops.bus.runner import settle_heap  # noqa: E402
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


def bench_order_path(worker, account, orders: int, first: int = 200_000) -> tuple[list[float], list[float]]:
    """Wall-clock samples, and this process's CPU time per order (the rest is waiting on PostgreSQL)."""
    samples, cpu = [], []
    for n in range(-200, orders):  # 200 warm-up orders (connection, caches, cold pages)
        i = intent(account.pk, n + first, T0 + timedelta(microseconds=n + 200))
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
    """Statements one order sends on the one-statement path (the raw connection's executes)."""
    import psycopg

    counts = {"statements": 0}
    execute = psycopg.Cursor.execute

    def counted(self, *args, **kwargs):
        counts["statements"] += 1
        return execute(self, *args, **kwargs)

    psycopg.Cursor.execute = counted
    try:
        worker.execute(intent(account.pk, 3, T0))
    finally:
        psycopg.Cursor.execute = execute
    return counts["statements"]


class orm_writer:
    """The ORM writer (as on SQLite) while active."""

    def __enter__(self):
        self.real = order_write.one_statement_available
        order_write.one_statement_available = lambda: False

    def __exit__(self, *exc):
        order_write.one_statement_available = self.real


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
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE bench_roundtrip (id bigserial PRIMARY KEY, payload text NOT NULL)")
    samples = []
    for n in range(count + 200):
        start = time.perf_counter()
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("INSERT INTO bench_roundtrip (payload) VALUES (%s)", [f"row {n}"])
        elapsed = time.perf_counter() - start
        if n >= 200:
            samples.append(elapsed)
    return samples


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
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--orm-orders", type=int, default=2_000)
    parser.add_argument("--gate", type=int, default=100_000)
    parser.add_argument("--no-settle", action="store_true", help="leave the startup heap in garbage collection")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("order_path needs PostgreSQL: set DATABASE_URL")
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        print(
            f"machine: {platform.machine()}, {os.cpu_count()} CPUs (shared with other work), "
            f"Python {platform.python_version()}"
        )
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            print(f"PostgreSQL {cursor.fetchone()[0]} on {connection.settings_dict['HOST']}; paper broker in process")
        instrument, account, broker, worker = setup_world()

        worker.execute(intent(account.pk, 1, T0))  # the first order also creates the position row
        with CaptureQueriesContext(connection) as queries, orm_writer():
            worker.execute(intent(account.pk, 2, T0))
        print(f"ORM writer: statements per filled order: {len(queries.captured_queries)} (BEGIN and COMMIT included)")
        print(
            f"one-statement writer: statements per filled order: {count_statements(worker, account)} "
            f"(plus one id reservation per {order_write.ID_BLOCK} orders)"
        )

        results = [
            summary("baseline: INSERT one row + COMMIT", bench_insert_commit(args.orders)),
            summary("baseline: paper broker send_order alone", bench_broker(broker, 2000)),
        ]
        frozen = 0 if args.no_settle else settle_heap()  # as run_execution_worker does after start
        load_before = os.getloadavg()
        commits_before = worker.stats.one_statement_commits
        with GcPauses() as collections:
            order_samples, cpu_samples = bench_order_path(worker, account, args.orders)
        assert worker.stats.one_statement_commits - commits_before == args.orders + 200, "an order left the path"
        results.append(summary("order path: intent -> persisted fill", order_samples))
        print(
            f"  of which CPU time in this process: mean {statistics.fmean(cpu_samples) * 1e3:.3f} ms "
            f"(the rest waits on PostgreSQL and on the other processes sharing the 2 cores); "
            f"load average before/after: {load_before[0]:.2f} / {os.getloadavg()[0]:.2f}"
        )
        print(
            f"  garbage collections meanwhile: {collections.report()}; startup heap "
            + (f"frozen ({frozen} objects)" if frozen else "not frozen (--no-settle)")
        )
        with orm_writer():
            orm_samples, orm_cpu = bench_order_path(worker, account, args.orm_orders, first=900_000)
        orm = summary("same through the ORM services (before)", orm_samples)
        print(f"  of which CPU time in this process: mean {statistics.fmean(orm_cpu) * 1e3:.3f} ms")
        gate_samples = bench_gate(worker, account, args.gate)
        results.append(summary(f"gate alone: context + {len(worker.gate.checks)} checks", gate_samples, unit="us"))
        print("  gate checks: " + ", ".join(c.name for c in worker.gate.checks))
        assert Order.objects.filter(status="FILLED").count() >= args.orders
        assert Execution.objects.count() >= args.orders
        base, path = results[0], results[2]
        print(
            f"ratio order path / INSERT+COMMIT: p50 {path['p50'] / base['p50']:.1f}x, "
            f"p99 {path['p99'] / base['p99']:.1f}x; ORM path / pipelined: p50 {orm['p50'] / path['p50']:.1f}x, "
            f"p99 {orm['p99'] / path['p99']:.1f}x"
        )
        print(
            f"targets: order path p99 < 5 ms -> {'met' if path['p99'] < 5 else 'NOT met'}; "
            f"gate p99 < 100 us -> {'met' if results[3]['p99'] < 100 else 'NOT met'}"
        )
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0, keepdb=False)


if __name__ == "__main__":
    main()
