"""manage.py run_outbox_relay: publish the outbox to the configured bus until stopped."""

from __future__ import annotations

import time
from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand

from tradeops.bus import get_bus
from tradeops.bus.runner import stop_on_signals
from tradeops.observability.metrics import heartbeat
from tradeops.observability.server import metrics_serve
from tradeops.outbox.relay import OutboxRelay


class Command(BaseCommand):
    help = "Relay outbox rows to the event bus in order (at-least-once; one active relay per database)."

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=settings.OUTBOX_RELAY_BATCH_SIZE)
        parser.add_argument("--bus", choices=["memory", "kafka"], default=None, help="default: EVENT_BUS")
        parser.add_argument("--bootstrap-servers", default=None, help="default: KAFKA_BOOTSTRAP_SERVERS")
        parser.add_argument("--topic-prefix", default=None, help="default: KAFKA_TOPIC_PREFIX")
        parser.add_argument(
            "--retention-hours", type=float, default=settings.OUTBOX_RETENTION_HOURS, help="prune sent rows older"
        )
        parser.add_argument("--prune-every", type=float, default=300.0, help="seconds between prunes")
        parser.add_argument("--once", action="store_true", help="publish what is pending, then exit")

    def handle(self, *args, **opts):
        options = {}
        if opts["bootstrap_servers"]:
            options["bootstrap_servers"] = opts["bootstrap_servers"]
        if opts["topic_prefix"] is not None:
            options["topic_prefix"] = opts["topic_prefix"]
        if (opts["bus"] or settings.EVENT_BUS) == "kafka":
            options["client_id"] = "tradeops-outbox-relay"
        bus = get_bus(opts["bus"], **options)
        metrics_serve(process="outbox-relay")  # backlog and lag are read when scraped
        relay = OutboxRelay(
            bus=bus,
            batch_size=opts["batch_size"],
            retention=timedelta(hours=opts["retention_hours"]),
            prune_every=opts["prune_every"],
        )
        if opts["once"]:
            marked = relay.drain()
            relay.release_leadership()
            self.stdout.write(f"published {marked} events")
            return
        self.stdout.write(f"outbox relay: publishing to the {bus.name} bus (batch {opts['batch_size']})")
        self.stdout.flush()
        beat = heartbeat.labels("outbox-relay")

        with stop_on_signals() as should_stop:

            def should_stop_beating() -> bool:  # asked once per relay loop: the process's heartbeat
                beat.set(time.time())
                return should_stop()

            relay.run(should_stop=should_stop_beating)
        bus.close(timeout=2)  # unacknowledged rows stay unsent and go out on the next run
        s = relay.stats
        self.stdout.write(f"outbox relay stopped: {s.marked} marked sent, {s.failures} failed batches")
