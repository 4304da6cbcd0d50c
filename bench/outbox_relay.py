"""Outbox relay throughput: PostgreSQL outbox rows -> Kafka, with a same-run baseline.

    python bench/outbox_relay.py [--rows 100000] [--batch-sizes 500,1000,5000]

1. append: ``outbox_append_many`` of ``OrderEvent`` envelopes, 1,000 per transaction (what the
   services pay to make their events durable with their writes), rows/s;
2. relay: ``OutboxRelay.drain`` on the Kafka bus (read unsent rows in id order, publish keyed
   with acks=all, wait for the acknowledgements, mark the prefix sent), rows/s, per batch size;
   the outbox is reset to unsent between batch sizes, into fresh topics;
3. baseline: the same encoded bytes published from memory with ``KafkaBus.publish_raw`` and one
   flush (the relay's ceiling without the database). Ratio = relay / baseline.

Runs in a throwaway database (``test_tradeops_bench_outbox``, created and dropped here) and
throwaway topics. Needs DATABASE_URL (default: the local PostgreSQL of scripts/services.sh).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradeops.settings.local")
os.environ.setdefault("DATABASE_URL", "postgres://tradeops:tradeops@127.0.0.1:5432/tradeops")
# It creates a database (and scratch tables): the owner's rights (docs/security.md).
os.environ.setdefault("MIGRATE_DATABASE_URL", "postgres://tradeops_owner:tradeops_owner@127.0.0.1:5432/tradeops")
os.environ["TEST_DATABASE_NAME"] = "test_tradeops_bench_outbox"

import django

django.setup()

from confluent_kafka.admin import AdminClient  # noqa: E402
from django.db import connection, transaction  # noqa: E402

from tradeops.bus.kafka import KafkaBus  # noqa: E402
from tradeops.bus.provision import topics_apply, topics_delete, topics_plan  # noqa: E402
from tradeops.core.db_roles import database_owner  # noqa: E402
from tradeops.events import OrderEvent, Topic, encode, make_event  # noqa: E402
from tradeops.outbox.models import Outbox  # noqa: E402
from tradeops.outbox.relay import OutboxRelay  # noqa: E402
from tradeops.outbox.services import outbox_append_many  # noqa: E402
from tradeops.topics import CATALOGUE  # noqa: E402

BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def order_events(n: int, accounts: int = 8) -> list:
    step = timedelta(microseconds=500)
    return [
        make_event(
            OrderEvent(
                client_order_id=f"bench-{i:07d}",
                account_id=1 + i % accounts,
                symbol="EURUSD",
                side="BUY" if i % 2 else "SELL",
                order_type="MARKET",
                quantity=Decimal("0.10"),
                status="NEW",
                algo_id="bench-algo",
                ts=T0 + step * i,
            ),
            source="trading",
            key=str(1 + i % accounts),
        )
        for i in range(n)
    ]


def provision(admin, prefix: str) -> list[str]:
    specs = tuple(s for s in CATALOGUE if s.name == Topic.TRADING)
    actions, _ = topics_plan(admin, prefix=prefix, specs=specs)
    topics_apply(admin, actions)
    return [a.topic for a in actions]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batch-sizes", default="500,1000,5000")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("outbox_relay needs PostgreSQL: set DATABASE_URL")
    n = args.rows
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    created: list[str] = []
    old_name = connection.settings_dict["NAME"]
    owner = contextlib.ExitStack()  # kept: the owner for the whole run
    owner.enter_context(database_owner())
    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        load = os.getloadavg()
        print(
            f"machine: {os.cpu_count()} CPUs shared with other engineers' work, load {load[0]:.1f}; "
            f"Python {platform.python_version()}; PostgreSQL and Kafka local, single node"
        )
        events = order_events(n)
        size = sum(len(encode(e)) for e in events[:1000]) / 1000
        print(f"{n:,} OrderEvent envelopes, {size:.0f} bytes each, keyed by 8 accounts")

        started = time.perf_counter()
        for i in range(0, n, 1000):
            with transaction.atomic():
                outbox_append_many(events=events[i : i + 1000])
        append_rate = n / (time.perf_counter() - started)

        # baseline: the same bytes from memory, no database
        prefix = f"bench-ob-{uuid.uuid4().hex[:6]}-base-"
        created += provision(admin, prefix)
        messages = list(Outbox.objects.order_by("id").values_list("topic", "key", "message", "traceparent"))
        bus = KafkaBus(bootstrap_servers=BOOTSTRAP, topic_prefix=prefix)
        bus.producer  # noqa: B018 - connect before timing
        started = time.perf_counter()
        for topic, key, message, traceparent in messages:
            bus.publish_raw(topic, bytes(message), key=key, headers={"traceparent": traceparent})
        assert bus.flush(120) == 0
        base_rate = n / (time.perf_counter() - started)
        bus.close()

        rows = []
        for batch_size in [int(b) for b in args.batch_sizes.split(",")]:
            Outbox.objects.update(sent_at=None)
            prefix = f"bench-ob-{uuid.uuid4().hex[:6]}-"
            created += provision(admin, prefix)
            bus = KafkaBus(bootstrap_servers=BOOTSTRAP, topic_prefix=prefix)
            bus.producer  # noqa: B018
            relay = OutboxRelay(bus=bus, batch_size=batch_size, use_lock=False)
            started = time.perf_counter()
            marked = relay.drain(timeout=600)
            seconds = time.perf_counter() - started
            assert marked == n, f"relayed {marked} of {n}"
            rows.append((batch_size, n / seconds))
            bus.close()

        print()
        print("| measure | rows/s | baseline: same bytes published from memory | ratio |")
        print("| --- | --- | --- | --- |")
        print(f"| outbox_append_many, 1,000 rows per transaction | {append_rate:,.0f} | | |")
        for batch_size, rate in rows:
            print(
                f"| relay PG -> Kafka, batch {batch_size:,} | {rate:,.0f} | {base_rate:,.0f} | {rate / base_rate:.2f} |"
            )
        print()
        best = max(rate for _, rate in rows)
        print(f"target >= 10,000 events/s relay throughput: best {best:,.0f} rows/s")
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0, keepdb=False)
        topics_delete(admin, created)


if __name__ == "__main__":
    main()
