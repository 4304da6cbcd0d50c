"""What the order path passes between its pure stages: instrument specs, order intents, quotes.

Pure (no Django, no clock, no I/O). ``OrderIntent`` is what the strategy produces and what every
pre-trade check (risk here, compliance in ``compliance/``) inspects; the execution worker turns an
approved intent into an ``Order`` row through ``trading.services``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal
from enum import StrEnum

from tradeops.core.frozen import slot_setters

BUY = "BUY"
SELL = "SELL"


class IntentAction(StrEnum):
    SUBMIT = "submit"
    MODIFY = "modify"
    CANCEL = "cancel"


@dataclass(frozen=True, slots=True)
class InstrumentSpec:
    """The parts of ``trading.models.Instrument`` the order path needs, as a plain value."""

    symbol: str
    contract_size: Decimal
    tick_size: Decimal
    volume_step: Decimal
    min_volume: Decimal
    max_volume: Decimal
    margin_rate: Decimal = Decimal("0.033333")
    quote_currency: str = "USD"
    # UTC sessions as ``trading.marketdata.sessions.compile_hours`` gives them; () = always open.
    trading_hours: tuple = ()

    def round_volume_down(self, lots: Decimal) -> Decimal:
        """Round down onto the volume grid ``min_volume + k * volume_step`` (never rounds up a risk)."""
        if lots < self.min_volume:
            return Decimal(0)
        steps = ((lots - self.min_volume) / self.volume_step).to_integral_value(rounding=ROUND_DOWN)
        return min(self.min_volume + steps * self.volume_step, self.max_volume)

    def round_price(self, price: Decimal) -> Decimal:
        """Nearest tick (banker's rounding), e.g. for stop loss and take profit levels."""
        ticks = (price / self.tick_size).to_integral_value(rounding=ROUND_HALF_EVEN)
        return ticks * self.tick_size

    def notional(self, lots: Decimal, price: Decimal) -> Decimal:
        """Notional in the quote currency: lots x contract size x price."""
        return lots * self.contract_size * price


@dataclass(frozen=True, slots=True, init=False)
class Quote:
    symbol: str
    bid: Decimal
    ask: Decimal
    ts: datetime

    def __init__(self, symbol: str, bid: Decimal, ask: Decimal, ts: datetime) -> None:
        # built per tick: the slots set directly (``tradeops.core.frozen``), as the generated __init__ would
        _QUOTE_SET_SYMBOL(self, symbol)
        _QUOTE_SET_BID(self, bid)
        _QUOTE_SET_ASK(self, ask)
        _QUOTE_SET_TS(self, ts)

    @property
    def mid(self) -> Decimal:
        return (self.bid + self.ask) / 2

    def price_for(self, side: str) -> Decimal:
        """The price a market order on ``side`` would take: ask to buy, bid to sell."""
        return self.ask if side == BUY else self.bid


_QUOTE_SET_SYMBOL, _QUOTE_SET_BID, _QUOTE_SET_ASK, _QUOTE_SET_TS = slot_setters(Quote, "symbol", "bid", "ask", "ts")


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """An order the firm intends to send, before any check has passed.

    ``client_order_id`` is the idempotency key end to end: the same signal on the same account
    always yields the same id (``client_order_id_for``), the database refuses a second order with
    it, and the broker carries it as the order comment so reconciliation can find the order.
    ``reference_price`` is the price used for exposure and margin checks (the signal's price or
    the latest quote). ``ts`` is the decision time, taken from the event (handlers never read
    the clock). ``action`` is ``submit`` for a new order, ``modify``/``cancel`` for an existing
    one (``client_order_id`` then names that order).
    """

    client_order_id: str
    account_id: int
    symbol: str
    side: str
    quantity: Decimal
    reference_price: Decimal
    ts: datetime
    order_type: str = "MARKET"
    limit_price: Decimal | None = None
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    algo_id: str = ""
    trader_id: int | None = None
    desk: str = ""
    signal_id: str = ""
    action: IntentAction = IntentAction.SUBMIT
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def signed_quantity(self) -> Decimal:
        return self.quantity if self.side == BUY else -self.quantity


def client_order_id_for(*, signal_id: str, account_id: int, prefix: str = "T") -> str:
    """Deterministic idempotency key for (signal, account). 21 characters, because the MT5 order
    comment is truncated past roughly 27 characters and the key must survive the round trip."""
    digest = hashlib.blake2b(f"{account_id}:{signal_id}".encode(), digest_size=10).hexdigest()
    return f"{prefix}{digest}"


def magic_for(algo_id: str) -> int:
    """A stable MT5 ``magic`` number for an algorithm id (31-bit, positive)."""
    return int.from_bytes(hashlib.blake2b(algo_id.encode(), digest_size=4).digest(), "big") & 0x7FFFFFFF


def intent_of_request(request, *, quote: Quote | None, at: datetime) -> OrderIntent:
    """The intent of an order requested from outside the worker (``tradeops.events.OrderRequested``),
    for the same gate as the strategy's intents, decided at ``at`` (the worker's event time when
    it takes the request up: live, the wall clock; in a replay, the replayed market time, so a
    request received on the wall clock neither moves a replay's clock nor meets stale quotes).
    Its reference price (exposure and margin checks) is the limit price of a limit order, else
    the price the latest quote gives its side; without a quote it is zero, and the risk
    checks refuse the order for stale market data anyway (``risk.stale_market_data``)."""
    if request.limit_price is not None:
        reference = request.limit_price
    elif quote is not None:
        reference = quote.price_for(request.side)
    else:
        reference = Decimal(0)
    return OrderIntent(
        client_order_id=request.client_order_id,
        account_id=request.account_id,
        symbol=request.symbol,
        side=request.side,
        quantity=request.quantity,
        reference_price=reference,
        ts=at,
        order_type=request.order_type,
        limit_price=request.limit_price,
        stop_loss=request.stop_loss,
        take_profit=request.take_profit,
        algo_id=request.algo_id,
        trader_id=request.trader_id,
        desk=request.desk,
        tags={"source": "api", "requested_by": request.actor, "requested_at": request.ts.isoformat()},
    )
