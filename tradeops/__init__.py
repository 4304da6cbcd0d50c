"""tradeops: the system of record, compliance desk and operations console for MT5 trading."""

from tradeops.celery import app as celery_app

__all__ = ("celery_app",)
