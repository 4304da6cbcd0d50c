"""The audit consumer: records trading-events and compliance-events in the audit trail.

A sink stage (``tradeops.stages``: ``audit-trail``): unlike the pure handlers it writes to the
database, through the one audit service, and produces no events. Idempotent by ``event_id``: a
redelivered event, or an event a service already recorded with the same id (see
``tradeops.audit.identity``), is a no-op. The runner commits the consumer offset only after
``handle`` returns, i.e. after the record is durable.
"""

from __future__ import annotations

from collections.abc import Sequence

from tradeops.events import Envelope


class AuditTrailConsumer:
    """``handle(event) -> []``; ``handle_batch(events)`` appends a batch under one lock."""

    def handle(self, event: Envelope) -> list[Envelope]:
        from tradeops.audit.services import audit_append_events  # late: stages are resolved before Django is

        audit_append_events(events=[event])
        return []

    def handle_batch(self, events: Sequence[Envelope]) -> list[Envelope]:
        from tradeops.audit.services import audit_append_events

        audit_append_events(events=list(events))
        return []


def audit_stage() -> AuditTrailConsumer:
    """Stage factory (``tradeops.stages``: ``audit-trail``)."""
    return AuditTrailConsumer()
