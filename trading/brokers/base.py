"""The broker interface every order leaves the firm through, with typed results and errors.

Two implementations: ``MT5Broker`` (``trading.brokers.mt5``, a MetaTrader 5 terminal through
MetaQuotes' ``MetaTrader5`` package) and ``PaperBroker`` (``trading.brokers.paper``, simulated
fills; the default and what the tests and the embedded run use). ``trading.brokers.get_broker()``
builds the one named by ``settings.BROKER``.

How the execution worker uses it (the contract)
-----------------------------------------------
1. ``connect()`` once; every method may raise ``BrokerConnectionError`` (the terminal or the
   link is gone; ``BrokerUnavailable`` when the circuit breaker refuses to try) and
   ``BrokerProtocolError`` (a reply we do not understand: never guessed at, never defaulted).
2. ``send_order(OrderRequest)`` always returns an ``OrderResult`` when the broker answered,
   whatever it said: a refusal is an *outcome* (``OrderOutcome.NO_MONEY``, ``MARKET_CLOSED``...),
   not an exception, because the worker must record it on the order. ``result.deals`` holds the
   fills found for the order (MT5 has no callbacks; the adapter polls the deal history).
3. ``OrderOutcome.CONNECTION`` and ``TIMEOUT`` mean *unknown*: the order may or may not be at
   the broker. Do not resend blindly; reconcile with ``open_orders()`` and
   ``deals_since(...)``, matching ``Deal.comment``/``OpenOrder.comment`` (the client order id).
4. ``deals_since(t)`` is the source of truth for fills (RTS 6 Art. 17 reconciliation).

Quantities are lots (``Decimal``), prices ``Decimal`` in the symbol's precision, timestamps
aware UTC. A naive datetime handed to any method is refused (MT5 would take it as local time).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import IntFlag, StrEnum

from tradeops.core.errors import ApplicationError
from tradeops.core.frozen import slot_setters
from tradeops.events import Bar

BUY = "BUY"
SELL = "SELL"
# MT5 truncates or refuses order comments past roughly 27-31 characters (DOMAIN.md); 27 is safe.
MAX_COMMENT_LENGTH = 27


# ---------------------------------------------------------------- errors


class BrokerError(ApplicationError):
    """Something went wrong talking to the broker (not a refusal of an order: see OrderOutcome)."""

    code = "broker_error"
    http_status = 502


class BrokerConnectionError(BrokerError):
    """The terminal, the link or the trade server is unreachable. Retrying later may help."""

    code = "broker_connection"
    http_status = 503


class BrokerUnavailable(BrokerConnectionError):
    """The broker's circuit breaker is open: the call was not attempted."""

    code = "broker_unavailable"


class BrokerProtocolError(BrokerError):
    """The broker replied with something we do not understand (unknown retcode, missing field)."""

    code = "broker_protocol"


class BrokerRequestError(BrokerError):
    """Our request is malformed before it is sent (bad volume type, comment too long, naive time)."""

    code = "broker_request_invalid"
    http_status = 400


class SymbolNotFound(BrokerError):
    code = "broker_symbol_unknown"
    http_status = 404


class BrokerNotConfigured(BrokerError):
    """settings.BROKER names no known broker, or the MT5 package/credentials are missing."""

    code = "broker_not_configured"
    http_status = 500


# ---------------------------------------------------------------- outcomes


class OrderOutcome(StrEnum):
    """What became of an order request. Every MT5 ``TRADE_RETCODE_*`` maps onto one of these
    (``trading.brokers.mt5.RETCODES``); the paper broker can produce each of them too."""

    DONE = "DONE"  # executed in full
    PLACED = "PLACED"  # accepted, resting (pending order) or executing later
    DONE_PARTIAL = "DONE_PARTIAL"  # part executed; the rest cancelled (IOC) or resting (RETURN)
    REQUOTE = "REQUOTE"  # price moved beyond the allowed deviation (after bounded retries)
    PRICE_CHANGED = "PRICE_CHANGED"
    REJECT = "REJECT"  # dealer/server refused
    CANCELLED = "CANCELLED"  # cancelled by the trader (or our cancel succeeded)
    INVALID = "INVALID"  # malformed request (also: invalid order/expiration/close volume)
    INVALID_VOLUME = "INVALID_VOLUME"
    INVALID_PRICE = "INVALID_PRICE"
    INVALID_STOPS = "INVALID_STOPS"
    INVALID_FILL = "INVALID_FILL"  # filling mode not allowed for the symbol
    TRADE_DISABLED = "TRADE_DISABLED"  # symbol, account or algo trading disabled
    MARKET_CLOSED = "MARKET_CLOSED"
    NO_MONEY = "NO_MONEY"
    PRICE_OFF = "PRICE_OFF"  # no quotes to fill against
    TOO_MANY_REQUESTS = "TOO_MANY_REQUESTS"
    LIMIT_REACHED = "LIMIT_REACHED"  # pending-order, volume or position count limit
    POSITION_RULE = "POSITION_RULE"  # long/short/close only, FIFO, hedging prohibited, closed position
    NO_CHANGES = "NO_CHANGES"
    LOCKED = "LOCKED"  # request locked or order frozen for processing
    CONNECTION = "CONNECTION"  # unknown state: reconcile before resending
    TIMEOUT = "TIMEOUT"  # unknown state: reconcile before resending
    ERROR = "ERROR"  # the broker's generic request processing error


ACCEPTED = frozenset({OrderOutcome.DONE, OrderOutcome.PLACED, OrderOutcome.DONE_PARTIAL, OrderOutcome.NO_CHANGES})
UNKNOWN_STATE = frozenset({OrderOutcome.CONNECTION, OrderOutcome.TIMEOUT})
RETRYABLE = frozenset(
    {OrderOutcome.REQUOTE, OrderOutcome.PRICE_CHANGED, OrderOutcome.PRICE_OFF, OrderOutcome.TOO_MANY_REQUESTS}
)


class FillingMode(StrEnum):
    FOK = "FOK"  # fill or kill: all or nothing
    IOC = "IOC"  # immediate or cancel: what is available, rest cancelled
    RETURN = "RETURN"  # what is available, rest stays as an order


class FillingFlags(IntFlag):
    """``symbol_info().filling_mode`` bit flags (the SYMBOL_FILLING_* names are missing from
    some builds of the MetaTrader5 package, so we define them)."""

    FOK = 1
    IOC = 2


class OrderType(StrEnum):
    MARKET = "MARKET"
    LIMIT = "LIMIT"
    STOP = "STOP"


class DealEntry(StrEnum):
    IN = "IN"  # opens or adds
    OUT = "OUT"  # reduces or closes
    INOUT = "INOUT"  # reversal
    OUT_BY = "OUT_BY"


# ---------------------------------------------------------------- values


@dataclass(frozen=True, slots=True)
class AccountInfo:
    login: int
    server: str
    currency: str
    balance: Decimal
    equity: Decimal
    margin: Decimal
    margin_free: Decimal
    leverage: int
    margin_mode: str  # NETTING | HEDGING | EXCHANGE
    trade_allowed: bool = True
    name: str = ""

    @property
    def margin_level(self) -> Decimal | None:
        """Equity / margin in percent, as MT5 shows it; None without margin in use."""
        return None if self.margin == 0 else self.equity / self.margin * 100


@dataclass(frozen=True, slots=True)
class SymbolSpec:
    symbol: str
    digits: int
    point: Decimal
    tick_size: Decimal
    contract_size: Decimal
    volume_min: Decimal
    volume_max: Decimal
    volume_step: Decimal
    filling_modes: frozenset[FillingMode]
    currency_base: str = ""
    currency_profit: str = ""
    currency_margin: str = ""
    trade_allowed: bool = True
    margin_rate: Decimal | None = None
    trading_hours: dict = field(default_factory=dict)  # UTC sessions per weekday, empty = always open
    description: str = ""

    def preferred_filling(self) -> FillingMode:
        """FOK where allowed (all or nothing keeps positions as intended), then IOC, then RETURN."""
        for mode in (FillingMode.FOK, FillingMode.IOC, FillingMode.RETURN):
            if mode in self.filling_modes:
                return mode
        raise BrokerProtocolError(f"{self.symbol}: the symbol allows no filling mode")

    def check_volume(self, volume: Decimal) -> str:
        """Empty when ``volume`` is on the symbol's grid, else the reason it is not."""
        if volume < self.volume_min or volume > self.volume_max:
            return f"volume {volume} outside [{self.volume_min}, {self.volume_max}]"
        if (volume - self.volume_min) % self.volume_step != 0:
            return f"volume {volume} is not a multiple of step {self.volume_step}"
        return ""


_ZERO_VOLUME = Decimal(0)  # a quote's default volume (one object, as the dataclass default was)


@dataclass(frozen=True, slots=True, init=False)
class Quote:
    """Best bid/ask at ``ts`` (broker time, aware UTC). Same field names as ``trading.intents.Quote``."""

    symbol: str
    bid: Decimal
    ask: Decimal
    ts: datetime
    last: Decimal | None = None
    volume: Decimal = _ZERO_VOLUME

    def __init__(
        self,
        symbol: str,
        bid: Decimal,
        ask: Decimal,
        ts: datetime,
        last: Decimal | None = None,
        volume: Decimal = _ZERO_VOLUME,
    ) -> None:
        # built per tick: the slots set directly (``tradeops.core.frozen``), as the generated __init__ would
        _QUOTE_SET_SYMBOL(self, symbol)
        _QUOTE_SET_BID(self, bid)
        _QUOTE_SET_ASK(self, ask)
        _QUOTE_SET_TS(self, ts)
        _QUOTE_SET_LAST(self, last)
        _QUOTE_SET_VOLUME(self, volume)

    @property
    def mid(self) -> Decimal:
        return (self.bid + self.ask) / 2

    @property
    def spread(self) -> Decimal:
        return self.ask - self.bid

    def price_for(self, side: str) -> Decimal:
        return self.ask if side == BUY else self.bid


_QUOTE_SET_SYMBOL, _QUOTE_SET_BID, _QUOTE_SET_ASK, _QUOTE_SET_TS, _QUOTE_SET_LAST, _QUOTE_SET_VOLUME = slot_setters(
    Quote, "symbol", "bid", "ask", "ts", "last", "volume"
)


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """One order to send. ``client_order_id`` is carried as the order comment (so keep it within
    27 characters: ``trading.intents.client_order_id_for`` makes 21) and ``magic`` names the
    algorithm (``trading.intents.magic_for``), so fills can be attributed (RTS 6 Art. 12).

    ``price`` is the limit/stop price (required for LIMIT and STOP, ignored for MARKET).
    ``deviation_points``: the worst price a market order accepts, in points from the quote at
    sending; a requote inside it is retried, beyond it the order is not filled.
    ``filling``: None lets the broker pick from what the symbol allows (FOK, then IOC, RETURN).
    ``position``: the position ticket to close on a hedging account (None on netting).
    """

    client_order_id: str
    symbol: str
    side: str
    volume: Decimal
    order_type: OrderType = OrderType.MARKET
    price: Decimal | None = None
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    deviation_points: int = 10
    filling: FillingMode | None = None
    magic: int = 0
    comment: str | None = None
    position: str | None = None

    def __post_init__(self) -> None:
        if self.side not in (BUY, SELL):
            raise BrokerRequestError(f"{self.client_order_id}: side must be BUY or SELL, got {self.side!r}")
        if not isinstance(self.volume, Decimal) or not self.volume.is_finite() or self.volume <= 0:
            raise BrokerRequestError(f"{self.client_order_id}: volume must be a positive Decimal, got {self.volume!r}")
        if self.order_type != OrderType.MARKET and (self.price is None or self.price <= 0):
            raise BrokerRequestError(f"{self.client_order_id}: a {self.order_type} order needs a positive price")
        if self.deviation_points < 0:
            raise BrokerRequestError(f"{self.client_order_id}: deviation_points must not be negative")
        if len(self.order_comment) > MAX_COMMENT_LENGTH or not self.order_comment.isascii():
            raise BrokerRequestError(
                f"{self.client_order_id}: order comment {self.order_comment!r} must be ASCII and at most "
                f"{MAX_COMMENT_LENGTH} characters (MT5 truncates longer ones and the fill could not be matched)"
            )

    @property
    def order_comment(self) -> str:
        return self.client_order_id if self.comment is None else self.comment


@dataclass(frozen=True, slots=True)
class Deal:
    """A fill as the broker booked it. ``fee`` is commission + fees (negative = charged);
    ``profit`` is the realised P&L the broker booked on it (on closing deals), in account currency."""

    deal_id: str
    order_id: str
    position_id: str
    symbol: str
    side: str
    volume: Decimal
    price: Decimal
    ts: datetime
    entry: DealEntry = DealEntry.IN
    fee: Decimal = Decimal(0)
    swap: Decimal = Decimal(0)
    profit: Decimal = Decimal(0)
    magic: int = 0
    comment: str = ""


@dataclass(frozen=True, slots=True)
class BrokerPosition:
    ticket: str
    symbol: str
    side: str
    volume: Decimal
    price_open: Decimal
    price_current: Decimal
    profit: Decimal
    ts: datetime
    swap: Decimal = Decimal(0)
    magic: int = 0
    comment: str = ""

    @property
    def signed_volume(self) -> Decimal:
        return self.volume if self.side == BUY else -self.volume


@dataclass(frozen=True, slots=True)
class OpenOrder:
    ticket: str
    symbol: str
    side: str
    order_type: OrderType
    volume_initial: Decimal
    volume_current: Decimal
    price: Decimal
    ts: datetime
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    magic: int = 0
    comment: str = ""


@dataclass(frozen=True, slots=True)
class OrderResult:
    """The broker's answer to one request. ``retcode`` is the raw MT5 code where there is one
    (the paper broker uses the same codes), ``attempts`` counts sends including requote retries."""

    outcome: OrderOutcome
    client_order_id: str
    symbol: str
    side: str
    requested_volume: Decimal
    ts: datetime
    retcode: int | None = None
    message: str = ""
    broker_order_id: str = ""
    filled_volume: Decimal = Decimal(0)
    price: Decimal | None = None  # average fill price when filled
    bid: Decimal | None = None
    ask: Decimal | None = None
    deals: tuple[Deal, ...] = ()
    attempts: int = 1
    deals_confirmed: bool = True  # False: the deal history did not show every fill before the poll timeout

    @property
    def accepted(self) -> bool:
        return self.outcome in ACCEPTED

    @property
    def state_unknown(self) -> bool:
        return self.outcome in UNKNOWN_STATE

    @property
    def remaining_volume(self) -> Decimal:
        return self.requested_volume - self.filled_volume


# ---------------------------------------------------------------- the interface


class Broker(ABC):
    """One trading account at one broker. Not thread-safe: one worker loop owns an instance."""

    name: str = "broker"

    @abstractmethod
    def connect(self) -> None:
        """Open the session (idempotent). Raises BrokerConnectionError with the broker's reason."""

    @abstractmethod
    def disconnect(self) -> None:
        """Close the session (idempotent)."""

    @property
    @abstractmethod
    def connected(self) -> bool: ...

    @abstractmethod
    def account_info(self) -> AccountInfo: ...

    @abstractmethod
    def symbol_spec(self, symbol: str) -> SymbolSpec:
        """Raises SymbolNotFound for a symbol the broker does not offer."""

    @abstractmethod
    def quote(self, symbol: str) -> Quote:
        """The latest tick. Raises BrokerError when the broker has none."""

    @abstractmethod
    def ticks(self, symbol: str, *, since: datetime, count: int) -> list[Quote]:
        """Up to ``count`` ticks from ``since`` (aware UTC), oldest first."""

    @abstractmethod
    def bars(self, symbol: str, *, timeframe: str, count: int, start_pos: int = 0) -> list[Bar]:
        """The ``count`` bars ending ``start_pos`` bars before the current one, oldest first, as
        ``tradeops.events.Bar`` payloads. ``timeframe``: M1, M5, M15, M30, H1, H4, D1, W1, MN1."""

    @abstractmethod
    def send_order(self, request: OrderRequest) -> OrderResult:
        """Send one order; see the module docstring for the outcome contract."""

    @abstractmethod
    def cancel_order(self, broker_order_id: str) -> OrderResult:
        """Remove a resting order. Outcome DONE when removed."""

    @abstractmethod
    def modify_order(
        self,
        broker_order_id: str,
        *,
        price: Decimal | None = None,
        stop_loss: Decimal | None = None,
        take_profit: Decimal | None = None,
    ) -> OrderResult:
        """Change a resting order's price or stops."""

    @abstractmethod
    def open_orders(self, symbol: str | None = None) -> list[OpenOrder]: ...

    @abstractmethod
    def positions(self, symbol: str | None = None) -> list[BrokerPosition]: ...

    @abstractmethod
    def deals_since(self, since: datetime, until: datetime | None = None) -> list[Deal]:
        """Deals booked in ``[since, until]`` (aware UTC; until defaults to now), oldest first."""

    def __enter__(self) -> Broker:
        self.connect()
        return self

    def __exit__(self, *exc) -> None:
        self.disconnect()
