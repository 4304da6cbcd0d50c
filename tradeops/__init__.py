"""tradeops: the system of record, compliance desk and operations console for MT5 trading."""

import os

# The Celery app is loaded with Django so that ``shared_task`` binds to it, except for the batch
# commands ``manage.py`` flags (``TRADEOPS_BATCH_CLI``: they send no task; ~0.5 s of start-up).
if os.environ.get("TRADEOPS_BATCH_CLI") != "1":
    from tradeops.celery import app as celery_app

    __all__ = ("celery_app",)
