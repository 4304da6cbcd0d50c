"""Every benchmark under bench/, then the design brief's targets beside their same-run baselines.

    python bench/run_all.py [--quick] [--only order_path,ml_latency] [--skip report_generation]
                            [--targets] [--args 'order_path=--orders 2000'] [--on both|local|cluster]

Runs each ``bench/*.py`` (except this one) in its own process, one after another, at the sizes
each one defaults to, or at the small sizes below with ``--quick`` (a smoke run: same code paths,
noisier figures), first against the servers of our environment (the local PostgreSQL, Redis and
Kafka of scripts/services.sh unless ``DATABASE_URL`` etc. say otherwise), then on the three-broker
cluster of scripts/cluster.sh (``--on local|cluster|both``; the cluster's infrastructure is
started for the run when it is not running, and stopped again after). Each bench's output goes to
``var/bench/<UTC time>/<local|cluster>/<name>.log``; the two tables of targets are printed and
written to ``var/bench/<UTC time>/targets.md``. A target whose bench failed
or was skipped reads "not measured" with the reason; so does one no bench measures.

Baselines are the ones each bench measures in the same process and minutes as its figure (see
each bench's docstring); the table names them.

Where each row was measured is read, not assumed: before the benches run, the Kafka cluster behind
``KAFKA_BOOTSTRAP_SERVERS`` is asked for its brokers and their replication settings, and the
PostgreSQL behind ``DATABASE_URL`` for its version and the replicas streaming from it (the same
variables the benches read; ``eval "$(bash scripts/cluster.sh env)"`` points them at the
three-broker cluster of scripts/cluster.sh). Each row's "where" column names the part of that
topology its bench used (a bench on the in-process memory bus or a loopback socket says so).
``--targets`` runs only the benches that feed the table; ``--args NAME=ARGS`` (repeatable) gives
one bench its arguments (a smaller size than its default, say), and the header records them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"

# name -> arguments with --quick (None: the bench's own --quick flag). Full runs use the defaults.
QUICK: dict[str, list[str]] = {
    "api_orders": ["--seconds", "3", "--rounds", "1", "--gate-orders", "50"],
    "audit_append": ["--records", "5000", "--rounds", "1", "--single", "300"],
    "breaker_response": ["--calls", "5000", "--timeout", "0.2"],
    "embedded_startup": ["--rounds", "3"],
    "market_monitor": ["--ticks", "20000", "--repeat", "1"],
    "bus_throughput": ["--events", "50000"],
    "memory_bus": ["--events", "100000", "--runs", "1"],
    "ml_latency": ["--quick"],
    "order_path": ["--orders", "300", "--statements-orders", "100", "--gate", "2000", "--transports", "batch"],
    "outbox_relay": ["--rows", "10000", "--batch-sizes", "1000"],
    "pipeline_replay": ["--bars", "300", "--db", "postgres"],
    "pretrade_checks": ["--intents", "20000"],
    "replay_throughput": ["--ticks", "20000", "--repeat", "1", "--procs", "1"],
    "report_generation": ["--executions", "20000", "--small", "2000"],
    "surveil_throughput": ["--hours", "0.25", "--repeat", "1"],
    "web_load": ["--requests", "300", "--configs", "persistent,pool"],
}


# What each bench that feeds the table runs against (its docstring and environment variables).
# (server kind or a description, what else the bench runs in its own processes)
USES: dict[str, tuple[str, str]] = {
    "order_path": ("postgres", "the worker and the paper broker in the bench's process"),
    "ml_latency": ("in-process: the memory bus and the models, no server", ""),
    "bus_throughput": ("kafka", "tradeops.bus producer and consumer, Kafka's perf tools"),
    "audit_append": ("postgres", ""),
    "web_load": ("postgres", "Daphne on loopback, hey as the load"),
    "pipeline_replay": ("postgres", "every stage on the in-process memory bus"),
    "breaker_response": ("in-process: a loopback socket that never answers, no server", ""),
}
TARGET_BENCHES = tuple(USES)


@dataclass
class Row:
    target: str
    bench: str
    figure: str = "not measured"
    baseline: str = ""
    met: str = ""
    where: str = ""


def kafka_topology(bootstrap: str, timeout: float = 15.0) -> str:
    """The Kafka cluster behind ``bootstrap``, as its own metadata describes it: the number of
    brokers, the controller, and the brokers' default replication factor and
    ``min.insync.replicas`` (what the bench's topics get on a cluster)."""
    from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

    admin = AdminClient({"bootstrap.servers": bootstrap})
    metadata = admin.list_topics(timeout=timeout)
    brokers = sorted(metadata.brokers.values(), key=lambda b: b.id)
    first = ConfigResource(ResourceType.BROKER, str(brokers[0].id))
    configs = admin.describe_configs([first], request_timeout=timeout)[first].result(timeout=timeout)
    rf, isr = configs["default.replication.factor"].value, configs["min.insync.replicas"].value
    shape = "single broker" if len(brokers) == 1 else f"{len(brokers)}-broker cluster"
    return (
        f"Kafka {shape} ({', '.join(f'{b.host}:{b.port}' for b in brokers)}), "
        f"default replication factor {rf}, min.insync.replicas {isr}"
    )


def postgres_topology(url: str) -> str:
    """The PostgreSQL behind ``url``: version, host and port, primary or standby, and how many
    replicas stream from it (``pg_stat_replication``)."""
    import psycopg

    with psycopg.connect(url, connect_timeout=10) as conn:
        version, standby, replicas, sync_names = conn.execute(
            "SELECT current_setting('server_version'), pg_is_in_recovery(), (SELECT count(*) FROM pg_stat_replication),"
            " current_setting('synchronous_standby_names')"
        ).fetchone()
        host, port = conn.info.host, conn.info.port
    role = "standby" if standby else "primary" if replicas else "single server"
    mode = "synchronous" if sync_names else "asynchronous"
    streaming = f", {replicas} replica(s) streaming from it ({mode})" if replicas else ", no replica"
    return f"PostgreSQL {version.split()[0]} {role} at {host}:{port}{streaming}"


def topology(env: dict[str, str]) -> dict[str, str]:
    """What the benches will meet, read from the servers themselves (a failure says so)."""
    found: dict[str, str] = {}
    bootstrap = env.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    url = env.get("DATABASE_URL", "postgres://tradeops:tradeops@127.0.0.1:5432/tradeops")
    for key, probe, arg in (("kafka", kafka_topology, bootstrap), ("postgres", postgres_topology, url)):
        try:
            found[key] = probe(arg)
        except Exception as exc:  # any failure is reported in the table, never hidden
            found[key] = f"{key} at {arg.rsplit('@', 1)[-1]}: not reachable ({exc!s:.120})"
    return found


def _num(text: str) -> float:
    return float(text.replace(",", ""))


def _search(log: str, pattern: str) -> re.Match | None:
    return re.search(pattern, log, re.MULTILINE)


def _result_json(log: str) -> dict | None:
    lines = [line for line in log.splitlines() if line.startswith("RESULT ")]
    return json.loads(lines[-1][len("RESULT ") :]) if lines else None


def targets(logs: dict[str, str], failed: dict[str, str], where: dict[str, str] | None = None) -> list[Row]:
    """The brief's targets, read from the benches' output (the patterns follow their prints);
    ``where`` (``topology()``) names the servers each row's bench used."""
    rows: list[Row] = []
    where = where or {}

    def row(target: str, bench: str, fill) -> None:
        uses, beside = USES.get(bench, ("", ""))
        r = Row(target, bench, where="; ".join(filter(None, (where.get(uses, uses), beside))))
        if bench in failed:
            r.figure = f"not measured: {failed[bench]}"
        elif bench not in logs:
            r.figure = "not measured: bench not run (--only/--skip)"
        else:
            try:
                fill(r, logs[bench])
            except (AttributeError, TypeError, ValueError, KeyError) as exc:
                r.figure = f"not measured: output not understood ({exc!r}); see the log"
        rows.append(r)

    def order_path(r: Row, log: str) -> None:
        path = _search(log, r"one statement via (\S+)\s+n=\s*\d+\s+p50\s+([\d.]+) ms\s+p99\s+([\d.]+) ms")
        base = _search(log, r"baseline: INSERT one row \+ COMMIT\s+n=\s*\d+\s+p50\s+([\d.]+) ms\s+p99\s+([\d.]+) ms")
        p99 = _num(path.group(3))
        r.figure = f"p99 {p99:.2f} ms (p50 {_num(path.group(2)):.2f} ms; intent -> persisted fill, {path.group(1)})"
        r.baseline = f"INSERT one row + COMMIT: p99 {_num(base.group(2)):.2f} ms (p50 {_num(base.group(1)):.2f})"
        r.met = "yes" if p99 < 5 else "no"

    def event_processing(r: Row, log: str) -> None:
        m = _search(log, r"bar-closing tick -> validator decision p50 / p95 / p99\s+([\d,]+) / ([\d,]+) / ([\d,]+) µs")
        b = _search(log, r"baseline: same path, constant predictor, p50 / p95\s+([\d,]+) / ([\d,]+) µs")
        p95 = _num(m.group(2))
        r.figure = f"p95 {p95 / 1000:.2f} ms (tick -> validator decision on the memory bus, StageRunner)"
        r.baseline = f"same path, constant predictor: p95 {_num(b.group(2)) / 1000:.2f} ms"
        r.met = "yes" if p95 < 10_000 else "no"

    def kafka(r: Row, log: str) -> None:
        pipe = _search(log, r"\| publish and consume at once \(2 processes\) \| ([\d,]+) ev/s")
        pub = _search(log, r"\| publish \(encode.*?\| ([\d,]+) ev/s \| ProducerPerformance ([\d,]+) rec/s")
        rate = _num(pipe.group(1))
        r.figure = f"{rate:,.0f} events/s through tradeops.bus, published and consumed at once"
        r.baseline = (
            f"Kafka's ProducerPerformance: {_num(pub.group(2)):,.0f} rec/s (bus publish {_num(pub.group(1)):,.0f})"
        )
        r.met = "yes" if rate >= 100_000 else "no"

    def db_writes(r: Row, log: str) -> None:
        chain = _search(log, r"chained \(audit_append_many\):\s+([\d,]+) records/s")
        plain = _search(log, r"plain INSERT, same rows:\s+([\d,]+) records/s")
        rate = _num(chain.group(1))
        r.figure = f"{rate:,.0f} audit records/s (hash-chained, batched, PostgreSQL)"
        r.baseline = f"plain INSERT of the same rows: {_num(plain.group(1)):,.0f} rows/s"
        r.met = "yes" if rate >= 10_000 else "no"

    def ml(r: Row, log: str) -> None:
        stage = _search(
            log, r"prediction stage \(2 models \+ validator \+ events\), one at a time\s+([\d,]+) vectors/s"
        )
        base = _search(log, r"one at a time, scikit-learn predict_proba per row \(baseline\)\s+([\d,]+)/s")
        rate = _num(stage.group(1))
        r.figure = f"{rate:,.0f} predictions/s (whole prediction stage, one vector at a time)"
        r.baseline = f"scikit-learn predict_proba per row, supervised model alone: {_num(base.group(1)):,.0f}/s"
        r.met = "yes" if rate >= 1000 else "no"

    def api(r: Row, log: str) -> None:
        pool = _search(log, r"^pool\s+.*?([\d.]+) req/s\s+p50\s+([\d.]+) ms\s+p99\s+([\d.]+) ms")
        pers = _search(log, r"^persistent\s+.*?([\d.]+) req/s\s+p50\s+([\d.]+) ms\s+p99\s+([\d.]+) ms")
        r.figure = (
            f"{_num(pool.group(1)):,.0f} req/s on /healthz, Daphne + connection pool (p99 {_num(pool.group(3)):.0f} ms)"
        )
        r.baseline = f"persistent connections (the pre-pool default): {_num(pers.group(1)):,.0f} req/s"
        r.met = "no target figure in the brief"

    def breaker(r: Row, log: str) -> None:
        res = _result_json(log)
        r.figure = (
            f"open breaker answers in p99 {res['open_p99_us']:.1f} µs (max {res['open_max_us'] / 1000:.1f} ms); "
            f"before it opens each call waits the client timeout, {res['closed_call_wait_ms']:.0f} ms"
        )
        r.baseline = f"healthy call through a closed breaker p99 {res['healthy_breaker_p99_us']:.2f} µs"
        r.met = "yes" if res["open_p99_us"] < 100_000 else "no"

    row("order path p99 < 5 ms", "order_path", order_path)
    row("event processing p95 < 10 ms", "ml_latency", event_processing)
    row("Kafka >= 100,000 events/s", "bus_throughput", kafka)
    row("database writes >= 10,000/s", "audit_append", db_writes)
    row("ML >= 1,000 predictions/s", "ml_latency", ml)
    row("API requests/s", "web_load", api)

    def cache(r: Row, log: str) -> None:
        # the PostgreSQL run's ratio (the row's "where"), not the SQLite run's printed before it
        at = log.find("== postgresql")
        m = _search(log[at:] if at >= 0 else log, r"cache hit ratio during the run \(target > 85%\): ([\d.]+)%; (.*)$")
        ratio = float(m.group(1))
        r.figure = f"{ratio:.1f}% over the reference caches during the embedded replay ({m.group(2)})"
        r.baseline = "none: a ratio (the reads the caches answered, of all their reads)"
        r.met = "yes" if ratio > 85 else "no"

    row("cache hit ratio > 85%", "pipeline_replay", cache)
    row("breaker response < 100 ms", "breaker_response", breaker)
    return rows


def render(rows: list[Row], *, header: str) -> str:
    out = [
        header,
        "",
        "| target | bench | where | figure | same-run baseline | met |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    out += [f"| {r.target} | {r.bench} | {r.where} | {r.figure} | {r.baseline} | {r.met} |" for r in rows]
    return "\n".join(out) + "\n"


CLUSTER = ["bash", str(ROOT / "scripts" / "cluster.sh")]
# Set by scripts/cluster.sh env for the app processes, not for benches: the benches write
# throwaway databases the router's replica alias (the cluster's own database) would not see, use
# the paper journal of no worker, and pick their bus themselves.
NOT_FOR_BENCHES = ("EVENT_BUS", "EXECUTION_PAPER_JOURNAL_DIR", "DATABASE_REPLICA_URL")


def cluster_env() -> dict[str, str]:
    """The environment the benches get on the cluster: ``scripts/cluster.sh env`` over ours."""
    out = subprocess.run([*CLUSTER, "env"], capture_output=True, text=True, check=True).stdout
    env = dict(os.environ)
    for line in out.splitlines():
        if line.startswith("export "):
            key, _, value = line[len("export ") :].partition("=")
            env[key] = value
    for key in NOT_FOR_BENCHES:
        env.pop(key, None)
    return env


def cluster_infra_running() -> bool:
    status = subprocess.run([*CLUSTER, "status"], capture_output=True, text=True).stdout
    infra = ("kafka-1", "kafka-2", "kafka-3", "pg-primary", "pg-replica", "redis")
    states = {parts[0]: parts[1] for parts in (line.split() for line in status.splitlines()) if len(parts) >= 2}
    return all(states.get(part) == "up" for part in infra)


def run_pass(label: str, names: list[str], env: dict[str, str], out_dir: Path, extras: dict, timeout: float) -> tuple:
    """Every named bench, one after another, with ``env``; returns (table, failed)."""
    where = topology(env)
    for line in where.values():
        print(f"-- {label}: {line}", flush=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    shown_dir = out_dir.relative_to(ROOT)
    load_start = os.getloadavg()
    logs: dict[str, str] = {}
    failed: dict[str, str] = {}
    ran: list[str] = []
    for name in names:
        extra = extras.get(name, [])
        command = [sys.executable, "-u", str(BENCH / f"{name}.py"), *extra]
        print(f"== {label}: {name}: {' '.join(command[2:])}", flush=True)
        started = time.monotonic()
        log_path = out_dir / f"{name}.log"
        with open(log_path, "w") as log:
            try:
                done = subprocess.run(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=timeout)
                code = done.returncode
            except subprocess.TimeoutExpired:
                code = None
        seconds = time.monotonic() - started
        logs[name] = log_path.read_text(errors="replace")
        if code != 0:
            failed[name] = f"the bench {'timed out' if code is None else f'exited {code}'} ({shown_dir}/{name}.log)"
        shown = f"{name} {' '.join(extra)}".strip()
        ran.append(f"{shown} ({seconds:.0f} s, {'ok' if code == 0 else failed[name]})")
        print(f"   {seconds:.0f} s, {'ok' if code == 0 else failed[name]}", flush=True)
    load = os.getloadavg()
    header = (
        f"{label}: load average {load_start[0]:.1f} at the start, {load[0]:.1f} at the end; "
        f"{'; '.join(where.values())}; benches: {'; '.join(ran)}"
    )
    return render(targets(logs, failed, where), header=header), failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    parser.add_argument("--only", default="", help="comma-separated bench names")
    parser.add_argument("--skip", default="", help="comma-separated bench names")
    parser.add_argument("--timeout", type=float, default=0, help="seconds per bench (default 900 quick, 7200 full)")
    parser.add_argument("--targets", action="store_true", help="only the benches that feed the targets table")
    parser.add_argument(
        "--args", action="append", default=[], metavar="NAME=ARGS", help="one bench's arguments (repeatable)"
    )
    parser.add_argument(
        "--on",
        choices=("both", "local", "cluster"),
        default="both",
        help="local: the servers of our environment (scripts/services.sh by default); cluster: the "
        "three-broker cluster of scripts/cluster.sh (its infrastructure started if it is not "
        "running, and stopped again after); both (default): one table each, local first",
    )
    args = parser.parse_args()
    given: dict[str, list[str]] = {}
    for item in args.args:
        name, sep, rest = item.partition("=")
        if not sep:
            raise SystemExit(f"--args wants NAME=ARGS, got {item!r}")
        given[name] = shlex.split(rest)

    names = sorted(p.stem for p in BENCH.glob("*.py") if p.stem != "run_all")
    unknown = set(filter(None, args.only.split(",") + args.skip.split(","))) | set(given)
    unknown -= set(names)
    if unknown:
        raise SystemExit(f"unknown bench(es) {sorted(unknown)}; known: {', '.join(names)}")
    if args.only:
        names = [n for n in names if n in args.only.split(",")]
    if args.targets:
        names = [n for n in names if n in TARGET_BENCHES]
    names = [n for n in names if n not in args.skip.split(",")]
    extras = {n: given.get(n, QUICK.get(n, []) if args.quick else []) for n in names}
    timeout = args.timeout or (900 if args.quick else 7200)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out_dir = ROOT / "var" / "bench" / stamp
    out_dir.mkdir(parents=True, exist_ok=True)
    title = f"run_all {' '.join(sys.argv[1:])} at {stamp}".replace("  ", " ")

    tables: list[str] = []
    any_failed = False
    if args.on in ("both", "local"):
        table, failed = run_pass("local", names, dict(os.environ), out_dir / "local", extras, timeout)
        tables.append(table)
        any_failed |= bool(failed)
    if args.on in ("both", "cluster"):
        started_here = not cluster_infra_running()
        if started_here:
            print("-- cluster: bash scripts/cluster.sh infra", flush=True)
            subprocess.run([*CLUSTER, "infra"], check=True, timeout=900)
        try:
            table, failed = run_pass("three-broker cluster", names, cluster_env(), out_dir / "cluster", extras, timeout)
        finally:
            if started_here:  # leave the machine as we found it
                subprocess.run([*CLUSTER, "down"], check=False, timeout=300)
        tables.append(table)
        any_failed |= bool(failed)
    text = f"{title}\n\n" + "\n".join(tables)
    (out_dir / "targets.md").write_text(text)
    print()
    print(text)
    print(f"logs and tables: var/bench/{stamp}/")
    sys.exit(1 if any_failed else 0)


if __name__ == "__main__":
    main()
