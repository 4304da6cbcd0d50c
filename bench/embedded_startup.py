"""The embedded run's start-up work on its dataset, in process: what ``manage.py run_embedded``
does before its first event with the EURUSD bars (``replay_plan``, ``features_warmed``,
``embedded_source`` up to its first event, ``REPLAY_LIMIT=1``), and how many times the CSV is
parsed, best of ``--rounds`` after one warm-up round (imports and caches out of the figure).

    python bench/embedded_startup.py [--db var/tradeops.sqlite3] [--rounds 15] [--root PATH]

``--db``: a SQLite file of the embedded shape (migrated, seeded, models trained: what
``scripts/run.sh`` leaves), fresh or after a run (then the plan resumes and the features warm up);
it is only read. Without one (the default path absent) the bench says so and measures nothing.
``--root`` runs another tree's code (``git archive <commit> | tar -x -C /tmp/x``) for a
before-and-after in the same rounds.
"""

from __future__ import annotations

import argparse
import inspect
import os
import sys
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", default=str(Path(__file__).resolve().parent.parent / "var" / "tradeops.sqlite3"))
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--root", default=str(Path(__file__).resolve().parent.parent))
    args = parser.parse_args()
    db = str(Path(args.db).resolve())
    if not Path(db).is_file():
        print(f"embedded_startup: no embedded database at {db} (bash scripts/run.sh makes one): nothing measured")
        return
    root = str(Path(args.root).resolve())
    sys.path.insert(0, root)
    os.chdir(root)  # Celery's app set-up puts the working directory first on sys.path
    os.environ["DJANGO_SETTINGS_MODULE"] = "tradeops.settings.local"
    os.environ["DATABASE_URL"] = f"sqlite:///{db}"
    os.environ.setdefault("REPLAY_QUARANTINE", "/tmp/embedded_startup_quarantine.jsonl")
    import django

    django.setup()
    import trading.marketdata.sources as sources
    from workers.collector import embedded_source
    from workers.replay_checkpoint import features_warmed, replay_plan

    reads = []
    read_ohlc_csv = sources.read_ohlc_csv
    sources.read_ohlc_csv = lambda *a, **k: reads.append(1) or read_ohlc_csv(*a, **k)  # counts the parses

    def once() -> tuple[float, float, int, object]:
        reads.clear()
        started, started_cpu = time.perf_counter(), time.process_time()
        plan = replay_plan(limit=1)
        features_warmed(plan)
        read = getattr(plan, "read", None)  # a tree before 2026-12-06 has none
        shares = read is not None and "dataset" in inspect.signature(embedded_source).parameters
        source = embedded_source(after=plan.after, limit=1, **({"dataset": read} if shares else {}))
        next(source)
        source.close()
        return time.perf_counter() - started, time.process_time() - started_cpu, len(reads), plan.after

    once()
    runs = [once() for _ in range(args.rounds)]
    walls, cpus = sorted(r[0] for r in runs), sorted(r[1] for r in runs)
    print(
        f"{root} (resuming after {runs[0][3]}): {runs[0][2]} parse(s) of the CSV, best {walls[0] * 1e3:.1f} ms wall "
        f"{cpus[0] * 1e3:.1f} ms CPU, median {walls[len(walls) // 2] * 1e3:.1f} ms wall ({args.rounds} rounds)"
    )


if __name__ == "__main__":
    main()
