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

Closed once: what becomes of a request is one audit record with an event id derived from the
key (``order_request_closed_event_id``), so exactly one of these wins, under the audit chain's
lock: the worker taking it up (``order.request_taken``, before the gate), the worker refusing it
(``order.request_refused``: an instrument it does not trade), or its expiry
(``order.request_expired``: not taken within ``API_ORDER_REQUEST_TTL_SECONDS`` of the wall
clock, by the worker that meets it late, by the periodic sweep ``order_requests_expire`` or by
the client's next read). A request refused at once (bad terms, an unknown instrument) is never
recorded as a request: its refusal is audited (``order.request_refused``) and answered 4xx.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError

from tradeops.audit.actors import user_actor
from tradeops.audit.models import AuditRecord
from tradeops.audit.services import audit_append, event_entry
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
    expires_at: datetime | None = None  # wall clock past which no worker takes it up
    closed: str = ""  # "" (open), TAKEN, REFUSED or EXPIRED: what became of the request
    reason: str = ""  # why it was refused or expired

    @property
    def status(self) -> str:
        """``requested`` until the worker wrote the order (then the order's status), or
        ``refused`` / ``expired`` when it never will."""
        if self.order is not None:
            return self.order.status
        if self.closed in (REFUSED, EXPIRED):
            return self.closed
        return "requested"

    def expiry_due(self, now: datetime) -> bool:
        """Open, never taken up, and past its expiry (``order_request_expire`` closes it)."""
        return not self.closed and self.order is None and self.expires_at is not None and now >= self.expires_at


TAKEN, REFUSED, EXPIRED = "taken", "refused", "expired"
EXPIRY_ACTOR = "service:order-request-expiry"  # the sweep, or the client's read, expiring a request


def order_request_event_id(client_order_id: str) -> uuid.UUID:
    return uuid.uuid5(_REQUEST_NS, f"order.requested:{client_order_id}")


def order_request_closed_event_id(client_order_id: str) -> uuid.UUID:
    """The one audit record saying what became of a request (taken, refused or expired)."""
    return uuid.uuid5(_REQUEST_NS, f"order.request_closed:{client_order_id}")


def order_request_ttl() -> timedelta:
    return timedelta(seconds=float(settings.API_ORDER_REQUEST_TTL_SECONDS))


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
    data = record.payload_data["data"]
    client_order_id = data["client_order_id"]
    closing = (
        AuditRecord.objects.filter(event_id=order_request_closed_event_id(client_order_id))
        .only("action", "payload")
        .first()
    )
    closed, reason = "", ""
    if closing is not None:
        closed = closing.action.removeprefix("order.request_")
        reason = closing.payload_data.get("reason", "")
    expires_at = data.get("expires_at")
    return OrderRequestResult(
        client_order_id,
        requested=False,
        requested_at=record.occurred_at,
        requested_by=record.actor,
        order=Order.objects.select_related("account", "instrument", "trader")
        .filter(client_order_id=client_order_id)
        .first(),
        expires_at=datetime.fromisoformat(expires_at) if expires_at else None,
        closed=closed,
        reason=reason,
    )


def order_request_close(
    *, client_order_id: str, outcome: str, actor: str, at: datetime, code: str = "", reason: str = ""
) -> bool:
    """Record what became of a request: ``TAKEN`` (by the worker, before its gate), ``REFUSED``
    or ``EXPIRED``. Only the first closing of a request is recorded (one event id per request,
    checked under the audit chain's lock): returns whether this call closed it. ``at`` is the
    event time of the closing (the worker's time; the wall clock for an expiry).

    Side effects: the audit record ``order.request_<outcome>`` (2017/565 Art. 72: what became of
    every order received), in a transaction of its own unless the caller has one open."""
    if outcome not in (TAKEN, REFUSED, EXPIRED):
        raise ValueError(f"unknown request outcome {outcome!r}")
    try:
        record = audit_append(
            action=f"order.request_{outcome}",
            object_type="order",
            object_id=client_order_id,
            occurred_at=at,
            payload={"client_order_id": client_order_id, "code": code, "reason": reason},
            actor=actor,
            event_id=order_request_closed_event_id(client_order_id),
        )
    except IntegrityError:  # the same closing committed concurrently (the chain lock makes it rare)
        return False
    return record is not None


def order_request_closing(client_order_id: str) -> str:
    """What closed the request so far: "" (open), ``TAKEN``, ``REFUSED`` or ``EXPIRED``."""
    action = (
        AuditRecord.objects.filter(event_id=order_request_closed_event_id(client_order_id))
        .values_list("action", flat=True)
        .first()
    )
    return action.removeprefix("order.request_") if action else ""


def order_request_expire(*, result: OrderRequestResult, now: datetime | None = None) -> OrderRequestResult:
    """Expire a request the worker did not take up in time (``result.expiry_due``); returns the
    request as it stands afterwards (a worker that took it meanwhile wins: it stays taken)."""
    now = now or utcnow()
    if not result.expiry_due(now):
        return result
    order_request_close(
        client_order_id=result.client_order_id,
        outcome=EXPIRED,
        actor=EXPIRY_ACTOR,
        at=now,
        code="order_request_expired",
        reason=f"not taken up by an execution worker by {result.expires_at.isoformat()}",
    )
    record = AuditRecord.objects.get(event_id=order_request_event_id(result.client_order_id))
    return order_request_result(record)


def order_requests_expire(*, now: datetime | None = None, lookback: timedelta = timedelta(days=1)) -> int:
    """The periodic sweep: expire every open request past its expiry (received within
    ``lookback``). Returns how many this call expired."""
    now = now or utcnow()
    records = list(
        AuditRecord.objects.filter(
            action="order.requested", occurred_at__gte=now - lookback, occurred_at__lte=now - order_request_ttl()
        ).order_by("occurred_at")
    )
    keys = {r.object_id: r for r in records}
    closed = set(
        AuditRecord.objects.filter(event_id__in=[order_request_closed_event_id(k) for k in keys]).values_list(
            "object_id", flat=True
        )
    )
    written = set(Order.objects.filter(client_order_id__in=list(keys)).values_list("client_order_id", flat=True))
    expired = 0
    for key, record in keys.items():
        if key in closed or key in written:
            continue
        result = order_request_result(record)
        if result.expiry_due(now) and order_request_expire(result=result, now=now).closed == EXPIRED:
            expired += 1
    return expired


def _refusal_audited(*, requested_by, client_order_id: str, error: OrderValidationError, at: datetime, terms: dict):
    """Audit a request refused at once (it is never recorded as a request)."""
    audit_append(
        action="order.request_refused",
        object_type="order",
        object_id=client_order_id[:64],
        occurred_at=at,
        payload={"client_order_id": client_order_id, "code": error.code, "reason": str(error), "terms": terms},
        actor=user_actor(requested_by),
    )


def order_request(
    *,
    requested_by,
    client_order_id: str,
    account: TradingAccount,
    instrument: Instrument | str,
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
    once (an unknown instrument (``instrument`` may be a symbol), volume off the instrument's
    grid, a limit price off its tick grid, an inactive account or instrument...) and their
    refusal is audited (``order.request_refused``); the rest is the gate's to judge, in the
    worker. The request expires ``API_ORDER_REQUEST_TTL_SECONDS`` after ``at`` if no worker
    took it up by then.

    Side effects: the ``order.requested`` event on the outbox and its audit record (same event
    id, so the audit-trail stage's copy is a no-op), in one transaction."""
    now = ensure_utc(at) if at else utcnow()
    symbol = instrument if isinstance(instrument, str) else instrument.symbol
    try:
        if isinstance(instrument, str):
            instrument = Instrument.objects.filter(symbol=symbol).first()
            if instrument is None:
                raise OrderValidationError(f"unknown instrument {symbol[:32]!r}", code="unknown_instrument")
        return _order_request(
            requested_by=requested_by,
            client_order_id=client_order_id,
            account=account,
            instrument=instrument,
            side=side,
            quantity=quantity,
            order_type=order_type,
            limit_price=limit_price,
            stop_loss=stop_loss,
            take_profit=take_profit,
            algo_id=algo_id,
            desk=desk,
            now=now,
        )
    except ClientOrderIdReused:
        raise  # a conflict with what exists (409), not a refused request
    except OrderValidationError as error:
        _refusal_audited(
            requested_by=requested_by,
            client_order_id=client_order_id or "",
            error=error,
            at=now,
            terms={
                "account_id": account.pk,
                "symbol": symbol,
                "side": side,
                "quantity": str(quantity),
                "order_type": order_type,
                "limit_price": None if limit_price is None else str(limit_price),
            },
        )
        raise


def _order_request(
    *,
    requested_by,
    client_order_id: str,
    account: TradingAccount,
    instrument: Instrument,
    side: str,
    quantity: Decimal,
    order_type: str,
    limit_price: Decimal | None,
    stop_loss: Decimal | None,
    take_profit: Decimal | None,
    algo_id: str,
    desk: str,
    now: datetime,
) -> OrderRequestResult:
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
        actor=user_actor(requested_by),
        ts=now,
        expires_at=now + order_request_ttl(),
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
    return OrderRequestResult(
        client_order_id,
        requested=True,
        requested_at=now,
        requested_by=payload.actor,
        order=None,
        expires_at=payload.expires_at,
    )


def _again(earlier: AuditRecord, payload: OrderRequested) -> OrderRequestResult:
    if _recorded_terms(earlier) != _terms(payload):
        raise ClientOrderIdReused(f"client_order_id {payload.client_order_id} already names a different order request")
    return order_request_result(earlier)
