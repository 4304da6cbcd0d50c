"""Where one order's client CPU goes: thread CPU per phase of ``ExecutionWorker.execute``.

    python bench/order_path_phases.py [--orders 2000] [--cprofile FILE]

In ``bench/order_path.py``'s world (its database set-up, worker, paper broker and orders; a
throwaway database, ``BENCH_DATABASE_NAME``): after warm-up orders and ``settle_heap``, the
orders run once bare (this thread's CPU per order), then again with each function of ``PHASES``
wrapped by a ``time.thread_time`` timer: per order, its calls, its inclusive CPU and its own
("self": inclusive less the wrapped functions it called). A wrapper costs ~2-3 us per call
(compare the bare and the timed CPU per order), which the small functions' figures carry.
``--cprofile FILE``: a third pass under cProfile with the thread's CPU clock, its stats dumped
to FILE (call counts and structure; cProfile's cost is per call, so it over-weights small
functions several-fold). Last, the order and fill tables' indexes with the scans the run made.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("BENCH_DATABASE_NAME", "test_tradeops_bench_phases")

import order_path as bench
from django.db import connection

from tradeops.bus.runner import settle_heap
from tradeops.core.db_roles import database_owner, runtime_grants_apply

# module:function or module:Class.method; a function is replaced wherever it was imported by name.
PHASES = [
    "workers.execution:ExecutionWorker.execute",
    "workers.execution:ExecutionWorker._commit",
    "workers.execution:ExecutionWorker._send",
    "workers.execution:ExecutionWorker._book_fills",
    "workers.execution:ExecutionWorker._feed_gate",
    "workers.execution:ExecutionWorker._after_commit",
    "workers.execution:ExecutionWorker._figures",
    "workers.execution:make_event",
    "workers.execution:outcome_of",
    "trading.gate:PreTradeGate.evaluate",
    "trading.gate:PreTradeGate.on_sent",
    "trading.gate:PreTradeGate.on_event",
    "trading.risk.manager:RiskManager.context",
    "trading.risk.manager:RiskManager.on_order_sent",
    "trading.risk.manager:RiskManager.on_fill",
    "trading.brokers.paper:PaperBroker.send_order",
    "tradeops.observability.orderpath:OrderPathMeter.order_done",
    "trading.orders.services:order_commit",
    "trading.orders.plan:OrderPlan.new",
    "trading.orders.plan:OrderPlan.transition",
    "trading.orders.plan:OrderPlan.fill",
    "trading.orders.plan:OrderPlan.apply_positions",
    "trading.orders.plan:OrderPlan.records",
    "trading.orders.plan:check_order_terms",
    "trading.orders.plan:model_new",
    "trading.orders.plan:as_stored",
    "trading.orders.plan:order_snapshot",
    "trading.orders.plan:order_step_payload",
    "trading.orders.plan:execution_snapshot",
    "trading.orders.plan:position_snapshot",
    "trading.orders.plan:execution_new",
    "trading.orders.records:action_event",
    "trading.orders.records:recorded_event_id",
    "trading.orders.records:canonical_bytes",
    "trading.orders.records:object_label",
    "trading.orders.records:AuditEntry.__init__",
    "trading.orders.marks:AccountState.written",
    "trading.orders.write:plan_write",
    "trading.orders.write:_write_one_statement",
    "trading.orders.write:_reserve",
    "trading.orders.write:outbox_rows",
    "trading.orders.write:audit_server_rows",
    "trading.orders.write:_row",
    "trading.orders.write:_execute",
    "trading.orders.write:Batch.execute",
    "trading.orders.write:Batch.sync",
    "trading.orders.write:audit_appends_count",
    "trading.orders.write:audit_index_on_commit",
    "trading.orders.write:outbox_written",
    "tradeops.outbox.services:_row_values",
    "tradeops.outbox.services:traceparent_new",
    "tradeops.outbox.services:encode",
    "django.db.transaction:on_commit",
]


class Timers:
    def __init__(self) -> None:
        self.inclusive: dict[str, float] = {}
        self.own: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self._stack: list[float] = []

    def wrap(self, name: str, function):
        @functools.wraps(function)
        def timed(*args, **kwargs):
            self._stack.append(0.0)
            start = time.thread_time()
            try:
                return function(*args, **kwargs)
            finally:
                elapsed = time.thread_time() - start
                inner = self._stack.pop()
                self.inclusive[name] = self.inclusive.get(name, 0.0) + elapsed
                self.own[name] = self.own.get(name, 0.0) + elapsed - inner
                self.calls[name] = self.calls.get(name, 0) + 1
                if self._stack:
                    self._stack[-1] += elapsed

        return timed

    def install(self) -> None:
        for phase in PHASES:
            module_name, path = phase.split(":")
            module = importlib.import_module(module_name)
            if "." in path:
                cls_name, attr = path.split(".")
                cls = getattr(module, cls_name)
                raw = cls.__dict__[attr]
                kind = type(raw) if isinstance(raw, classmethod | staticmethod) else None
                function = raw.__func__ if kind else raw
                timed = self.wrap(path, function)
                setattr(cls, attr, kind(timed) if kind else timed)
                continue
            function = getattr(module, path)
            timed = self.wrap(path, function)
            for other in list(sys.modules.values()):
                namespace = getattr(other, "__dict__", None)
                if not isinstance(namespace, dict):
                    continue
                for key, value in list(namespace.items()):
                    if value is function:
                        setattr(other, key, timed)

    def clear(self) -> None:
        self.inclusive.clear()
        self.own.clear()
        self.calls.clear()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--cprofile", help="also profile a pass with cProfile (thread CPU clock), stats to this file")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("order_path_phases needs PostgreSQL: set DATABASE_URL")
    orders = args.orders
    old_name = connection.settings_dict["NAME"]
    with database_owner():
        connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
        runtime_grants_apply()
    try:
        _instrument, account, _broker, worker = bench.setup_world()
        worker.execute(bench.intent(account.pk, 1, bench.T0))  # creates the position row
        bench.bench_order_path(worker, account, 300, first=100_000, warm=0)
        settle_heap()
        load = os.getloadavg()[0]
        start = time.thread_time()
        bench.bench_order_path(worker, account, orders, first=200_000, warm=0)
        bare = (time.thread_time() - start) / orders * 1e6
        if args.cprofile:
            import cProfile

            profile = cProfile.Profile(time.thread_time)
            profile.enable()
            bench.bench_order_path(worker, account, orders, first=300_000, warm=0)
            profile.disable()
            profile.dump_stats(args.cprofile)
        timers = Timers()
        timers.install()
        bench.bench_order_path(worker, account, 200, first=400_000, warm=0)
        timers.clear()
        start = time.thread_time()
        bench.bench_order_path(worker, account, orders, first=500_000, warm=0)
        timed = (time.thread_time() - start) / orders * 1e6
        print(
            f"{orders} orders, thread CPU per order: bare {bare:.0f} us, with the timers {timed:.0f} us "
            f"(load average {load:.2f} -> {os.getloadavg()[0]:.2f})"
        )
        print(f"{'phase':<40} {'calls/order':>11} {'incl. us':>9} {'self us':>8}")
        for phase in PHASES:
            name = phase.split(":")[1]
            if name in timers.calls:
                print(
                    f"{name:<40} {timers.calls[name] / orders:>11.1f} {timers.inclusive[name] / orders * 1e6:>9.1f} "
                    f"{timers.own[name] / orders * 1e6:>8.1f}"
                )
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT relname, indexrelname, idx_scan FROM pg_stat_user_indexes "
                "WHERE relname IN ('trading_order', 'trading_execution') ORDER BY 1, 2"
            )
            for table, index, scans in cursor.fetchall():
                print(f"index {table}.{index}: {scans} scans")
    finally:
        with database_owner():
            connection.creation.destroy_test_db(old_name, verbosity=0, keepdb=False)


if __name__ == "__main__":
    main()
