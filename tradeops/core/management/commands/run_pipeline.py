"""manage.py run_pipeline: every registered stage in one process on the memory bus."""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError
from django.utils.module_loading import import_string

from tradeops.bus.memory import MemoryBus
from tradeops.bus.runner import EMBEDDED_SINK_SECONDS, pipeline_run, stop_on_signals
from tradeops.events import EventDecodeError, decode
from tradeops.stages import stage_get, stages_wired


def events_from_lines(lines, *, errors: list[str]):
    """Decode JSON-lines envelopes; a bad line is reported and skipped, never fatal."""
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line:
            continue
        try:
            yield decode(line.encode() if isinstance(line, str) else line)
        except EventDecodeError as exc:
            errors.append(f"line {number}: {exc}")


class Command(BaseCommand):
    help = "Run all stages (or --stages) in one process on the memory bus, fed by a source."

    def add_arguments(self, parser):
        parser.add_argument(
            "--stages", default="", help="comma-separated stage names (default: all registered and switched on)"
        )
        parser.add_argument("--source", default="", help="dotted path to a callable returning an iterable of events")
        parser.add_argument("--events-file", default="", help="JSON-lines envelopes ('-' for stdin)")
        parser.add_argument("--with-outbox", action="store_true", help="relay the outbox into the same bus")
        parser.add_argument("--follow", action="store_true", help="keep running after the source ends")
        parser.add_argument("--batch-size", type=int, default=1000)
        parser.add_argument(
            "--clock",
            choices=("auto", "replay", "wall"),
            default="auto",
            help="event time for the execution stage: the replayed market time or the wall clock "
            "(auto: the replay clock when --source or --events-file feeds the run)",
        )

    def handle(self, *args, **opts):
        try:
            stages = [stage_get(n.strip()) for n in opts["stages"].split(",") if n.strip()] or stages_wired()
        except KeyError as exc:
            raise CommandError(str(exc.args[0])) from None
        errors: list[str] = []
        if opts["source"]:
            source = import_string(opts["source"])()
        elif opts["events_file"] == "-":
            source = events_from_lines(sys.stdin, errors=errors)
        elif opts["events_file"]:
            source = events_from_lines(open(opts["events_file"], encoding="utf-8"), errors=errors)  # noqa: SIM115
        else:
            source = ()
        bus = MemoryBus()  # one pipeline run, one bus: nothing left over from earlier in the process
        handlers = {}
        if any(s.name == "execution" for s in stages):
            from tradeops.core.clock import ReplayClock, WallClock
            from workers.execution import execution_stage

            replay = opts["clock"] == "replay" or (opts["clock"] == "auto" and (opts["source"] or opts["events_file"]))
            handlers["execution"] = execution_stage(clock=ReplayClock() if replay else WallClock())
        from tradeops.observability.server import metrics_serve

        metrics_serve(process="pipeline")
        relay = None
        if opts["with_outbox"]:
            from tradeops.outbox.relay import OutboxRelay

            relay = OutboxRelay(bus=bus, prune_every=3600)
        names = ", ".join(s.name for s in stages) or "no stages registered"
        self.stdout.write(f"pipeline: {names} on the memory bus")
        with stop_on_signals() as should_stop:
            result = pipeline_run(
                source,
                stages=stages,
                handlers=handlers,
                bus=bus,
                batch_size=opts["batch_size"],
                relay=relay,
                follow=opts["follow"],
                should_stop=should_stop,
                settle=True,
                sink_seconds=EMBEDDED_SINK_SECONDS,
            )
        for line in errors[:20]:
            self.stderr.write(f"skipped {line}")
        self.stdout.write(
            f"pipeline done in {result.seconds:.2f}s: {result.source_events} source events, "
            f"{result.outbox_events} outbox events, {result.dead_letters} dead letters, {len(errors)} bad lines"
        )
        for name, stats in result.stages.items():
            self.stdout.write(
                f"  {name}: consumed {stats.consumed}, produced {stats.produced}, "
                f"to the outbox {stats.outboxed_total()}, "
                f"duplicates {stats.duplicates}, dead-lettered {stats.dead_lettered}"
            )
