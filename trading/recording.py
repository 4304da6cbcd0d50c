"""Where trading writes meet the core recorders: the audit trail and the outbox.

Called by ``trading.services`` inside the writer's transaction, so a record exists exactly
when the write it describes committed. The audit trail (tradeops.audit) and the outbox
(tradeops.outbox) plug in here.
"""

from __future__ import annotations

from datetime import datetime


def record(*, action: str, actor: str, obj, payload: dict, at: datetime) -> None:
    """Record one trading action. Preconditions: inside ``transaction.atomic``."""
    # The audit trail and the outbox are wired in by their own issues (see README).
    return None
