"""Celery's metrics: tasks finished by task and state, run time per task, beat's heartbeat (the
worker's is ``tradeops.observability.tasks.celery_heartbeat``), and the worker's metrics
endpoint (``METRICS_PORT``; with the prefork pool set ``PROMETHEUS_MULTIPROC_DIR`` so the child
processes' counts reach it). Tracing of tasks is OpenTelemetry's Celery instrumentation
(``tradeops.observability.tracing``). Connected by ``tradeops/celery.py``."""

from __future__ import annotations

import time

from celery import signals

from tradeops.observability import metrics

_started: dict[str, float] = {}


@signals.task_prerun.connect(weak=False)
def _task_prerun(task_id=None, task=None, **kwargs) -> None:
    _started[task_id] = time.perf_counter()


@signals.task_postrun.connect(weak=False)
def _task_postrun(task_id=None, task=None, state=None, **kwargs) -> None:
    started = _started.pop(task_id, None)
    name = getattr(task, "name", "unknown")
    if started is not None:
        metrics.celery_task_seconds.labels(name).observe(time.perf_counter() - started)
    metrics.celery_tasks.labels(name, (state or "unknown").lower()).inc()


@signals.task_retry.connect(weak=False)
def _task_retry(request=None, **kwargs) -> None:
    metrics.celery_tasks.labels(getattr(request, "task", "unknown"), "retry").inc()


_beat = False  # this process is Celery beat: each task it sends stamps its heartbeat


def beat_heartbeat_enable() -> None:
    """This process is Celery beat (``beat_init``): from now on each task it sends (the
    ``celery_heartbeat`` every ``CELERY_HEARTBEAT_SECONDS`` at least) stamps
    ``tradeops_heartbeat_timestamp_seconds{process="celery-beat"}``."""
    global _beat
    _beat = True
    metrics.heartbeat.labels("celery-beat").set(time.time())


@signals.before_task_publish.connect(weak=False)
def _before_task_publish(**kwargs) -> None:
    if _beat:
        metrics.heartbeat.labels("celery-beat").set(time.time())


@signals.worker_ready.connect(weak=False)
def _worker_ready(sender=None, **kwargs) -> None:
    from tradeops.observability.server import metrics_serve

    metrics_serve(process="celery-worker")


@signals.beat_init.connect(weak=False)
def _beat_init(sender=None, **kwargs) -> None:
    from tradeops.observability.server import metrics_serve

    beat_heartbeat_enable()

    metrics_serve(process="celery-beat")
