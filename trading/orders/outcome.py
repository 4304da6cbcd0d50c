"""The order path's rules between the gate and the write: where stops go, and what a broker's
answer means for the order (which steps, which fills, whether the rest is cancelled). Pure: no
Django, no I/O, no clock (times come in as arguments).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from trading.brokers.base import BrokerError, Deal, OrderResult
from trading.intents import InstrumentSpec, OrderIntent, Quote
from trading.order_states import OrderStatus
from trading.orders.plan import FillDraft, OrderStep


def stops_reanchored(intent: OrderIntent, quote: Quote | None, spec: InstrumentSpec) -> OrderIntent:
    """Keep the strategy's stop and target *distances* but measure them from the price the order
    will take now (ask to buy, bid to sell) rather than from the signal's price: a quote that
    moved since the signal would otherwise put a stop on the wrong side."""
    if quote is None or (intent.stop_loss is None and intent.take_profit is None):
        return intent
    shift = quote.price_for(intent.side) - intent.reference_price
    if shift == 0:
        return intent

    def moved(level):
        return None if level is None else spec.round_price(level + shift)

    return dataclasses.replace(intent, stop_loss=moved(intent.stop_loss), take_profit=moved(intent.take_profit))


def fill_of(
    deal: Deal,
    *,
    arrival_mid: Decimal | None = None,
    arrival_bid: Decimal | None = None,
    arrival_ask: Decimal | None = None,
) -> FillDraft:
    """A broker deal as a fill of ours, at the deal's time, with the quote its order arrived on
    (mid and touch; None when there was none, or for a deal found by reconciliation). Broker fees
    are negative money (MT5 convention); ours are positive costs, hence the sign flip here only."""
    return FillDraft(
        broker_deal_id=deal.deal_id,
        quantity=deal.volume,
        price=deal.price,
        executed_at=deal.ts,
        fee=-deal.fee,
        arrival_mid=arrival_mid,
        arrival_bid=arrival_bid,
        arrival_ask=arrival_ask,
    )


@dataclass(frozen=True)
class Outcome:
    """What happened to an order, as the write takes it: the steps, the fills, the steps after
    the fills, and whether the broker's state is unknown (reconciliation settles it)."""

    steps: tuple[OrderStep, ...]
    fills: tuple[FillDraft, ...] = ()
    after_fills: tuple[OrderStep, ...] = ()
    unknown: bool = False


def outcome_refused(*, reason: str, at: datetime) -> Outcome:
    """Refused by the gate: never sent."""
    return Outcome(steps=(OrderStep(OrderStatus.REJECTED, at, reason),))


def outcome_of(
    *,
    result: OrderResult | None,
    error: BrokerError | None,
    decided_at: datetime,
    sent_at: datetime,
    arrival_mid: Decimal | None,
    rests_at_broker: bool,
    arrival_bid: Decimal | None = None,
    arrival_ask: Decimal | None = None,
) -> Outcome:
    """The broker's answer (``result``, or the ``error`` raised instead) as the order's steps:
    approved at ``decided_at`` and submitted at ``sent_at``; then refused, or filled by its
    deals (the rest cancelled when a partial fill does not rest at the broker), or left
    SUBMITTED with the broker's state unknown (a lost reply, a dropped connection). Each fill
    keeps the quote the order arrived on (``arrival_mid``, ``arrival_bid``, ``arrival_ask``)."""
    approved = OrderStep(OrderStatus.RISK_APPROVED, decided_at)
    if result is None or result.state_unknown:
        why = f"{error.code}: {error}" if error is not None else f"{result.outcome}: {result.message}"
        submitted = OrderStep(
            OrderStatus.SUBMITTED, sent_at, reason=f"broker state unknown ({why}); reconciliation settles it"
        )
        return Outcome(steps=(approved, submitted), unknown=True)
    submitted = OrderStep(OrderStatus.SUBMITTED, sent_at, broker_order_id=result.broker_order_id)
    if not (result.accepted or result.deals):
        refused = OrderStep(OrderStatus.REJECTED, result.ts, reason=f"broker {result.outcome}: {result.message}")
        return Outcome(steps=(approved, submitted, refused))
    fills = tuple(
        fill_of(deal, arrival_mid=arrival_mid, arrival_bid=arrival_bid, arrival_ask=arrival_ask)
        for deal in result.deals
    )
    after = ()
    if result.remaining_volume > 0 and result.filled_volume > 0 and not rests_at_broker:
        after = (OrderStep(OrderStatus.CANCELLED, result.ts, reason=result.message),)
    return Outcome(steps=(approved, submitted), fills=fills, after_fills=after)
