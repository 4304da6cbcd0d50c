"""Surveillance throughput (``manage.py surveil``'s engine) in order events per second, one core.

    python bench/surveil_throughput.py [--seed 101] [--hours 4] [--repeat 3] [--cpu 0]

Input: a development book (``compliance.scenarios.generator``, a ``DEV_SEEDS`` seed: background
accounts of every profile, market makers, news bursts, every abuse kind and its near-misses;
120,000-320,000 lines per 4 hours depending on the seed, 40-80% order messages and fills, the
rest quotes and close prints), written to a temporary JSONL file. The process is pinned to one
CPU.

Measured on the same file, best of ``--repeat`` runs:
- baseline A: read the lines and ``orjson.loads`` each one (plain JSON parsing, nothing else);
- baseline B: read and decode each line into the typed records (msgspec, validation included);
- surveil: the full batch path, ``surveil_lines``: decode, validate, run all ten detectors,
  serialise the alerts.
"Order events" are order messages (new/modify/cancel) and fills; the rate divides them by the
wall time of the whole run, quotes and closes included (so it is conservative).
No Django: the hot path imports none.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import orjson

from compliance.scenarios.generator import DEV_SEEDS, ScenarioConfig, generate
from compliance.surveillance.batch import surveil_lines
from compliance.surveillance.engine import SurveillanceEngine
from compliance.surveillance.records import record_decoder


def best_of(repeat, fn):
    times = []
    result = None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=DEV_SEEDS[0])
    parser.add_argument("--hours", type=float, default=4.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cpu", type=int, default=0)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})

    rows, _episodes = generate(ScenarioConfig(seed=args.seed, hours=args.hours))
    with tempfile.NamedTemporaryFile("wb", suffix=".jsonl", delete=False) as fh:
        for row in rows:
            fh.write(orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE))
        path = fh.name
    size_mb = os.path.getsize(path) / 1e6
    n_lines = len(rows)
    n_order_events = sum(1 for r in rows if r["type"] in ("order", "fill"))
    del rows

    def plain_json():
        with open(path, "rb") as src:
            for line in src:
                orjson.loads(line)

    def typed_decode():
        decode = record_decoder.decode
        with open(path, "rb") as src:
            for line in src:
                decode(line)

    def surveil():
        alerts = []
        with open(path, "rb") as src:
            stats = surveil_lines(src, engine=SurveillanceEngine(), emit=alerts.append)
        return stats

    t_json, _ = best_of(args.repeat, plain_json)
    t_typed, _ = best_of(args.repeat, typed_decode)
    t_surveil, stats = best_of(args.repeat, surveil)
    os.unlink(path)

    print(
        f"python {platform.python_version()} on {platform.machine()}, pinned to CPU {args.cpu} "
        f"(machine: {os.cpu_count()} cores shared with other work)"
    )
    print(
        f"input: seed {args.seed}, {args.hours} h, {n_lines:,} lines ({n_order_events:,} order events), "
        f"{size_mb:.1f} MB; alerts: {stats.alerts}; best of {args.repeat}"
    )
    print(f"{'path':<44}{'seconds':>9}{'lines/s':>12}{'order ev/s':>12}")
    for name, t in (
        ("baseline A: orjson.loads per line", t_json),
        ("baseline B: typed decode (msgspec)", t_typed),
        ("surveil: decode + 10 detectors + alerts", t_surveil),
    ):
        print(f"{name:<44}{t:>9.3f}{n_lines / t:>12,.0f}{n_order_events / t:>12,.0f}")
    print(
        f"surveil / baseline A time ratio: {t_surveil / t_json:.2f}x; "
        f"detectors' share of surveil time: {(t_surveil - t_typed) / t_surveil:.0%}"
    )
    verdict = "meets" if n_order_events / t_surveil >= 100_000 else "MISSES"
    print(f"target >= 100,000 order events/s on one core: {verdict}")


if __name__ == "__main__":
    main()
