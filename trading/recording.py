"""Where trading writes meet the core recorders: the audit trail and the outbox.

Called by ``trading.services`` inside the writer's transaction, so a record exists exactly
when the write it describes committed (no dual write).
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from datetime import datetime

_pending = threading.local()


@contextmanager
def batched():
    """Collect the audit entries and outbox events of the writes inside the block and append
    them in one go when it ends (one chain-head lock and one INSERT for the audit trail, one
    INSERT for the outbox), still inside the caller's transaction and in the same order.

    Used by the execution worker around its one-transaction-per-order write (issue 7): the
    order path's ~6 records then cost 3 statements instead of ~25. Preconditions: inside
    ``transaction.atomic``; the block must not swallow the rollback of a savepoint that wrote
    records (they would still be appended). Nested blocks join the outermost one. Yields
    ``(audit_entries, events)``, so the caller can hand the events to in-process consumers."""
    if getattr(_pending, "batch", None) is not None:
        yield _pending.batch
        return
    _pending.batch = ([], [])
    _pending.locked = {}
    try:
        yield _pending.batch  # (audit entries, outbox events): readable after the block
        entries, events = _pending.batch
    finally:
        _pending.batch = None
        _pending.locked = None
    if entries:
        from tradeops.audit.services import audit_append_many

        audit_append_many(entries=entries)
    if events:
        from tradeops.outbox.services import outbox_append_many

        outbox_append_many(events=events)


def in_batch() -> bool:
    """True inside a ``batched()`` block. The trading services then open no savepoint of their
    own (``transaction.atomic(savepoint=False)``): the block is all-or-nothing by its contract
    (a failure inside it must roll back the caller's whole transaction), so a savepoint per
    service call would only cost two round trips (SAVEPOINT, RELEASE) and never be used."""
    return getattr(_pending, "batch", None) is not None


def remember_locked(obj) -> None:
    """Inside a ``batched()`` block, note a row this transaction holds locked (inserted it, or
    read it ``FOR UPDATE``), with its current state, so a later writer in the same block can
    reuse it instead of locking it again. No-op outside a block."""
    locked = getattr(_pending, "locked", None)
    if locked is not None:
        locked[(type(obj), obj.pk)] = obj


def locked_row(model, pk):
    """The instance ``remember_locked`` noted for ``(model, pk)`` in the open block, or None.
    Its state is the row's: the row stays locked until the transaction ends, and only the
    services (which keep the instance current) write it."""
    locked = getattr(_pending, "locked", None)
    return None if locked is None else locked.get((model, pk))


def outbox_event(event) -> None:
    """Append an already-built event (e.g. ``risk.decision``) to the outbox, in order with the
    batch when one is open. Preconditions: inside the writer's transaction."""
    batch = getattr(_pending, "batch", None)
    if batch is not None:
        batch[1].append(event)
        return
    from tradeops.outbox.services import outbox_append

    outbox_append(event=event)


def record(*, action: str, actor: str, obj, payload: dict, at: datetime) -> None:
    """Record one trading action in the audit trail and the outbox.

    Preconditions: inside ``transaction.atomic`` (the caller's)."""
    from tradeops.audit.identity import recorded_event_id

    # One id for both: the audit consumer then skips the event instead of recording it twice.
    event_id = recorded_event_id(action=action, obj=obj, payload=payload, at=at)
    audit(action=action, actor=actor, obj=obj, payload=payload, at=at, event_id=event_id)
    outbox(action=action, obj=obj, payload=payload, at=at, event_id=event_id)


def audit(*, action: str, actor: str, obj, payload: dict, at: datetime, event_id=None) -> None:
    """Append the audit record (tradeops.audit), with the event id derived from the action
    (``recorded_event_id``), so the outbox event of the same action can carry the same id and
    the audit consumer then skips it instead of recording the action twice."""
    entry = audit_entry(action=action, actor=actor, obj=obj, payload=payload, at=at, event_id=event_id)
    batch = getattr(_pending, "batch", None)
    if batch is not None:
        batch[0].append(entry)
        return
    from tradeops.audit.services import audit_append_many

    audit_append_many(entries=[entry])


def audit_entry(*, action: str, actor: str, obj, payload: dict, at: datetime, event_id=None):
    """The audit entry of one trading action (``event_id``: ``recorded_event_id`` of the same
    arguments, computed here unless the caller already has it). Pure."""
    from tradeops.audit.identity import object_label, recorded_event_id
    from tradeops.audit.services import AuditEntry

    object_type, object_id = object_label(obj)
    return AuditEntry(
        action=action,
        object_type=object_type,
        object_id=object_id,
        occurred_at=at,
        payload=payload,
        actor=actor,
        event_id=event_id or recorded_event_id(action=action, obj=obj, payload=payload, at=at),
        category="trading",
    )


def outbox(*, action: str, obj, payload: dict, at: datetime, event_id=None) -> None:
    """Append the trading-events event of one action to the outbox (tradeops.outbox), in order
    with the batch when one is open. Preconditions: inside the writer's transaction
    (``outbox_append`` refuses otherwise)."""
    event = outbox_event_for(action=action, obj=obj, payload=payload, at=at, event_id=event_id)
    if event is not None:
        outbox_event(event)


def outbox_event_for(*, action: str, obj, payload: dict, at: datetime, event_id=None):
    """The trading-events event of one action, keyed by account so an account's orders, fills
    and positions keep their order on the bus; None for actions that have no event.

    ``order.*`` -> OrderEvent, ``execution.recorded`` -> Fill, ``position.updated`` ->
    PositionChanged. Its id is the audit record's (``recorded_event_id``), so the audit
    consumer skips it instead of recording the action twice. Pure."""
    from decimal import Decimal

    from tradeops.events import Fill, OrderEvent, PositionChanged, make_event

    def dec(name: str) -> Decimal | None:
        value = payload.get(name)
        return None if value is None else Decimal(value)

    if action.startswith("order."):
        event_payload = OrderEvent(
            client_order_id=payload["client_order_id"],
            account_id=payload["account_id"],
            symbol=payload["instrument"],
            side=payload["side"],
            order_type=payload["order_type"],
            quantity=dec("quantity"),
            status=payload["status"],
            previous_status=payload.get("from_status"),
            filled_quantity=dec("filled_quantity") or Decimal(0),
            limit_price=dec("limit_price"),
            stop_price=dec("stop_price"),
            average_fill_price=dec("average_fill_price"),
            broker_order_id=payload.get("broker_order_id") or "",
            algo_id=payload.get("algo_id") or "",
            trader_id=payload.get("trader_id"),
            desk=payload.get("desk") or "",
            signal_id=payload.get("signal_id") or "",
            reason=payload.get("reason") or payload.get("reject_reason") or "",
            ts=at,
        )
    elif action == "execution.recorded":
        event_payload = Fill(
            client_order_id=payload["client_order_id"],
            broker_deal_id=payload["broker_deal_id"],
            account_id=payload["account_id"],
            symbol=payload["instrument"],
            side=payload["side"],
            quantity=dec("quantity"),
            price=dec("price"),
            fee=dec("fee") or Decimal(0),
            venue=payload.get("venue") or "XXXX",
            arrival_mid=dec("arrival_mid"),
            ts=datetime.fromisoformat(payload["executed_at"]) if payload.get("executed_at") else at,
        )
    elif action == "position.updated":
        event_payload = PositionChanged(
            account_id=payload["account_id"],
            symbol=payload["instrument"],
            net_quantity=dec("net_quantity"),
            average_price=dec("average_price"),
            realised_pnl=dec("realised_pnl"),
            unrealised_pnl=dec("unrealised_pnl") or Decimal(0),
            ts=at,
        )
    else:
        return None
    if event_id is None:
        from tradeops.audit.identity import recorded_event_id

        event_id = recorded_event_id(action=action, obj=obj, payload=payload, at=at)
    return make_event(
        event_payload, source="trading", key=str(payload["account_id"]), occurred_at=at, event_id=event_id
    )
