"""manage.py replay: historical or synthetic market data through the collector and monitor onto the bus.

Examples::

    python manage.py replay                                   # real EURUSD H1 bars (backtesting package)
    python manage.py replay --dataset GOOG                    # real GOOG daily bars
    python manage.py replay --as-ticks --speed 3600           # derived ticks, one data hour per second
    python manage.py replay --source mt5-ticks --file EURUSD_ticks.csv --tz Europe/Athens --bus kafka
    python manage.py replay --source synthetic --count 100000 --seed 7
    python manage.py replay --source embedded --limit 300 --bus kafka   # the embedded run's feed, on the bus

Bad rows in files and events the monitor quarantines go to ``--quarantine-file`` (JSON lines,
with line numbers and reasons); the summary names how many and why.
"""

from __future__ import annotations

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

    def handle(self, *args, **opts):
        from tradeops.bus import get_bus

        if opts["source"] == "embedded":
            return self._embedded(opts)
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

    def _embedded(self, opts):
        """The embedded run's feed (real EURUSD bars and their derived ticks, through the collector
        and monitor: workers.collector.embedded_source) published to the bus: what the stages of a
        distributed deployment consume (scripts/cluster.sh replay). ``--limit`` counts bars."""
        from tradeops.bus import get_bus
        from workers.collector import embedded_source

        backend = opts["bus"] or settings.EVENT_BUS
        bus = get_bus(backend)
        per_topic: Counter[str] = Counter()
        self.stdout.write(f"replaying the embedded feed onto the {backend} bus")
        try:
            for event in embedded_source(limit=opts["limit"] or None, quarantine_file=opts["quarantine_file"]):
                bus.publish(event)
                per_topic[event.topic] += 1
        finally:
            pending = bus.flush(60)
        topics = ", ".join(f"{topic} {n}" for topic, n in sorted(per_topic.items()))
        self.stdout.write(f"published {per_topic.total()} events ({topics})")
        if pending:
            raise CommandError(f"{pending} events were not acknowledged by the bus within 60s")

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
