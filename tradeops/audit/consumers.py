"""The audit consumer: records trading-events and compliance-events in the audit trail.

A sink stage (``tradeops.stages``: ``audit-trail``): unlike the pure handlers it writes to the
database, through the one audit service, and produces no events. Idempotent by ``event_id``: a
redelivered event, or an event a service already recorded with the same id (see
``tradeops.audit.identity``), is a no-op. The runner commits the consumer offset only after
``handle`` returns, i.e. after the record is durable. After each append it writes a signed
checkpoint of the chain head when one is due (``tradeops.audit.checkpoint``; cheap when not).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from tradeops.events import Envelope

logger = logging.getLogger(__name__)


class AuditTrailConsumer:
    """``handle(event) -> []``; ``handle_batch(events)`` appends a batch under one lock."""

    def handle(self, event: Envelope) -> list[Envelope]:
        from tradeops.audit.services import audit_append_events  # late: stages are resolved before Django is

        audit_append_events(events=[event])
        _checkpoint_if_due()
        return []

    def handle_batch(self, events: Sequence[Envelope]) -> list[Envelope]:
        from tradeops.audit.services import audit_append_events

        audit_append_events(events=list(events))
        _checkpoint_if_due()
        return []


def _checkpoint_if_due() -> None:
    """A checkpoint that cannot be written is logged, never a reason to refuse the event (its
    record is already durable; Celery beat tries again within 30 s)."""
    from tradeops.audit.checkpoint import audit_checkpoint_if_due

    try:
        audit_checkpoint_if_due()
    except Exception:
        logger.exception("audit checkpoint not written")


def audit_stage() -> AuditTrailConsumer:
    """Stage factory (``tradeops.stages``: ``audit-trail``)."""
    return AuditTrailConsumer()
