"""manage.py provision_topics: create and reconcile the Kafka topic catalogue (topics as code)."""

from __future__ import annotations

from confluent_kafka.admin import AdminClient
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from tradeops.bus.provision import topics_apply, topics_plan
from tradeops.topics import all_specs


class Command(BaseCommand):
    help = "Create missing topics and reconcile partitions and retention with tradeops.topics.CATALOGUE."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
        parser.add_argument("--bootstrap-servers", default=None, help="default: KAFKA_BOOTSTRAP_SERVERS")
        parser.add_argument("--prefix", default=None, help="topic name prefix (default: KAFKA_TOPIC_PREFIX)")
        parser.add_argument("--no-dlq", action="store_true", help="leave out the dead-letter topics")
        parser.add_argument("--timeout", type=float, default=15.0)

    def handle(self, *args, **opts):
        bootstrap = opts["bootstrap_servers"] or settings.KAFKA_BOOTSTRAP_SERVERS
        prefix = settings.KAFKA_TOPIC_PREFIX if opts["prefix"] is None else opts["prefix"]
        admin = AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": int(opts["timeout"] * 1000)})
        try:
            actions, brokers = topics_plan(
                admin, prefix=prefix, specs=all_specs(include_dlq=not opts["no_dlq"]), timeout=opts["timeout"]
            )
        except Exception as exc:
            raise CommandError(f"cannot read the cluster at {bootstrap}: {exc}") from exc
        self.stdout.write(f"cluster {bootstrap}: {brokers} broker(s); replication factor capped at {brokers}")
        for action in actions:
            self.stdout.write(f"  {action}")
        if opts["dry_run"]:
            self.stdout.write("dry run: nothing changed")
            return
        changes = [a for a in actions if a.kind in ("create", "add_partitions", "set_config")]
        if not changes:
            self.stdout.write("up to date")
            return
        try:
            for line in topics_apply(admin, changes, timeout=opts["timeout"] * 2):
                self.stdout.write(f"  {line}")
        except Exception as exc:
            raise CommandError(f"provisioning failed: {exc}") from exc
        self.stdout.write(self.style.SUCCESS(f"applied {len(changes)} change(s)"))
