"""manage.py collect: the live collector. Polls the broker's latest ticks (MT5 has no push API),
runs them through the collector and market monitor, and publishes to market-data-events.

    BROKER=mt5 EVENT_BUS=kafka python manage.py collect --symbols EURUSD,GBPUSD,USDJPY

Runs until SIGINT/SIGTERM (or ``--duration`` seconds). Quotes received more than
``--max-latency-ms`` after the server stamped them are flagged ``stale``. A lost terminal does
not stop it: a ``market_data.feed_down`` alert goes to compliance-events, the broker's breaker
paces the reconnects, and ``market_data.feed_restored`` follows when quotes come back.
"""

from __future__ import annotations

import signal
import time
from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from tradeops.core.clock import utcnow
from tradeops.observability.metrics import heartbeat
from trading.brokers import BrokerError, get_broker
from trading.marketdata.quarantine import Quarantine
from workers.collector import Collector, collector_metrics, live_quotes, monitor_for, outage_alert


class Command(BaseCommand):
    help = "Collect live ticks from the broker through the market monitor onto the bus."

    def add_arguments(self, parser):
        parser.add_argument("--broker", choices=["mt5", "paper"], default=None, help="default: settings.BROKER")
        parser.add_argument("--symbols", default="EURUSD", help="comma-separated")
        parser.add_argument("--interval", type=float, default=0.1, help="seconds between polls")
        parser.add_argument("--max-latency-ms", type=float, default=2000.0, help="flag quotes older than this")
        parser.add_argument("--bus", choices=["memory", "kafka"], default=None, help="default: settings.EVENT_BUS")
        parser.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds (0 = never)")
        parser.add_argument("--quarantine-file", default="var/quarantine/collect.jsonl")

    def handle(self, *args, **opts):
        from tradeops.bus import get_bus

        symbols = [s.strip() for s in opts["symbols"].split(",") if s.strip()]
        if not symbols:
            raise CommandError("--symbols names no symbol")
        try:
            broker = get_broker(opts["broker"])
            broker.connect()
            for symbol in symbols:
                broker.symbol_spec(symbol)
        except BrokerError as exc:
            raise CommandError(f"{exc.code}: {exc}") from None
        bus = get_bus(opts["bus"] or settings.EVENT_BUS)
        quarantine = Quarantine(opts["quarantine_file"] or None)
        monitor = monitor_for(symbols, max_latency=timedelta(milliseconds=opts["max_latency_ms"]))
        collector = Collector(publish=bus, monitor=monitor, quarantine=quarantine)
        collector_metrics(collector, process="collector")  # METRICS_PORT: counts by outcome, heartbeat
        beat = heartbeat.labels("collector")
        stop = {"requested": False}
        deadline = time.monotonic() + opts["duration"] if opts["duration"] else None

        def request_stop(signum, frame):
            stop["requested"] = True

        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)

        def should_stop() -> bool:  # asked once per poll of the broker: the process's heartbeat
            beat.set(time.time())
            return stop["requested"] or (deadline is not None and time.monotonic() >= deadline)

        def on_outage(error) -> None:
            bus.publish(outage_alert(error, broker=broker.name, symbols=symbols, at=utcnow()))

        self.stdout.write(f"collecting {', '.join(symbols)} from {broker.name} every {opts['interval']}s")
        quotes = live_quotes(broker, symbols, interval=opts["interval"], should_stop=should_stop, on_outage=on_outage)
        try:
            stats = collector.run(quotes, batch_size=1)
        finally:
            pending = bus.flush(30)
            quarantine.close()
            broker.disconnect()
        self.stdout.write(f"collector: {stats.summary()}; {quarantine.summary()}")
        if pending:
            self.stderr.write(f"{pending} events were not acknowledged by the bus within 30s")
