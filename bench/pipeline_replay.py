"""The embedded pipeline flat out over the real EURUSD bars, every stage on, everything persisted.

    python bench/pipeline_replay.py [--bars 5000] [--db sqlite,postgres] [--repeat 1]

What ``manage.py run_embedded --no-serve`` does, timed: the shipped EURUSD H1 bars (the
``backtesting`` package; ``--bars`` of them) as bars and derived ticks through the collector and
market monitor, then every registered stage on the memory bus in lock-step (``batch_size=1``:
each source event's consequences settle before the next): features, both models and the
validator, the execution worker on the replay clock with the paper broker (every order, fill,
decision, position, snapshot and audit record persisted), surveillance (pre-trade decision
records, alerts), the audit trail, live push; the outbox relayed into the same bus.

Figures, each beside the same-run baseline:

- baseline: collector -> null sink (reading the bars, deriving ticks, the collector and the
  market monitor, each event counted and dropped): source events/s and CPU per event;
- pipeline: source events/s (wall) and CPU per source event (this process), per database
  (SQLite file; PostgreSQL with the memory bus), with the CPU split per stage;
- what was persisted (orders, fills, pre-trade decisions, audit records), checked: every order
  has its decision and its audit records, and the chain verifies;
- the reference caches' hit ratio during the run (issue 17's target: above 85 % in a replay),
  per cache and overall, from the caches' own hit and miss counts in the child process.

Each database run happens in a child process with a fresh database (SQLite: a temporary file;
PostgreSQL: ``test_tradeops_bench_pipeline``, created and dropped by the owner role, the run as the
runtime role), migrated, seeded and with
both models trained on the bars (default settings) and activated, as ``scripts/run.sh`` does.
The machine is shared: the load average is printed; compare ratios, not absolutes.

Settings: ``tradeops.settings.local`` (the embedded run's) with ``DEBUG`` off, as production runs
(since 2026-12-04 night; printed with the figures). With ``DEBUG`` on, that module's default and
``scripts/run.sh``'s, Django's debug cursor logs every statement and, on SQLite, quotes its
parameters through a ``SELECT QUOTE(?, ...)`` of its own: ~2 us of CPU per source event of a
2,000-bar replay (bench/README.md, "DEBUG, the traceparent context and the relay"). Earlier
figures were taken with it on; ``DEBUG=True python bench/pipeline_replay.py ...`` runs as they did.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# BENCH_DATABASE_URL, else DATABASE_URL (the one every other bench reads; scripts/cluster.sh env
# sets it to the cluster's primary), else the local PostgreSQL of scripts/services.sh.
PG_URL = (
    os.environ.get("BENCH_DATABASE_URL")
    or os.environ.get("DATABASE_URL", "").strip()
    or "postgres://tradeops:tradeops@127.0.0.1:5432/tradeops"
)
OWNER_URL = os.environ.get("MIGRATE_DATABASE_URL", "postgres://tradeops_owner:tradeops_owner@127.0.0.1:5432/tradeops")


class Timed:
    """A handler with the CPU time of its ``handle``/``handle_batch``/``close`` counted."""

    def __init__(self, inner, totals: dict, name: str):
        self._inner, self._totals, self._name = inner, totals, name
        totals.setdefault(name, 0.0)

    def __getattr__(self, attr):
        value = getattr(self._inner, attr)
        if attr not in ("handle", "handle_batch", "close"):
            return value
        totals, name = self._totals, self._name

        def timed(*args, **kwargs):
            start = time.process_time()
            try:
                return value(*args, **kwargs)
            finally:
                totals[name] += time.process_time() - start

        return timed


def child(args) -> dict:
    """One database: set up, baseline, the pipeline; returns the figures as a dict."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradeops.settings.local")
    os.environ.setdefault("DEBUG", "False")  # as production (module doc); DEBUG=True as before 2026-12-04 night
    os.environ["REPLAY_LIMIT"] = str(args.bars)
    os.environ.pop("EXECUTION_PAPER_JOURNAL_DIR", None)
    os.environ.pop("REDIS_URL", None)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from tradeops.core.db_roles import database_owner

    old_name = connection.settings_dict["NAME"]
    if connection.vendor == "postgresql":
        with database_owner():  # the owner creates and migrates; the run is the runtime role's, as in production
            connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    else:
        call_command("migrate", verbosity=0, interactive=False)
    try:
        return _measure(args)
    finally:
        if connection.vendor == "postgresql":
            with database_owner():
                connection.creation.destroy_test_db(old_name, verbosity=0, keepdb=False)


def _measure(args) -> dict:
    import gc
    import io

    from django.core.management import call_command
    from django.db import connection

    from tradeops.audit.models import AuditRecord
    from tradeops.audit.verify import audit_verify
    from tradeops.bus import runner
    from tradeops.bus.memory import MemoryBus
    from tradeops.bus.runner import handler_load, pipeline_run
    from tradeops.core.clock import ReplayClock
    from tradeops.outbox.relay import OutboxRelay
    from tradeops.stages import STAGES
    from workers.collector import embedded_source
    from workers.execution import execution_stage

    call_command("seed", stdout=io.StringIO())
    call_command(  # as scripts/run.sh does: the demo models have no edge and are activated saying so
        "train_models",
        "--activate",
        "--allow-no-edge",
        "--reason",
        "benchmark of the pipeline's throughput; no edge claimed",
        stdout=io.StringIO(),
        stderr=io.StringIO(),
    )

    # Baseline: the source alone (collector -> null sink).
    start_wall, start_cpu = time.perf_counter(), time.process_time()
    baseline_events = sum(1 for _ in embedded_source())
    baseline = (time.perf_counter() - start_wall, time.process_time() - start_cpu)

    from tradeops.observability.cache import cache_stats

    cache_before = cache_stats()  # before the stages are built: their first loads are misses of the run
    totals: dict[str, float] = {}
    # --no-split: the handlers as they are, without the per-stage CPU clock around every call
    # (two process_time() reads per handle: a few us per source event, in the figure otherwise)
    timed = (lambda handler, name: handler) if args.no_split else (lambda handler, name: Timed(handler, totals, name))
    handlers = {"execution": timed(execution_stage(clock=ReplayClock()), "execution")}
    for stage in STAGES:
        if stage.name not in handlers:
            handler = handler_load(stage)
            if stage.name == "surveillance" and args.no_surveillance_snapshots:
                # The stage's state snapshot, out of the measurement (see bench/README.md): an
                # event-time cadence snapshots on every event of an hourly replay.
                handler.snapshot_every_s = float("inf")
            handlers[stage.name] = timed(handler, stage.name)
    bus = MemoryBus()
    relay = OutboxRelay(bus=bus, prune_every=3600)
    # Start-up, as pipeline_run(settle=True) does it, but before the clock starts: one full
    # collection over the process's start-up heap (0.2-0.3 s of CPU whatever the run's length;
    # per source event it only says how long the run was). Its time is printed apart.
    settle_cpu = time.process_time()
    settle = getattr(runner, "settle_heap", gc.collect)
    settle()
    settle_cpu = time.process_time() - settle_cpu
    load_before = os.getloadavg()[0]
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile(time.process_time)  # CPU time: the machine is shared
        profiler.enable()
    start_wall, start_cpu = time.perf_counter(), time.process_time()
    # as run_embedded does (the sinks' batches across source events; not before it existed)
    sinks = {"sink_seconds": runner.EMBEDDED_SINK_SECONDS} if hasattr(runner, "EMBEDDED_SINK_SECONDS") else {}
    result = pipeline_run(
        embedded_source(), handlers=handlers, bus=bus, batch_size=1, relay=relay, settle=False, **sinks
    )
    wall, cpu = time.perf_counter() - start_wall, time.process_time() - start_cpu
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(args.profile)
    load_after = os.getloadavg()[0]
    caches = {}  # hits and misses of the stages (seeding and training read through them too: not counted)
    for name, (hits, misses) in cache_stats().items():
        hits0, misses0 = cache_before.get(name, (0, 0))
        if hits - hits0 or misses - misses0:
            caches[name] = [hits - hits0, misses - misses0]

    from compliance.models import PreTradeDecision
    from trading.models import AccountRiskSnapshot, Execution, Order, Position

    orders = Order.objects.count()
    counts = {
        "orders": orders,
        "filled": Order.objects.filter(status="FILLED").count(),
        "fills": Execution.objects.count(),
        "decisions": PreTradeDecision.objects.count(),
        "audit_records": AuditRecord.objects.count(),
        "positions": Position.objects.count(),
        "snapshots": AccountRiskSnapshot.objects.count(),
        "outbox_relayed": result.outbox_events,
    }
    assert counts["decisions"] == orders, counts
    assert AuditRecord.objects.filter(action="order.created").count() == orders, "an order without its audit record"
    assert AuditRecord.objects.filter(action="execution.recorded").count() == counts["fills"]
    assert result.dead_letters == 0
    verified = audit_verify()
    assert verified.ok, verified
    # How often an "optimistic head" (hash with the head the worker last wrote, fall back when it
    # moved) would have missed: the order writes whose first record does not follow the worker's
    # previous write directly (another appender, the audit trail stage or surveillance, came between).
    writes = list(
        AuditRecord.objects.filter(action="order.created").order_by("sequence").values_list("sequence", flat=True)
    )
    ends = {}
    for sequence, action in AuditRecord.objects.order_by("sequence").values_list("sequence", "action"):
        if action.startswith(("order.", "execution.", "position.")):
            ends[sequence] = True
    moved = 0
    for previous, start in zip(writes, writes[1:], strict=False):
        last = previous
        while ends.get(last + 1) and last + 1 < start:
            last += 1
        moved += start != last + 1
    counts["head_moved_between_order_writes"] = f"{moved} of {max(len(writes) - 1, 0)}"
    if args.dump:
        _dump(args.dump, result)
    from django.conf import settings

    return {
        "db": connection.vendor,
        "debug": settings.DEBUG,
        "source_events": result.source_events,
        "wall": wall,
        "cpu": cpu,
        "baseline_events": baseline_events,
        "baseline_wall": baseline[0],
        "baseline_cpu": baseline[1],
        "stages_cpu": totals,
        "settle_cpu": settle_cpu,
        "counts": counts,
        "caches": caches,
        "load": [load_before, load_after],
    }


def _dump(path: str, result) -> None:
    """What the run persisted, without ids (the source's event ids are random) and wall-clock
    times, to compare two runs (two versions of the code) record for record: ``--dump FILE``."""
    from collections import Counter

    from compliance.models import Alert, PreTradeDecision, SurveillanceState
    from tradeops.audit.models import AuditRecord
    from tradeops.outbox.models import Outbox
    from trading.models import AccountRiskSnapshot, Execution, Order, Position

    def text(rows):
        return [[str(v) for v in row] for row in rows]

    dumped = {
        "audit_actions": dict(sorted(Counter(AuditRecord.objects.values_list("action", flat=True)).items())),
        # every record, as a sorted list (where it falls in the chain aside: sinks batch differently)
        "audit_records": sorted(
            text(
                AuditRecord.objects.values_list(
                    "action", "object_type", "object_id", "occurred_at", "category", "actor_type", "actor_id"
                )
            )
        ),
        # and their payloads, with what differs between two runs of the same code masked: trace
        # and random ids, the models' timestamped versions, wall-clock times
        "audit_payloads": sorted(
            _masked(action, payload)
            for action, payload in AuditRecord.objects.values_list("action", "payload").iterator(chunk_size=2000)
        ),
        "orders": text(
            Order.objects.order_by("created_at", "side").values_list(
                "created_at", "side", "quantity", "status", "filled_quantity", "average_fill_price"
            )
        ),
        "fills": text(
            Execution.objects.order_by("executed_at").values_list("executed_at", "side", "quantity", "price")
        ),
        "decisions": text(
            PreTradeDecision.objects.order_by("decided_at").values_list("decided_at", "approved", "reason")
        ),
        "positions": text(Position.objects.order_by("id").values_list("net_quantity", "average_price", "realised_pnl")),
        # the accounts' last risk snapshot (peak equity, drawdown: the marks' figures)
        "risk_snapshots": text(
            AccountRiskSnapshot.objects.order_by("account_id").values_list(
                "balance",
                "equity",
                "unrealised_pnl",
                "peak_equity",
                "drawdown",
                "daily_pnl",
                "used_margin",
                "trading_state",
                "breaker_state",
                "as_of",
            )
        ),
        "alerts": text(
            Alert.objects.order_by("alert_type", "symbol", "first_seen").values_list(
                "alert_type", "symbol", "first_seen"
            )
        ),
        "stages": {name: [s.consumed, s.produced, s.dead_lettered] for name, s in result.stages.items()},
        # the outbox rows (every one sent by the end: the relay's marks) and the surveillance
        # stage's saved windows, masked as the payloads are
        "outbox": sorted(
            _masked(
                f"{topic} {key} {event_type} {occurred_at} sent={sent_at is not None} {attempts}",
                bytes(message).decode(),
            )
            for topic, key, event_type, occurred_at, sent_at, attempts, message in Outbox.objects.values_list(
                "topic", "key", "event_type", "occurred_at", "sent_at", "attempts", "message"
            )
        ),
        "surveillance_state": [
            [_masked(stage, bytes(state).decode()), str(event_ts), events]
            for stage, state, event_ts, events in SurveillanceState.objects.order_by("stage").values_list(
                "stage", "state", "event_ts", "events"
            )
        ],
    }
    with open(path, "w") as out:
        json.dump(dumped, out, indent=1)


_MASKS = [
    (re.compile(r'"(traceparent|trace_id|span_id)":"[^"]*"'), r'"\1":"-"'),
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), "<uuid>"),
    (re.compile(r"\b[0-9a-f]{32}\b"), "<hex>"),
    (re.compile(r"\bT[0-9a-f]{20}\b"), "<client-order-id>"),
    (re.compile(r"\d{8}T\d{12}Z"), "<version>"),
    (re.compile(r"20[2-9]\d-\d\d-\d\d[T ][0-9:.]+(Z|\+00:00)?"), "<wall>"),
]


def _masked(action: str, payload: str) -> str:
    for pattern, replacement in _MASKS:
        payload = pattern.sub(replacement, payload)
    return f"{action} {payload}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bars", type=int, default=5000)
    parser.add_argument("--db", default="sqlite,postgres")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--profile", default="", help="write a cProfile (CPU time) of the pipeline run to this file")
    parser.add_argument(
        "--no-surveillance-snapshots",
        action="store_true",
        help="never snapshot the surveillance stage's state during the run (its cadence is measured apart)",
    )
    parser.add_argument(
        "--no-split",
        action="store_true",
        help="no per-stage CPU split (no clock read around every handler call): the total alone",
    )
    parser.add_argument("--dump", default="", help="write what was persisted (ids and wall times aside) to FILE.<db>")
    parser.add_argument("--child", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print("RESULT " + json.dumps(child(args)))
        return
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs (shared), Python {platform.python_version()}")
    print(f"{args.bars} real EURUSD H1 bars, as bars and 4 derived ticks each; batch size 1 (lock-step)")
    for _ in range(args.repeat):
        for db in [d.strip() for d in args.db.split(",") if d.strip()]:
            with tempfile.TemporaryDirectory() as tmp:
                env = {
                    **os.environ,
                    "ML_MODEL_DIR": f"{tmp}/models",
                    "REPLAY_QUARANTINE": f"{tmp}/q.jsonl",
                    "AUDIT_CHECKPOINT_DIR": f"{tmp}/checkpoints",  # this run's chain, not another's
                }
                if db == "sqlite":
                    env["DATABASE_URL"] = f"sqlite:///{tmp}/bench.sqlite3"
                else:
                    env["DATABASE_URL"] = PG_URL
                    env["MIGRATE_DATABASE_URL"] = OWNER_URL
                    # BENCH_PIPELINE_DATABASE: two runs at the same time (a same-time pair) each need their own
                    env["TEST_DATABASE_NAME"] = os.environ.get(
                        "BENCH_PIPELINE_DATABASE", "test_tradeops_bench_pipeline"
                    )
                done = subprocess.run(
                    [sys.executable, __file__, "--child", db, "--bars", str(args.bars)]
                    + (["--profile", f"{args.profile}.{db}"] if args.profile else [])
                    + (["--no-surveillance-snapshots"] if args.no_surveillance_snapshots else [])
                    + (["--no-split"] if args.no_split else [])
                    + (["--dump", f"{args.dump}.{db}"] if args.dump else []),
                    env=env,
                    cwd=ROOT,
                    capture_output=True,
                    text=True,
                )
            lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
            if done.returncode or not lines:
                sys.exit(f"{db} run failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}")
            report(json.loads(lines[-1][7:]))


def report(r: dict) -> None:
    n, base_n = r["source_events"], r["baseline_events"]
    rate, base_rate = n / r["wall"], base_n / r["baseline_wall"]
    cpu_us, base_cpu_us = r["cpu"] / n * 1e6, r["baseline_cpu"] / base_n * 1e6
    debug = {True: ", DEBUG on", False: ", DEBUG off"}.get(r.get("debug"), "")
    print(f"\n== {r['db']}  (load average {r['load'][0]:.2f} -> {r['load'][1]:.2f}{debug})")
    print(
        f"baseline collector -> null sink: {base_n} events, {base_rate:,.0f} events/s, CPU {base_cpu_us:.1f} us/event"
    )
    print(
        f"pipeline, every stage, persisted: {n} events in {r['wall']:.2f} s: {rate:,.0f} source events/s, "
        f"CPU {cpu_us:.1f} us/event ({r['cpu']:.2f} s); baseline / pipeline: {base_rate / rate:.1f}x in events/s, "
        f"{cpu_us / base_cpu_us:.1f}x in CPU per event"
    )
    stages = sorted(r["stages_cpu"].items(), key=lambda kv: -kv[1])
    inside = sum(v for _, v in stages)
    parts = ", ".join(f"{name} {seconds / n * 1e6:.1f}" for name, seconds in stages)
    if stages:  # not with --no-split
        rest = (r["cpu"] - inside) / n * 1e6
        print(f"  CPU per source event by stage (us): {parts}; runner, bus and relay {rest:.1f}")
    if "settle_cpu" in r:
        print(f"  start-up heap settled before the clock: {r['settle_cpu']:.2f} s CPU (not in the figures above)")
    print("  persisted: " + ", ".join(f"{k} {v}" for k, v in r["counts"].items()))
    caches = r.get("caches", {})
    hits, misses = sum(h for h, _ in caches.values()), sum(m for _, m in caches.values())
    parts = ", ".join(f"{name} {h / (h + m):.1%} ({h} hits, {m} misses)" for name, (h, m) in sorted(caches.items()))
    overall = f"{hits / (hits + misses):.1%}" if hits + misses else "no reads"
    print(f"  cache hit ratio during the run (target > 85%): {overall}; {parts}")


if __name__ == "__main__":
    main()
