"""manage.py run_anomaly_detector: watch the key series and raise anomalies as operator alerts."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand

from tradeops.bus.runner import stop_on_signals
from tradeops.observability.anomaly import AnomalyMonitor
from tradeops.observability.server import metrics_serve


class Command(BaseCommand):
    help = "Scrape the metrics every ANOMALY_INTERVAL seconds; raise each anomaly as an alert (alert.raised)."

    def add_arguments(self, parser):
        parser.add_argument("--interval", type=float, default=settings.ANOMALY_INTERVAL)
        parser.add_argument("--urls", default=",".join(settings.ANOMALY_SCRAPE_URLS), help="metrics endpoints")

    def handle(self, *args, **opts):
        urls = [u.strip() for u in opts["urls"].split(",") if u.strip()]
        metrics_serve(process="anomaly-detector")
        monitor = AnomalyMonitor(urls=urls, token=settings.ANOMALY_SCRAPE_TOKEN)
        where = ", ".join(urls) if urls else "this process"
        self.stdout.write(f"anomaly detector: scraping {where} every {opts['interval']:g} s")
        self.stdout.flush()
        with stop_on_signals() as should_stop:
            monitor.run(interval=opts["interval"], should_stop=should_stop)
        self.stdout.write(f"anomaly detector stopped: {len(monitor.raised)} anomalies raised")
