"""manage.py run_execution_worker: the execution stage as a consumer-group member on the configured bus.

One worker per account: it takes each account's lock first (``execution_account_locks``). If
another worker holds one, it says which and exits with status 3, or with ``--wait`` stands by
until the other stops (a hot standby). A database that cannot be reached at start is waited for
(back-off); outages later are ridden out by the stage runner (``tradeops.bus.runner``)."""

from __future__ import annotations

import json
import signal

from django.core.management.base import BaseCommand, CommandError

from tradeops.bus import get_bus
from tradeops.bus.runner import infrastructure_retry, settle_heap, stage_run
from tradeops.core.clock import ReplayClock, WallClock
from tradeops.core.locks import LockHeld
from tradeops.stages import stage_get
from workers.execution import ExecutionWorker, brokers_from_settings, execution_account_locks

EXIT_ACCOUNT_LOCKED = 3  # another execution worker trades one of the accounts


class Command(BaseCommand):
    help = (
        "Consume prediction-events (and market data, kill switch and limit changes) and trade them: "
        "strategy -> pre-trade gate -> broker -> one DB transaction per order. Reconciles with the broker first."
    )

    def add_arguments(self, parser):
        parser.add_argument("--accounts", default="", help="comma-separated account ids (default: EXECUTION_ACCOUNTS)")
        parser.add_argument("--bus", default="", help="memory or kafka (default: EVENT_BUS)")
        parser.add_argument("--group", default="", help="consumer group (default: execution-worker)")
        parser.add_argument("--max-events", type=int, default=None, help="stop after this many events")
        parser.add_argument("--idle-exit", type=float, default=None, help="stop after this many idle seconds")
        parser.add_argument("--batch-size", type=int, default=100)
        parser.add_argument("--reconcile-only", action="store_true", help="reconcile with the broker and exit")
        parser.add_argument(
            "--wait",
            action="store_true",
            help="if another execution worker trades one of the accounts, stand by until it stops "
            f"(default: exit with status {EXIT_ACCOUNT_LOCKED})",
        )
        parser.add_argument(
            "--clock",
            choices=("wall", "replay"),
            default="wall",
            help="event time: the wall clock (live trading) or the market time of the events consumed "
            "(a replay on the bus: its orders and fills carry the replayed time)",
        )

    def handle(self, *args, **opts):
        from django.conf import settings

        ids = [int(a) for a in (opts["accounts"] or ",".join(map(str, settings.EXECUTION_ACCOUNTS))).split(",") if a]
        clock = ReplayClock() if opts["clock"] == "replay" else WallClock()
        stop = {"requested": False}

        def request_stop(signum, frame):
            stop["requested"] = True

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        should_stop = lambda: stop["requested"]  # noqa: E731
        brokers = infrastructure_retry(
            lambda: brokers_from_settings(ids, clock=clock),
            what="execution worker: loading accounts",
            should_stop=should_stop,
        )
        if brokers is None:
            return
        try:
            locks = execution_account_locks(
                brokers, wait=opts["wait"], on_wait=lambda message: self.stderr.write(f"execution worker: {message}")
            )
        except LockHeld as exc:
            raise CommandError(
                f"execution worker: {exc}. One execution worker per account: this one exits. "
                "Stop the other one first, or start this one with --wait to stand by until it stops.",
                returncode=EXIT_ACCOUNT_LOCKED,
            ) from None
        worker = ExecutionWorker(brokers=brokers, clock=clock, locks=locks)
        try:
            started = infrastructure_retry(worker.start, what="execution worker: start-up", should_stop=should_stop)
        except BaseException:
            worker.close()
            raise
        if started is None:
            worker.close()
            return
        self.stdout.write(
            f"execution worker: accounts {sorted(worker.accounts)}; gate: "
            + ", ".join(c.name for c in worker.gate.checks)
        )
        self.stdout.flush()
        if opts["reconcile_only"]:
            self.stdout.write(json.dumps(worker.status(), default=str, indent=2))
            worker.close()
            return
        from tradeops.observability.server import metrics_serve

        metrics_serve(process="execution-worker")  # METRICS_PORT: order path, outcomes, kill switches
        frozen = settle_heap()
        self.stdout.write(f"execution worker: {frozen} startup objects frozen out of garbage collection")
        stats = stage_run(
            stage_get("execution"),
            bus=get_bus(opts["bus"] or None),
            handler=worker,
            group=opts["group"] or None,
            batch_size=opts["batch_size"],
            should_stop=should_stop,
            max_events=opts["max_events"],
            idle_exit=opts["idle_exit"],
        )
        self.stdout.write(
            f"execution worker stopped: consumed {stats.consumed}, dead-lettered {stats.dead_lettered}; "
            + json.dumps(worker.status()["stats"])
        )
