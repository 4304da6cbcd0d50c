"""Celery's metrics: tasks finished by task and state, run time per task, and the worker's metrics
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


@signals.worker_ready.connect(weak=False)
def _worker_ready(sender=None, **kwargs) -> None:
    from tradeops.observability.server import metrics_serve

    metrics_serve(process="celery-worker")


@signals.beat_init.connect(weak=False)
def _beat_init(sender=None, **kwargs) -> None:
    from tradeops.observability.server import metrics_serve

    metrics_serve(process="celery-beat")
