"""The cluster tests' harness (issue 18): the three-broker Kafka cluster, PostgreSQL primary and
replica and Redis of ``scripts/cluster.sh`` (brought up by the first test when not running), a
database per test cloned from a prepared one (migrated, seeded, small models activated), a topic
prefix per test, and the stages as separate processes started from tradeops/topology.py's list.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import service_unavailable
from tradeops.topology import ProcessGroup, pidfile_parse

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = ["bash", str(ROOT / "scripts" / "cluster.sh")]
# What the trading run needs (web, Celery and the live collector are not part of a replay's path).
REPLAY_PROCESSES = (
    "outbox-relay",
    "ml-features",
    "ml-predict",
    "execution-worker",
    "audit-trail",
    "surveillance",
    "live-push",
)


def cluster_env() -> dict[str, str]:
    out = subprocess.run([*CLUSTER, "env"], capture_output=True, text=True, check=True).stdout
    env = {}
    for line in out.splitlines():
        if line.startswith("export "):
            key, _, value = line[len("export ") :].partition("=")
            env[key] = value
    return env


def _with_db(url: str, name: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    """The cluster's infrastructure, up (``scripts/cluster.sh infra`` is idempotent)."""
    up = subprocess.run([*CLUSTER, "infra"], capture_output=True, text=True, timeout=900)
    if up.returncode != 0:
        service_unavailable(f"scripts/cluster.sh infra failed: {up.stderr[-3000:]}")
    return cluster_env()


def _owner_sql(env: dict[str, str], sql: str) -> None:
    import psycopg

    with psycopg.connect(_with_db(env["MIGRATE_DATABASE_URL"], "postgres"), autocommit=True) as conn:
        conn.execute(sql)


def _drop_database(env: dict[str, str], name: str, *, wait: float = 30.0) -> None:
    """Drop a throwaway database. ``WITH (FORCE)`` may only end the owner's own sessions: a
    runtime-role backend of a process the test has just killed can outlive it by a moment, so
    wait for it to go, and name what is still connected if it does not."""
    import psycopg

    deadline = time.monotonic() + wait
    while True:
        try:
            _owner_sql(env, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            return
        except psycopg.errors.InsufficientPrivilege:
            if time.monotonic() > deadline:
                with psycopg.connect(_with_db(env["MIGRATE_DATABASE_URL"], "postgres")) as conn:
                    left = conn.execute(
                        "SELECT pid, usename, application_name, state, query FROM pg_stat_activity WHERE datname = %s",
                        (name,),
                    ).fetchall()
                raise AssertionError(f"database {name} still has sessions after {wait:.0f} s: {left}") from None
            time.sleep(0.5)


def _run(argv, env, timeout=600) -> subprocess.CompletedProcess:
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{argv} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    return done


@pytest.fixture(scope="session")
def cluster_base(cluster, tmp_path_factory):
    """A database on the cluster's primary, migrated, seeded and with small models active: the
    template each test's database is cloned from (seconds instead of a migration each)."""
    name = f"clt_base_{uuid.uuid4().hex[:8]}"
    models = tmp_path_factory.mktemp("cluster-models")
    env = {
        **os.environ,
        **cluster,
        "DATABASE_URL": _with_db(cluster["DATABASE_URL"], name),
        "MIGRATE_DATABASE_URL": _with_db(cluster["MIGRATE_DATABASE_URL"], name),
        "DATABASE_REPLICA_URL": _with_db(cluster["DATABASE_REPLICA_URL"], name),  # the same database, streamed
        "ML_MODEL_DIR": str(models),
        "PYTHONPATH": str(ROOT),
    }
    env.pop("TEST_DATABASE_NAME", None)
    _owner_sql(cluster, f'CREATE DATABASE "{name}"')
    try:
        _run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], env)
        _run([sys.executable, "-m", "tests.cluster.prepare"], env)
        yield name, env
    finally:
        _drop_database(cluster, name)


def coordinator_partitions(admin, groups) -> dict[str, str]:
    """Where each group's coordinator should be, by the cluster's metadata: the partition of
    __consumer_offsets its id hashes to (Java's String.hashCode, as the brokers compute it) and
    that partition's leader and in-sync replicas. Said when a group never showed its members."""
    try:
        topic = admin.list_topics("__consumer_offsets", timeout=10).topics["__consumer_offsets"]
    except Exception as exc:  # only a diagnostic
        return dict.fromkeys(groups, f"no metadata: {exc}")
    out = {}
    for group in groups:
        h = 0
        for ch in group:  # our group ids are ASCII: one UTF-16 unit each, as Java counts
            h = (31 * h + ord(ch)) & 0xFFFFFFFF
        signed = h - (1 << 32) if h >= 1 << 31 else h
        partition = (abs(signed) if signed != -(1 << 31) else 0) % len(topic.partitions)  # Kafka's Utils.abs
        meta = topic.partitions[partition]
        out[group] = f"__consumer_offsets-{partition} leader {meta.leader} isr {sorted(meta.isrs)}"
    return out


def stage_log_assignment(path: Path, group: str) -> str:
    """The partitions a stage's current process says its member of ``group`` holds: the last
    "<group>: assigned ..." line (KafkaSubscription._on_assign) logged by the child the
    supervisor last started, with no "revoked" or "lost" line after it; "" if there is none."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return ""
    current = None
    for line in lines:  # the supervisor's "[supervise] NAME: started pid N (restart k)"
        if line.startswith("[supervise] ") and ": started pid " in line:
            current = int(line.split(": started pid ", 1)[1].split()[0])
    held = ""
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if not isinstance(record, dict) or (current is not None and record.get("process") != current):
            continue
        message = str(record.get("message", ""))
        if message.startswith(f"{group}: assigned ") and message != f"{group}: assigned nothing":
            held = message[len(f"{group}: ") :]
        elif message.startswith((f"{group}: revoked ", f"{group}: lost ")):
            held = ""
    return held


@dataclass
class ClusterRun:
    """One test's slice of the cluster: its database, topic prefix and processes."""

    env: dict[str, str]
    group: ProcessGroup
    prefix: str
    directory: Path
    replays: list = field(default_factory=list)

    def start(self, names=REPLAY_PROCESSES) -> None:
        for name in names:
            self.group.start(name)
        self.wait_members(names)

    def _exit_status(self, name) -> str:
        """How a supervisor this run started ended: its exit code, or the signal that killed it."""
        pidfile = self.group.directory / "pids" / f"{name}.pid"
        try:
            recorded = pidfile_parse(pidfile.read_text())
        except FileNotFoundError:
            return "no pid file"
        child = self.group._children.get(recorded[0]) if recorded else None
        if child is None:
            return "not started by this run"
        rc = child.poll()
        if rc is None:
            return "still running, but no longer recognised"
        return f"killed by {signal.Signals(-rc).name}" if rc < 0 else f"exit status {rc}"

    def wait_members(self, names, timeout: float = 180.0, *, refusals_before_log: int = 5) -> None:
        """Until each started stage's consumer group has a member with partitions assigned.

        The admin API is asked through ``GroupAdmin`` (a new client after NOT_COORDINATOR and
        the like: librdkafka's admin client may keep asking a coordinator that moved). If a
        group's coordinator keeps refusing (``refusals_before_log`` looks in a row, each through
        a new client), the stage's own log is taken as evidence instead: its current process
        (the supervisor's last "started pid N") logged "<group>: assigned <partitions>" and
        nothing revoked or lost since. A stage that never says so is never taken as joined."""
        from tradeops.bus.settle import GroupAdmin
        from tradeops.stages import stage_get
        from tradeops.topology import process_get

        groups: dict[str, tuple[str, str]] = {}  # physical group -> (process name, logical group)
        for name in names:
            command = process_get(name).command
            if "run_stage" in command:
                logical = stage_get(command[command.index("run_stage") + 1]).group
            elif "run_execution_worker" in command:
                logical = stage_get("execution").group
            else:
                continue
            groups[self.prefix + logical] = (name, logical)
        admin = GroupAdmin(self.env["KAFKA_BOOTSTRAP_SERVERS"], client_id="cluster-tests")
        deadline = time.monotonic() + timeout
        pending = set(groups)
        last: dict[str, str] = {}  # what the last look at each pending group said
        refused: dict[str, int] = dict.fromkeys(groups, 0)  # coordinator refusals in a row
        while pending and time.monotonic() < deadline:
            for name in names:
                if self.group.pid(name) is None:
                    raise AssertionError(f"{name} exited ({self._exit_status(name)}):\n{self.log(name)}")
            looks = admin.describe(sorted(pending))
            for group, look in looks.items():
                last[group] = str(look)
                if look.assigned:
                    pending.discard(group)
                    continue
                refused[group] = refused[group] + 1 if look.coordinator_refused else 0
                if refused[group] >= refusals_before_log:
                    name, logical = groups[group]
                    said = stage_log_assignment(self.group.log_path(name), logical)
                    last[group] += f"; refused {refused[group]} times in a row; its log: {said or 'no assignment'}"
                    if said:
                        print(f"wait_members: {group}: the admin API still refuses ({look}); {name} logged {said}")
                        pending.discard(group)
            time.sleep(1)
        if pending:
            where = coordinator_partitions(admin.admin, pending)
            raise AssertionError(
                f"consumer groups without an assigned member after {timeout:.0f} s "
                f"({admin.renewals} admin clients renewed after coordinator errors): "
                + "; ".join(
                    f"{group}: {last.get(group, 'never described')} [{where.get(group, '?')}]"
                    for group in sorted(pending)
                )
            )

    def log(self, name: str) -> str:
        path = self.group.log_path(name)
        return path.read_text()[-4000:] if path.exists() else "(no log)"

    def replay(self, limit: int, *, background: bool = False):
        argv = [
            sys.executable,
            "manage.py",
            "replay",
            "--source",
            "embedded",
            "--limit",
            str(limit),
            "--bus",
            "kafka",
            "--quarantine-file",
            str(self.directory / "quarantine.jsonl"),
        ]
        if background:
            proc = subprocess.Popen(
                argv, cwd=ROOT, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            self.replays.append(proc)
            return proc
        return _run(argv, self.env, timeout=300)

    def lag(self) -> dict[str, int]:
        """Records not yet committed by each running stage's group (0 everywhere: settled)."""
        from confluent_kafka import Consumer, TopicPartition

        from tradeops.stages import STAGES

        lags = {}
        consumer = Consumer({"bootstrap.servers": self.env["KAFKA_BOOTSTRAP_SERVERS"], "group.id": "lag-probe"})
        try:
            for stage in STAGES:
                partitions = []
                for topic in stage.consumes:
                    meta = consumer.list_topics(self.prefix + topic, timeout=10).topics[self.prefix + topic]
                    partitions += [TopicPartition(self.prefix + topic, p) for p in meta.partitions]
                probe = Consumer(
                    {"bootstrap.servers": self.env["KAFKA_BOOTSTRAP_SERVERS"], "group.id": self.prefix + stage.group}
                )
                try:
                    committed = probe.committed(partitions, timeout=10)
                finally:
                    probe.close()
                total = 0
                for tp in committed:
                    _low, high = consumer.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), timeout=10)
                    total += high - max(tp.offset, 0)
                lags[stage.name] = total
        finally:
            consumer.close()
        return lags

    def settle(self, names=REPLAY_PROCESSES, timeout: float = 240.0) -> dict:
        """Until every stage has committed everything on its topics and the outbox is sent, twice in
        a row (what a stage consumes can produce more). Returns the probe."""
        deadline = time.monotonic() + timeout
        quiet = 0
        lags, probe = {}, {}
        running = [n for n in names if self.group.pid(n)]
        stages = {"live-push", "audit-trail", "surveillance", "ml-features", "ml-predict", "execution"}
        while time.monotonic() < deadline:
            for name in running:
                assert self.group.pid(name), f"{name} died:\n{self.log(name)}"
            lags = {k: v for k, v in self.lag().items() if k in stages}
            probe = self.probe()
            if not any(lags.values()) and probe["outbox_unsent"] == 0:
                quiet += 1
                if quiet >= 2:
                    return probe
            else:
                quiet = 0
            time.sleep(2)
        raise AssertionError(f"not settled after {timeout}s: lag {lags}, outbox unsent {probe.get('outbox_unsent')}")

    def probe(self) -> dict:
        done = _run([sys.executable, "-m", "tests.cluster.probe"], self.env, timeout=180)
        return json.loads(done.stdout.strip().splitlines()[-1])

    def transaction_reports(self, probe: dict) -> dict:
        done = _run([sys.executable, "-m", "tests.cluster.probe", "--reports"], self.env, timeout=180)
        return json.loads(done.stdout.strip().splitlines()[-1])

    def topic_event_ids(self, topic: str) -> list[str]:
        """Every envelope's event_id on ``topic`` (this run's prefix), read from the start."""
        from confluent_kafka import Consumer, TopicPartition

        from tradeops.events import decode

        consumer = Consumer(
            {
                "bootstrap.servers": self.env["KAFKA_BOOTSTRAP_SERVERS"],
                "group.id": f"reader-{uuid.uuid4().hex[:6]}",
                "enable.auto.commit": False,
            }
        )
        ids = []
        try:
            name = self.prefix + topic
            meta = consumer.list_topics(name, timeout=10).topics[name]
            ends = {}
            for p in meta.partitions:
                _low, high = consumer.get_watermark_offsets(TopicPartition(name, p), timeout=10)
                ends[p] = high
            consumer.assign([TopicPartition(name, p, 0) for p in meta.partitions])
            remaining = {p for p, high in ends.items() if high > 0}
            deadline = time.monotonic() + 60
            while remaining and time.monotonic() < deadline:
                msg = consumer.poll(1.0)
                if msg is None or msg.error():
                    continue
                ids.append(str(decode(msg.value()).event_id))
                if msg.offset() + 1 >= ends[msg.partition()]:
                    remaining.discard(msg.partition())
            assert not remaining, f"could not read {name} to its end"
        finally:
            consumer.close()
        return ids


@pytest.fixture
def cluster_run(cluster, cluster_base, tmp_path):
    from confluent_kafka.admin import AdminClient

    from tradeops.bus.provision import topics_apply, topics_delete, topics_plan

    base, base_env = cluster_base
    name = f"clt_{uuid.uuid4().hex[:10]}"
    prefix = f"clt-{uuid.uuid4().hex[:8]}-"
    _owner_sql(cluster, f'CREATE DATABASE "{name}" TEMPLATE "{base}"')
    os.chmod(tmp_path, 0o755)
    env = {
        **base_env,
        "DATABASE_URL": _with_db(cluster["DATABASE_URL"], name),
        "MIGRATE_DATABASE_URL": _with_db(cluster["MIGRATE_DATABASE_URL"], name),
        "DATABASE_REPLICA_URL": _with_db(cluster["DATABASE_REPLICA_URL"], name),
        "KAFKA_TOPIC_PREFIX": prefix,
        "EXECUTION_PAPER_JOURNAL_DIR": str(tmp_path / "paper-journal"),
        "AUDIT_CHECKPOINT_DIR": str(tmp_path / "checkpoints"),
        "EXECUTION_SNAPSHOT_SECONDS": "1",
    }
    admin = AdminClient({"bootstrap.servers": cluster["KAFKA_BOOTSTRAP_SERVERS"]})
    actions, brokers = topics_plan(admin, prefix=prefix)
    assert brokers == 3
    topics_apply(admin, actions)
    run = ClusterRun(env=env, group=ProcessGroup(tmp_path / "processes", env=env), prefix=prefix, directory=tmp_path)
    try:
        yield run
    finally:
        for proc in run.replays:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()
        run.group.down()
        topics_delete(admin, [a.topic for a in actions])
        _drop_database(cluster, name)
