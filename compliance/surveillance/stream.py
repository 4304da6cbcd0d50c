"""From pipeline events to surveillance records (pure).

trading-events carry order lifecycle changes and fills of the firm's own orders; market-data
events carry ticks. An order counts as entered (``new``) when it is SUBMITTED to the broker and
as cancelled when it reaches CANCELLED (an expiry leaves the book too, flagged ``expired`` so
RTS 9 does not count it); the other statuses are not market messages. Quantities
are converted from lots to units (contract size) so the same thresholds serve batch and stream.
The owner is the account's beneficial owner (linked accounts share it), else the account id.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from datetime import datetime
from typing import Any

from compliance.surveillance.base import SurveillanceAlert
from compliance.surveillance.records import FillRecord, OrderMessage, Quote
from tradeops.events import Alert, Bar, Fill, OrderEvent, Tick, bar_end

KILL_WORDS = ("kill", "disconnect", "connection")
# The platform's order types as surveillance reads them: a stop rests off the book until it
# triggers, then trades at market and is benchmarked on the quote then (not when it was sent).
ORDER_TYPES = {"MARKET": "market", "LIMIT": "limit", "STOP": "stop"}
# A platform LIMIT order whose time in force is IOC or FOK trades at once or not at all: the
# surveillance record types it so (it never rests: no quote for order-to-trade's market-making
# test, settled 1 s after entry whether or not the cancel of its rest arrives).
IMMEDIATE_TIME_IN_FORCE = {"IOC": "ioc", "FOK": "fok"}


def bar_quote(bar: Bar, last: Quote | None) -> Quote | None:
    """A bar as the quote it stands for, read as the execution worker reads it (the touch its
    orders were priced and filled on): the close is the price at the bar's END (``ts`` is its
    open), the bid, with the bar's spread or, without one (the shipped bars), the last quote's.
    None when a quote at or after the bar's end already stands (ticks flow: they are newer).
    Read as a quote at its open with no spread, a bar put its close, an hour early, as both bid
    and ask, after its own ticks: every buy at the bar's end then looked filled a spread past the
    touch on arrival (the demo's asymmetric-slippage alert on its own paper account)."""
    end = bar_end(bar)
    if last is not None and last.ts >= end:
        return None
    close = float(bar.close)
    spread = last.ask - last.bid if last is not None else 0.0
    if bar.spread is not None:
        spread = float(bar.spread)
    return Quote(ts=end, symbol=bar.symbol, bid=close, ask=close + spread)


def record_of(
    payload,
    *,
    owners: Mapping[int, str],
    contract_sizes: Mapping[str, float],
    quotes: MutableMapping[str, Quote] | None = None,
):
    """The surveillance record for one payload, or None if it is not one surveillance reads.
    ``quotes``: the last quote per symbol, kept by the caller across payloads (a bar is read
    against it, ``bar_quote``); the quotes this returns are stored in it."""
    if isinstance(payload, Tick):
        rec = Quote(ts=payload.ts, symbol=payload.symbol, bid=float(payload.bid), ask=float(payload.ask))
        if quotes is not None:
            quotes[payload.symbol] = rec
        return rec
    if isinstance(payload, Bar):
        rec = bar_quote(payload, quotes.get(payload.symbol) if quotes is not None else None)
        if rec is not None and quotes is not None:
            quotes[payload.symbol] = rec
        return rec
    if isinstance(payload, OrderEvent):
        status = payload.status
        if status == "SUBMITTED" and payload.previous_status in (None, "RISK_APPROVED", "NEW"):
            action = "new"
        elif status == "CANCELLED":
            action = "cancel"
        elif status == "EXPIRED" and payload.previous_status in ("SUBMITTED", "PARTIALLY_FILLED"):
            action = "cancel"  # leaves the book; not the trader's message (excluded from RTS 9 counts)
        else:
            return None
        reason = ""
        low = payload.reason.lower()
        if status == "EXPIRED":
            reason = "expired"
        elif action == "cancel" and any(w in low for w in KILL_WORDS):
            reason = "kill_switch"
        size = contract_sizes.get(payload.symbol, 1.0)
        order_type = ORDER_TYPES.get(payload.order_type, "market")
        if order_type == "limit":
            order_type = IMMEDIATE_TIME_IN_FORCE.get(payload.time_in_force, "limit")
        price = payload.stop_price if order_type == "stop" else payload.limit_price
        return OrderMessage(
            ts=payload.ts,
            action=action,
            order_id=payload.client_order_id,
            account=str(payload.account_id),
            owner=owners.get(payload.account_id) or str(payload.account_id),
            symbol=payload.symbol,
            side=payload.side.lower(),
            qty=float(payload.quantity) * size,
            price=float(price) if price is not None else None,
            order_type=order_type,
            algo=payload.algo_id,
            reason=reason,
        )
    if isinstance(payload, Fill):
        size = contract_sizes.get(payload.symbol, 1.0)
        return FillRecord(
            ts=payload.ts,
            order_id=payload.client_order_id,
            account=str(payload.account_id),
            owner=owners.get(payload.account_id) or str(payload.account_id),
            symbol=payload.symbol,
            side=payload.side.lower(),
            qty=float(payload.quantity) * size,
            price=float(payload.price),
        )
    return None


def alert_payload(alert: SurveillanceAlert | Any, *, ts: datetime | None = None) -> Alert:
    """The ``alert.raised`` payload of an alert: the engine's (``SurveillanceAlert``, the stage
    without recording) or a recorded row (``compliance.models.Alert``, its state after the
    sighting: ``compliance.services.alerts_record_published``, both the stage's path and
    ``surveil --record``'s). One builder, so the two paths publish the same fields. ``ts``: its
    event time, by default the end of the behaviour, else its start."""
    return Alert(
        alert_type=alert.alert_type,
        severity=alert.severity,
        symbol=alert.symbol,
        account=alert.account,
        owner=alert.owner,
        order_ids=tuple(alert.order_ids),
        score=alert.score,
        start=alert.start,
        end=alert.end,
        evidence=alert.evidence,
        ts=ts or alert.end or alert.start,
    )
