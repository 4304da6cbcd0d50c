"""Replay-to-bus throughput (ticks/s) on the memory bus and on Kafka, with same-run baselines.

    python bench/replay_throughput.py [--ticks 200000] [--procs 2] [--no-kafka]

The ticks are a seeded synthetic feed over 12 symbols, generated before timing starts (replay
reads data that is already parsed; parsing is measured separately in (0)) and frozen out of the
garbage collector (a streaming source keeps no such list alive). Every figure is the median of
``--repeat`` runs.

0. parse: MT5 tick export (tab-separated text) -> Tick payloads, for scale.
1. baseline: ``encode(envelope)`` over pre-built envelopes: the cheapest thing a producer does.
2. collector -> null sink: normalise, stamp received_at, make the envelope, run the monitor.
3. collector -> memory bus (``MemoryBus.publish_many``): the embedded run's path.
4. raw Kafka baseline: confluent-kafka ``produce()`` of pre-encoded bytes, same producer
   settings as the bus (idempotent, acks=all, lz4, linger 5 ms), flush included; 4b with the
   replay producer settings (``workers.collector.REPLAY_PRODUCER_CONFIG``: linger 20 ms, 1 MB
   batches), a candidate for replays.
5. collector -> ``KafkaBus`` (encode + produce, batched ``publish_many``), flush included, with
   the bus defaults (5) and the replay settings (5b).
6. the same (bus defaults) in ``--procs`` processes, each replaying its own symbols (what a
   deployment does: one collector per feed), started together behind a barrier; aggregate
   ticks/s from the first start to the last flush.

Kafka topics are provisioned under a unique prefix and deleted afterwards.
"""

from __future__ import annotations

import argparse
import gc
import io
import multiprocessing
import os
import platform
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradeops.settings.local")

import django

django.setup()

from tradeops.events import encode, make_event  # noqa: E402
from trading.marketdata.monitor import MarketMonitor, MonitorConfig  # noqa: E402
from trading.marketdata.sources import read_mt5_ticks, synthetic_ticks  # noqa: E402
from workers.collector import REPLAY_PRODUCER_CONFIG, Collector  # noqa: E402

SYMBOLS = ["EURUSD", "GBPUSD", "USDJPY", "USDCHF", "AUDUSD", "USDCAD", "NZDUSD", "EURGBP", "EURJPY", "GBPJPY"]
SYMBOLS += ["XAUUSD", "EURCHF"]
BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")


def make_ticks(total: int, symbols: list[str], seed: int = 7) -> list:
    per = total // len(symbols)
    feeds = [list(synthetic_ticks(s, seed=seed + i, count=per, gap_probability=0)) for i, s in enumerate(symbols)]
    merged = [t for feed in feeds for t in feed]
    merged.sort(key=lambda t: t.ts)
    return merged


def monitor() -> MarketMonitor:
    # Replays of old data: no latency check; spikes/gaps/crossed checks all on.
    return MarketMonitor(MonitorConfig())


def timed(fn, repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - started)
    return statistics.median(runs)


def provision(prefix: str) -> list[str]:
    from confluent_kafka.admin import AdminClient

    from tradeops.bus.provision import topics_apply, topics_plan

    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    actions, _ = topics_plan(admin, prefix=prefix)
    topics_apply(admin, actions)
    return [a.topic for a in actions]


def drop(names: list[str]) -> None:
    from confluent_kafka.admin import AdminClient

    from tradeops.bus.provision import topics_delete

    topics_delete(AdminClient({"bootstrap.servers": BOOTSTRAP}), names)


def kafka_bus(prefix: str, replay: bool = False):
    from tradeops.bus.kafka import KafkaBus

    config = REPLAY_PRODUCER_CONFIG if replay else None
    return KafkaBus(bootstrap_servers=BOOTSTRAP, topic_prefix=prefix, producer_config=config)


_barrier = None


def _init_worker(barrier) -> None:
    global _barrier
    _barrier = barrier


def _worker(args) -> tuple[float, float, int]:
    """One collector process: replay its symbols into Kafka. Returns (start, end, ticks).

    Every worker prepares its ticks and its producer, then all start together (a barrier), so
    the aggregate window is the replay, not the set-up."""
    prefix, symbols, total, replay = args
    ticks = make_ticks(total, symbols, seed=len(symbols[0]) + ord(symbols[0][0]))
    gc.freeze()
    bus = kafka_bus(prefix, replay=replay)
    bus.producer  # noqa: B018 - connect before timing
    bus.producer.list_topics(timeout=10)
    _barrier.wait()
    started = time.time()
    Collector(publish=bus, monitor=monitor()).run(ticks)
    bus.flush(60)
    return started, time.time(), len(ticks)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ticks", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--no-kafka", action="store_true")
    args = parser.parse_args()

    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cores (shared)")
    print("load average at start: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    ticks = make_ticks(args.ticks, SYMBOLS)
    n = len(ticks)
    # A replay streams its input; this one is pre-generated so parsing is not timed. Keep the
    # 200k-object list out of the garbage collector's scans, as a streaming source would be.
    gc.freeze()
    print(f"{n:,} synthetic ticks over {len(SYMBOLS)} symbols; median of {args.repeat} runs\n")
    rows: list[tuple[str, float]] = []

    def report(name: str, seconds: float, count: int = n) -> float:
        rate = count / seconds
        rows.append((name, rate))
        print(f"{name:<58} {rate:>12,.0f} ticks/s")
        return rate

    # 0. parsing an MT5 export, for scale
    text = "<DATE>\t<TIME>\t<BID>\t<ASK>\t<LAST>\t<VOLUME>\t<FLAGS>\n" + "".join(
        f"{t.ts:%Y.%m.%d}\t{t.ts:%H:%M:%S}.{t.ts.microsecond // 1000:03d}\t{t.bid}\t{t.ask}\t\t\t6\n"
        for t in ticks
        if t.symbol == "EURUSD"
    )
    eurusd = text.count("\n") - 1
    report(
        "0. parse MT5 tick export (EURUSD)",
        timed(lambda: list(read_mt5_ticks(io.StringIO(text), symbol="EURUSD")), args.repeat),
        eurusd,
    )

    # 1. baseline: encode only
    now = datetime.now(UTC)
    envelopes = [make_event(t, source="collector", key=t.symbol) for t in ticks]

    def encode_only():
        for event in envelopes:
            encode(event)

    base = report("1. baseline: encode(envelope) loop", timed(encode_only, args.repeat))
    envelopes.clear()

    # 2. collector into a null sink
    def null_sink():
        Collector(publish=lambda e: None, monitor=monitor(), clock=lambda: now).run(ticks)

    report("2. collector (normalise+stamp+envelope+monitor) -> null", timed(null_sink, args.repeat))

    # 3. collector into the memory bus
    from tradeops.bus.memory import MemoryBus

    def memory():
        Collector(publish=MemoryBus(), monitor=monitor()).run(ticks)

    report("3. collector -> memory bus", timed(memory, args.repeat))

    if not args.no_kafka:
        from confluent_kafka import Producer

        from tradeops.bus.kafka import PRODUCER_DEFAULTS

        prefix = f"bench-{uuid.uuid4().hex[:8]}-"
        names = provision(prefix)
        try:
            values = [(t.symbol, encode(make_event(t, source="collector", key=t.symbol))) for t in ticks]
            size = statistics.mean(len(v) for _, v in values)
            topic = prefix + "market-data-events"
            producer = Producer({"bootstrap.servers": BOOTSTRAP, **PRODUCER_DEFAULTS})
            producer.list_topics(timeout=10)

            producer_replay = Producer({"bootstrap.servers": BOOTSTRAP, **PRODUCER_DEFAULTS, **REPLAY_PRODUCER_CONFIG})
            producer_replay.list_topics(timeout=10)

            def raw(producer=producer):
                produce = producer.produce
                for key, value in values:
                    try:
                        produce(topic, value, key)
                    except BufferError:
                        producer.poll(0.05)
                        produce(topic, value, key)
                producer.flush(60)

            print(f"   (events are {size:.0f} bytes of JSON each)")
            report("4. raw Kafka baseline: produce(pre-encoded) + flush", timed(raw, args.repeat))
            report("4b. the same, replay producer settings", timed(lambda: raw(producer_replay), args.repeat))
            del values

            def via_bus(replay: bool):
                bus = kafka_bus(prefix, replay)
                bus.producer  # noqa: B018
                Collector(publish=bus, monitor=monitor()).run(ticks)
                assert bus.flush(60) == 0
                bus.close()

            report("5. collector -> KafkaBus, bus defaults (+ flush)", timed(lambda: via_bus(False), args.repeat))
            defaults_rate = rows[-1][1]
            replay_seconds = timed(lambda: via_bus(True), args.repeat)
            replay_rate = report("5b. collector -> KafkaBus, replay producer (+ flush)", replay_seconds)
            kafka_rate = max(defaults_rate, replay_rate)

            if args.procs > 1:
                groups = [SYMBOLS[i :: args.procs] for i in range(args.procs)]
                per = args.ticks // args.procs
                ctx = multiprocessing.get_context("spawn")
                results = []
                for _ in range(args.repeat):
                    barrier = ctx.Barrier(args.procs)
                    with ctx.Pool(args.procs, initializer=_init_worker, initargs=(barrier,)) as pool:
                        parts = pool.map(_worker, [(prefix, g, per, False) for g in groups])
                    start, end = min(p[0] for p in parts), max(p[1] for p in parts)
                    results.append((end - start, sum(p[2] for p in parts)))
                seconds, count = statistics.median(results)
                report(f"6. {args.procs} collector processes -> KafkaBus, bus defaults (aggregate)", seconds, count)
        finally:
            drop(names)
        print(f"\nKafka target 100,000 ticks/s: best single process {kafka_rate:,.0f}/s; multi-process on line 6")

    print("load average at end: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    print("\nratios against the encode-only baseline (1):")
    for name, rate in rows[1:]:
        print(f"  {name:<58} {rate / base:5.2f}x")


if __name__ == "__main__":
    main()
