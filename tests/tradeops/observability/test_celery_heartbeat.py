"""Celery's heartbeat: beat sends ``celery_heartbeat`` on its schedule and stamps its own series
as it sends; a real worker (in a thread, the solo pool, an in-memory broker) runs it and stamps
the worker's. The alert on them is tested with promtool (test_alert_rules.py)."""

from __future__ import annotations

import time

import pytest
from celery import Celery
from celery.beat import Scheduler
from celery.contrib.testing.worker import start_worker
from django.conf import settings
from prometheus_client import REGISTRY

from tradeops.observability import celery as celery_metrics

HEARTBEAT = "tradeops_heartbeat_timestamp_seconds"


def stamped(process: str) -> float | None:
    return REGISTRY.get_sample_value(HEARTBEAT, {"process": process})


@pytest.fixture
def app():
    import tradeops.observability.tasks  # noqa: F401 - registers celery_heartbeat (a shared task)

    app = Celery("heartbeat-test", broker="memory://", backend="cache+memory://", set_as_current=False)
    app.conf.beat_schedule = {"heartbeat": settings.CELERY_BEAT_SCHEDULE["observability-celery-heartbeat"]}
    app.conf.task_always_eager = False
    yield app
    celery_metrics._beat = False


def test_the_beat_schedule_sends_the_heartbeat():
    entry = settings.CELERY_BEAT_SCHEDULE["observability-celery-heartbeat"]
    assert entry["task"] == "tradeops.observability.tasks.celery_heartbeat"
    assert entry["schedule"] == settings.CELERY_HEARTBEAT_SECONDS <= 60  # well inside the alert's 120 s


def test_beat_and_the_worker_each_stamp_their_heartbeat(app):
    before = time.time()
    task = "tradeops.observability.tasks.celery_heartbeat"
    ran = REGISTRY.get_sample_value("tradeops_celery_tasks_total", {"task": task, "state": "success"}) or 0
    timed = REGISTRY.get_sample_value("tradeops_celery_task_seconds_count", {"task": task}) or 0
    celery_metrics.beat_heartbeat_enable()  # what beat_init does in the beat process
    beat = Scheduler(app=app, lazy=False)
    for entry in beat.schedule.values():  # due now: as if its interval had passed
        entry.last_run_at = entry.default_now() - entry.schedule.run_every * 2
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        beat.tick()  # sends the due heartbeat: beat's series stamped as it sends
        assert stamped("celery-beat") >= before
        deadline = time.monotonic() + 20
        while (stamped("celery-worker") or 0) < before and time.monotonic() < deadline:
            time.sleep(0.05)
    assert stamped("celery-worker") >= before  # the worker ran it
    # and counted it, by task and state, with its run time
    assert REGISTRY.get_sample_value("tradeops_celery_tasks_total", {"task": task, "state": "success"}) > ran
    assert REGISTRY.get_sample_value("tradeops_celery_task_seconds_count", {"task": task}) > timed


def test_only_beat_stamps_beats_heartbeat(app):
    """A task sent by any other process (the web, a worker) is no sign of beat's life."""
    before = stamped("celery-beat")
    app.send_task("tradeops.observability.tasks.celery_heartbeat")
    assert stamped("celery-beat") == before
