"""Kafka bus throughput: market-data events through ``tradeops.bus`` vs Kafka's own tools.

    python bench/bus_throughput.py [--events 300000] [--keys 28]

Measured in one run, on the local broker of scripts/services.sh, into freshly provisioned topics
(12 partitions, under a throwaway prefix that is deleted afterwards):

1. publish: ``KafkaBus.publish_many`` of ``Tick`` envelopes (msgspec encode + keyed produce,
   idempotent producer, acks=all, lz4, linger 5 ms) until ``flush`` returns: events/s;
2. consume: one ``KafkaSubscription`` reading them back in batches of 5,000, decoding and
   validating every envelope (strict msgspec schema, Decimals, UTC times), then committing;
3. publish+consume together: the publisher in a second process while this one consumes, from
   the first publish to the last event decoded (the pipeline's steady state);
4. baseline: Kafka's ``org.apache.kafka.tools.ProducerPerformance`` (kafka-tools, the broker's
   version) sending the same encoded bytes (``--payload-file``) with the same producer settings,
   and ``ConsumerPerformance`` reading them back. Ratios are bus / tool.

Note that ProducerPerformance sends without keys (sticky partitioner): the bus hashes every key.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import re
import subprocess
import sys
import tempfile
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

from tradeops.bus.kafka import PRODUCER_DEFAULTS, KafkaBus  # noqa: E402
from tradeops.bus.provision import topics_apply, topics_delete, topics_plan  # noqa: E402
from tradeops.events import Topic, encode  # noqa: E402
from tradeops.topics import CATALOGUE  # noqa: E402

BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")


def publish(bus: KafkaBus, events: list) -> float:
    started = time.perf_counter()
    for i in range(0, len(events), 10_000):
        bus.publish_many(events[i : i + 10_000])
    remaining = bus.flush(120)
    if remaining:
        raise SystemExit(f"{remaining} events unacknowledged")
    return time.perf_counter() - started


def consume(bus: KafkaBus, n: int, group: str, timeout: float = 180.0) -> tuple[float, int]:
    """Read n events; the clock starts at the first record (group join is not throughput)."""
    sub = bus.subscribe([Topic.MARKET_DATA], group, config={"fetch.min.bytes": 100_000, "fetch.wait.max.ms": 50})
    got = 0
    started = None
    deadline = time.monotonic() + timeout
    try:
        while got < n and time.monotonic() < deadline:
            batch = sub.poll(max_records=5000, timeout=0.5)
            if batch and started is None:
                started = time.perf_counter()
            got += len(batch)
            sub.commit()
        return (time.perf_counter() - (started or time.perf_counter())), got
    finally:
        sub.close()


def _publisher_process(prefix: str, n: int, keys: int, ready, go) -> None:
    bus = KafkaBus(bootstrap_servers=BOOTSTRAP, topic_prefix=prefix)
    events = make_ticks(n, keys)
    bus.producer  # connect before the clock starts  # noqa: B018
    ready.set()
    go.wait()
    publish(bus, events)
    bus.close()


def pipelined(prefix: str, n: int, keys: int) -> tuple[float, int]:
    """Publisher in another process, consumer here; from 'go' to the last event decoded."""
    ctx = multiprocessing.get_context("fork")
    ready, go = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_publisher_process, args=(prefix, n, keys, ready, go))
    proc.start()
    bus = KafkaBus(bootstrap_servers=BOOTSTRAP, topic_prefix=prefix)
    sub = bus.subscribe([Topic.MARKET_DATA], "bench-pipelined", config={"fetch.wait.max.ms": 20})
    try:
        # join the group (no records yet) before the publisher starts
        deadline = time.monotonic() + 30
        while not sub.assignment and time.monotonic() < deadline:
            sub.poll(max_records=1, timeout=0.2)
        ready.wait(60)
        started = time.perf_counter()
        go.set()
        got = 0
        deadline = time.monotonic() + 180
        while got < n and time.monotonic() < deadline:
            got += len(sub.poll(max_records=5000, timeout=0.5))
            sub.commit()
        return time.perf_counter() - started, got
    finally:
        sub.close()
        proc.join(60)


def kafka_tool(cls: str, *args: str) -> str:
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "services.sh"), "kafka-run", cls, *args],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0:
        raise SystemExit(f"{cls} failed: {result.stderr[-2000:]}")
    return result.stdout


def producer_performance(topic: str, payload_file: str, n: int) -> float:
    props = [
        f"bootstrap.servers={BOOTSTRAP}",
        "acks=all",
        "enable.idempotence=true",
        f"linger.ms={PRODUCER_DEFAULTS['linger.ms']}",
        f"compression.type={PRODUCER_DEFAULTS['compression.type']}",
    ]
    out = kafka_tool(
        "org.apache.kafka.tools.ProducerPerformance",
        "--topic",
        topic,
        "--num-records",
        str(n),
        "--throughput",
        "-1",
        "--payload-file",
        payload_file,
        "--producer-props",
        *props,
    )
    summary = [line for line in out.splitlines() if "records sent" in line][-1]
    return float(re.search(r"([\d.]+) records/sec", summary).group(1))


def consumer_performance(topic: str, n: int) -> float:
    out = kafka_tool(
        "org.apache.kafka.tools.ConsumerPerformance",
        "--bootstrap-server",
        BOOTSTRAP,
        "--topic",
        topic,
        "--messages",
        str(n),
        "--group",
        f"bench-cperf-{uuid.uuid4().hex[:6]}",
        "--timeout",
        "60000",
    )
    # header: start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, ...
    lines = [line for line in out.splitlines() if line and line[0].isdigit()]
    fields = [f.strip() for f in lines[-1].split(",")]
    return float(fields[5])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--keys", type=int, default=28, help="distinct symbols (partition keys)")
    args = parser.parse_args()
    n = args.events
    prefix = f"bench-{uuid.uuid4().hex[:8]}-"
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    specs = tuple(s for s in CATALOGUE if s.name == Topic.MARKET_DATA)
    actions, brokers = topics_plan(admin, prefix=prefix, specs=specs)
    topics_apply(admin, actions)
    tool_topic = f"{prefix}tool-{Topic.MARKET_DATA}"
    tool_actions, _ = topics_plan(admin, prefix=f"{prefix}tool-", specs=specs)
    topics_apply(admin, tool_actions)
    try:
        load = os.getloadavg()
        print(
            f"machine: {os.cpu_count()} CPUs shared with other engineers' work, load {load[0]:.1f}; "
            f"Python {platform.python_version()}; Kafka at {BOOTSTRAP}: {brokers} broker(s) in its metadata"
        )
        events = make_ticks(n, args.keys)
        sizes = [len(encode(e)) for e in events[:1000]]
        print(f"{n:,} Tick envelopes, {args.keys} keys, {sum(sizes) / len(sizes):.0f} bytes each on the wire")

        bus = KafkaBus(bootstrap_servers=BOOTSTRAP, topic_prefix=prefix)
        bus.producer  # noqa: B018 - connect before timing
        publish_s = publish(bus, events)
        bus.close()
        consume_s, got = consume(KafkaBus(bootstrap_servers=BOOTSTRAP, topic_prefix=prefix), n, "bench-consume")
        assert got == n, f"consumed {got} of {n}"
        publish_rate, consume_rate = n / publish_s, n / consume_s
        serial_rate = n / (publish_s + consume_s)

        pipe_prefix = f"{prefix}pipe-"
        pipe_actions, _ = topics_plan(admin, prefix=pipe_prefix, specs=specs)
        topics_apply(admin, pipe_actions)
        try:
            pipe_s, pipe_got = pipelined(pipe_prefix, n, args.keys)
        finally:
            topics_delete(admin, [a.topic for a in pipe_actions])
        assert pipe_got == n, f"pipelined run consumed {pipe_got} of {n}"
        pipe_rate = n / pipe_s

        with tempfile.NamedTemporaryFile("wb", suffix=".jsonl", delete=False) as payloads:
            for e in events[:10_000]:
                payloads.write(encode(e) + b"\n")
        try:
            tool_rate = producer_performance(tool_topic, payloads.name, n)
        finally:
            os.unlink(payloads.name)
        tool_consume_rate = consumer_performance(tool_topic, n)

        print()
        print("| measure | tradeops.bus | Kafka tool, same run | ratio |")
        print("| --- | --- | --- | --- |")
        rows = [
            ("publish (encode + keyed produce + flush)", publish_rate, "ProducerPerformance", tool_rate),
            ("consume (fetch + decode + validate + commit)", consume_rate, "ConsumerPerformance", tool_consume_rate),
        ]
        for label, rate, tool, baseline in rows:
            print(f"| {label} | {rate:,.0f} ev/s | {tool} {baseline:,.0f} rec/s | {rate / baseline:.2f} |")
        print(f"| publish then consume, one after the other | {serial_rate:,.0f} ev/s | | |")
        print(f"| publish and consume at once (2 processes) | {pipe_rate:,.0f} ev/s | | |")
        print()
        print(f"target >= 100,000 events/s through the bus: publish+consume at once {pipe_rate:,.0f} ev/s")
    finally:
        topics_delete(admin, [a.topic for a in actions] + [a.topic for a in tool_actions])


if __name__ == "__main__":
    main()
