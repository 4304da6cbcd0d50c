"""The Celery app. Queues per domain: trading, compliance, ml, reports (see settings)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradeops.settings.local")

app = Celery("tradeops")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

import tradeops.observability.celery  # noqa: E402, F401 - task metrics and the worker's metrics endpoint
