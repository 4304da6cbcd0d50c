"""Scheduled trading work (Celery beat, ``CELERY_BEAT_SCHEDULE`` in settings; queue ``trading``)."""

from __future__ import annotations

from celery import shared_task

from trading.orders.requests import order_requests_expire


@shared_task
def order_requests_expire_tick() -> int:
    """Expire the orders requested over the API that no execution worker took up in time
    (``API_ORDER_REQUEST_TTL_SECONDS``), so a client following one sees ``expired`` and the
    audit trail says so. Returns how many were expired."""
    return order_requests_expire()
