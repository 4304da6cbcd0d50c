"""The production topology as one list of processes (issue 18).

``PROCESSES`` names every long-running process of the distributed deployment: each pipeline
stage as a consumer-group member, the execution worker, the outbox relay, Celery worker and
beat, and the web tier. Two things are derived from it, so they cannot drift:

* ``docker/compose.yml`` (``python -m tradeops.topology compose --write``; ``--check`` fails
  when the file differs from what the list generates), for a Docker host;
* the plain-process cluster on one machine (``scripts/cluster.sh up`` calls
  ``python -m tradeops.topology up``), which starts each process with ``ProcessGroup``.

Core names apps only by strings (management commands, stage names, Celery queues): this module
imports nothing from a domain app. ``tests/tradeops/test_topology.py`` checks every command
names a management command, stage, queue and setting that exists.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker" / "compose.yml"


@dataclass(frozen=True)
class Process:
    """One long-running process. ``command`` is what runs in the image (and, with ``python``
    replaced by the current interpreter, on the plain-process cluster); ``replay_args`` are
    appended (and ``replay_env`` set) when the cluster is fed a replay rather than live quotes
    (event time = market time).
    ``compose_only``: runs on a Docker host but not in the local cluster (the live collector
    polls a broker terminal that a Linux test machine does not have)."""

    name: str
    command: tuple[str, ...]
    kind: str  # stage | worker | relay | celery | web | collector
    replay_args: tuple[str, ...] = ()
    replay_env: dict[str, str] = field(default_factory=dict)
    compose_only: bool = False
    ports: tuple[str, ...] = ()
    environment: dict[str, str] = field(default_factory=dict)
    # Only on a Docker host: each process's metrics port for Prometheus (docker/prometheus.yml); on
    # one machine the processes would fight over the ports, and nothing scrapes them there.
    metrics_port: int = 0
    compose_environment: dict[str, str] = field(default_factory=dict)

    def argv(self, *, python: str = sys.executable, replay: bool = False) -> list[str]:
        argv = list(self.command)
        if argv[0] == "python":
            argv[0] = python
        elif argv[0] in ("celery", "daphne"):
            argv = [python, "-m", argv[0], *argv[1:]]
        return argv + (list(self.replay_args) if replay else [])


CELERY_QUEUES = ("celery", "trading", "compliance", "ml", "reports")

# One-shot steps before the processes start (compose: the `migrate` service).
SETUP: tuple[tuple[str, ...], ...] = (
    ("python", "manage.py", "migrate", "--noinput"),
    ("python", "manage.py", "provision_topics"),
)


@dataclass(frozen=True)
class StateDir:
    """A folder a process keeps state in on local disk, named by ``setting`` (a ``*_DIR`` setting
    read from the environment): on a Docker host a named volume at ``path``, so the state
    outlives the container (a redeploy recreates every container; without a volume the folder
    went with it). ``processes``: the services that mount it; empty: every app container (a
    store one process writes and others read). docker/Dockerfile creates each ``path`` owned by
    the app's user: an empty named volume takes the owner of the image's folder when first
    mounted, and a folder the image does not have is root's, unwritable by the app."""

    setting: str
    volume: str
    path: str
    processes: tuple[str, ...] = ()

    @property
    def mount(self) -> str:
        return f"{self.volume}:{self.path}"


# Every *_DIR setting (tests/tradeops/test_topology.py fails on one not listed here).
STATE_DIRS: tuple[StateDir, ...] = (
    # signed checkpoints of the audit chain: written by Celery, read by the web tier's verification
    StateDir("AUDIT_CHECKPOINT_DIR", "auditcheckpoints", "/app/var/audit/checkpoints"),
    # the audit trail's daily digests and archives (Celery), what catches a rewrite of the chain
    StateDir("AUDIT_EXPORT_DIR", "auditexports", "/app/var/audit/exports"),
    # model artifacts: trained by Celery (ml queue), loaded by ml-predict and the screens
    StateDir("ML_MODEL_DIR", "models", "/app/var/models"),
    # report files and ARM feedback: written by Celery, downloaded through the web tier
    StateDir("REPORTS_DIR", "reports", "/app/var/reports"),
    # the execution worker's spool of orders the broker answered whose write failed
    StateDir("EXECUTION_STATE_DIR", "executionstate", "/app/var/execution", ("execution-worker",)),
    # the paper broker's journal per account (its book, resting orders and prices across restarts)
    StateDir("EXECUTION_PAPER_JOURNAL_DIR", "paperjournal", "/app/var/paper-journal", ("execution-worker",)),
)


def state_dirs_of(process_name: str | None) -> list[StateDir]:
    """The folders ``process_name``'s container mounts beyond every app container's (None: the
    ones every app container mounts)."""
    if process_name is None:
        return [d for d in STATE_DIRS if not d.processes]
    return [d for d in STATE_DIRS if process_name in d.processes]


PROCESSES: tuple[Process, ...] = (
    Process("web", ("daphne", "-b", "0.0.0.0", "-p", "8000", "tradeops.asgi:application"), "web", ports=("8000",)),  # noqa: S104 - in its container, behind the gateway
    Process("outbox-relay", ("python", "manage.py", "run_outbox_relay"), "relay", metrics_port=9300),
    Process("ml-features", ("python", "manage.py", "run_stage", "ml-features"), "stage", metrics_port=9301),
    Process("ml-predict", ("python", "manage.py", "run_stage", "ml-predict"), "stage", metrics_port=9309),
    Process(
        "execution-worker",
        ("python", "manage.py", "run_execution_worker"),
        "worker",
        replay_args=("--clock", "replay"),
        # Flat out, the quotes overtake the signals the next two stages derive from them.
        replay_env={"EXECUTION_MAX_SIGNAL_AGE_SECONDS": "0"},
        metrics_port=9302,
        # its spool and the paper broker's journal: STATE_DIRS (volumes on a Docker host)
    ),
    Process("audit-trail", ("python", "manage.py", "run_stage", "audit-trail"), "stage", metrics_port=9303),
    Process("surveillance", ("python", "manage.py", "run_stage", "surveillance"), "stage", metrics_port=9304),
    Process("live-push", ("python", "manage.py", "run_stage", "live-push"), "stage", metrics_port=9310),
    Process("metrics-stage", ("python", "manage.py", "run_stage", "metrics"), "stage", metrics_port=9307),
    Process(
        "celery-worker",
        ("celery", "-A", "tradeops", "worker", "-Q", ",".join(CELERY_QUEUES), "-c", "2"),
        "celery",
        metrics_port=9305,
        # prefork children write their counts under PROMETHEUS_MULTIPROC_DIR; the worker serves them all
        compose_environment={"PROMETHEUS_MULTIPROC_DIR": "/tmp/prometheus"},  # noqa: S108 - the container's own tmpfs
    ),
    Process("celery-beat", ("celery", "-A", "tradeops", "beat"), "celery", metrics_port=9306),
    Process(
        "anomaly-detector",
        ("python", "manage.py", "run_anomaly_detector"),
        "worker",
        metrics_port=9308,
        compose_environment={
            "ANOMALY_SCRAPE_URLS": "http://web:8000/metrics,http://execution-worker:9302/metrics,"
            "http://ml-features:9301/metrics,http://metrics-stage:9307/metrics,http://outbox-relay:9300/metrics"
        },
    ),
    Process(
        "collector",
        ("python", "manage.py", "collect", "--symbols", "EURUSD"),
        "collector",
        compose_only=True,
        # its counts by outcome and the live loop's heartbeat (without the live profile, or with
        # MT5 unreachable, TradeopsTargetDown says the collector is not running)
        metrics_port=9311,
        environment={"BROKER": "mt5"},
    ),
)


def process_get(name: str) -> Process:
    for process in PROCESSES:
        if process.name == name:
            return process
    raise KeyError(f"no process named {name!r}; known: {', '.join(p.name for p in PROCESSES)}")


def local_processes() -> list[Process]:
    return [p for p in PROCESSES if not p.compose_only]


# ---------------------------------------------------------------------------------------------
# docker/compose.yml

KAFKA_BROKERS = 3
_HEADER = """\
# GENERATED by `python -m tradeops.topology compose --write` from tradeops/topology.py (PROCESSES):
# edit that list, not this file (tests/tradeops/test_topology.py fails when they differ).
# The same topology runs as plain processes on one machine: scripts/cluster.sh up (docs/topology.md).
# Secrets come from an env file you provide (docker/.env, not committed):
#   SECRET_KEY=...  ALLOWED_HOSTS=ops.example.com  POSTGRES_PASSWORD=... (the administrator)
#   TRADEOPS_OWNER_PASSWORD=... (migrations)  TRADEOPS_APP_PASSWORD=... (the runtime role)
#   REPLICATION_PASSWORD=... (the streaming replica)  KAFKA_CLUSTER_ID=... (22 characters, base64)
#   AUDIT_CHECKPOINT_KEY=... (signs the audit checkpoints)  METRICS_TOKEN=... (Prometheus)
#   GRAFANA_ADMIN_PASSWORD=... (Grafana's admin)  TRACING_ENABLED=true (optional: spans to Jaeger)
# Files beside this one (not committed): metrics-token (METRICS_TOKEN, for Prometheus's scrapes),
# alertmanager-token (the alert webhooks' bearer token; their URLs: monitoring/alertmanager/).
# Operators: Prometheus :9090, Alertmanager :9093, Grafana :3000, Jaeger :16686 (docs/observability.md).
# TLS for the gateway (docker/nginx/): certs/server.crt, server.key, client-ca.crt (not committed).
# Not exercised in CI: the build machines have no Docker engine (scripts/cluster.sh is).
"""


def _kafka_service(node: int) -> dict:
    voters = ",".join(f"{n}@kafka-{n}:9093" for n in range(1, KAFKA_BROKERS + 1))
    return {
        "image": "apache/kafka:4.1.1",
        "environment": {
            "CLUSTER_ID": "${KAFKA_CLUSTER_ID}",
            "KAFKA_NODE_ID": str(node),
            "KAFKA_PROCESS_ROLES": "broker,controller",
            "KAFKA_LISTENERS": "PLAINTEXT://:9092,CONTROLLER://:9093",
            "KAFKA_ADVERTISED_LISTENERS": f"PLAINTEXT://kafka-{node}:9092",
            "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
            "KAFKA_CONTROLLER_QUORUM_VOTERS": voters,
            "KAFKA_DEFAULT_REPLICATION_FACTOR": "3",
            "KAFKA_MIN_INSYNC_REPLICAS": "2",
            "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "3",
            "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "3",
            "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "2",
            "KAFKA_AUTO_CREATE_TOPICS_ENABLE": "false",
        },
        "volumes": [f"kafka{node}:/var/lib/kafka/data"],
        "restart": "unless-stopped",
    }


def compose_spec() -> dict:
    """The compose file as data (infrastructure, then one service per entry of PROCESSES)."""
    bootstrap = ",".join(f"kafka-{n}:9092" for n in range(1, KAFKA_BROKERS + 1))
    app_env = {
        "DJANGO_SETTINGS_MODULE": "tradeops.settings.production",
        "DATABASE_URL": "postgres://tradeops:${TRADEOPS_APP_PASSWORD}@postgres:5432/tradeops",
        "REDIS_URL": "redis://redis:6379/0",
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "EVENT_BUS": "kafka",
        "ELASTICSEARCH_URL": "http://elasticsearch:9200",
        # Tracing (docs/observability.md): off unless TRACING_ENABLED=true in docker/.env; spans
        # go to Jaeger's OTLP/HTTP receiver, each process named as its service (OTEL_SERVICE_NAME).
        "TRACING_ENABLED": "${TRACING_ENABLED:-false}",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://jaeger:4318",
        # the stores every app container mounts (STATE_DIRS), each setting naming its volume's path
        **{d.setting: d.path for d in state_dirs_of(None)},
    }
    app_volumes = [d.mount for d in state_dirs_of(None)]
    kafka_names = [f"kafka-{n}" for n in range(1, KAFKA_BROKERS + 1)]
    services: dict[str, dict] = {
        "postgres": {
            "image": "postgres:15",
            "environment": {
                "POSTGRES_USER": "postgres",
                "POSTGRES_PASSWORD": "${POSTGRES_PASSWORD}",
                "TRADEOPS_OWNER_PASSWORD": "${TRADEOPS_OWNER_PASSWORD}",
                "TRADEOPS_APP_PASSWORD": "${TRADEOPS_APP_PASSWORD}",
                "REPLICATION_PASSWORD": "${REPLICATION_PASSWORD}",
            },
            "volumes": ["pgdata:/var/lib/postgresql/data", "./postgres-init:/docker-entrypoint-initdb.d:ro"],
            "restart": "unless-stopped",
        },
        # The streaming replica: a base backup of the primary, then WAL streamed (hot standby).
        "postgres-replica": {
            "image": "postgres:15",
            "user": "postgres",
            "environment": {"PGPASSWORD": "${REPLICATION_PASSWORD}"},
            "command": [
                "sh",
                "-c",
                "[ -s /var/lib/postgresql/data/PG_VERSION ] || pg_basebackup -h postgres -U replicator "
                "-D /var/lib/postgresql/data -R -X stream && exec postgres -c hot_standby=on",
            ],
            "volumes": ["pgreplica:/var/lib/postgresql/data"],
            "depends_on": ["postgres"],
            "restart": "unless-stopped",
        },
        "redis": {"image": "redis:7", "restart": "unless-stopped"},
        **{name: _kafka_service(n) for n, name in enumerate(kafka_names, 1)},
        "migrate": {
            "<<": "*app",
            "environment": {
                **app_env,
                "MIGRATE_DATABASE_URL": "postgres://tradeops_owner:${TRADEOPS_OWNER_PASSWORD}@postgres:5432/tradeops",
            },
            "command": ["sh", "-c", " && ".join(" ".join(step) for step in SETUP)],
            "restart": "no",
        },
    }
    for process in PROCESSES:
        service: dict = {"<<": "*app", "command": list(process.command)}
        metrics = {"METRICS_PORT": str(process.metrics_port), "METRICS_ADDR": "0.0.0.0"} if process.metrics_port else {}  # noqa: S104 - container network
        own = state_dirs_of(process.name)
        extra = {
            **process.environment,
            **metrics,
            **process.compose_environment,
            **{d.setting: d.path for d in own},
            "OTEL_SERVICE_NAME": process.name,
        }
        service["environment"] = {**app_env, **extra}
        if process.ports:
            service["expose"] = list(process.ports)
        if own:  # a service's list replaces the app's: both go in it
            service["volumes"] = [*app_volumes, *(d.mount for d in own)]
        if process.kind == "collector":
            service["profiles"] = ["live"]  # needs an MT5 terminal: `docker compose --profile live up`
        services[process.name] = service
    services.update(
        {
            "gateway": {
                "image": "nginx:1.27",
                "volumes": [
                    "./nginx/tradeops.conf:/etc/nginx/conf.d/default.conf:ro",
                    "./nginx/fallback:/usr/share/nginx/fallback:ro",
                    "./certs:/etc/nginx/certs:ro",
                ],
                "ports": ["443:8443", "80:8080"],
                "depends_on": ["web"],
                "restart": "unless-stopped",
            },
            "elasticsearch": {
                "image": "docker.elastic.co/elasticsearch/elasticsearch:8.19.3",
                "environment": {"discovery.type": "single-node", "xpack.security.enabled": "false"},
                "volumes": ["esdata:/usr/share/elasticsearch/data"],
            },
            "prometheus": {
                "image": "prom/prometheus:v3.1.0",
                # metrics-token: the METRICS_TOKEN value, one line (not committed)
                "volumes": [
                    "./prometheus.yml:/etc/prometheus/prometheus.yml:ro",
                    "../monitoring/prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro",
                    "./metrics-token:/etc/prometheus/metrics-token:ro",
                ],
                "ports": ["9090:9090"],
                "depends_on": ["alertmanager"],
            },
            # routes the fired alerts to the webhooks of monitoring/alertmanager/alertmanager.yml
            "alertmanager": {
                "image": "prom/alertmanager:v0.28.0",
                # alertmanager-token: the bearer token of the alert webhooks, one line (not committed)
                "volumes": [
                    "../monitoring/alertmanager/alertmanager.yml:/etc/alertmanager/alertmanager.yml:ro",
                    "./alertmanager-token:/etc/alertmanager/token:ro",
                ],
                "ports": ["9093:9093"],
            },
            "grafana": {
                "image": "grafana/grafana:11.4.0",
                "environment": {"GF_SECURITY_ADMIN_PASSWORD": "${GRAFANA_ADMIN_PASSWORD}"},
                "volumes": [
                    "../monitoring/grafana/provisioning:/etc/grafana/provisioning:ro",
                    "../monitoring/grafana/dashboards:/var/lib/grafana/dashboards:ro",
                ],
                "ports": ["3000:3000"],
            },
            # traces (TRACING_ENABLED): OTLP/HTTP in on 4318 from the app services, the UI on 16686
            "jaeger": {
                "image": "jaegertracing/all-in-one:1.64.0",
                "environment": {"COLLECTOR_OTLP_ENABLED": "true"},
                "ports": ["16686:16686"],
            },
        }
    )
    return {
        "x-app": {
            "build": {"context": "..", "dockerfile": "docker/Dockerfile"},
            "env_file": ".env",
            "environment": app_env,
            "volumes": app_volumes,
            "depends_on": ["postgres", "redis", *kafka_names],
            "restart": "unless-stopped",
        },
        "services": services,
        "volumes": {name: None for name in ("pgdata", "pgreplica", *[f"kafka{n}" for n in range(1, 4)], "esdata")}
        | {d.volume: None for d in STATE_DIRS},
    }


def compose_text() -> str:
    """The YAML text of ``compose_spec()``; the ``x-app`` block is an anchor merged into each app
    service (``<<: *app``)."""
    import yaml  # dev dependency (requirements/dev.txt): only the generator and its test use it

    class Dumper(yaml.SafeDumper):
        pass

    def short_lists_inline(dumper, data):
        inline = all(isinstance(item, str) for item in data) and sum(len(i) + 2 for i in data) < 90
        return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=inline)

    Dumper.add_representer(list, short_lists_inline)
    body = yaml.dump(compose_spec(), Dumper=Dumper, sort_keys=False, default_flow_style=False, width=120)
    body = body.replace("x-app:\n", "x-app: &app\n", 1).replace("'<<': '*app'", "<<: *app")
    return _HEADER + body


# ---------------------------------------------------------------------------------------------
# The plain-process cluster


def process_start_time(pid: int) -> int | None:
    """When ``pid`` started, in clock ticks since boot (``/proc/PID/stat`` field 22): set at fork
    and kept across exec, so pid + start time names one process even after the pid is reused."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) is in parentheses and may hold spaces or parentheses itself.
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[19])  # fields[0] is field 3 (state)


def process_state(pid: int) -> str | None:
    """``/proc/PID/stat``'s state letter (R, S, Z...), None when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return stat[stat.rindex(")") + 2 :].split(maxsplit=1)[0]


def process_alive(pid: int, started: int | None) -> bool:
    """``pid`` runs (not a zombie) and, when ``started`` is known, is the process that started
    then (not a later one given the same pid)."""
    state = process_state(pid)
    if state is None or state in ("Z", "X"):
        return False
    return started is None or process_start_time(pid) == started


def pidfile_parse(text: str) -> tuple[int, int | None] | None:
    """``"PID START_TIME"`` (or a bare ``"PID"``, as earlier versions wrote) from a pid file."""
    parts = text.split()
    try:
        pid = int(parts[0])
        started = int(parts[1]) if len(parts) > 1 else None
    except (IndexError, ValueError):
        return None
    return pid, started


class ProcessGroup:
    """Starts, stops and inspects the local processes, one pid file and log per process under
    ``directory``; used by ``scripts/cluster.sh`` and the cluster tests."""

    def __init__(self, directory: Path, *, env: dict[str, str] | None = None, replay: bool = True):
        self.directory = Path(directory)
        self.env = dict(os.environ if env is None else env)
        self.replay = replay
        (self.directory / "pids").mkdir(parents=True, exist_ok=True)
        (self.directory / "logs").mkdir(parents=True, exist_ok=True)
        self._children: dict[int, subprocess.Popen] = {}  # started here: reaped here

    def _pidfile(self, name: str) -> Path:
        return self.directory / "pids" / f"{name}.pid"

    def _statefile(self, name: str) -> Path:
        return self.directory / "pids" / f"{name}.state"

    def child_state(self, name: str) -> dict | None:
        """What the supervisor last wrote of its child (``supervise``): ``child`` (its pid, or None
        while it waits to restart it), ``since`` (unix time), ``restarts``, ``last_exit``."""
        import json

        try:
            return json.loads(self._statefile(name).read_text())
        except (FileNotFoundError, ValueError):
            return None

    def log_path(self, name: str) -> Path:
        return self.directory / "logs" / f"{name}.log"

    def pid(self, name: str) -> int | None:
        """The supervisor's pid while it runs, else None. A child started here is judged by its
        ``Popen`` (which also reaps it); one started by another process (``scripts/cluster.sh
        status``) by the pid *and* its start time in the pid file, so a reused pid is not taken
        for ours. Never by ``/proc/PID/cmdline``: it reads empty while the child is still inside
        exec, which is when ``Popen`` may already have returned (a live stage was reported gone)."""
        try:
            recorded = pidfile_parse(self._pidfile(name).read_text())
        except FileNotFoundError:
            return None
        if recorded is None:
            return None
        pid, started = recorded
        child = self._children.get(pid)
        if child is not None:
            return pid if child.poll() is None else None
        return pid if process_alive(pid, started) else None

    def start(self, name: str, *, extra_env: dict[str, str] | None = None) -> int:
        """Start ``name`` unless it runs; returns its pid."""
        running = self.pid(name)
        if running:
            return running
        process = process_get(name)
        env = {**self.env, **{k: v for k, v in process.environment.items() if not v.startswith("/app/")}}
        if self.replay:
            env.update(process.replay_env)
        env.update(extra_env or {})
        env[STATE_ENV] = str(self._statefile(name))
        self._statefile(name).unlink(missing_ok=True)
        # Under `supervise`: restarted whenever it exits until told to stop, as compose's
        # `restart: unless-stopped` does (a stage stops itself on an infrastructure failure).
        argv = [sys.executable, "-m", "tradeops.topology", "run", name] + (["--replay"] if self.replay else [])
        with open(self.log_path(name), "ab") as log:
            child = subprocess.Popen(  # noqa: S603 - argv from the process list in this module
                argv,
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self._children[child.pid] = child
        self._pidfile(name).write_text(f"{child.pid} {process_start_time(child.pid) or ''}".strip() + "\n")
        return child.pid

    def signal(self, name: str, signum: int) -> int | None:
        pid = self.pid(name)
        if pid:
            os.killpg(pid, signum)
        return pid

    def stop(self, name: str, *, grace: float = 20.0) -> None:
        pid = self.signal(name, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while pid and self.pid(name) and time.monotonic() < deadline:
            self._reap(pid)
            time.sleep(0.2)
        if self.pid(name):
            self.signal(name, signal.SIGKILL)
            time.sleep(0.5)
        if pid:
            self._reap(pid)
        self._pidfile(name).unlink(missing_ok=True)

    def _reap(self, pid: int) -> None:
        child = self._children.get(pid)
        if child is not None:
            child.poll()

    def up(self, names: list[str] | None = None) -> dict[str, int]:
        return {p.name: self.start(p.name) for p in local_processes() if names is None or p.name in names}

    def down(self) -> None:
        for process in reversed(local_processes()):
            self.stop(process.name)

    def status(self) -> dict[str, int | None]:
        return {p.name: self.pid(p.name) for p in local_processes()}


def process_argv(process: Process, *, env: dict[str, str], replay: bool) -> list[str]:
    """The command line of ``process`` on this machine (the web tier on the cluster's port)."""
    argv = process.argv(replay=replay)
    if process.kind == "web":
        argv[argv.index("-p") + 1] = env.get("CLUSTER_WEB_PORT", "18000")
        argv[argv.index("-b") + 1] = "127.0.0.1"
    return argv


_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _sender(info) -> str:
    """Who sent a signal (``siginfo``'s si_pid), with its command line when it can be read."""
    pid = info.si_pid
    if not pid:
        return "the kernel or an unknown sender"
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        cmdline = ""
    return f"pid {pid} ({cmdline[:200] or 'gone'})"


def _exit_describe(status: int) -> str:
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit status {code}"


STATE_ENV = "TRADEOPS_SUPERVISE_STATE"  # where ``run`` writes its child's state (ProcessGroup sets it)


def _state_write(path: str, **state) -> None:
    """The supervisor's view of its child, for ``status``: one JSON object, replaced atomically."""
    import json

    if not path:
        return
    tmp = f"{path}.tmp"
    with open(tmp, "w") as fh:
        json.dump(state, fh)
    os.replace(tmp, path)


def supervise(argv: list[str], *, backoff: float = 2.0, name: str = "", state_file: str = "") -> int:
    """Run ``argv`` and start it again whenever it exits, until SIGTERM/SIGINT (passed on to it).

    The supervisor blocks its signals and takes them with ``sigtimedwait``, so it logs every one it
    gets, with the pid (and command line) of whoever sent it, and every exit of its child with the
    status and how long it ran: a stage that dies in its first second is never silent. The child
    starts with nothing blocked and default dispositions (``posix_spawn``). Returns the child's
    exit code once stopped (negative: the signal that ended it)."""
    label = name or os.path.basename(argv[-1])

    def say(message: str) -> None:
        print(f"[supervise] {label}: {message}", file=sys.stderr, flush=True)

    wanted = {*_STOP_SIGNALS, signal.SIGCHLD}
    signal.pthread_sigmask(signal.SIG_BLOCK, wanted)
    os.chdir(ROOT)
    restarts = 0
    stopping = False
    last_exit = ""
    while True:
        child = os.posix_spawn(argv[0], argv, os.environ, setsigmask=(), setsigdef=_STOP_SIGNALS)
        started = time.monotonic()
        say(f"started pid {child}" + (f" (restart {restarts})" if restarts else ""))
        _state_write(state_file, child=child, since=time.time(), restarts=restarts, last_exit=last_exit)
        status = None
        while status is None:
            info = signal.sigtimedwait(wanted, 1.0)  # a timeout: SIGCHLDs may coalesce
            if info is not None and info.si_signo in _STOP_SIGNALS:
                say(f"got {signal.Signals(info.si_signo).name} from {_sender(info)}; passing it to pid {child}")
                stopping = True
                try:
                    os.kill(child, info.si_signo)
                except ProcessLookupError:
                    pass
            done, status = os.waitpid(child, os.WNOHANG)
            if done == 0:
                status = None
        rc = os.waitstatus_to_exitcode(status)
        ran = time.monotonic() - started
        if stopping:
            say(f"pid {child} stopped ({_exit_describe(status)}) after {ran:.1f} s")
            return rc
        restarts += 1
        last_exit = f"{_exit_describe(status)} after {ran:.1f} s"
        say(f"pid {child} exited ({_exit_describe(status)}) after {ran:.1f} s; restart {restarts} in {backoff:.0f} s")
        _state_write(state_file, child=None, since=time.time(), restarts=restarts, last_exit=last_exit)
        deadline = time.monotonic() + backoff
        while (left := deadline - time.monotonic()) > 0:
            info = signal.sigtimedwait(set(_STOP_SIGNALS), left)
            if info is not None:
                say(f"got {signal.Signals(info.si_signo).name} from {_sender(info)} while waiting to restart; stopping")
                return rc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tradeops.topology", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    compose = sub.add_parser("compose", help="print docker/compose.yml as PROCESSES generates it")
    compose.add_argument("--write", action="store_true", help="write docker/compose.yml")
    compose.add_argument("--check", action="store_true", help="exit 1 when docker/compose.yml differs")
    sub.add_parser("list", help="name<TAB>command of each local process")
    run = sub.add_parser("run", help="run one process under supervision (restarted until stopped)")
    run.add_argument("name")
    run.add_argument("--replay", action="store_true", help="with its replay arguments and environment")
    for cmd in ("up", "down", "status"):
        p = sub.add_parser(cmd, help=f"{cmd} the local processes (scripts/cluster.sh)")
        p.add_argument("--dir", required=True, help="pid files and logs")
        if cmd == "up":
            p.add_argument("--live", action="store_true", help="wall-clock event time (default: a replay's)")
    args = parser.parse_args(argv)
    if args.cmd == "compose":
        text = compose_text()
        if args.check:
            from tradeops.gateway import COMPOSE_CONFIG, compose_gateway_config

            if COMPOSE_FILE.read_text() != text or COMPOSE_CONFIG.read_text() != compose_gateway_config():
                print(
                    "docker/compose.yml differs from tradeops/topology.py: run "
                    "`python -m tradeops.topology compose --write`",
                    file=sys.stderr,
                )
                return 1
            return 0
        if args.write:
            from tradeops.gateway import COMPOSE_CONFIG, compose_gateway_config

            COMPOSE_FILE.write_text(text)
            COMPOSE_CONFIG.write_text(compose_gateway_config())
        else:
            sys.stdout.write(text)
        return 0
    if args.cmd == "list":
        for p in local_processes():
            print(f"{p.name}\t{' '.join(p.command)}")
        return 0
    if args.cmd == "run":
        process = process_get(args.name)
        return supervise(
            process_argv(process, env=dict(os.environ), replay=args.replay),
            name=process.name,
            state_file=os.environ.get(STATE_ENV, ""),
        )
    group = ProcessGroup(Path(args.dir), replay=not getattr(args, "live", False))
    if args.cmd == "up":
        for name, pid in group.up().items():
            print(f"{name:18} pid {pid}  log {group.log_path(name)}")
        return 0
    if args.cmd == "down":
        group.down()
        return 0
    rc = 0
    for name, pid in group.status().items():
        line, up = status_line(pid, group.child_state(name))
        print(f"{name:18} {line}")
        rc = rc if up else 1
    return rc


def status_line(pid: int | None, state: dict | None, *, now: float | None = None) -> tuple[str, bool]:
    """One process's status for ``status`` and whether it counts as up: its supervisor's pid, and
    from the supervisor's state file whether its child runs, since when, how often it was
    restarted and how it last ended. Until 2026-12-06 a supervisor alive was "up" although its
    child died every two seconds (walk45): a crash-looping stage looked healthy to ops."""
    if not pid:
        return "down", False
    if state is None:
        return f"up    pid {pid}", True
    now = time.time() if now is None else now
    ago = max(now - float(state.get("since") or now), 0.0)
    restarts, last = state.get("restarts", 0), state.get("last_exit", "")
    history = f"; {restarts} restart{'s' if restarts != 1 else ''}, last ended: {last}" if restarts or last else ""
    if state.get("child"):
        return f"up    pid {pid} (child {state['child']}, running {ago:.0f} s{history})", True
    return f"restarting pid {pid} (its child ended {ago:.0f} s ago: {last}; restart {restarts} due)", False


if __name__ == "__main__":
    sys.exit(main())
