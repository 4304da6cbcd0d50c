"""The distributed run equals the embedded run (issue 19, build item 5).

The same real EURUSD bars (``REPLAY_LIMIT`` of them, interleaved with their derived ticks: the
embedded run's source) are replayed twice from one starting state (seeded, models trained and
activated, then the database copied):

- embedded: ``manage.py run_embedded --no-serve``: every stage in one process on the memory bus,
  each event's consequences settled before the next;
- distributed: every stage its own process (``run_stage`` for the model, audit-trail,
  surveillance and live-push stages, ``run_execution_worker --clock replay``,
  ``run_outbox_relay``) on Kafka, fed by ``manage.py replay --source embedded --settle``, which
  back-pressures: after each event it waits until every stage's consumer group has handled
  everything and the outbox is drained (``tradeops.bus.settle``).

Both on PostgreSQL (a throwaway server of the test's own; Kafka is the shared broker under a
topic prefix of the test's own). The orders, fills, positions, pre-trade decisions and
surveillance alerts of the two runs, compared field by field (event times included; wall-clock
record times and database ids left out), must be equal, and the run must have traded.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.conftest import service_unavailable
from tests.integration.throwaway import ROOT, ThrowawayPostgres
from tests.tradeops.conftest import kafka_available

pytestmark = [
    pytest.mark.slow,
    pytest.mark.heavy,
    pytest.mark.postgres,
    pytest.mark.kafka,
    pytest.mark.timeout(1800),  # minutes on a loaded 2-core box: many processes, throwaway servers
]

BARS = int(os.environ.get("PARITY_REPLAY_LIMIT", "200"))  # the replay: a minute or two on the shared 2-core box
STAGES = {
    "ml-features": ["run_stage", "ml-features", "--bus", "kafka"],
    "ml-predict": ["run_stage", "ml-predict", "--bus", "kafka"],
    "audit-trail": ["run_stage", "audit-trail", "--bus", "kafka"],
    "surveillance": ["run_stage", "surveillance", "--bus", "kafka"],
    "execution": ["run_execution_worker", "--bus", "kafka", "--clock", "replay"],
    "live-push": ["run_stage", "live-push", "--bus", "kafka"],
    "metrics": ["run_stage", "metrics", "--bus", "kafka"],  # every registered stage: the settle waits for each
    "relay": ["run_outbox_relay", "--bus", "kafka"],
}


@pytest.fixture
def pg():
    if not list(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl")):
        service_unavailable("needs Debian's PostgreSQL server binaries: bash scripts/services.sh up")
    server = ThrowawayPostgres()
    try:
        server.start()
        yield server
    finally:
        server.remove()


@pytest.fixture
def kafka_topics():
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    if not kafka_available(bootstrap):
        service_unavailable(f"needs Kafka at {bootstrap}: bash scripts/services.sh up")
    from confluent_kafka.admin import AdminClient

    from tradeops.bus.provision import topics_apply, topics_delete, topics_plan

    prefix = f"parity-{uuid.uuid4().hex[:8]}-"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    actions, _ = topics_plan(admin, prefix=prefix)
    topics_apply(admin, actions)
    yield bootstrap, prefix
    topics_delete(admin, [a.topic for a in actions])


def _env(tmp_path: Path, database_url: str, migrate_url: str, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "MIGRATE_DATABASE_URL", "KAFKA_"))}
    env.update(
        DATABASE_URL=database_url,
        MIGRATE_DATABASE_URL=migrate_url,
        BROKER="paper",
        EXECUTION_PAPER_JOURNAL_DIR="",
        ML_MODEL_DIR=str(tmp_path / "models"),
        REPLAY_LIMIT=str(BARS),
        REPLAY_SPEED="0",
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return env


def _run(env, *argv, timeout=900) -> str:
    out = subprocess.run([sys.executable, *argv], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"{' '.join(argv)}: {out.stdout[-2000:]}\n{out.stderr[-4000:]}"
    return out.stdout


def _records(env) -> dict:
    out = _run(env, "-m", "tests.integration.outage_tool", "records", timeout=300)
    return json.loads(out.strip().splitlines()[-1])


def _first_difference(a: list, b: list) -> str:
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return f"item {i}: embedded {x} != distributed {y}"
    return f"lengths: embedded {len(a)}, distributed {len(b)}"


def test_the_distributed_run_equals_the_embedded_run(pg, kafka_topics, tmp_path):
    bootstrap, prefix = kafka_topics
    owner = pg.url("tradeops_owner")
    base = _env(tmp_path, pg.url(), owner, EVENT_BUS="memory", AUDIT_CHECKPOINT_DIR=str(tmp_path / "cp-embedded"))
    _run(base, "manage.py", "migrate", "--noinput")
    _run(base, "manage.py", "seed")
    _run(base, "-m", "tests.integration.outage_tool", "train")
    pg.clone("tradeops", "distributed")  # the same starting state for both runs

    # The embedded run: every stage in one process on the memory bus.
    embedded = _env(
        tmp_path,
        pg.url(),
        owner,
        EVENT_BUS="memory",
        AUDIT_CHECKPOINT_DIR=str(tmp_path / "cp-embedded"),
        REPLAY_QUARANTINE=str(tmp_path / "q-embedded.jsonl"),
    )
    _run(embedded, "manage.py", "run_embedded", "--no-serve")

    # The distributed run: every stage its own process on Kafka, the replay back-pressured.
    dist = _env(
        tmp_path,
        pg.url(database="distributed"),
        pg.url("tradeops_owner", database="distributed"),
        EVENT_BUS="kafka",
        KAFKA_BOOTSTRAP_SERVERS=bootstrap,
        KAFKA_TOPIC_PREFIX=prefix,
        AUDIT_CHECKPOINT_DIR=str(tmp_path / "cp-distributed"),
        REPLAY_QUARANTINE=str(tmp_path / "q-distributed.jsonl"),
    )
    procs = {}
    try:
        for name, args in STAGES.items():
            log = tmp_path / f"{name}.log"
            procs[name] = (
                subprocess.Popen(
                    [sys.executable, "manage.py", *args],
                    cwd=ROOT,
                    env=dist,
                    stdout=open(log, "w"),  # noqa: SIM115 - the stage writes to it while it lives
                    stderr=subprocess.STDOUT,
                ),
                log,
            )
        replay = subprocess.run(
            [sys.executable, "manage.py", "replay", "--source", "embedded", "--bus", "kafka", "--settle"],
            cwd=ROOT,
            env=dist,
            capture_output=True,
            text=True,
            timeout=900,
        )
        dead = {n: p.returncode for n, (p, _) in procs.items() if p.poll() is not None}
        logs = {n: log.read_text()[-1500:] for n, (_, log) in procs.items()}
        assert replay.returncode == 0 and not dead, f"replay: {replay.stdout[-1500:]} {replay.stderr[-3000:]}; {logs}"
        print(replay.stdout.strip().splitlines()[-1])
    finally:
        for proc, _ in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc, _ in procs.values():
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
    for name, (proc, log) in procs.items():
        assert proc.returncode == 0, f"{name} exited {proc.returncode}: {log.read_text()[-3000:]}"

    one, two = _records(embedded), _records(dist)
    for name, records in (("embedded", one), ("distributed", two)):  # kept beside the logs, for a diff
        (tmp_path / f"records-{name}.json").write_text(json.dumps(records, indent=1, sort_keys=True))
    counts = {k: (len(one[k]), len(two[k])) for k in one}
    print(f"embedded vs distributed, {BARS} bars: {counts}")
    filled = [o for o in one["orders"] if o["status"] == "FILLED"]
    assert len(filled) >= 3 and one["fills"] and one["decisions"], counts  # the run traded: not vacuous
    for kind in ("orders", "fills", "positions", "decisions", "alerts"):
        assert one[kind] == two[kind], f"{kind} differ ({counts[kind]}): {_first_difference(one[kind], two[kind])}"
