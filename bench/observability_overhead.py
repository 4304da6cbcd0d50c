"""What metrics, tracing and JSON logs add to the order path and to a pipeline replay (issue 17).

Both paths run twice per round in the same process, observability OFF and ON, in alternating
rounds (OFF, ON, OFF, ON, ...) so the machine's noise falls on both alike; p50 and p99 over all
rounds, and the ratio ON / OFF at p50 (target: under 1.10).

- OFF: tracing off (the runner still sets the event's traceparent for the outbox and logs: that
  cannot be switched off), the stage meter's per-batch metrics off, no ``metrics`` stage, plain
  logs.
- ON: tracing on with the real SDK and a BatchSpanProcessor (spans built, ids derived, handed to
  the export thread; the exporter discards them, so no collector's network time is counted),
  database calls traced, the stage meter on, the ``metrics`` stage in the pipeline, JSON logs at
  INFO to /dev/null.

Order path: ``ExecutionWorker.execute(intent)`` (gate, paper broker, the order's one
transaction on PostgreSQL: the set-up of ``bench/order_path.py``), each order handled inside the
stage's event scope as the stage runner does. Pipeline replay: the real EURUSD bars and derived
ticks (``workers.collector.embedded_source``) through the ``ml-features`` stage (and ``metrics``
when ON) on the memory bus, lock-step (``batch_size=1``, as the embedded run), timing each source
event until its consequences have settled.

    python bench/observability_overhead.py [--orders 2000] [--bars 2000] [--rounds 4]
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import statistics
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from django.db import connection

from bench.order_path import T0, intent, setup_world
from tradeops.bus.memory import MemoryBus
from tradeops.bus.runner import pipeline_run
from tradeops.events import Signal, make_event
from tradeops.observability import stage as stage_meter
from tradeops.observability import tracing
from tradeops.observability.logs import JsonFormatter, PlainFormatter
from tradeops.stages import stage_get


class Discard:
    """A span exporter that accepts and drops (the export thread's cost stays in the run)."""

    def export(self, spans):
        from opentelemetry.sdk.trace.export import SpanExportResult

        return SpanExportResult.SUCCESS

    def shutdown(self):
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


_meter_methods = {name: getattr(stage_meter.StageMeter, name) for name in ("batch", "idle", "committed")}


def observability(on: bool, handler: logging.Handler) -> None:
    tracing.tracing_shutdown()
    for name, method in _meter_methods.items():
        setattr(stage_meter.StageMeter, name, method if on else (lambda self, *a, **k: None))
    handler.setFormatter(JsonFormatter() if on else PlainFormatter())
    if on:
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        tracing.tracing_setup(service_name="bench", exporter=Discard())
        # a batch processor, as in production (tracing_setup's exporter= path is synchronous, for tests)
        tracing._provider._active_span_processor._span_processors = (BatchSpanProcessor(Discard()),)


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


def order_round(worker, account, n0: int, count: int, log: logging.Logger) -> list[float]:
    samples = []
    current = tracing.current_traceparent_var
    for n in range(n0, n0 + count):
        i = intent(account.pk, n, T0 + timedelta(microseconds=n))
        signal = make_event(
            Signal(
                signal_id=f"s{n}",
                symbol="EURUSD",
                ts=T0,
                side=i.side,
                confidence=0.6,
                price=i.reference_price,
                model_versions={},
                algo_id="bench",
            ),
            source="bench",
            key="EURUSD",
            traceparent=f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01",
        )
        start = time.perf_counter()
        if tracing.tracing_enabled():
            span_id = tracing.stage_span_id(stage="execution", event_id=signal.event_id)
            tp = tracing.stage_traceparent(parent=signal.traceparent, event_id=signal.event_id, span_id=span_id)
            with tracing.event_scope(stage="execution", event=signal, traceparent=tp):
                order = worker.execute(i)
                log.info("order %s %s", order.client_order_id, order.status)
        else:
            token = current.set(signal.traceparent)
            try:
                order = worker.execute(i)
                log.info("order %s %s", order.client_order_id, order.status)
            finally:
                current.reset(token)
        samples.append(time.perf_counter() - start)
        assert order.status == "FILLED", order.reject_reason
    return samples


def replay_round(events: list, on: bool) -> list[float]:
    stages = [stage_get("ml-features")] + ([stage_get("metrics")] if on else [])
    handlers = {"metrics": __import__("tradeops.observability.events", fromlist=["x"]).MetricsHandler()}
    samples: list[float] = []
    last = [None]

    def timed():
        for event in events:
            now = time.perf_counter()
            if last[0] is not None:
                samples.append(now - last[0])
            last[0] = time.perf_counter()
            yield event
        now = time.perf_counter()
        samples.append(now - last[0])

    pipeline_run(timed(), stages=stages, handlers=handlers if on else {}, bus=MemoryBus(), batch_size=1)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=2000, help="orders per round and mode")
    parser.add_argument("--bars", type=int, default=2000, help="real bars replayed per round and mode (x5 events)")
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("needs PostgreSQL: set DATABASE_URL")
    os.environ["REPLAY_LIMIT"] = str(args.bars)
    os.environ.setdefault("REPLAY_QUARANTINE", os.devnull)
    from workers.collector import embedded_source

    events = list(embedded_source())
    log = logging.getLogger("bench.observability")
    handler = logging.StreamHandler(io.TextIOWrapper(open(os.devnull, "wb")))  # noqa: SIM115
    log.handlers[:] = [handler]
    log.propagate = False
    log.setLevel(logging.INFO)

    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        _, account, _, worker = setup_world()
        worker.execute(intent(account.pk, 1, T0))  # creates the position row
        order_round(worker, account, 10, 300, log)  # warm-up
        results = {("orders", False): [], ("orders", True): [], ("replay", False): [], ("replay", True): []}
        n = 1000
        load = os.getloadavg()[0]
        for r in range(args.rounds):
            for on in (False, True) if r % 2 == 0 else (True, False):
                observability(on, handler)
                results[("orders", on)] += order_round(worker, account, n, args.orders, log)
                n += args.orders
                results[("replay", on)] += replay_round(events, on)
        observability(False, handler)
        print(f"{args.rounds} rounds; load average {load:.2f} -> {os.getloadavg()[0]:.2f}; 2 CPUs shared")
        for path, unit, scale in (("orders", "ms", 1e3), ("replay", "us", 1e6)):
            off, on = results[(path, False)], results[(path, True)]
            p50_off, p50_on = pct(off, 0.5) * scale, pct(on, 0.5) * scale
            p99_off, p99_on = pct(off, 0.99) * scale, pct(on, 0.99) * scale
            mean_ratio = statistics.fmean(on) / statistics.fmean(off)
            print(
                f"{path:7} n={len(off):6} OFF p50 {p50_off:9.3f} {unit}  p99 {p99_off:9.3f} {unit}"
                f" | ON p50 {p50_on:9.3f} {unit}  p99 {p99_on:9.3f} {unit}"
                f" | ON/OFF p50 {p50_on / p50_off:.3f}  mean {mean_ratio:.3f}"
            )
    finally:
        tracing.tracing_shutdown()
        connection.creation.destroy_test_db(connection.settings_dict["NAME"], verbosity=0)


if __name__ == "__main__":
    main()
