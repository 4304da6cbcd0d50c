"""Memory bus dispatch throughput (the embedded run's transport), with same-run baselines.

    python bench/memory_bus.py [--events 1000000]

1. dispatch: ``MemoryBus.publish_many`` of ready-made ``Tick`` envelopes into the 12-partition
   market-data topic, then one subscription polling batches of 10,000 and committing (what a
   stage runner does around its handler), events/s;
2. one at a time: ``MemoryBus.publish`` per event (a producer that is not batching);
3. through a ``StageRunner`` with a pass-through handler that returns nothing (adds dedupe by
   event_id and the per-event handler call): the floor of a pipeline stage;
4. baseline: the standard library's in-process FIFO, ``queue.SimpleQueue`` (C, thread-safe; no
   keys, partitions, groups or commits), ``put`` each event then ``get_nowait`` it back, in
   slices of 10,000: what a hand-rolled in-process bus would start from. Ratio = bus / baseline.
"""

from __future__ import annotations

import argparse
import os
import platform
import queue
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradeops.settings.local")

import django

django.setup()

from tradeops.bus.memory import MemoryBus  # noqa: E402
from tradeops.bus.runner import StageRunner  # noqa: E402
from tradeops.events import Tick, Topic, make_event  # noqa: E402
from tradeops.stages import Stage  # noqa: E402

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
BATCH = 10_000


def make_ticks(n: int, keys: int = 28) -> list:
    symbols = [f"SYM{i:02d}" for i in range(keys)]
    bid = Decimal("1.08512")
    step = timedelta(microseconds=250)
    return [
        make_event(
            Tick(symbol=symbols[i % keys], bid=bid, ask=bid + Decimal("0.00003"), ts=T0 + step * i),
            source="bench",
            key=symbols[i % keys],
        )
        for i in range(n)
    ]


def best_of(runs: int, fn) -> float:
    return min(fn() for _ in range(runs))


def dispatch_batched(events: list) -> float:
    bus = MemoryBus()
    sub = bus.subscribe([Topic.MARKET_DATA], "bench")
    started = time.perf_counter()
    for i in range(0, len(events), BATCH):
        bus.publish_many(events[i : i + BATCH])
        while batch := sub.poll(max_records=BATCH):
            for _record in batch:
                pass
            sub.commit()
    return time.perf_counter() - started


def dispatch_one_at_a_time(events: list) -> float:
    bus = MemoryBus()
    sub = bus.subscribe([Topic.MARKET_DATA], "bench")
    publish = bus.publish
    started = time.perf_counter()
    for i in range(0, len(events), BATCH):
        for event in events[i : i + BATCH]:
            publish(event)
        while batch := sub.poll(max_records=BATCH):
            for _record in batch:
                pass
            sub.commit()
    return time.perf_counter() - started


class PassThrough:
    def handle(self, event):
        return ()


def through_stage_runner(events: list) -> float:
    bus = MemoryBus()
    stage = Stage("bench", (Topic.MARKET_DATA,), "bench", "bench.memory_bus.PassThrough")
    runner = StageRunner(
        stage=stage, handler=PassThrough(), bus=bus, subscription=bus.subscribe(stage.consumes, stage.group)
    )
    started = time.perf_counter()
    for i in range(0, len(events), BATCH):
        bus.publish_many(events[i : i + BATCH])
        while runner.run_once(max_records=BATCH, timeout=0):
            pass
    return time.perf_counter() - started


def baseline_simple_queue(events: list) -> float:
    q: queue.SimpleQueue = queue.SimpleQueue()
    put, get = q.put, q.get_nowait
    started = time.perf_counter()
    for i in range(0, len(events), BATCH):
        chunk = events[i : i + BATCH]
        for event in chunk:
            put(event)
        for _ in range(len(chunk)):
            get()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3, help="best of N")
    args = parser.parse_args()
    n = args.events
    events = make_ticks(n)
    load = os.getloadavg()
    print(
        f"machine: {os.cpu_count()} CPUs shared with other engineers' work, load {load[0]:.1f}; "
        f"Python {platform.python_version()}; {n:,} Tick envelopes, best of {args.runs}"
    )
    base = n / best_of(args.runs, lambda: baseline_simple_queue(events))
    rows = [
        ("publish_many + poll + commit (batches of 10,000)", n / best_of(args.runs, lambda: dispatch_batched(events))),
        ("publish one at a time + poll + commit", n / best_of(args.runs, lambda: dispatch_one_at_a_time(events))),
        ("through a StageRunner (dedupe + handler call)", n / best_of(args.runs, lambda: through_stage_runner(events))),
    ]
    print()
    print("| measure | events/s | baseline: queue.SimpleQueue put + get | ratio |")
    print("| --- | --- | --- | --- |")
    for label, rate in rows:
        print(f"| {label} | {rate:,.0f} | {base:,.0f} | {rate / base:.2f} |")
    print()
    print(f"target >= 500,000 events/s memory bus dispatch: {rows[0][1]:,.0f} (batched), {rows[1][1]:,.0f} (single)")


if __name__ == "__main__":
    main()
