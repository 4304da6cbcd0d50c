"""What metrics, tracing and JSON logs add to the order path and to a pipeline replay (issue 17).

Every mode runs in the same process, in alternating rounds (the order of the modes turns each
round) so the machine's noise falls on all alike; p50 and p99 over all rounds, and the ratio to
OFF at p50 (target: under 1.10), also per round so the spread is visible.

- OFF: ``METRICS_ENABLED`` off (the runners have no meter, the worker counts nothing), tracing
  off (the runner still sets the event's traceparent in a context variable for the outbox and
  the logs: that is not switchable), plain log lines.
- ON: metrics on (the runners' per-batch totals, the worker's order path histograms and
  counters, and the ``metrics`` stage in the replay), tracing on with the real SDK, a
  ``BatchSpanProcessor`` and the documented sampling (``TRACING_SAMPLE_RATIO``, 0.01 unless
  ``--ratio``; the exporter discards, so no collector's network time is counted, but spans are
  built, ended and handed to the export thread), database calls traced in sampled traces, JSON
  log lines.
- ON-100% (``--full-sampling``): ON with every trace sampled, to show what sampling buys.
- METRICS and TRACING (``--split``): ON's two halves alone, to say which costs what: METRICS is
  metrics on, tracing off, plain lines; TRACING is tracing (the ratio ON uses) and JSON lines,
  metrics off.

Order path: a ``signal.validated`` event through the execution stage's real ``StageRunner`` on a
memory bus (publish, poll, handle, commit), the handler calling ``ExecutionWorker.execute`` (gate,
paper broker, the order's one statement on PostgreSQL; the set-up of ``bench/order_path.py``) and
logging one line per order; timed from publish to commit. Each signal starts its own trace, so
the ratio decides which are sampled. Pipeline replay: the real EURUSD bars and derived ticks
(``workers.collector.embedded_source``) through the ``ml-features`` stage (and ``metrics`` when
metrics are on) on the memory bus, lock-step (``batch_size=1``, as the embedded run: every
per-batch cost is a per-event cost), timing each source event until its consequences settled.
The features stage is the cheapest handler (~20 us a tick), so this is the strictest case.

``--paired``: instead of a round per mode, every mode has its own pipeline (and, for the order
path, its own execution stage runner in front of the one worker) built once per round, and each
source event (each order) is run through every mode's pipeline in turn, the order of the modes
turning event by event. The samples of the modes are then taken microseconds apart, so the
machine's drift (other processes, frequency, caches) falls on all of them alike; the per-round
ratios show what is left of the spread. Tracing is switched per event by pointing the tracer at
the one SDK provider or at nothing (``tracing._tracer``, what ``tracing_enabled`` reads); metrics
per runner (a runner built with ``METRICS_ENABLED`` off has no meter) and per worker
(``meter.enabled``); the log format per event (the handler's formatter).

    python bench/observability_overhead.py [--orders 2000] [--bars 2000] [--rounds 4]
                                           [--ratio 0.01] [--full-sampling] [--split] [--paired]
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from django.conf import settings
from django.db import connection

from bench.order_path import T0, intent, setup_world
from tradeops.bus.memory import MemoryBus
from tradeops.bus.runner import EmbeddedDispatcher, StageRunner, handler_load, pipeline_run
from tradeops.bus.tracing import sample_ratio_set, traceparent_new
from tradeops.core.db_roles import database_owner, runtime_grants_apply
from tradeops.events import Signal, make_event
from tradeops.observability import tracing
from tradeops.observability.events import MetricsHandler
from tradeops.observability.logs import JsonFormatter, PlainFormatter
from tradeops.stages import Stage, stage_get


class Discard:
    """A span exporter that accepts and drops (the export thread's cost stays in the run)."""

    def __init__(self) -> None:
        self.spans = 0

    def export(self, spans):
        from opentelemetry.sdk.trace.export import SpanExportResult

        self.spans += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self):
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


EXPORTED = Discard()


def mode_set(mode: str, handler: logging.Handler, ratio: float) -> None:
    tracing.tracing_shutdown()
    traced = mode in ("ON", "ON-100%", "TRACING")
    settings.METRICS_ENABLED = mode in ("ON", "ON-100%", "METRICS")
    handler.setFormatter(JsonFormatter() if traced else PlainFormatter())
    if traced:
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        sample_ratio_set(1.0 if mode == "ON-100%" else ratio)
        tracing.tracing_setup(service_name="bench", exporter=EXPORTED)
        # a batch processor, as in production (tracing_setup's exporter= path is synchronous, for tests)
        tracing._provider._active_span_processor._span_processors = (BatchSpanProcessor(EXPORTED),)


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


class OrderHandler:
    """The execution stage's handler for the bench: a signal's intent straight to the worker."""

    def __init__(self, worker, account, log: logging.Logger) -> None:
        self.worker, self.account, self.log = worker, account, log
        self.n = 0

    def handle(self, event):
        i = intent(self.account.pk, self.n, T0 + timedelta(microseconds=self.n))
        order = self.worker.execute(i)
        assert order.status == "FILLED", order.reject_reason
        self.log.info("order %s %s", order.client_order_id, order.status, extra={"account": self.account.pk})
        return []


def order_round(handler: OrderHandler, n0: int, count: int) -> list[float]:
    handler.worker.meter.enabled = settings.METRICS_ENABLED
    bus = MemoryBus()
    stage = Stage("execution", ("prediction-events",), "execution-worker", "bench")
    runner = StageRunner(stage=stage, handler=handler, bus=bus, subscription=bus.subscribe(stage.consumes, stage.group))
    samples = []
    for n in range(n0, n0 + count):
        handler.n = n
        signal = signal_for(handler, n)
        start = time.perf_counter()
        bus.publish(signal)
        assert runner.run_once(max_records=10, timeout=0) == 1
        samples.append(time.perf_counter() - start)
    return samples


def replay_round(events: list) -> list[float]:
    metrics_on = settings.METRICS_ENABLED
    stages = [stage_get("ml-features")] + ([stage_get("metrics")] if metrics_on else [])
    samples: list[float] = []
    last = [None]

    def timed():
        for event in events:
            now = time.perf_counter()
            if last[0] is not None:
                samples.append(now - last[0])
            last[0] = time.perf_counter()
            yield event
        samples.append(time.perf_counter() - last[0])

    handlers = {"metrics": MetricsHandler()} if metrics_on else {}
    pipeline_run(timed(), stages=stages, handlers=handlers, bus=MemoryBus(), batch_size=1)
    return samples


MODES = {  # name: (metrics on, traced: tracing and JSON lines, ratio: None = --ratio)
    "OFF": (False, False, None),
    "ON": (True, True, None),
    "ON-100%": (True, True, 1.0),
    "METRICS": (True, False, None),
    "TRACING": (False, True, None),
}


class Switch:
    """Puts the process in one mode's state between two events (paired runs): the tracer, the
    sampling ratio, the log format. Metrics are not switched here: each mode has its own runners."""

    def __init__(self, handler: logging.Handler, ratio: float) -> None:
        mode_set("ON", handler, ratio)  # one SDK provider with its batch processor for the whole run
        self.tracer = tracing._tracer
        self.handler, self.ratio = handler, ratio
        self.json, self.plain = JsonFormatter(), PlainFormatter()
        self.current_ratio = ratio

    def set(self, mode: str) -> None:
        _, traced, ratio = MODES[mode]
        tracing._tracer = self.tracer if traced else None
        self.handler.formatter = self.json if traced else self.plain
        ratio = self.ratio if ratio is None else ratio
        if traced and ratio != self.current_ratio:
            sample_ratio_set(ratio)
            self.current_ratio = ratio


def replay_dispatcher(mode: str) -> EmbeddedDispatcher:
    """The lock-step replay's pipeline for ``mode`` (what ``pipeline_run`` builds), to be pumped
    one source event at a time."""
    metrics_on = MODES[mode][0]
    settings.METRICS_ENABLED = metrics_on  # read by each runner when built (its meter or none)
    stages = [stage_get("ml-features")] + ([stage_get("metrics")] if metrics_on else [])
    handlers = {"metrics": MetricsHandler()} if metrics_on else {}
    bus = MemoryBus()
    runners = [
        StageRunner(stage=s, handler=handlers.get(s.name) or handler_load(s), bus=bus, subscription=None)
        for s in stages
    ]
    return EmbeddedDispatcher(runners, bus=bus)


def replay_paired(events: list, modes: list[str], switch: Switch) -> dict[str, list[float]]:
    """One round: every source event through every mode's pipeline, the modes' order turning."""
    dispatchers = [replay_dispatcher(m) for m in modes]
    samples: dict[str, list[float]] = {m: [] for m in modes}
    lists = [samples[m] for m in modes]
    k = len(modes)
    clock = time.perf_counter
    for i, event in enumerate(events):
        one = (event,)
        for j in range(k):
            m = (i + j) % k
            switch.set(modes[m])
            dispatcher = dispatchers[m]
            start = clock()
            dispatcher.publish(one)
            dispatcher.pump()
            lists[m].append(clock() - start)
    for dispatcher in dispatchers:
        dispatcher.close()
    switch.set("OFF")
    return samples


def order_paired(
    handler: OrderHandler, n0: int, count: int, modes: list[str], switch: Switch
) -> dict[str, list[float]]:
    """One round of the order path: each mode its own execution stage runner (with or without a
    meter) on its own memory bus in front of the one worker; order by order the modes take turns."""
    stage = Stage("execution", ("prediction-events",), "execution-worker", "bench")
    setups = []
    for m in modes:
        settings.METRICS_ENABLED = MODES[m][0]
        bus = MemoryBus()
        runner = StageRunner(
            stage=stage, handler=handler, bus=bus, subscription=bus.subscribe(stage.consumes, stage.group)
        )
        setups.append((m, bus, runner))
    samples: dict[str, list[float]] = {m: [] for m in modes}
    k = len(modes)
    n = n0
    for i in range(count):
        for j in range(k):
            m, bus, runner = setups[(i + j) % k]
            switch.set(m)
            handler.worker.meter.enabled = MODES[m][0]
            handler.n = n
            signal = signal_for(handler, n)
            start = time.perf_counter()
            bus.publish(signal)
            assert runner.run_once(max_records=10, timeout=0) == 1
            samples[m].append(time.perf_counter() - start)
            n += 1
    switch.set("OFF")
    return samples


def signal_for(handler: OrderHandler, n: int):
    return make_event(
        Signal(
            signal_id=f"s{n}",
            symbol="EURUSD",
            ts=T0,
            side="BUY" if n % 2 == 0 else "SELL",
            confidence=0.6,
            price=intent(handler.account.pk, n, T0).reference_price,
            model_versions={},
            algo_id="bench",
        ),
        source="bench",
        key="EURUSD",
        traceparent=traceparent_new(),  # a trace per signal, sampled as the ratio says
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=2000, help="orders per round and mode")
    parser.add_argument("--bars", type=int, default=2000, help="real bars replayed per round and mode (x5 events)")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--ratio", type=float, default=None, help="sampling ratio ON (default TRACING_SAMPLE_RATIO)")
    parser.add_argument("--full-sampling", action="store_true", help="also ON with every trace sampled")
    parser.add_argument("--split", action="store_true", help="also metrics alone and tracing + JSON logs alone")
    parser.add_argument("--paired", action="store_true", help="the modes take turns event by event (see doc)")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("needs PostgreSQL: set DATABASE_URL")
    ratio = settings.TRACING_SAMPLE_RATIO if args.ratio is None else args.ratio
    os.environ["REPLAY_LIMIT"] = str(args.bars)
    os.environ.setdefault("REPLAY_QUARANTINE", os.devnull)
    from workers.collector import embedded_source

    events = list(embedded_source())
    log = logging.getLogger("bench.observability")
    handler = logging.StreamHandler(io.TextIOWrapper(open(os.devnull, "wb")))  # noqa: SIM115
    log.handlers[:] = [handler]
    log.propagate = False
    log.setLevel(logging.INFO)
    modes = ["OFF", "ON"] + (["ON-100%"] if args.full_sampling else []) + (["METRICS", "TRACING"] if args.split else [])

    old_name = connection.settings_dict["NAME"]
    connection.settings_dict["TEST"]["NAME"] = "test_tradeops_bench_obs"  # not order_path's: it may run meanwhile
    with database_owner():
        connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
        runtime_grants_apply()
    try:
        _, account, _, worker = setup_world()
        worker.execute(intent(account.pk, 1, T0))  # creates the position row
        orders = OrderHandler(worker, account, log)
        mode_set("OFF", handler, ratio)
        order_round(orders, 10, 300)  # warm-up
        results = {(path, m): [] for path in ("orders", "replay") for m in modes}
        per_round = {(path, m): [] for path in ("orders", "replay") for m in modes}
        n = 1000
        loads = [os.getloadavg()[0]]
        switch = Switch(handler, ratio) if args.paired else None
        for r in range(args.rounds):
            if switch is not None:
                turn = modes[r % len(modes) :] + modes[: r % len(modes)]
                for path, got in (
                    ("orders", order_paired(orders, n, args.orders, turn, switch)),
                    ("replay", replay_paired(events, turn, switch)),
                ):
                    for mode, s in got.items():
                        results[(path, mode)] += s
                        per_round[(path, mode)].append(pct(s, 0.5))
                n += args.orders * len(modes)
                loads.append(os.getloadavg()[0])
                continue
            turn = modes[r % len(modes) :] + modes[: r % len(modes)]
            for mode in turn:
                mode_set(mode, handler, ratio)
                s = order_round(orders, n, args.orders)
                n += args.orders
                results[("orders", mode)] += s
                per_round[("orders", mode)].append(pct(s, 0.5))
                s = replay_round(events)
                results[("replay", mode)] += s
                per_round[("replay", mode)].append(pct(s, 0.5))
            loads.append(os.getloadavg()[0])
        mode_set("OFF", handler, ratio)
        sample_ratio_set(None)
        print(
            ("paired (modes take turns event by event); " if args.paired else "")
            + f"{args.rounds} rounds of {args.orders} orders and {len(events)} replayed events per mode; "
            f"sampling ON {ratio:g}; spans exported {EXPORTED.spans}; load average per round "
            + " -> ".join(f"{x:.2f}" for x in loads)
            + f"; {os.cpu_count()} CPUs shared"
        )
        for path, unit, scale in (("orders", "ms", 1e3), ("replay", "us", 1e6)):
            off = results[(path, "OFF")]
            p50_off, p99_off = pct(off, 0.5) * scale, pct(off, 0.99) * scale
            print(f"{path:7} OFF      n={len(off):6} p50 {p50_off:9.3f} {unit}  p99 {p99_off:10.3f} {unit}")
            for mode in modes[1:]:
                on = results[(path, mode)]
                p50_on, p99_on = pct(on, 0.5) * scale, pct(on, 0.99) * scale
                ratios = [a / b for a, b in zip(per_round[(path, mode)], per_round[(path, "OFF")], strict=True)]
                rounds = " ".join(f"{x:.3f}" for x in ratios)
                print(
                    f"{path:7} {mode:8} n={len(on):6} p50 {p50_on:9.3f} {unit}  p99 {p99_on:10.3f} {unit}"
                    f" | /OFF p50 {p50_on / p50_off:.3f} (rounds: {rounds}; median {statistics.median(ratios):.3f})"
                    f"  p99 {p99_on / p99_off:.3f}  mean {statistics.fmean(on) / statistics.fmean(off):.3f}"
                )
    finally:
        tracing.tracing_shutdown()
        with database_owner():
            connection.creation.destroy_test_db(old_name, verbosity=0, keepdb=False)


if __name__ == "__main__":
    main()
