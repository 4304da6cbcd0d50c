"""docker/compose.yml and the plain-process cluster come from one list (tradeops/topology.py):
the file is what the list generates, and every command in it names a management command, stage,
Celery queue and setting that exists (issue 18: `run_stage features` and `run_stage audit` named
stages that did not exist, so those containers crash-looped)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.core.management import get_commands, load_command_class

from tradeops.gateway import COMPOSE_CONFIG, compose_gateway_config
from tradeops.stages import STAGES
from tradeops.topology import COMPOSE_FILE, PROCESSES, SETUP, STATE_DIRS, compose_text

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load(COMPOSE_FILE.read_text())


def _settings_read_from_env() -> set[str]:
    names = set()
    for path in (ROOT / "tradeops" / "settings").glob("*.py"):
        names |= set(re.findall(r"env(?:\.\w+)?\(\s*\"([A-Z0-9_]+)\"", path.read_text()))
    return names


def _check_command(argv: list[str]) -> None:
    """Parse ``argv`` as the image would run it: the command exists and accepts its arguments."""
    if argv[:2] == ["python", "manage.py"]:
        name, args = argv[2], argv[3:]
        assert name in get_commands(), f"{name}: no such management command"
        command = load_command_class(get_commands()[name], name)
        parsed = command.create_parser("manage.py", name).parse_args(args)  # exits on a bad argument
        if name == "run_stage":
            assert parsed.name in {s.name for s in STAGES}, f"run_stage {parsed.name}: no such stage"
    elif argv[:3] == ["celery", "-A", "tradeops"]:
        assert argv[3] in ("worker", "beat"), argv
        if "-Q" in argv:
            queues = set(argv[argv.index("-Q") + 1].split(","))
            routed = {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()}
            assert routed <= queues, f"tasks routed to {routed - queues} that no worker consumes"
            assert queues <= routed | {"celery"}, f"queues nobody routes to: {queues - routed - {'celery'}}"
    elif argv[0] == "daphne":
        assert argv[-1] == "tradeops.asgi:application"
        import tradeops.asgi  # noqa: F401 - the application module imports
    else:
        raise AssertionError(f"unknown command {argv}")


def test_compose_file_is_what_the_process_list_generates():
    assert COMPOSE_FILE.read_text() == compose_text(), "run: python -m tradeops.topology compose --write"
    assert COMPOSE_CONFIG.read_text() == compose_gateway_config()


def test_every_command_names_a_command_stage_queue_and_setting_that_exist(compose):
    services = compose["services"]
    app_services = {name for name, s in services.items() if "build" in s}  # merged from x-app
    assert app_services == {p.name for p in PROCESSES} | {"migrate"}
    for process in PROCESSES:
        service = services[process.name]
        assert service["command"] == list(process.command)
        _check_command(service["command"])
        assert not process.replay_args or _check_command([*process.command, *process.replay_args]) is None
    for step in services["migrate"]["command"][2].split(" && "):
        _check_command(shlex.split(step))
    assert [shlex.split(s) for s in services["migrate"]["command"][2].split(" && ")] == [list(s) for s in SETUP]
    # read by Django, prometheus_client and the OpenTelemetry SDK themselves, not by a setting
    known = _settings_read_from_env() | {
        "DJANGO_SETTINGS_MODULE",
        "PROMETHEUS_MULTIPROC_DIR",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    }
    for name, service in services.items():
        if name in app_services:
            env = {**compose["x-app"]["environment"], **service.get("environment", {})}
            assert set(env) <= known, f"{name}: settings nobody reads: {set(env) - known}"
    assert set(compose["x-app"]["depends_on"]) <= set(services)


def test_every_registered_stage_runs_somewhere_and_the_kafka_cluster_replicates(compose):
    stages_run = {p.command[3] for p in PROCESSES if p.command[2:3] == ("run_stage",)}
    stages_run.add("execution")  # run_execution_worker runs the execution stage
    assert stages_run == {s.name for s in STAGES}
    brokers = [s for name, s in compose["services"].items() if name.startswith("kafka-")]
    assert len(brokers) == 3
    for broker in brokers:
        env = broker["environment"]
        assert env["KAFKA_DEFAULT_REPLICATION_FACTOR"] == "3" and env["KAFKA_MIN_INSYNC_REPLICAS"] == "2"
        assert len(env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")) == 3
    assert compose["x-app"]["environment"]["KAFKA_BOOTSTRAP_SERVERS"].count(",") == 2
    assert "postgres-replica" in compose["services"] and "gateway" in compose["services"]


def test_prometheus_scrapes_every_process_on_its_metrics_port():
    prometheus = yaml.safe_load((ROOT / "docker" / "prometheus.yml").read_text())
    (job,) = [j for j in prometheus["scrape_configs"] if j["job_name"] == "tradeops-processes"]
    targets = set(job["static_configs"][0]["targets"])
    assert targets == {f"{p.name}:{p.metrics_port}" for p in PROCESSES if p.metrics_port}


def test_every_state_folder_is_a_named_volume_of_each_process_that_keeps_it(compose):
    """A redeploy recreates every container: what a process keeps on local disk outlives it only
    on a named volume. Every ``*_DIR`` setting is a folder of state (STATE_DIRS); each service
    that keeps it mounts its volume where its setting points (until 2026-12-07 the paper broker's
    journal, the audit digests, the models and the reports went with the container)."""
    dir_settings = {name for name in _settings_read_from_env() if name.endswith("_DIR")}
    assert dir_settings == {d.setting for d in STATE_DIRS}, "a *_DIR setting with no entry in STATE_DIRS"
    assert len({d.volume for d in STATE_DIRS}) == len({d.path for d in STATE_DIRS}) == len(STATE_DIRS)
    services = compose["services"]
    for d in STATE_DIRS:
        assert d.volume in compose["volumes"]
        keepers = d.processes or [p.name for p in PROCESSES]
        assert set(keepers) <= {p.name for p in PROCESSES}
        for name in keepers:
            service = services[name]
            volumes = service.get("volumes", compose["x-app"]["volumes"])  # its own list replaces x-app's
            env = {**compose["x-app"]["environment"], **service.get("environment", {})}
            assert f"{d.volume}:{d.path}" in volumes, f"{name}: no volume for {d.setting}"
            assert env[d.setting] == d.path, f"{name}: {d.setting} is not where its volume is"
    # the execution worker keeps both of its own, and the shared stores too
    worker = services["execution-worker"]["volumes"]
    assert "paperjournal:/app/var/paper-journal" in worker and "executionstate:/app/var/execution" in worker
    assert set(compose["x-app"]["volumes"]) <= set(worker)


def _dockerfile_run_words() -> list[list[str]]:
    """The words of each shell command the Dockerfile's RUN steps chain with ``&&``."""
    text = (ROOT / "docker" / "Dockerfile").read_text().replace("\\\n", " ")
    commands = []
    for line in text.splitlines():
        if line.startswith("RUN "):
            commands += [shlex.split(part) for part in line[4:].split("&&")]
    return commands


def test_the_image_creates_every_volume_folder_owned_by_the_app_user():
    """An empty named volume takes the owner of the image's folder when first mounted; a folder
    the image lacks comes up root's and the app (``USER tradeops``) cannot write it."""
    commands = _dockerfile_run_words()
    made = {w for c in commands if c[:2] == ["mkdir", "-p"] for w in c[2:]}
    owned = {w for c in commands if c[:2] == ["chown", "tradeops"] for w in c[2:]}
    assert any(c[:2] == ["useradd", "--system"] and c[-1] == "tradeops" for c in commands)
    assert "USER tradeops" in (ROOT / "docker" / "Dockerfile").read_text().splitlines()
    for d in STATE_DIRS:
        assert d.path in made, f"{d.path} ({d.setting}) not created in the image"
        assert d.path in owned, f"{d.path} ({d.setting}) not owned by the app user in the image"
    # and no checkout's local state is copied into the image to seed those volumes
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert "var/" in ignored and ".env" in ignored
