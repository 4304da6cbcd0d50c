"""manage.py replay: historical or synthetic market data through the collector and monitor onto the bus.

Examples::

    python manage.py replay                                   # real EURUSD H1 bars (backtesting package)
    python manage.py replay --dataset GOOG                    # real GOOG daily bars
    python manage.py replay --as-ticks --speed 3600           # derived ticks, one data hour per second
    python manage.py replay --source mt5-ticks --file EURUSD_ticks.csv --tz Europe/Athens --bus kafka
    python manage.py replay --source synthetic --count 100000 --seed 7
    python manage.py replay --source embedded --limit 300 --settle --bus kafka   # = the embedded run, on Kafka

``--source embedded`` is exactly what the embedded run replays (``workers.collector.embedded_source``:
the real EURUSD bars interleaved with their derived ticks; ``--limit`` in bars, as REPLAY_LIMIT).
``--settle`` back-pressures a Kafka replay: after each event it waits until every stage's consumer
group has handled everything and the outbox is drained (``tradeops.bus.settle``), so the stages,
each its own process, see the events in the order the embedded run does and none falls behind.

Bad rows in files and events the monitor quarantines go to ``--quarantine-file`` (JSON lines,
with line numbers and reasons); the summary names how many and why.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from datetime import timedelta
from decimal import Decimal
from itertools import islice
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from trading.marketdata.quarantine import FileFormatError, Quarantine
from trading.marketdata.sources import (
    BACKTESTING_DATASETS,
    DemoDataMissing,
    backtesting_bars,
    backtesting_path,
    bars_as_ticks,
    read_mt5_bars,
    read_mt5_ticks,
    synthetic_ticks,
)
from trading.seed_data import INSTRUMENTS
from workers.collector import Collector, collector_metrics, monitor_for

SOURCES = ("backtesting", "embedded", "mt5-bars", "mt5-ticks", "synthetic")
logger = logging.getLogger(__name__)


def _checkpoint(save, *args) -> None:
    """Move the replay checkpoint, riding out a database that went away (the primary restarting):
    the connection is closed and the next save opens a new one; a save missed meanwhile is made
    good by the next (or, for a run that ends then, by the audit trail's newest feature vector,
    which ``replay_plan`` reads too). The replay itself goes on: its events are on the bus."""
    from django.db import DatabaseError, connections

    try:
        save(*args)
    except DatabaseError as exc:
        logger.warning("replay: the checkpoint was not saved (%s); the next save tries again", exc)
        connections.close_all()


class Command(BaseCommand):
    help = "Replay market data (real bars, MT5 exports, synthetic) through the collector and monitor onto the bus"

    def add_arguments(self, parser):
        parser.add_argument("--source", choices=SOURCES, default="backtesting")
        parser.add_argument("--dataset", choices=sorted(BACKTESTING_DATASETS), default="EURUSD", help="backtesting")
        parser.add_argument("--file", default="", help="the MT5 export (mt5-bars, mt5-ticks)")
        parser.add_argument("--symbol", default="", help="symbol of an MT5 export or synthetic feed (default EURUSD)")
        parser.add_argument("--timeframe", default="H1", help="timeframe of an MT5 bar export")
        parser.add_argument("--tz", default="UTC", help="time zone of the MT5 export (server time), e.g. Europe/Athens")
        parser.add_argument("--as-ticks", action="store_true", help="bars as four derived ticks each")
        parser.add_argument("--spread-points", type=int, default=8, help="spread of derived ticks, in points")
        parser.add_argument("--count", type=int, default=100_000, help="synthetic ticks")
        parser.add_argument("--seed", type=int, default=0, help="synthetic seed")
        parser.add_argument("--speed", type=float, default=0.0, help="x real time; 0 = as fast as possible")
        parser.add_argument("--limit", type=int, default=0, help="stop after this many items (0 = all)")
        parser.add_argument("--bus", choices=["memory", "kafka"], default=None, help="default: settings.EVENT_BUS")
        parser.add_argument("--quarantine-file", default="var/quarantine/replay.jsonl")
        parser.add_argument(
            "--max-gap-minutes", type=float, default=0.0, help="tick gap threshold (default 2; 50 for derived ticks)"
        )
        parser.add_argument(
            "--settle",
            action="store_true",
            help="Kafka only: after each event wait until every stage has handled it and its consequences "
            "(back-pressure; the distributed run then equals the embedded run)",
        )
        parser.add_argument("--settle-stages", default="", help="stages to wait for (default: every registered stage)")
        parser.add_argument("--settle-timeout", type=float, default=120.0, help="seconds one event may take")
        parser.add_argument(
            "--from-start",
            action="store_true",
            help="--source embedded: replay from bar 1 (refused on a database an earlier replay wrote to). "
            "Without it the replay resumes after the last bar an earlier run replayed",
        )

    def handle(self, *args, **opts):
        from tradeops.bus import get_bus

        if opts["settle"] and (opts["bus"] or settings.EVENT_BUS) != "kafka":
            raise CommandError("--settle is for a replay onto Kafka (--bus kafka)")
        if opts["source"] == "embedded":
            return self._embedded(opts)
        if opts["settle"]:
            raise CommandError("--settle replays --source embedded (what the embedded run replays)")
        quarantine = Quarantine(opts["quarantine_file"] or None)
        items, symbol, derived = self._items(opts, quarantine)
        if opts["limit"]:
            items = islice(items, opts["limit"])
        gap = opts["max_gap_minutes"] or (50 if derived else 2)
        backend = opts["bus"] or settings.EVENT_BUS
        bus = get_bus(backend)
        collector = Collector(
            publish=bus, monitor=monitor_for([symbol], max_gap=timedelta(minutes=gap)), quarantine=quarantine
        )
        collector_metrics(collector, process="collector")  # METRICS_PORT: counts by outcome
        self.stdout.write(f"replaying {opts['source']} {symbol} onto the {backend} bus")
        try:
            stats = collector.run(items, speed=opts["speed"] or None)
        except (FileFormatError, FileNotFoundError, IsADirectoryError) as exc:
            raise CommandError(str(exc)) from None
        finally:
            pending = bus.flush(30)
            quarantine.close()
        self.stdout.write(f"collector: {stats.summary()}")
        if pending:
            self.stderr.write(f"{pending} events were not acknowledged by the bus within 30s")
        self.stdout.write(f"quarantine: {quarantine.summary()}" + (f" -> {quarantine.path}" if len(quarantine) else ""))
        for row in list(quarantine)[:10]:
            self.stdout.write(f"  {row}")

    def _embedded(self, opts) -> None:
        """The embedded run's source onto the bus, one event at a time, settled with ``--settle``.

        It resumes as ``run_embedded`` does (``workers.replay_checkpoint``): after the last bar an
        earlier replay into this database got to, so a second ``cluster.sh replay`` carries market
        time forward instead of sending the stages bars they already handled (until 2026-12-06,
        wip/walk50, it started from bar 1 every time and added nothing). The checkpoint moves as
        bars are handled: settled, once every stage has handled the bar and what it caused; flat
        out, once the bus acknowledged it (its stages read it from there)."""
        import os

        from tradeops.bus import get_bus
        from tradeops.stages import stage_get, stages_wired
        from workers.collector import embedded_source, replay_limit
        from workers.replay_checkpoint import ReplayCheckpointer, ReplayRefused, replay_plan

        if opts["quarantine_file"]:
            os.environ["REPLAY_QUARANTINE"] = opts["quarantine_file"]
        try:
            # --limit, else REPLAY_LIMIT (as the embedded run reads it), else every bar left
            plan = replay_plan(from_start=opts["from_start"], limit=opts["limit"] or replay_limit())
        except ReplayRefused as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(plan.describe(serving=False))
        if plan.complete:
            return
        backend = opts["bus"] or settings.EVENT_BUS
        bus = get_bus(backend)
        settle = None
        if opts["settle"]:
            from tradeops.bus.settle import PipelineSettle, SettleTimeout

            try:
                names = [n.strip() for n in opts["settle_stages"].split(",") if n.strip()]
                stages = [stage_get(n) for n in names] if names else stages_wired()
                settle = PipelineSettle(bus, stages, timeout=opts["settle_timeout"])
                settle.members_wait()
            except (KeyError, SettleTimeout) as exc:
                raise CommandError(str(exc.args[0])) from None
        # Settled, a bar is handled once settle.wait() returns; flat out, once the bus has it.
        checkpointer = ReplayCheckpointer(plan, lag=0.0 if settle is not None else 2.0)
        how = ", settled after each event" if settle else ""
        self.stdout.write(f"replaying the embedded run's source onto the {backend} bus{how}")
        self.stdout.flush()
        published = 0
        per_topic: Counter[str] = Counter()
        started = time.monotonic()
        failed = True
        try:
            for event in embedded_source(limit=plan.todo, after=plan.after, dataset=plan.read):
                bus.publish(event)
                published += 1
                per_topic[event.topic] += 1
                if settle is not None:
                    if bus.flush(30):
                        raise CommandError("the bus did not acknowledge an event within 30 s")
                    try:
                        settle.wait()
                    except SettleTimeout as exc:
                        raise CommandError(f"after event {published} ({event.type} {event.key}): {exc}") from None
                _checkpoint(checkpointer.on_event, event)
            failed = False
        finally:
            pending = bus.flush(30)
            _checkpoint(lambda: checkpointer.finish(failed=failed or bool(pending)))
        seconds = time.monotonic() - started
        topics = ", ".join(f"{topic} {n}" for topic, n in sorted(per_topic.items()))
        line = f"published {published} events in {seconds:.1f} s ({topics})"
        if settle is not None and settle.waits:
            line += f"; settled after each (mean {1000 * settle.seconds / settle.waits:.0f} ms)"
        self.stdout.write(line)
        if pending:
            raise CommandError(f"{pending} events were not acknowledged by the bus within 30 s")

    def _items(self, opts, quarantine: Quarantine):
        source = opts["source"]
        symbol = opts["symbol"] or "EURUSD"
        spec = next((row for row in INSTRUMENTS if row["symbol"] == symbol), None)
        point = spec["tick_size"] if spec else Decimal("0.00001")
        try:
            tz = ZoneInfo(opts["tz"])
        except (ZoneInfoNotFoundError, ValueError):
            raise CommandError(f"--tz {opts['tz']!r} is not a known time zone") from None
        if source == "backtesting":
            symbol = BACKTESTING_DATASETS[opts["dataset"]][1]
            try:
                backtesting_path(opts["dataset"])
            except DemoDataMissing as exc:
                raise CommandError(str(exc)) from None
            bars = backtesting_bars(opts["dataset"], quarantine=quarantine)
            if opts["as_ticks"]:
                return bars_as_ticks(bars, spread=point * opts["spread_points"]), symbol, True
            return bars, symbol, False
        if source == "synthetic":
            hours = spec["trading_hours"] if spec else None
            return synthetic_ticks(symbol, seed=opts["seed"], count=opts["count"], trading_hours=hours), symbol, False
        if not opts["file"]:
            raise CommandError(f"--source {source} needs --file")
        if source == "mt5-bars":
            bars = read_mt5_bars(
                opts["file"], symbol=symbol, timeframe=opts["timeframe"], point=point, tz=tz, quarantine=quarantine
            )
            if opts["as_ticks"]:
                return bars_as_ticks(bars, spread=point * opts["spread_points"]), symbol, True
            return bars, symbol, False
        return read_mt5_ticks(opts["file"], symbol=symbol, tz=tz, quarantine=quarantine), symbol, False
