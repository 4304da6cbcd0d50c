"""manage.py run_embedded: the whole pipeline and the web app in one process.

The embedded shape (ARCHITECTURE.md): SQLite, the memory bus, the in-memory channel layer and
the paper broker. The pipeline (every registered stage, fed by the real-data replay, with the
outbox relayed into the same bus) runs in a background thread; Daphne serves HTTP and the live
WebSockets on the main thread, and the live-push stage hands events to the server's loop.

A source that takes ``after`` (the default, ``workers.collector.embedded_source``) resumes after
the last bar an earlier run replayed (``workers.replay_checkpoint``), so a second run carries
market time forward; ``--from-start`` (``REPLAY_FROM_START=1``) asks for bar 1 and is refused on
a database that holds later market time. With every bar replayed already, the run says so and
serves the dashboard. The dataset is read once, by the replay plan; the features' warm-up and a
source that takes ``dataset`` (the default does) replay the plan's bars (until 2026-12-06 a resumed
run parsed the file three times before its first event).
"""

from __future__ import annotations

import asyncio
import inspect
import os
import threading

from django.core.management.base import BaseCommand, CommandError
from django.utils.module_loading import import_string

from tradeops.bus.memory import MemoryBus
from tradeops.bus.runner import EMBEDDED_SINK_SECONDS, pipeline_run


class Command(BaseCommand):
    help = "Replay real market data through every stage and serve the dashboard (embedded shape)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument(
            "--source",
            default="workers.collector.embedded_source",
            help="dotted path to a callable returning the market-data events to replay",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=1,
            help="source events per pump; 1 = lock-step, so each signal is acted on before the next quote",
        )
        parser.add_argument("--no-serve", action="store_true", help="run the pipeline to the end and exit")
        parser.add_argument(
            "--from-start",
            action="store_true",
            default=os.environ.get("REPLAY_FROM_START", "") not in ("", "0"),
            help="replay from bar 1 (also REPLAY_FROM_START=1); refused on a database that holds later "
            "market time. Without it the run resumes after the last bar an earlier run replayed",
        )
        parser.add_argument(
            "--clock",
            choices=("replay", "wall"),
            default="replay",
            help="event time: the replayed market time (a replay source, the default) "
            "or the wall clock (a live source)",
        )

    def handle(self, *args, **opts):
        stop = threading.Event()
        done = threading.Event()
        self.result = None
        source_factory = import_string(opts["source"])
        plan = checkpointer = None
        if "after" in inspect.signature(source_factory).parameters:  # a replay that can resume
            from workers.collector import replay_limit
            from workers.replay_checkpoint import ReplayCheckpointer, ReplayRefused, features_warmed, replay_plan

            try:
                plan = replay_plan(from_start=opts["from_start"], limit=replay_limit())
            except ReplayRefused as exc:
                raise CommandError(str(exc)) from None
            self.stdout.write(plan.describe(serving=not opts["no_serve"]))
            checkpointer = ReplayCheckpointer(plan)
        replaying = plan is None or not plan.complete

        def watch_anomalies() -> None:  # the embedded run's own series (one process, one registry)
            from django.conf import settings
            from django.db import connections

            from tradeops.observability.anomaly import AnomalyMonitor

            try:
                AnomalyMonitor().run(interval=settings.ANOMALY_INTERVAL, should_stop=stop.is_set)
            finally:
                connections.close_all()  # this thread's (an alert it raises is written): none left open

        anomalies = threading.Thread(target=watch_anomalies, name="anomaly-detector", daemon=True)
        anomalies.start()

        def run_pipeline(loop=None) -> None:
            from tradeops.core.clock import ReplayClock, WallClock
            from tradeops.outbox.relay import OutboxRelay
            from workers.execution import execution_stage
            from workers.live_push import LivePush

            bus = MemoryBus()  # one pipeline run, one bus: nothing left over from earlier in the process
            # A replay source means the replay clock: the records of a replay carry its market time.
            clock = ReplayClock() if opts["clock"] == "replay" else WallClock()
            handlers = {"execution": execution_stage(clock=clock)}
            if plan is not None and (features := features_warmed(plan)) is not None:
                handlers["ml-features"] = features  # a resumed run starts with the features it left
            if loop is not None:
                handlers["live-push"] = LivePush(loop=loop)
            if plan is None:
                source = source_factory()
            else:  # the bars the plan read, when the source takes them: the file is read once
                shares = plan.read is not None and "dataset" in inspect.signature(source_factory).parameters
                extra = {"dataset": plan.read} if shares else {}
                source = checkpointer.source(source_factory(after=plan.after, **extra))
            failed = False
            try:
                self.result = pipeline_run(
                    source,
                    bus=bus,
                    handlers=handlers,
                    batch_size=opts["batch_size"],
                    relay=OutboxRelay(bus=bus, prune_every=3600),
                    on_event=checkpointer.on_event if checkpointer is not None else None,
                    follow=loop is not None,
                    should_stop=stop.is_set,
                    settle=True,
                    sink_seconds=EMBEDDED_SINK_SECONDS,
                )
                self.stdout.write(self.style.SUCCESS(f"pipeline: {self._summary()}"))
            except Exception as exc:  # the server keeps serving what was recorded
                failed = True
                self.stderr.write(f"pipeline stopped: {exc!r}")
                raise
            finally:
                try:
                    if checkpointer is not None:
                        checkpointer.finish(failed=failed)
                finally:
                    done.set()

        if opts["no_serve"]:
            try:
                if replaying:
                    run_pipeline()
            finally:
                stop.set()  # the anomaly detector's thread too: it checks twice a second
                anomalies.join(timeout=2)
            return

        from daphne.server import Server

        from tradeops.asgi import application

        def on_ready() -> None:
            if replaying:
                loop = asyncio.get_event_loop()
                threading.Thread(target=run_pipeline, kwargs={"loop": loop}, name="pipeline", daemon=True).start()
            else:
                done.set()  # nothing to replay: the dashboard serves what earlier runs recorded
            self.stdout.write(
                f"serving http://{opts['host']}:{opts['port']}/  (sign in at /login/; console: /console/, "
                "compliance desk: /compliance/, API: /api/v1/, admin: /admin/)"
                + ("; replaying real EURUSD bars through the pipeline" if replaying else "")
            )

        server = Server(
            application=application,
            endpoints=[f"tcp:port={opts['port']}:interface={opts['host']}"],
            ready_callable=on_ready,
            signal_handlers=True,
        )
        try:
            server.run()
        finally:
            stop.set()
            done.wait(timeout=10)

    def _summary(self) -> str:
        if self.result is None:
            return "no result"
        return str(self.result)
