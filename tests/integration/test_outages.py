"""Every stage rides out a PostgreSQL restart and a Kafka restart (issue 19, finding 4).

The system runs as it does in production: the execution worker, the audit trail, surveillance,
the two model stages (features, predict), the live screens' push and the outbox relay, each its own process, on a
PostgreSQL and a Kafka of the test's own (``throwaway``: the shared servers are never touched).
Signals and ticks flow; PostgreSQL is stopped for ~12 s and started again while signals keep
coming; then Kafka is. Every process must still be running, each signal must have become exactly
one order (none refused for the worker's own troubles), every order its decision record, every
outbox event published, and every process must stop cleanly at the end (no traceback).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid

import pytest

from tests.conftest import service_unavailable
from tests.integration.throwaway import ROOT, ThrowawayKafka, ThrowawayPostgres

pytestmark = [
    pytest.mark.slow,
    pytest.mark.heavy,
    pytest.mark.postgres,
    pytest.mark.kafka,
    pytest.mark.timeout(1800),  # minutes on a loaded 2-core box: many processes, throwaway servers
]

STAGES = {
    "execution": ["run_execution_worker", "--bus", "kafka"],
    "ml-features": ["run_stage", "ml-features", "--bus", "kafka"],
    "audit-trail": ["run_stage", "audit-trail", "--bus", "kafka"],
    "surveillance": ["run_stage", "surveillance", "--bus", "kafka"],
    "ml-predict": ["run_stage", "ml-predict", "--bus", "kafka"],
    "live-push": ["run_stage", "live-push", "--bus", "kafka"],
    "relay": ["run_outbox_relay", "--bus", "kafka"],
}


@pytest.fixture
def services():
    if not list(__import__("pathlib").Path("/usr/lib/postgresql").glob("*/bin/pg_ctl")):
        service_unavailable("needs Debian's PostgreSQL server binaries: bash scripts/services.sh up")
    pg, kafka = ThrowawayPostgres(), None
    try:
        pg.start()
        kafka = ThrowawayKafka()
        kafka.start()
        yield pg, kafka
    finally:
        pg.remove()
        if kafka is not None:
            kafka.remove()


def _env(pg: ThrowawayPostgres, kafka: ThrowawayKafka, logs) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "MIGRATE_DATABASE_URL", "KAFKA_"))}
    env.update(
        DATABASE_URL=pg.url("tradeops"),
        MIGRATE_DATABASE_URL=pg.url("tradeops_owner"),
        EVENT_BUS="kafka",
        KAFKA_BOOTSTRAP_SERVERS=kafka.bootstrap,
        KAFKA_TOPIC_PREFIX=f"outage-{uuid.uuid4().hex[:6]}-",
        BROKER="paper",
        EXECUTION_PAPER_JOURNAL_DIR=str(logs),
        AUDIT_CHECKPOINT_DIR=str(logs / "checkpoints"),
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",
    )
    return env


def _manage(env, *args, timeout=600) -> str:
    out = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert out.returncode == 0, f"manage.py {' '.join(args)}: {out.stderr[-3000:]}"
    return out.stdout


def _tool(env, *args) -> dict | None:
    out = subprocess.run(
        [sys.executable, "-m", "tests.integration.outage_tool", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1]) if args[0] == "report" else None


def _wait_for(env, procs, done, what: str, timeout: float = 240) -> dict:
    deadline = time.monotonic() + timeout
    report = {}
    while time.monotonic() < deadline:
        _alive(procs)
        report = _tool(env, "report")
        if done(report):
            return report
        time.sleep(2)
    raise AssertionError(f"{what}: not reached in {timeout:.0f} s; last report {report}")


def _alive(procs) -> None:
    dead = {name: p.returncode for name, (p, _) in procs.items() if p.poll() is not None}
    if dead:
        name = next(iter(dead))
        raise AssertionError(f"stage(s) exited: {dead}; {name} said: {procs[name][1].read_text()[-3000:]}")


def test_every_stage_rides_out_a_postgres_restart_and_a_kafka_restart(services, tmp_path):
    pg, kafka = services
    logs = tmp_path
    env = _env(pg, kafka, logs)
    _manage(env, "migrate", "--noinput")
    _manage(env, "seed")
    _manage(env, "provision_topics")
    _tool(env, "open-market")  # live on the wall clock: the stages must trade on a Saturday too
    env["EXECUTION_ACCOUNTS"] = "1"
    procs = {}
    try:
        for name, args in STAGES.items():
            log = logs / f"{name}.log"
            procs[name] = (
                subprocess.Popen(
                    [sys.executable, "manage.py", *args],
                    cwd=ROOT,
                    env=env,
                    stdout=open(log, "w"),  # noqa: SIM115 - the stage writes to it while it lives
                    stderr=subprocess.STDOUT,
                ),
                log,
            )
        time.sleep(5)
        _alive(procs)

        def traded(n):
            return lambda r: r["signals_ordered"] >= n and r["outbox_unsent"] == 0 and r["decided_orders"] >= n

        _tool(env, "publish", "--first", "0", "--count", "10")
        _wait_for(env, procs, traded(10), "before the outages")

        # PostgreSQL goes away for ~12 s while signals keep coming.
        _tool(env, "publish", "--first", "10", "--count", "10")
        pg.restart(down_for=12)
        _tool(env, "publish", "--first", "20", "--count", "10")
        _wait_for(env, procs, traded(30), "after the PostgreSQL restart")

        # Kafka goes away for ~10 s.
        kafka.restart(down_for=10)
        _tool(env, "publish", "--first", "30", "--count", "10")
        report = _wait_for(env, procs, traded(40), "after the Kafka restart")
        time.sleep(6)  # anything late (a duplicate, an extra audit record) shows now
        report = _tool(env, "report")
        _alive(procs)
    finally:
        for proc, _ in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc, _ in procs.values():
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()

    assert report["orders"] == 40 and report["signals_ordered"] == 40, report  # one order per signal
    assert report["decided_orders"] == 40 and report["decisions"] == 40, report  # every order its decision
    assert report["statuses"].get("FILLED", 0) == 40, report  # none refused for the worker's own troubles
    assert report["fills"] == 40 and report["outbox_unsent"] == 0, report
    assert report["audited"] == report["audited_distinct"], report
    for name, (proc, log) in procs.items():
        text = log.read_text()
        assert proc.returncode == 0, f"{name} exited {proc.returncode}: {text[-3000:]}"
        # The outages themselves are logged with their tracebacks (logger.exception, then back-off);
        # anything else that raised would have dead-lettered an event.
        assert not re.search(r"dead-lettered [1-9]", text), f"{name}: {text[-3000:]}"
