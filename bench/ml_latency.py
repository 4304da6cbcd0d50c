"""ML pipeline latency and throughput, with same-run baselines.

    python bench/ml_latency.py [--quick]

1. Per-event feature update latency (p50/p99, µs) of the streaming state over the 5,000 real
   EURUSD H1 bars, beside the naive alternative a non-streaming server would run: the batch
   twin recomputed over the trailing window on every bar.
2. Predictions per second, one row at a time and batched (100,000 rows), per model and for the
   whole prediction stage (both models + validator + events).
3. Tick -> validator decision latency (p50/p95/p99) on the memory bus through the real stage
   runner (market-data-events -> ml-features -> feature-events -> ml-predict ->
   prediction-events), beside the same path with pass-through handlers (bus + runner cost only).

The models are trained here on the real bars (walk-forward metrics are printed too). No Django
database is used: the prediction handler gets its models injected, as the runtime would.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import resource
import sys
import tempfile
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradeops.settings.local")

from mlmodels.features import (
    WARMUP_BARS,
    BarInput,
    SymbolFeatureState,
    batch_features,
)
from mlmodels.handlers import FeatureHandler, PredictionHandler, ValidatorSettings
from mlmodels.serving import ServingModel, artifact_load
from mlmodels.training import (
    MODEL_NAMES,
    TrainingConfig,
    artifact_bytes,
    artifact_write,
    load_shipped_bars,
    models_train,
)
from tradeops.bus.memory import MemoryBus
from tradeops.bus.runner import StageRunner
from tradeops.events import Prediction, Signal, Tick, Topic, make_event
from tradeops.stages import Stage


def pct(values, q) -> float:
    return float(np.percentile(np.asarray(values), q))


def line(label: str, value: str) -> None:
    print(f"  {label:<58} {value}")


def bench_features(bars, repeats: int) -> dict:
    rows = list(bars.itertuples())
    inputs = [
        BarInput(
            open_time=r.Index.to_pydatetime(),
            open=r.Open,
            high=r.High,
            low=r.Low,
            close=r.Close,
            volume=float(r.Volume),
        )
        for r in rows
    ]
    stream_ns = []
    for _ in range(repeats):
        state = SymbolFeatureState(timeframe_minutes=60.0)
        clock = time.perf_counter_ns
        for bar in inputs:
            t0 = clock()
            state.update(bar)
            stream_ns.append(clock() - t0)
    # Baseline: recompute the batch twin over the trailing window (just enough bars) every bar.
    window = WARMUP_BARS + 10
    naive_ns = []
    for i in range(window, min(len(bars), window + 400)):
        t0 = time.perf_counter_ns()
        batch_features(bars.iloc[i - window : i + 1])
        naive_ns.append(time.perf_counter_ns() - t0)
    t0 = time.perf_counter_ns()
    batch_features(bars)
    batch_per_row = (time.perf_counter_ns() - t0) / len(bars)
    return {
        "stream_p50": pct(stream_ns, 50) / 1e3,
        "stream_p99": pct(stream_ns, 99) / 1e3,
        "naive_p50": pct(naive_ns, 50) / 1e3,
        "naive_p99": pct(naive_ns, 99) / 1e3,
        "batch_per_row": batch_per_row / 1e3,
    }


def serving_models(result) -> dict[str, ServingModel]:
    """Through the real artifact path: joblib bytes -> file -> verified load (+ fast path compile)."""
    directory = Path(tempfile.mkdtemp(prefix="ml-bench-"))
    models = {}
    for name in MODEL_NAMES:
        version = f"{name}-bench"
        data = artifact_bytes(name=name, version=version, result=result)
        path, sha = artifact_write(directory=directory, name=name, version=version, data=data)
        models[name] = artifact_load(path=path, sha256=sha, name=name, version=version)
    return models


def bench_predictions(models, X: np.ndarray, singles: int, batch_rows: int) -> dict:
    out = {}
    rows = [X[i] for i in range(min(singles, len(X)))]
    for name, model in models.items():
        model.predict_up(rows[0].reshape(1, -1))  # warm
        t0 = time.perf_counter()
        for row in rows[: len(rows) // 4]:
            model.predict_up(row.reshape(1, -1))
        out[f"{name}_sklearn"] = (len(rows) // 4) / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        for row in rows:
            model.predict_up_one(row)
        out[f"{name}_single"] = len(rows) / (time.perf_counter() - t0)
        big = np.tile(X, (batch_rows // len(X) + 1, 1))[:batch_rows]
        t0 = time.perf_counter()
        model.predict_up(big)
        out[f"{name}_batched"] = batch_rows / (time.perf_counter() - t0)
    return out


def synth_ticks(bars, spread: Decimal = Decimal("0.00008")):
    """Four ticks per real H1 bar: open, the extreme nearer the open, the other extreme, close."""
    half = spread / 2
    offsets = (timedelta(seconds=1), timedelta(minutes=20), timedelta(minutes=40), timedelta(minutes=59, seconds=59))
    for r in bars.itertuples():
        o, h, low, c = (Decimal(str(v)) for v in (r.Open, r.High, r.Low, r.Close))
        path = (o, h, low, c) if abs(h - o) < abs(o - low) else (o, low, h, c)
        for offset, mid in zip(offsets, path, strict=True):
            ts = r.Index.to_pydatetime() + offset
            yield make_event(Tick(symbol="EURUSD", bid=mid - half, ask=mid + half, ts=ts), source="bench", key="EURUSD")


class ConstantPredictor:
    """Baseline for the predict stage: one constant Prediction per vector, no model, no validator."""

    def handle(self, event):
        p = event.payload
        prediction = Prediction(
            symbol=p.symbol, ts=p.ts, model="constant", model_version="0", direction=1, probability=0.5
        )
        return [make_event(prediction, source="bench", key=p.symbol)]


class Chain:
    """One memory bus with the two stages under the real StageRunner, and a sink on the outputs."""

    def __init__(self, predict_handler):
        self.bus = MemoryBus()
        features_stage = Stage("ml-features", (Topic.MARKET_DATA,), "feature-engineering", "")
        predict_stage = Stage("ml-predict", (Topic.FEATURES,), "pattern-validator", "")
        self.runners = [
            StageRunner(
                stage=stage,
                handler=handler,
                bus=self.bus,
                subscription=self.bus.subscribe(stage.consumes, stage.group),
            )
            for stage, handler in ((features_stage, FeatureHandler()), (predict_stage, predict_handler))
        ]
        self.sink = self.bus.subscribe([Topic.PREDICTIONS, Topic.COMPLIANCE], "bench-sink")
        self.decision_ns, self.signal_ns, self.all_ns = [], [], []
        self.preempted: list[bool] = []  # the OS took the CPU away during this decision
        self.signals = self.alerts = 0

    def feed(self, tick) -> None:
        clock = time.perf_counter_ns
        switches = resource.getrusage(resource.RUSAGE_SELF).ru_nivcsw
        t0 = clock()
        self.bus.publish(tick)
        for runner in self.runners:
            runner.run_once(timeout=0)
        out = self.sink.poll(timeout=0)
        elapsed = clock() - t0
        preempted = resource.getrusage(resource.RUSAGE_SELF).ru_nivcsw > switches
        self.sink.commit()
        self.all_ns.append(elapsed)
        if out:
            self.decision_ns.append(elapsed)
            self.preempted.append(preempted)
            if any(type(r.event.payload) is Signal for r in out):
                self.signal_ns.append(elapsed)
                self.signals += 1
            self.alerts += sum(r.event.type == "alert.raised" for r in out)

    def figures(self) -> dict:
        def q(values, p):
            return pct(values, p) / 1e3 if values else float("nan")

        slow = [p for ns, p in zip(self.decision_ns, self.preempted, strict=True) if ns > 1_000_000]
        fast = [ns for ns, p in zip(self.decision_ns, self.preempted, strict=True) if not p]
        return {
            "slow": len(slow),
            "slow_preempted": sum(slow),
            "unpreempted_p95": q(fast, 95),
            "ticks": len(self.all_ns),
            "decisions": len(self.decision_ns),
            "signals": self.signals,
            "alerts": self.alerts,
            "all_p50": q(self.all_ns, 50),
            "decision_p50": q(self.decision_ns, 50),
            "decision_p95": q(self.decision_ns, 95),
            "decision_p99": q(self.decision_ns, 99),
            "signal_p50": q(self.signal_ns, 50),
            "signal_p95": q(self.signal_ns, 95),
        }


def bench_bus(ticks, chains: list[Chain]) -> list[dict]:
    """Feed every tick to each chain in turn, so CPU contention hits all of them alike. The
    garbage collector runs between batches of ticks, not inside a timed tick."""
    gc.collect()
    gc.disable()
    try:
        for i, tick in enumerate(ticks):
            for chain in chains:
                chain.feed(tick)
            if i % 1000 == 999:
                gc.collect()
    finally:
        gc.enable()
    return [c.figures() for c in chains]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer repeats and smaller models (smoke run)")
    args = parser.parse_args()
    bars = load_shipped_bars()
    print(f"ML pipeline benchmark - Python {platform.python_version()}, {os.cpu_count()} CPUs (shared)")
    print(f"data: {len(bars)} real EURUSD H1 bars {bars.index[0]:%Y-%m-%d} .. {bars.index[-1]:%Y-%m-%d}")

    print("\n1. feature update per bar (streaming state) vs recomputing the batch twin per bar")
    f = bench_features(bars, repeats=1 if args.quick else 5)
    line("streaming update p50 / p99", f"{f['stream_p50']:.1f} / {f['stream_p99']:.1f} µs")
    line(
        f"baseline: batch twin over the last {WARMUP_BARS + 10} bars, p50 / p99",
        f"{f['naive_p50']:.0f} / {f['naive_p99']:.0f} µs",
    )
    line("ratio (baseline p50 / streaming p50)", f"{f['naive_p50'] / f['stream_p50']:.0f}x")
    line("batch twin over all 5,000 bars, per row (training sets)", f"{f['batch_per_row']:.2f} µs")

    config = TrainingConfig(n_folds=2, gbm_estimators=40) if args.quick else TrainingConfig()
    t0 = time.perf_counter()
    result = models_train(bars, config=config)
    acc = result.metrics["walk_forward"]["accuracy"]
    print(
        f"\n(training: {time.perf_counter() - t0:.1f}s; walk-forward out-of-sample accuracy over "
        f"{result.metrics['walk_forward']['out_of_sample_rows']} bars: supervised {acc['supervised']:.2%}, "
        f"deep {acc['deep']:.2%}, always-up {acc['always_up']:.2%}, previous-sign {acc['previous_sign']:.2%})"
    )
    models = serving_models(result)
    X = batch_features(bars).to_numpy()

    print("\n2. predictions per second")
    p = bench_predictions(models, X, singles=500 if args.quick else 3000, batch_rows=100_000)
    for name in MODEL_NAMES:
        algo = " > ".join(type(s).__name__ for _, s in result.estimators[name].steps)
        line(f"{name} ({algo})", "")
        line("  one at a time, scikit-learn predict_proba per row (baseline)", f"{p[f'{name}_sklearn']:,.0f}/s")
        line("  one at a time, serving fast path (verified numpy)", f"{p[f'{name}_single']:,.0f}/s")
        line("  batched, 100,000 rows in one predict_proba", f"{p[f'{name}_batched']:,.0f}/s")
    handler = PredictionHandler()
    handler.install(models=models, settings=ValidatorSettings())
    fh = FeatureHandler()
    feature_events = [e for t in synth_ticks(bars.iloc[:1200]) for e in fh.handle(t)]
    t0 = time.perf_counter()
    for event in feature_events:
        handler.handle(event)
    stage_rate = len(feature_events) / (time.perf_counter() - t0)
    line("prediction stage (2 models + validator + events), one at a time", f"{stage_rate:,.0f} vectors/s")

    print("\n3. tick -> validator decision on the memory bus (StageRunner, ml-features -> ml-predict)")
    ticks = list(synth_ticks(bars if not args.quick else bars.iloc[:1500]))
    realistic = PredictionHandler()
    realistic.install(models=models, settings=ValidatorSettings())
    gate_open = PredictionHandler()  # PSI still computed; every agreeing pair becomes a Signal
    gate_open.install(models=models, settings=ValidatorSettings(min_confidence=0.5, psi_limit=1e9))
    b, g, base = bench_bus(ticks, [Chain(realistic), Chain(gate_open), Chain(ConstantPredictor())])
    line(
        "default thresholds: ticks / decisions / signals / drift alerts",
        f"{b['ticks']} / {b['decisions']} / {b['signals']} / {b['alerts']}",
    )
    line("any tick, p50 (most only update the open bar)", f"{b['all_p50']:.0f} µs")
    line(
        "bar-closing tick -> validator decision p50 / p95 / p99",
        f"{b['decision_p50']:.0f} / {b['decision_p95']:.0f} / {b['decision_p99']:.0f} µs",
    )
    line(
        f"gate open (conf 0.5, no drift limit): {g['signals']} signals, tick -> Signal p50 / p95",
        f"{g['signal_p50']:.0f} / {g['signal_p95']:.0f} µs",
    )
    line(
        "decisions over 1 ms / of which the OS preempted the process meanwhile",
        f"{b['slow']} / {b['slow_preempted']}",
    )
    line("decision p95 over the decisions that were not preempted", f"{b['unpreempted_p95']:.0f} µs")
    line(
        "baseline: same path, constant predictor, p50 / p95",
        f"{base['decision_p50']:.0f} / {base['decision_p95']:.0f} µs",
    )
    line("ratio tick -> Signal p95 / baseline p95", f"{g['signal_p95'] / base['decision_p95']:.1f}x")
    print(
        "\ntargets (issue 6): >= 1,000 predictions/s one at a time, >= 100,000/s batched, tick -> signal p95 <= 10 ms"
    )


if __name__ == "__main__":
    main()
