"""The cluster harness's pure parts (no cluster: runs with the other unit tests). When the admin
API keeps refusing a group's description, a stage's own log is evidence that its member joined,
but only the current process's word, and only while nothing was revoked or lost since."""

from __future__ import annotations

import json

from tests.cluster.conftest import stage_log_assignment


def _line(pid: int, message: str) -> str:
    return json.dumps({"level": "INFO", "logger": "tradeops.bus.kafka", "message": message, "process": pid})


def test_the_current_process_assignment_counts(tmp_path):
    log = tmp_path / "audit-trail.log"
    log.write_text(
        "\n".join(
            [
                "[supervise] audit-trail: started pid 100",
                _line(100, "audit-trail: assigned px-trading-events [0, 1]"),
                "[supervise] audit-trail: pid 100 exited (exit status 1) after 3.0 s; restart 1 in 2 s",
                "[supervise] audit-trail: started pid 101 (restart 1)",
                "not json at all",
                _line(101, "audit-trail: assigned nothing"),
                _line(101, "audit-trail: assigned px-trading-events [0, 1, 2, 3]"),
                _line(101, "other-group: revoked px-trading-events [0]"),
            ]
        )
        + "\n"
    )
    assert stage_log_assignment(log, "audit-trail") == "assigned px-trading-events [0, 1, 2, 3]"


def test_an_earlier_process_assignment_does_not_count(tmp_path):
    log = tmp_path / "audit-trail.log"
    log.write_text(
        "\n".join(
            [
                "[supervise] audit-trail: started pid 100",
                _line(100, "audit-trail: assigned px-trading-events [0, 1]"),
                "[supervise] audit-trail: started pid 101 (restart 1)",
                _line(101, "audit-trail: assigned nothing"),
            ]
        )
    )
    assert stage_log_assignment(log, "audit-trail") == ""


def test_revoked_or_lost_since_does_not_count(tmp_path):
    log = tmp_path / "live-push.log"
    for last in ("live-screens: revoked px-trading-events [0, 1]", "live-screens: lost px-trading-events [0, 1]"):
        log.write_text(
            "\n".join(
                [
                    "[supervise] live-push: started pid 7",
                    _line(7, "live-screens: assigned px-trading-events [0, 1]"),
                    _line(7, last),
                ]
            )
        )
        assert stage_log_assignment(log, "live-screens") == ""
    assert stage_log_assignment(tmp_path / "missing.log", "live-screens") == ""


def test_a_group_coordinator_partition_is_the_one_the_brokers_compute():
    """Java's String.hashCode, then Kafka's Utils.abs (not a mask: a negative hash differs), mod
    the partition count: checked against jshell and against FindCoordinator on the cluster."""
    from types import SimpleNamespace

    from tests.cluster.conftest import coordinator_partitions

    partitions = {p: SimpleNamespace(leader=1 + p % 3, isrs=[1, 2, 3]) for p in range(50)}
    admin = SimpleNamespace(
        list_topics=lambda topic, timeout: SimpleNamespace(topics={topic: SimpleNamespace(partitions=partitions)})
    )
    where = coordinator_partitions(admin, ["abc", "stab-g20-45b5ad"])
    assert where["abc"] == "__consumer_offsets-4 leader 2 isr [1, 2, 3]"  # "abc".hashCode() = 96354
    assert where["stab-g20-45b5ad"].startswith("__consumer_offsets-22 ")  # negative hash: abs, not a mask


def test_the_clusters_replay_settles_each_event_and_replay_flat_does_not():
    """Flat out, the cluster's quotes overtook the signals made from them and the worker decided
    every signal at the last quote's market time (wip/walk49: 16 signals of 2017-04-23 to
    2017-05-01 filled at 2017-05-05 21:00, so the officer's reports had one trading date)."""
    import os
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]

    def argv(*args: str) -> str:
        env = {**os.environ, "PYTHON": "/bin/echo"}
        out = subprocess.run(["bash", "scripts/cluster.sh", *args], cwd=root, env=env, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    assert argv("replay", "7") == "manage.py replay --source embedded --limit 7 --settle"
    assert argv("replay") == "manage.py replay --source embedded --limit 300 --settle"
    assert argv("replay-flat", "7") == "manage.py replay --source embedded --limit 7"
