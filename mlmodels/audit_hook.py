"""Where model-registry writes meet the core audit trail (``tradeops.audit``).

Called by ``mlmodels.services`` inside the writer's transaction, so the record exists exactly
when the activation (or registration, rollback, threshold change) committed. Category
``system`` (model activations, configuration). Regulation: 2017/565 Art. 72; RTS 6 Art. 9.
"""

from __future__ import annotations

from datetime import datetime


def record(*, action: str, actor: str, user=None, obj, payload: dict, at: datetime) -> None:
    """Append one audit record for a registry change (preconditions: inside ``transaction.atomic``)."""
    from tradeops.audit.identity import object_label, recorded_event_id
    from tradeops.audit.models import Category
    from tradeops.audit.services import audit_append

    object_type, object_id = object_label(obj)
    audit_append(
        action=action,
        object_type=object_type,
        object_id=object_id,
        occurred_at=at,
        payload=payload,
        actor=actor,
        event_id=recorded_event_id(action=action, obj=obj, payload=payload, at=at),
        category=Category.SYSTEM,
    )
