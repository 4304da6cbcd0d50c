"""Readers of the outbox (relay lag for operators and tests)."""

from __future__ import annotations

from tradeops.outbox.models import Outbox


def outbox_pending_count() -> int:
    return Outbox.objects.filter(sent_at__isnull=True).count()


def outbox_oldest_pending():
    return Outbox.objects.filter(sent_at__isnull=True).order_by("id").first()
