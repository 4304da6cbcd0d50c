"""The market monitor alone: ``MarketMonitor.inspect`` over pre-built tick envelopes (ticks/s).

    python bench/market_monitor.py [--ticks 200000] [--repeat 5] [--root PATH]

Three feeds, generated and wrapped in envelopes before timing starts and frozen out of the
garbage collector, so the figure is the monitor's own work per event:

- ``one``: EURUSD alone, ``synthetic_ticks``' default gaps and spikes (the figure of
  docs/market-data.md's "alert's fields" round, 2026-12-06);
- ``clean``: 12 symbols without gaps (what a healthy feed costs: the fast path, and the look at
  every feed once per second of event time);
- ``gappy``: 12 symbols with a gap on 2% of ticks (a findings-heavy feed: flags, figures, the
  per-symbol-and-flag alert throttle and what it keeps of the findings it suppresses).

Each figure is the best of ``--repeat`` rounds (a fresh monitor per round), in wall time and in
the process's CPU time (steadier on a shared, loaded machine). ``--root`` imports the
monitor from another tree (``git archive <commit> | tar -x -C /tmp/x``) in the same process
set-up, for a before-and-after in the same rounds; run it once per tree, alternately.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ticks", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--root", default=str(Path(__file__).resolve().parent.parent))
    args = parser.parse_args()
    root = str(Path(args.root).resolve())
    sys.path.insert(0, root)
    os.chdir(root)  # Celery's app set-up puts the working directory first on sys.path
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradeops.settings.local")

    from tradeops.events import make_event
    from trading.marketdata.monitor import MarketMonitor, MonitorConfig
    from trading.marketdata.sources import synthetic_ticks

    symbols = ["EURUSD", "GBPUSD", "USDJPY", "USDCHF", "AUDUSD", "USDCAD", "NZDUSD", "EURGBP", "EURJPY"]
    symbols += ["GBPJPY", "XAUUSD", "EURCHF"]

    def feed(names: list[str], gap_probability: float) -> list:
        per = args.ticks // len(names)
        ticks = [
            t
            for i, s in enumerate(names)
            for t in synthetic_ticks(s, seed=7 + i, count=per, gap_probability=gap_probability)
        ]
        ticks.sort(key=lambda t: t.ts)
        return [make_event(t, source="bench", key=t.symbol) for t in ticks]

    feeds = {"one": feed(["EURUSD"], 0.0005), "clean": feed(symbols, 0.0), "gappy": feed(symbols, 0.02)}
    gc.freeze()
    print(f"monitor from {sys.modules['trading.marketdata.monitor'].__file__}")
    for name, events in feeds.items():
        best, best_cpu, alerts, flagged = float("inf"), float("inf"), 0, 0
        for _ in range(args.repeat):
            inspect = MarketMonitor(MonitorConfig()).inspect
            started, started_cpu = time.perf_counter(), time.process_time()
            verdicts = [inspect(e) for e in events]
            best_cpu = min(best_cpu, time.process_time() - started_cpu)
            best = min(best, time.perf_counter() - started)
            alerts = sum(len(v.alerts) for v in verdicts)
            flagged = sum(1 for v in verdicts if v.flags)
            del verdicts
        print(
            f"{name:6} {len(events):,} ticks, {flagged:,} flagged, {alerts:,} alerts: "
            f"{len(events) / best:,.0f} ticks/s wall, {len(events) / best_cpu:,.0f} on CPU time "
            f"(best of {args.repeat}: {best * 1e6 / len(events):.2f} / {best_cpu * 1e6 / len(events):.2f} us/tick)"
        )


if __name__ == "__main__":
    main()
