"""Surveillance throughput (``manage.py surveil``'s engine) in order events per second, one core.

    python bench/surveil_throughput.py [--seed 101] [--hours 4] [--repeat 3] [--cpu 0] [--compare-root DIR]

Input: a development book (``compliance.scenarios.generator``, a ``DEV_SEEDS`` seed: background
accounts of every profile, market makers, news bursts, every abuse kind and its near-misses;
120,000-320,000 lines per 4 hours depending on the seed, 40-80% order messages and fills, the
rest quotes and close prints), written to a temporary JSONL file. The process is pinned to one
CPU.

Measured on the same file, ``--repeat`` rounds, each round running the three paths one after
the other (interleaved, so a burst of load on the shared machine falls on all three alike), and
the best round of each path kept:
- baseline A: read the lines and ``orjson.loads`` each one (plain JSON parsing, nothing else);
- baseline B: read and decode each line into the typed records (msgspec, validation included);
- surveil: the full batch path, ``surveil_lines``: decode, validate, run all ten detectors,
  serialise the alerts;
- ``manage.py surveil FILE --output FILE``: the command itself, in a child process (pinned to
  the same CPU), Django's start-up and the alerts file included, and beside it the same
  command on an empty file (its start-up alone);
- with ``--compare-root DIR`` (another checkout, e.g. ``git archive main | tar -x -C DIR``),
  the same two command runs from that checkout, in the same rounds: a same-run before/after.
"Order events" are order messages (new/modify/cancel) and fills; the rate divides them by the
time of the whole run, quotes and closes included (so it is conservative). Two clocks: wall
time, and the process's own CPU time, the child's for the command (what one core did for it;
the shared machine's other work inflates the wall time of whichever path it lands on). The
load average is printed at the start and the end. No Django in this process: the hot path imports none.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
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


def _children_cpu() -> float:
    """CPU seconds (user + system) of the child processes that have ended."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def rounds(repeat, paths):
    """Run the paths in turn ``repeat`` times; per path the best (wall, cpu) seconds and a result."""
    best = {name: [float("inf"), float("inf"), None] for name, _fn in paths}
    for _ in range(repeat):
        for name, fn in paths:
            wall0, cpu0, child0 = time.perf_counter(), time.process_time(), _children_cpu()
            result = fn()
            wall = time.perf_counter() - wall0
            cpu = time.process_time() - cpu0 + _children_cpu() - child0
            entry = best[name]
            entry[0] = min(entry[0], wall)
            entry[1] = min(entry[1], cpu)
            entry[2] = result
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=DEV_SEEDS[0])
    parser.add_argument("--hours", type=float, default=4.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cpu", type=int, default=0)
    parser.add_argument("--compare-root", help="another checkout whose manage.py surveil is timed in the same rounds")
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

    root = Path(__file__).resolve().parent.parent
    empty = Path(path).with_suffix(".empty.jsonl")
    empty.write_bytes(b"")
    out = Path(path).with_suffix(".alerts.jsonl")

    def command(source, at=root):
        def run():
            argv = [sys.executable, str(at / "manage.py"), "surveil", str(source), "--output", str(out)]
            done = subprocess.run(argv, cwd=at, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            if done.returncode:
                raise SystemExit(f"manage.py surveil failed ({done.returncode}): {done.stderr.decode()[-2000:]}")

        return run

    paths = [
        ("baseline A: orjson.loads per line", plain_json),
        ("baseline B: typed decode (msgspec)", typed_decode),
        ("surveil: decode + 10 detectors + alerts", surveil),
        ("manage.py surveil on an empty file", command(empty)),
        ("manage.py surveil (whole command)", command(path)),
    ]
    if args.compare_root:
        other = Path(args.compare_root).resolve()
        paths += [
            ("compare: surveil on an empty file", command(empty, other)),
            ("compare: surveil (whole command)", command(path, other)),
        ]
    load_start = os.getloadavg()
    best = rounds(args.repeat, paths)
    load_end = os.getloadavg()
    os.unlink(path)
    empty.unlink()
    out.unlink(missing_ok=True)
    (t_json, c_json, _), (t_typed, c_typed, _), (t_surveil, c_surveil, stats) = list(best.values())[:3]
    (t_start, c_start, _), (t_cmd, c_cmd, _) = list(best.values())[3:5]

    print(
        f"python {platform.python_version()} on {platform.machine()}, pinned to CPU {args.cpu} "
        f"(machine: {os.cpu_count()} cores shared with other work); load average "
        f"{load_start[0]:.2f} at the start, {load_end[0]:.2f} at the end"
    )
    print(
        f"input: seed {args.seed}, {args.hours} h, {n_lines:,} lines ({n_order_events:,} order events), "
        f"{size_mb:.1f} MB; alerts: {stats.alerts}; best of {args.repeat} interleaved rounds"
    )
    print(f"{'path':<44}{'wall s':>9}{'cpu s':>9}{'order ev/s wall':>17}{'order ev/s cpu':>16}")
    for name, (wall, cpu, _r) in best.items():
        print(f"{name:<44}{wall:>9.3f}{cpu:>9.3f}{n_order_events / wall:>17,.0f}{n_order_events / cpu:>16,.0f}")
    print(
        f"surveil / baseline A: {t_surveil / t_json:.2f}x wall, {c_surveil / c_json:.2f}x cpu; "
        f"detectors' share of surveil cpu: {(c_surveil - c_typed) / c_surveil:.0%}"
    )
    print(
        f"manage.py surveil / baseline A: {t_cmd / t_json:.2f}x wall, {c_cmd / c_json:.2f}x cpu; "
        f"its start-up (empty file): {t_start:.3f} s wall, {c_start:.3f} s cpu; without it "
        f"{n_order_events / max(t_cmd - t_start, 1e-9):,.0f} order events/s wall"
    )
    if args.compare_root:
        (t_ostart, c_ostart, _), (t_ocmd, c_ocmd, _) = list(best.values())[5:7]
        print(
            f"against {args.compare_root}: start-up {c_ostart:.3f} -> {c_start:.3f} s cpu "
            f"({t_ostart:.3f} -> {t_start:.3f} s wall); whole command {c_ocmd:.3f} -> {c_cmd:.3f} s cpu "
            f"({n_order_events / c_ocmd:,.0f} -> {n_order_events / c_cmd:,.0f} order events/s cpu)"
        )
    for what, wall, cpu in (("surveil_lines", t_surveil, c_surveil), ("manage.py surveil", t_cmd, c_cmd)):
        for clock, seconds in (("wall", wall), ("cpu", cpu)):
            verdict = "meets" if n_order_events / seconds >= 100_000 else "MISSES"
            print(f"{what}: target >= 100,000 order events/s on one core ({clock} clock): {verdict}")


if __name__ == "__main__":
    main()
