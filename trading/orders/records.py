"""What the order path records of each step: the audit entry and the trading-event.

One action (``order.created``, ``order.<status>``, ``execution.recorded``, ``position.updated``)
gives one audit record and one event on trading-events with the SAME event id
(``recorded_event_id`` of the action), so the audit-trail stage skips the event instead of
recording the action twice. ``at`` is the action's event time (RTS 25). Pure: no Django query,
no clock.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from tradeops.audit.canonical import canonical_bytes
from tradeops.audit.identity import object_label, recorded_event_id
from tradeops.audit.services import AuditEntry
from tradeops.bus.tracing import traceparent_parse
from tradeops.events import Envelope, Fill, OrderEvent, PositionChanged, make_event
from trading.models import Execution, Order, Position


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _dec(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def order_snapshot(order: Order) -> dict:
    """The order as recorded in audit records and events (strings for Decimals, ISO times)."""
    return {
        "client_order_id": order.client_order_id,
        "broker_order_id": order.broker_order_id,
        "account_id": order.account_id,
        "instrument": order.instrument.symbol,
        "side": order.side,
        "order_type": order.order_type,
        "quantity": _dec(order.quantity),
        "filled_quantity": _dec(order.filled_quantity),
        "average_fill_price": _dec(order.average_fill_price),
        "limit_price": _dec(order.limit_price),
        "stop_price": _dec(order.stop_price),
        "time_in_force": order.time_in_force,
        "algo_id": order.algo_id,
        "trader_id": order.trader_id,
        "desk": order.desk,
        "signal_id": order.signal_id,
        "status": order.status,
        "reject_reason": order.reject_reason,
        "created_at": _iso(order.created_at),
        "decided_at": _iso(order.decided_at),
        "submitted_at": _iso(order.submitted_at),
        "first_fill_at": _iso(order.first_fill_at),
        "last_fill_at": _iso(order.last_fill_at),
        "closed_at": _iso(order.closed_at),
    }


def order_step_payload(order: Order, *, before: str, reason: str | None = None) -> dict:
    """The payload of ``order`` having moved from ``before`` to its current status: its
    snapshot, the previous status and, for a transition (not a fill), its reason."""
    payload = {**order_snapshot(order), "from_status": before}
    if reason is not None:
        payload["reason"] = reason
    return payload


def execution_snapshot(execution: Execution) -> dict:
    return {
        "broker_deal_id": execution.broker_deal_id,
        "client_order_id": execution.order.client_order_id,
        "account_id": execution.account_id,
        "instrument": execution.instrument.symbol,
        "side": execution.side,
        "quantity": _dec(execution.quantity),
        "price": _dec(execution.price),
        "fee": _dec(execution.fee),
        "fee_currency": execution.fee_currency,
        "venue": execution.venue,
        "liquidity_provider": execution.liquidity_provider,
        "arrival_mid": _dec(execution.arrival_mid),
        "arrival_bid": _dec(execution.arrival_bid),
        "arrival_ask": _dec(execution.arrival_ask),
        "executed_at": _iso(execution.executed_at),
    }


def position_snapshot(position: Position) -> dict:
    return {
        "account_id": position.account_id,
        "instrument": position.instrument.symbol,
        "net_quantity": _dec(position.net_quantity),
        "average_price": _dec(position.average_price),
        "realised_pnl": _dec(position.realised_pnl),
        "unrealised_pnl": _dec(position.unrealised_pnl),
        "mark_price": _dec(position.mark_price),
    }


def action_records(
    *, action: str, actor: str, obj, payload: dict, at: datetime, traceparent: str = "", cause: str = ""
) -> tuple[AuditEntry, Envelope | None]:
    """The audit entry and the trading-event (None for an action without one) of one action,
    sharing one derived event id (``cause``: see ``recorded_event_id``). With ``traceparent`` (the
    trace the action belongs to) the audit payload gets ``context: {trace_id, traceparent}`` and
    the event carries it, so the record is found from a trace and the trace from the record."""
    # The payload serialised once: its canonical bytes give the event id and, without a trace
    # context, are the audit record's payload text as they stand.
    canonical = canonical_bytes(payload)
    event_id = recorded_event_id(action=action, obj=obj, payload=payload, at=at, cause=cause, canonical=canonical)
    object_type, object_id = object_label(obj)
    parsed = traceparent_parse(traceparent)
    entry = AuditEntry(
        action=action,
        object_type=object_type,
        object_id=object_id,
        occurred_at=at,
        payload={**payload, "context": {"trace_id": parsed[0], "traceparent": traceparent}} if parsed else payload,
        actor=actor,
        event_id=event_id,
        category="trading",
        canonical=None if parsed else canonical,
    )
    event = action_event(
        action=action, payload=payload, at=at, event_id=event_id, traceparent=traceparent if parsed else ""
    )
    return entry, event


def action_event(*, action: str, payload: dict, at: datetime, event_id, traceparent: str = "") -> Envelope | None:
    """The trading-events event of one action, keyed by account so an account's orders, fills
    and positions keep their order on the bus: ``order.*`` -> OrderEvent, ``execution.recorded``
    -> Fill, ``position.updated`` -> PositionChanged; None for other actions."""

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
            time_in_force=payload.get("time_in_force") or "GTC",
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
            arrival_bid=dec("arrival_bid"),
            arrival_ask=dec("arrival_ask"),
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
    return make_event(
        event_payload,
        source="trading",
        key=str(payload["account_id"]),
        occurred_at=at,
        event_id=event_id,
        traceparent=traceparent,
    )
