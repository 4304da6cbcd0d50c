"""Orders requested from outside the execution worker (the integration API).

The worker that trades an account is the only one that may send its orders: it holds the
pre-trade gate's state (positions, open orders, message rates, kill switches, the breaker) and
the broker session. So a request does not write an order: ``order_request`` checks the terms
that can never be valid, then publishes ``order.requested`` (trading-events, keyed by account)
through the outbox with its audit record, in one transaction. The worker consumes it and runs
the same path as its own intents (gate, broker, one write of the order with its decision, fills,
audit records and events), so the order meets every risk and compliance check
(RTS 6 Art. 15) and is attributed to the person or client who asked (Art. 12).

Exactly once: the event's id is derived from ``client_order_id``, so a retried request finds
its own audit record and publishes nothing new (the audit record and the outbox row are unique
by event id, so two concurrent first requests make one), and the worker treats a redelivered
request as the duplicate it is (``known_ids``, then the order's unique key). The key with other
terms (or from another requester), or naming an order not requested here, is refused with
``client_order_id_reused`` (HTTP 409).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import IntegrityError

from tradeops.audit.models import AuditRecord
from tradeops.audit.services import event_entry
from tradeops.core.clock import ensure_utc, utcnow
from tradeops.events import OrderRequested, make_event
from tradeops.recorder import recording
from trading.errors import ClientOrderIdReused, OrderValidationError
from trading.models import Instrument, Order, OrderType, TradingAccount
from trading.orders.plan import OrderDraft, check_order_terms

_REQUEST_NS = uuid.UUID("0b7d2f4e-3c1a-4f6e-9b8d-5a2c7e1f9d30")
# The key travels to the broker as the order comment, which MT5 truncates past ~27 characters.
CLIENT_ORDER_ID = re.compile(r"^[A-Za-z0-9._:-]{1,27}$")
# The strategy's keys (``trading.intents.client_order_id_for``: "T" + 20 hex digits, derived from
# the signal): taken over the API first, the strategy's order would be skipped as a duplicate.
STRATEGY_ORDER_ID = re.compile(r"^T[0-9a-f]{20}$")
REQUESTABLE_TYPES = (OrderType.MARKET, OrderType.LIMIT)


@dataclass(frozen=True)
class OrderRequestResult:
    client_order_id: str
    requested: bool  # a new request was published now (False: a retry, or a status read)
    requested_at: datetime  # when the first request was received (event time)
    requested_by: str  # who asked (the audit record's actor)
    order: Order | None  # the order, once the worker wrote it


def order_request_event_id(client_order_id: str) -> uuid.UUID:
    return uuid.uuid5(_REQUEST_NS, f"order.requested:{client_order_id}")


def _terms(request: OrderRequested) -> tuple:
    return (
        request.account_id,
        request.symbol,
        request.side,
        Decimal(request.quantity),
        request.order_type,
        request.limit_price,
        request.stop_loss,
        request.take_profit,
        request.trader_id,
    )


def _recorded_terms(record: AuditRecord) -> tuple:
    data = record.payload_data["data"]

    def dec(name):
        return None if data.get(name) is None else Decimal(data[name])

    return (
        data["account_id"],
        data["symbol"],
        data["side"],
        Decimal(data["quantity"]),
        data["order_type"],
        dec("limit_price"),
        dec("stop_loss"),
        dec("take_profit"),
        data.get("trader_id"),
    )


def order_request_result(record: AuditRecord) -> OrderRequestResult:
    """What became of a recorded request (``record``: its ``order.requested`` audit record)."""
    client_order_id = record.payload_data["data"]["client_order_id"]
    return OrderRequestResult(
        client_order_id,
        requested=False,
        requested_at=record.occurred_at,
        requested_by=record.actor,
        order=Order.objects.select_related("account", "instrument", "trader")
        .filter(client_order_id=client_order_id)
        .first(),
    )


def order_request(
    *,
    requested_by,
    client_order_id: str,
    account: TradingAccount,
    instrument: Instrument,
    side: str,
    quantity: Decimal,
    order_type: str = OrderType.MARKET,
    limit_price: Decimal | None = None,
    stop_loss: Decimal | None = None,
    take_profit: Decimal | None = None,
    algo_id: str = "",
    desk: str = "",
    at: datetime | None = None,
) -> OrderRequestResult:
    """Ask the account's execution worker for an order. Idempotent by ``client_order_id``:
    the same terms again return the first request (or its order) and publish nothing; other
    terms are refused (``client_order_id_reused``). Terms that can never be valid are refused at
    once (volume off the instrument's grid, a limit price off its tick grid, an inactive account
    or instrument...); the rest is the gate's to judge, in the worker.

    Side effects: the ``order.requested`` event on the outbox and its audit record (same event
    id, so the audit-trail stage's copy is a no-op), in one transaction."""
    if not CLIENT_ORDER_ID.match(client_order_id or ""):
        raise OrderValidationError(
            "client_order_id is 1-27 letters, digits or . _ : - (the broker keeps it as the order comment)",
            code="invalid_client_order_id",
        )
    if STRATEGY_ORDER_ID.match(client_order_id):
        raise OrderValidationError(
            "client_order_id has the form of the strategy's keys (T and 20 hex digits): choose another",
            code="reserved_client_order_id",
        )
    if order_type not in REQUESTABLE_TYPES:
        raise OrderValidationError(
            f"order_type must be one of {list(REQUESTABLE_TYPES)} over the API, got {order_type!r}",
            code="invalid_order_type",
        )
    if order_type == OrderType.MARKET and limit_price is not None:
        raise OrderValidationError("a market order takes no limit_price", code="invalid_price")
    now = ensure_utc(at) if at else utcnow()
    payload = OrderRequested(
        client_order_id=client_order_id,
        account_id=account.pk,
        symbol=instrument.symbol,
        side=side,
        quantity=quantity,
        order_type=order_type,
        limit_price=limit_price,
        stop_loss=stop_loss,
        take_profit=take_profit,
        algo_id=algo_id,
        desk=desk,
        trader_id=requested_by.pk,
        actor=f"user:{requested_by.get_username()}",
        ts=now,
    )
    event = make_event(
        payload, source="integration-api", key=str(account.pk), event_id=order_request_event_id(client_order_id)
    )
    earlier = AuditRecord.objects.filter(event_id=event.event_id).first()
    if earlier is not None:  # a retry: same answer, nothing new (before any other check)
        return _again(earlier, payload)
    if Order.objects.filter(client_order_id=client_order_id).exists():
        raise ClientOrderIdReused(
            f"client_order_id {client_order_id} already names an order that was not requested over the API"
        )
    check_order_terms(
        OrderDraft(
            client_order_id=client_order_id,
            account=account,
            instrument=instrument,
            side=side,
            quantity=quantity,
            at=now,
            order_type=order_type,
            limit_price=limit_price,
            stop_loss=stop_loss,
            take_profit=take_profit,
            algo_id=algo_id,
            trader=requested_by,
            desk=desk,
        )
    )
    try:
        with recording() as rec:
            rec.audit(event_entry(event))
            rec.event(event)
    except IntegrityError:  # the same key, committed concurrently: that one is the first request
        earlier = AuditRecord.objects.filter(event_id=event.event_id).first()
        if earlier is None:
            raise
        return _again(earlier, payload)
    return OrderRequestResult(client_order_id, requested=True, requested_at=now, requested_by=payload.actor, order=None)


def _again(earlier: AuditRecord, payload: OrderRequested) -> OrderRequestResult:
    if _recorded_terms(earlier) != _terms(payload):
        raise ClientOrderIdReused(f"client_order_id {payload.client_order_id} already names a different order request")
    return order_request_result(earlier)
