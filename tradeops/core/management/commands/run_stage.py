"""manage.py run_stage NAME: one pipeline stage as a consumer-group member on the configured bus."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from tradeops.bus import get_bus
from tradeops.bus.runner import handler_load, infrastructure_retry, stage_run, stop_on_signals
from tradeops.core.locks import LockHeld
from tradeops.observability.server import metrics_serve
from tradeops.stages import STAGES, stage_enabled, stage_get

EXIT_LOCKED = 3  # the stage needs a lock another process holds (the execution stage: an account)


class Command(BaseCommand):
    help = "Run one registered stage (tradeops.stages.STAGES) on the bus that EVENT_BUS selects."

    def add_arguments(self, parser):
        parser.add_argument("name", nargs="?", help="stage name; omit with --list")
        parser.add_argument("--list", action="store_true", help="list the registered stages")
        parser.add_argument("--bus", choices=["memory", "kafka"], default=None, help="default: EVENT_BUS")
        parser.add_argument("--group", default=None, help="consumer group (default: the stage's)")
        parser.add_argument("--batch-size", type=int, default=1000)
        parser.add_argument("--max-events", type=int, default=None, help="stop after this many inputs")
        parser.add_argument("--idle-exit", type=float, default=None, help="stop after this many idle seconds")

    def handle(self, *args, **opts):
        if opts["list"] or not opts["name"]:
            for stage in STAGES:
                off = "" if stage_enabled(stage) else f"  (off: {stage.enabled_by})"
                self.stdout.write(f"{stage.name:24} {','.join(stage.consumes):40} group={stage.group}{off}")
            if not STAGES:
                self.stdout.write("no stages registered yet (tradeops/stages.py)")
            return
        try:
            stage = stage_get(opts["name"])
        except KeyError as exc:
            raise CommandError(str(exc.args[0])) from None
        if not stage_enabled(stage):
            raise CommandError(
                f"stage {stage.name} is switched off ({stage.enabled_by} is false): "
                "turn the setting on or do not run this process"
            )
        bus = get_bus(opts["bus"])
        metrics_serve(process=f"stage-{stage.name}")
        self.stdout.write(f"stage {stage.name}: consuming {', '.join(stage.consumes)} on the {bus.name} bus")
        self.stdout.flush()
        with stop_on_signals() as should_stop:
            # Building the handler may need the database (models, surveillance state, the
            # execution worker's hot state): wait for it rather than exit.
            try:
                handler = infrastructure_retry(
                    lambda: self._handler(stage), what=f"stage {stage.name}: start-up", should_stop=should_stop
                )
            except LockHeld as exc:
                raise CommandError(f"stage {stage.name}: {exc}; exiting", returncode=EXIT_LOCKED) from None
            if handler is None:
                return
            stats = stage_run(
                stage,
                handler=handler,
                bus=bus,
                group=opts["group"],
                batch_size=opts["batch_size"],
                should_stop=should_stop,
                max_events=opts["max_events"],
                idle_exit=opts["idle_exit"],
            )
        bus.close()
        self.stdout.write(
            f"stage {stage.name} stopped: consumed {stats.consumed}, produced {stats.produced}, "
            f"to the outbox {stats.outboxed_total()}, "
            f"duplicates {stats.duplicates}, dead-lettered {stats.dead_lettered + stats.dead_lettered_on_decode} "
            f"({stats.dead_lettered_on_decode} on decode, {stats.dead_lettered} by the handler)"
        )

    def _handler(self, stage):
        """The stage's handler, warmed (``Stage.warm``) from the system of record when it says how."""
        handler = handler_load(stage)
        if stage.warm:
            from django.utils.module_loading import import_string

            said = import_string(stage.warm)(handler)
            if said:
                self.stdout.write(f"stage {stage.name}: {said}")
                self.stdout.flush()
        return handler
