"""Where trading writes meet the core recorders: the audit trail and the outbox.

Called by ``trading.services`` inside the writer's transaction, so a record exists exactly
when the write it describes committed (no dual write).
"""

from __future__ import annotations

from datetime import datetime


def record(*, action: str, actor: str, obj, payload: dict, at: datetime) -> None:
    """Record one trading action in the audit trail and the outbox.

    Preconditions: inside ``transaction.atomic`` (the caller's)."""
    audit(action=action, actor=actor, obj=obj, payload=payload, at=at)
    outbox(action=action, obj=obj, payload=payload, at=at)


def audit(*, action: str, actor: str, obj, payload: dict, at: datetime) -> None:
    """Append the audit record (tradeops.audit). Wired by the audit-trail issue."""


def outbox(*, action: str, obj, payload: dict, at: datetime) -> None:
    """Append the trading-events event to the outbox (tradeops.outbox). Wired by the event-backbone issue."""
