"""Faults on the cluster (issue 18), each on its own database and topics, with the stages as
separate processes and the replay paced (REPLAY_SPEED) so the fault lands while the pipeline
trades: one Kafka broker SIGKILLed, the PostgreSQL primary restarted, Redis down, the execution
worker SIGKILLed and restarted. After each, orders, fills, positions, broker deals, the outbox
on its topics and the audit chain reconcile (tests/cluster/reconcile.py): nothing lost, nothing
duplicated."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import psycopg
import pytest

from tests.cluster.conftest import CLUSTER
from tests.cluster.reconcile import (
    BARS,
    assert_controls,
    assert_reconciled,
    assert_refusals_stale_stops,
    published_count,
)

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.kafka, pytest.mark.postgres]

# 300 replayed hours at 36,000x real time: about 30 seconds of wall clock.
PACED = {"REPLAY_SPEED": "36000"}


def _cluster(*args: str) -> None:
    done = subprocess.run([*CLUSTER, *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]


def _count(run, table: str) -> int:
    for _ in range(30):
        try:
            with psycopg.connect(run.env["DATABASE_URL"], connect_timeout=3) as conn:
                return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        except psycopg.OperationalError:
            time.sleep(1)
    raise AssertionError("the database did not answer for 30 s")


def _wait_for(run, table: str, at_least: int, timeout: float = 120.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        n = _count(run, table)
        if n >= at_least:
            return n
        time.sleep(0.5)
    raise AssertionError(f"{table}: fewer than {at_least} rows after {timeout}s")


def _paced_replay(run):
    run.env.update(PACED)
    try:
        return run.replay(BARS, background=True)
    finally:
        for key in PACED:
            run.env.pop(key)


def _worker_stats(run) -> dict:
    """Stop the execution worker and read the counters it prints as it stops."""
    run.group.stop("execution-worker", grace=60)
    lines = [line for line in run.log("execution-worker").splitlines() if "execution worker stopped:" in line]
    assert lines, run.log("execution-worker")
    return json.loads(lines[-1].split("; ", 1)[1])


def _finish(replay) -> int:
    out, err = replay.communicate(timeout=300)
    assert replay.returncode == 0, err[-3000:]
    return published_count(out)


def test_a_kafka_broker_killed_mid_replay_loses_and_duplicates_nothing(cluster_run):
    cluster_run.start()
    replay = _paced_replay(cluster_run)
    try:
        time.sleep(8)  # a third of the way in
        _cluster("kill-broker", "2")
        published = _finish(replay)
        probe = cluster_run.settle(timeout=300)
    finally:
        _cluster("start-broker", "2")
    assert_reconciled(cluster_run, probe, published=published)
    assert_controls(probe)


def test_postgres_restarted_mid_replay(cluster_run):
    cluster_run.start()
    replay = _paced_replay(cluster_run)
    _wait_for(cluster_run, "audit_record", 1)
    _cluster("pg-restart")
    published = _finish(replay)
    probe = cluster_run.settle(timeout=300)
    assert_reconciled(cluster_run, probe, published=published)
    # The stages stop on the lost connection and come back (supervised): a restarted worker holds
    # signals until market data covers them, so its breaker never opens on stale data.
    assert_controls(probe, restarted=True)


def test_redis_down_trading_continues(cluster_run):
    cluster_run.start()
    _cluster("redis-stop")
    try:
        published = published_count(cluster_run.replay(BARS))
        probe = cluster_run.settle(timeout=300)
    finally:
        _cluster("redis-start")
    assert_reconciled(cluster_run, probe, published=published)
    assert_controls(probe)
    # The screens degraded, nothing more: live-push dropped their updates (saying so once) and
    # dead-lettered none of them.
    cluster_run.group.stop("live-push", grace=60)
    log = cluster_run.group.log_path("live-push").read_text()
    assert log.count("channel layer unreachable") == 1, log[-4000:]
    stopped = [line for line in log.splitlines() if line.startswith("stage live-push stopped:")]
    assert stopped and "dead-lettered 0 " in stopped[-1], stopped


def test_the_execution_worker_killed_while_trading_and_restarted(cluster_run):
    cluster_run.start()
    replay = _paced_replay(cluster_run)
    _wait_for(cluster_run, "trading_order", 1)
    pid = cluster_run.group.signal("execution-worker", signal.SIGKILL)
    assert pid
    time.sleep(1)
    cluster_run.group.start("execution-worker")
    published = _finish(replay)
    probe = cluster_run.settle(timeout=300)
    assert_reconciled(cluster_run, probe, published=published)
    assert cluster_run.group.log_path("execution-worker").read_text().count("execution worker: accounts") >= 2
    # Broker refusals after the restart (once 93 INVALID_STOPS: docs/topology.md) may only be the
    # broker judging stops against a price the worker had not seen; the restarted worker's counter
    # is within the recorded refusals; the breaker opened for nothing else (assert_controls).
    refused = assert_refusals_stale_stops(probe)
    stats = _worker_stats(cluster_run)
    assert stats["broker_refused"] <= refused, (stats, refused)
    assert_controls(probe, restarted=True)
    opened = [reason for action, reason in probe["breaker_moves"] if action == "trading_breaker.open"]
    assert sum(1 for r in opened if "INVALID_STOPS" in r) <= refused, opened


# The broker's first answers (trading.brokers.paper.paper_faults_parse): five refusals, then a
# reply lost after the order executed (a timeout), then normal service.
BROKER_DRILL = "REJECT*5,TIMEOUT:executed"


def test_the_broker_rejecting_and_timing_out_trips_the_breaker_and_is_recorded(cluster_run):
    from tests.cluster.conftest import REPLAY_PROCESSES

    for name in REPLAY_PROCESSES:
        extra = {"PAPER_BROKER_FAULTS": BROKER_DRILL} if name == "execution-worker" else None
        cluster_run.group.start(name, extra_env=extra)
    cluster_run.wait_members(REPLAY_PROCESSES)
    published = published_count(cluster_run.replay(BARS))
    probe = cluster_run.settle()
    assert_reconciled(cluster_run, probe, published=published)
    # The refusals: recorded as REJECTED orders with the broker's answer (each with its approving
    # decision and audit records: assert_controls, assert_reconciled).
    rejected = [r for r in probe["broker_refusals"] if r["outcome"] == "REJECT"]
    assert len(rejected) == 5, probe["broker_refusals"]
    assert all(r["reason"] == "broker REJECT: injected REJECT" for r in rejected), rejected
    # The timeout: the order was left SUBMITTED with the broker's state unknown, then
    # reconciliation found the deal at the broker and recorded the fill (broker deals = fills).
    assert len(probe["timeouts"]) == 1, probe["timeouts"]
    timed_out = probe["timeouts"][0]
    assert timed_out["status"] == "FILLED" and timed_out["fills"] == 1, timed_out
    # The breaker: five refusals in a row opened it (audited, alerted); the trial after the
    # cool-down met the timeout and re-opened it; the next trial filled and closed it.
    moves = probe["breaker_moves"]
    assert moves[0] == ["trading_breaker.open", "consecutive_failures:REJECT"], moves
    states = [action.removeprefix("trading_breaker.") for action, _ in moves]
    assert states[:5] == ["open", "half_open", "open", "half_open", "closed"], moves
    assert states[-1] == "closed", moves
    assert probe["alerts_published"].get("trading_breaker_open") == 2, probe["alerts_published"]
    assert_controls(
        probe, opens_on=("consecutive_failures:REJECT", "consecutive_failures:TIMEOUT"), drilled=("REJECT",)
    )
    stats = _worker_stats(cluster_run)
    assert stats["broker_refused"] >= 5 and stats["unknown_state"] == 1 and stats["reconciled_fills"] == 1, stats
