"""manage.py run_execution_worker: the execution stage as a consumer-group member on the configured bus."""

from __future__ import annotations

import json
import signal

from django.core.management.base import BaseCommand

from tradeops.bus import get_bus
from tradeops.bus.runner import settle_heap, stage_run
from tradeops.core.clock import ReplayClock, WallClock
from tradeops.stages import stage_get
from workers.execution import ExecutionWorker, brokers_from_settings


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
        worker = ExecutionWorker(brokers=brokers_from_settings(ids, clock=clock), clock=clock).start()
        self.stdout.write(
            f"execution worker: accounts {sorted(worker.accounts)}; gate: "
            + ", ".join(c.name for c in worker.gate.checks)
        )
        if opts["reconcile_only"]:
            self.stdout.write(json.dumps(worker.status(), default=str, indent=2))
            return
        from tradeops.observability.server import metrics_serve

        metrics_serve(process="execution-worker")  # METRICS_PORT: order path, outcomes, kill switches
        frozen = settle_heap()
        self.stdout.write(f"execution worker: {frozen} startup objects frozen out of garbage collection")
        stop = {"requested": False}

        def request_stop(signum, frame):
            stop["requested"] = True

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        stats = stage_run(
            stage_get("execution"),
            bus=get_bus(opts["bus"] or None),
            handler=worker,
            group=opts["group"] or None,
            batch_size=opts["batch_size"],
            should_stop=lambda: stop["requested"],
            max_events=opts["max_events"],
            idle_exit=opts["idle_exit"],
        )
        self.stdout.write(
            f"execution worker stopped: consumed {stats.consumed}, dead-lettered {stats.dead_lettered}; "
            + json.dumps(worker.status()["stats"])
        )
