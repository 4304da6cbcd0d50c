"""Kafka subscription poll: one hop's latency on a sparse stream, and read throughput on a backlog.

    python bench/bus_poll_latency.py [--events 200] [--backlog 100000]

Measured in one run on the local broker (topics provisioned under a throwaway prefix, deleted
afterwards), the same subscription settings as the stages (``CONSUMER_DEFAULTS``), batches of
1,000 and a 1 s poll timeout as ``run_stage`` uses:

1. sparse stream: one event published, the time until ``KafkaSubscription.poll`` returns it
   (p50, p99, max), fetching as now (wait for the first record, then take what is already
   fetched) and, the baseline, as before (``consume(1000, timeout=1.0)``: it waits until 1,000
   records come or the timeout passes); decoding and records the same;
2. backlog: ``--backlog`` events published first, then read to the end by each way: records/s
   and the mean batch, so the change costs nothing under load.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradeops.settings.local")

import django  # noqa: E402

django.setup()

from confluent_kafka.admin import AdminClient  # noqa: E402
from memory_bus import make_ticks  # noqa: E402  (bench/, first on sys.path when run as a script)

from tradeops.bus.kafka import CONSUMER_DEFAULTS, KafkaBus, KafkaSubscription  # noqa: E402
from tradeops.bus.provision import topics_apply, topics_delete, topics_plan  # noqa: E402
from tradeops.events import Topic  # noqa: E402

BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
WAYS = (("before: consume(1000, 1.0)", True), ("now: poll(1.0) + consume(999, 0)", False))


class BeforeSubscription(KafkaSubscription):
    """``KafkaSubscription`` as it fetched before: ``consume(n, timeout)``."""

    def _fetch(self, max_records: int, timeout: float) -> list:
        return self._consumer.consume(num_messages=max_records, timeout=timeout)


def subscribe(bus: KafkaBus, group: str, before: bool) -> KafkaSubscription:
    """A stage's subscription (``KafkaBus.subscribe``'s settings), fetching as before or as now."""
    if not before:
        return bus.subscribe([Topic.MARKET_DATA], group)
    config = {"bootstrap.servers": BOOTSTRAP, "client.id": "bench", "group.id": bus.prefix + group, **CONSUMER_DEFAULTS}
    return BeforeSubscription(bus, config, (Topic.MARKET_DATA,), group)


def joined(bus: KafkaBus, group: str, before: bool):
    subscription = subscribe(bus, group, before)
    deadline = time.monotonic() + 60
    while not subscription.assignment and time.monotonic() < deadline:
        subscription.poll(max_records=1, timeout=0.2)
    while subscription.poll(max_records=100_000, timeout=0.5):  # what earlier runs left on the topic
        pass
    return subscription


def sparse(bus: KafkaBus, before: bool, group: str, events) -> list[float]:
    subscription = joined(bus, group, before)
    latencies = []
    for event in events:
        bus.publish(event)
        bus.flush(10)
        started = time.perf_counter()
        got = 0
        while not got:
            got = len(subscription.poll(max_records=1000, timeout=1.0))
        latencies.append(time.perf_counter() - started)
    subscription.close()
    return latencies


def backlog(bus: KafkaBus, before: bool, group: str, total: int) -> tuple[float, float]:
    subscription = subscribe(bus, group, before)
    read = batches = 0
    started = None
    while read < total:
        n = len(subscription.poll(max_records=1000, timeout=1.0))
        if n and started is None:
            started = time.perf_counter()
        read += n
        batches += bool(n)
    seconds = time.perf_counter() - started
    subscription.close()
    return total / seconds, total / batches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--backlog", type=int, default=100_000)
    args = parser.parse_args()
    prefix = f"bench-poll-{uuid.uuid4().hex[:8]}-"
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    actions, _ = topics_plan(admin, prefix=prefix)
    topics_apply(admin, actions)
    bus = KafkaBus(bootstrap_servers=BOOTSTRAP, topic_prefix=prefix)
    try:
        print(f"sparse stream, {args.events} events one at a time (batches of 1,000, poll timeout 1 s):")
        for name, before in WAYS:
            ms = sorted(x * 1000 for x in sparse(bus, before, f"sparse-{before}", make_ticks(args.events, 1)))
            p99 = ms[int(0.99 * (len(ms) - 1))]
            print(f"  {name:30} p50 {statistics.median(ms):7.1f} ms  p99 {p99:7.1f} ms  max {ms[-1]:7.1f} ms")
        bus.publish_many(make_ticks(args.backlog, 28))
        bus.flush(120)
        total = args.events * 2 + args.backlog
        print(f"backlog of {total:,} events read to the end:")
        for name, before in WAYS:
            rate, batch = backlog(bus, before, f"backlog-{before}", total)
            print(f"  {name:30} {rate:10,.0f} records/s  mean batch {batch:6.0f}")
    finally:
        bus.close()
        topics_delete(admin, [a.topic for a in actions])


if __name__ == "__main__":
    main()
