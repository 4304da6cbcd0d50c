"""Celery's heartbeat (issue 17, alerting): Celery beat sends ``celery_heartbeat`` every
``CELERY_HEARTBEAT_SECONDS`` (settings: ``CELERY_BEAT_SCHEDULE``) and the worker that runs it
stamps ``tradeops_heartbeat_timestamp_seconds{process="celery-worker"}``; beat stamps its own,
``{process="celery-beat"}``, each time it sends a task (``tradeops.observability.celery``). So a
beat that stopped scheduling and a worker that stopped consuming (or whose queue is backed up)
each leave their own series stale: ``TradeopsCeleryHeartbeatMissing`` in
monitoring/prometheus/alerts.yml, beside ``up == 0`` (``TradeopsTargetDown``) for a process that
does not answer at all."""

from __future__ import annotations

import time

from celery import shared_task

from tradeops.observability import metrics


@shared_task(ignore_result=True, acks_late=False)
def celery_heartbeat() -> None:
    """Stamp the worker's heartbeat with the time it ran this (the prefork children write it under
    ``PROMETHEUS_MULTIPROC_DIR``; the gauge keeps the latest of them)."""
    metrics.heartbeat.labels("celery-worker").set(time.time())
