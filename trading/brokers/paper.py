"""The paper broker: simulated fills against the current quote, with an account that adds up.

``BROKER=paper`` (the default). It stands in for MT5 on Linux, in the tests and in the embedded
run, so every outcome the MT5 adapter can produce can happen here too:

| outcome | when |
| --- | --- |
| DONE | a market order fills in full at the touch (ask to buy, bid to sell) plus adverse slippage |
| DONE_PARTIAL | volume beyond ``size_at_touch`` with IOC (rest cancelled) or RETURN (rest keeps working) |
| REJECT | FOK volume beyond ``size_at_touch`` |
| REQUOTE | slippage beyond the request's ``deviation_points`` |
| PLACED | a LIMIT or STOP order rests; ``update_quote`` fills it when the market reaches it |
| MARKET_CLOSED | outside the instrument's ``trading_hours`` (UTC sessions) |
| NO_MONEY | the margin after the fill would exceed equity |
| INVALID_VOLUME | off the symbol's volume grid |
| INVALID_PRICE | a pending order's price off the tick grid or on the wrong side of the market |
| INVALID_STOPS | stop loss or take profit on the wrong side of the price |
| INVALID_FILL | a filling mode the symbol does not allow |
| INVALID | an unknown symbol |
| PRICE_OFF | no quote, or one older than ``max_quote_age`` |
| TRADE_DISABLED | the symbol's ``trade_allowed`` is False |
| TOO_MANY_REQUESTS | more than ``max_orders_per_second`` sends within one second of clock time |
| anything else (CONNECTION, TIMEOUT, ERROR, LOCKED, ...) | ``inject(outcome)``; with ``executed=True`` the order |
| | fills anyway and the answer is still that outcome: how a reply lost after execution looks |

Filling modes follow MetaQuotes' ``ENUM_ORDER_TYPE_FILLING``: FOK fills all or nothing, IOC fills
what is available and cancels the rest, and under RETURN "a market or limit order with the
remaining volume is not canceled but processed further": the rest of a market order stays the
SAME order, of the same type (a market order, ticket unchanged, in ``open_orders``), and keeps
executing at the touch of the following quotes, ``size_at_touch`` at a time, until it is filled
or cancelled. It is not turned into a limit order at the first fill's price (before 2026-12-06
it was, and rested there however far the market moved). Whether a market order may rest so long
is the execution worker's rule, not the broker's: it cancels the rest after
``EXECUTION_MARKET_ORDER_TIMEOUT_SECONDS`` (``trading.orders.reconcile.market_order_expire``).

Determinism: time comes from the injected ``clock`` (aware UTC), slippage jitter from a seeded
``random.Random``; ``latency`` delays the fill's timestamp and, when a ``quote_at`` source is
given (a replay), picks the quote at send time + latency. Positions are netted per symbol with
``trading.position_math.apply_fill`` (the same arithmetic the system of record uses); balance is
the initial deposit plus every deal's booked profit and fee, equity adds the unrealised P&L at
the touch (bid for longs, ask for shorts), margin is notional x ``margin_rate``. Money is
converted from the quote currency to the account currency through the quotes the broker holds
(e.g. USDJPY for JPY P&L on a USD account). Not thread-safe.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from tradeops.core.clock import ensure_utc, utcnow
from tradeops.events import Bar
from trading.brokers.base import (
    BUY,
    SELL,
    AccountInfo,
    Broker,
    BrokerConnectionError,
    BrokerError,
    BrokerPosition,
    BrokerRequestError,
    Deal,
    DealEntry,
    FillingMode,
    OpenOrder,
    OrderOutcome,
    OrderRequest,
    OrderResult,
    OrderType,
    Quote,
    SymbolNotFound,
    SymbolSpec,
)
from trading.brokers.mt5 import RETCODE_BY_OUTCOME
from trading.marketdata.sessions import compile_hours, is_open
from trading.position_math import PositionState, apply_fill, unrealised_pnl

Out = OrderOutcome
ZERO = Decimal(0)
CENT = Decimal("0.01")


class NoConversionRate(BrokerError):
    """No quote converts the symbol's profit currency into the account currency."""

    code = "paper_no_conversion_rate"


@dataclass(frozen=True)
class PaperConfig:
    """How the simulated market behaves. Every knob has a default that fills plainly."""

    balance: Decimal = Decimal(100_000)
    currency: str = "USD"
    leverage: int = 30
    login: int = 1
    server: str = "paper"
    slippage_points: int = 0  # adverse slippage on every market fill
    slippage_jitter_points: int = 0  # plus a seeded random 0..jitter points
    latency: timedelta = timedelta(0)
    size_at_touch: Decimal = Decimal(50)  # lots available at the touch per market order
    commission_per_lot: Decimal = ZERO  # charged on every deal, in account currency
    max_quote_age: timedelta | None = None
    max_orders_per_second: int | None = None
    seed: int = 0
    tick_history: int = 10_000  # quotes kept per symbol for ticks(); 0 keeps only the latest


@dataclass
class _Resting:
    ticket: int
    request: OrderRequest
    volume: Decimal  # remaining
    price: Decimal
    ts: datetime


@dataclass
class _Injected:
    outcome: OrderOutcome
    remaining: int
    executed: bool
    symbol: str | None
    message: str


@dataclass
class _Book:
    state: PositionState = field(default_factory=PositionState)
    ticket: int = 0
    opened_at: datetime | None = None


def spec_from_instrument(row: Any) -> SymbolSpec:
    """A ``SymbolSpec`` from a ``trading.models.Instrument`` row or a ``trading.seed_data`` dict."""

    def get(name: str, default: Any = None) -> Any:
        return row.get(name, default) if isinstance(row, dict) else getattr(row, name, default)

    digits = int(get("digits", 5))
    currency = get("currency", "")
    return SymbolSpec(
        symbol=get("symbol"),
        digits=digits,
        point=Decimal(1).scaleb(-digits),
        tick_size=Decimal(get("tick_size")),
        contract_size=Decimal(get("contract_size")),
        volume_min=Decimal(get("min_volume", "0.01")),
        volume_max=Decimal(get("max_volume", "100")),
        volume_step=Decimal(get("volume_step", "0.01")),
        filling_modes=frozenset(FillingMode),
        currency_base=currency,
        currency_profit=get("quote_currency", ""),
        currency_margin=currency,
        trade_allowed=bool(get("is_active", True)),
        margin_rate=Decimal(get("margin_rate", "0.033333")),
        trading_hours=dict(get("trading_hours") or {}),
        description=get("description", ""),
    )


@dataclass(frozen=True)
class PaperFault:
    outcome: OrderOutcome
    times: int = 1
    executed: bool = False


def paper_faults_parse(text: str) -> list[PaperFault]:
    """A fault drill (``settings.PAPER_BROKER_FAULTS``): comma-separated ``OUTCOME[*times][:executed]``,
    answered by the next sends in that order (``PaperBroker.inject``); e.g. ``REJECT*5`` five
    refusals, ``TIMEOUT:executed`` a reply lost after the order filled. Raises ValueError, naming
    the item, on an unknown outcome, a count below 1 or another suffix."""
    faults = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        head, _, suffix = item.partition(":")
        name, _, times = head.partition("*")
        if suffix not in ("", "executed"):
            raise ValueError(f"paper broker fault {item!r}: the only suffix is ':executed'")
        try:
            outcome = OrderOutcome(name.strip().upper())
            count = int(times) if times else 1
        except ValueError:
            raise ValueError(
                f"paper broker fault {item!r}: OUTCOME[*times][:executed], OUTCOME one of {', '.join(OrderOutcome)}"
            ) from None
        if count < 1:
            raise ValueError(f"paper broker fault {item!r}: times must be at least 1")
        faults.append(PaperFault(outcome, count, suffix == "executed"))
    return faults


class PaperBroker(Broker):
    """A simulated account. Feed it quotes with ``update_quote`` (or give it ``quote_at``)."""

    name = "paper"

    def __init__(
        self,
        specs: Iterable[SymbolSpec],
        *,
        config: PaperConfig | None = None,
        clock: Callable[[], datetime] = utcnow,
        quote_at: Callable[[str, datetime], Quote | None] | None = None,
    ):
        self.config = config or PaperConfig()
        self._specs = {s.symbol: s for s in specs}
        self._hours = {s.symbol: compile_hours(s.trading_hours) for s in self._specs.values()}
        self._clock = clock
        self._quote_at = quote_at
        self._random = random.Random(self.config.seed)  # noqa: S311 - a seeded simulation, not a secret
        self._quotes: dict[str, Quote] = {}
        self._history: dict[str, deque[Quote]] = {}
        self._books: dict[str, _Book] = {}
        self._resting: dict[int, _Resting] = {}
        self._deals: list[Deal] = []
        self._sent: deque[datetime] = deque()
        self._injected: list[_Injected] = []
        self._next_ticket = 1000
        self._booked = ZERO  # profit + fees + swaps booked to the balance
        self._connected = False

    @classmethod
    def from_instruments(cls, instruments: Iterable[Any], **kwargs) -> PaperBroker:
        return cls([spec_from_instrument(row) for row in instruments], **kwargs)

    # ------------------------------------------------------------ session and market

    def connect(self) -> None:
        self._connected = True

    def disconnect(self) -> None:
        self._connected = False

    @property
    def connected(self) -> bool:
        return self._connected

    def _require_connection(self) -> None:
        if not self._connected:
            raise BrokerConnectionError("paper broker: not connected (call connect())")

    def _now(self) -> datetime:
        return ensure_utc(self._clock())

    def _ticket(self) -> int:
        self._next_ticket += 1
        return self._next_ticket

    def update_quote(self, quote: Quote) -> list[Deal]:
        """Take a new quote; fill resting orders it reaches. Returns the deals it caused.

        A quote older than the one held is ignored (out-of-order market data must not move the
        price back), as is one for a symbol the broker does not offer."""
        if quote.bid <= 0 or quote.ask <= 0 or quote.bid > quote.ask:
            raise BrokerRequestError(f"paper broker: refusing an invalid quote {quote}")
        if quote.symbol not in self._specs:
            return []
        ts = ensure_utc(quote.ts)
        current = self._quotes.get(quote.symbol)
        if current is not None and ts < current.ts:
            return []
        if ts is not quote.ts:  # already UTC (every feed's): no copy
            quote = replace(quote, ts=ts)
        self._quotes[quote.symbol] = quote
        if self.config.tick_history:
            history = self._history.get(quote.symbol)
            if history is None:
                history = self._history[quote.symbol] = deque(maxlen=self.config.tick_history)
            history.append(quote)
        return self._match_resting(quote)

    def inject(
        self,
        outcome: OrderOutcome,
        *,
        times: int = 1,
        executed: bool = False,
        symbol: str | None = None,
        message: str = "",
    ) -> None:
        """Make the next ``times`` sends (for ``symbol``, or any) answer ``outcome``. With
        ``executed=True`` the order still fills and the answer is ``outcome`` anyway: a reply
        lost after the server executed it (the case reconciliation exists for)."""
        self._injected.append(_Injected(outcome, times, executed, symbol, message or f"injected {outcome}"))

    def _spec(self, symbol: str) -> SymbolSpec:
        try:
            return self._specs[symbol]
        except KeyError:
            raise SymbolNotFound(f"paper broker does not offer symbol {symbol!r}") from None

    def _current_quote(self, symbol: str, at: datetime) -> Quote | None:
        if self._quote_at is not None:
            quote = self._quote_at(symbol, at)
            if quote is not None:
                return quote
        return self._quotes.get(symbol)

    # ------------------------------------------------------------ money

    def _to_account(self, amount: Decimal, spec: SymbolSpec) -> Decimal:
        """Convert an amount in the symbol's profit currency into the account currency."""
        ccy, acct = spec.currency_profit or self.config.currency, self.config.currency
        if ccy == acct:
            return amount
        direct, inverse = self._quotes.get(f"{ccy}{acct}"), self._quotes.get(f"{acct}{ccy}")
        if direct is not None:
            return amount * direct.mid
        if inverse is not None:
            return amount / inverse.mid
        raise NoConversionRate(f"paper broker: no {ccy}{acct} or {acct}{ccy} quote to convert {spec.symbol} money")

    def _mark(self, symbol: str, net: Decimal) -> Decimal | None:
        quote = self._quotes.get(symbol)
        if quote is None:
            return None
        return quote.bid if net > 0 else quote.ask

    def _margin_for(self, spec: SymbolSpec, net: Decimal, price: Decimal) -> Decimal:
        return self._to_account(abs(net) * spec.contract_size * price * (spec.margin_rate or ZERO), spec)

    def _totals(self, override: tuple[str, PositionState, Decimal] | None = None) -> tuple[Decimal, Decimal]:
        """(unrealised P&L, margin) over every position, optionally with one book replaced."""
        unrealised = margin = ZERO
        books = {symbol: (book.state, None) for symbol, book in self._books.items()}
        if override is not None:
            books[override[0]] = (override[1], override[2])
        for symbol, (state, price) in books.items():
            if state.net_quantity == 0:
                continue
            spec = self._specs[symbol]
            mark = self._mark(symbol, state.net_quantity) or price or state.average_price
            unrealised += self._to_account(
                unrealised_pnl(state, mark_price=mark, contract_size=spec.contract_size), spec
            )
            margin += self._margin_for(spec, state.net_quantity, mark)
        return unrealised, margin

    @property
    def balance(self) -> Decimal:
        return self.config.balance + self._booked

    def account_info(self) -> AccountInfo:
        self._require_connection()
        unrealised, margin = self._totals()
        equity = (self.balance + unrealised).quantize(CENT, ROUND_HALF_EVEN)
        margin = margin.quantize(CENT, ROUND_HALF_EVEN)
        return AccountInfo(
            login=self.config.login,
            server=self.config.server,
            currency=self.config.currency,
            balance=self.balance,
            equity=equity,
            margin=margin,
            margin_free=equity - margin,
            leverage=self.config.leverage,
            margin_mode="NETTING",
            name="paper account",
        )

    # ------------------------------------------------------------ reads

    def symbol_spec(self, symbol: str) -> SymbolSpec:
        self._require_connection()
        return self._spec(symbol)

    def quote(self, symbol: str) -> Quote:
        self._require_connection()
        self._spec(symbol)
        quote = self._current_quote(symbol, self._now())
        if quote is None:
            raise BrokerError(f"paper broker has no quote for {symbol} yet")
        return quote

    def ticks(self, symbol: str, *, since: datetime, count: int) -> list[Quote]:
        """Up to ``count`` quotes from ``since`` among the last ``tick_history`` the broker took."""
        self._require_connection()
        since = ensure_utc(since)
        history = self._history.get(symbol) or ([self._quotes[symbol]] if symbol in self._quotes else [])
        return [q for q in history if q.ts >= since][: max(0, count)]

    def bars(self, symbol: str, *, timeframe: str, count: int, start_pos: int = 0) -> list[Bar]:
        """No bar history on paper: use ``trading.marketdata`` sources for history."""
        self._require_connection()
        self._spec(symbol)
        return []

    def open_orders(self, symbol: str | None = None) -> list[OpenOrder]:
        self._require_connection()
        return [
            OpenOrder(
                ticket=str(r.ticket),
                symbol=r.request.symbol,
                side=r.request.side,
                order_type=r.request.order_type,
                volume_initial=r.request.volume,
                volume_current=r.volume,
                price=r.price,
                ts=r.ts,
                stop_loss=r.request.stop_loss,
                take_profit=r.request.take_profit,
                magic=r.request.magic,
                comment=r.request.order_comment,
            )
            for r in sorted(self._resting.values(), key=lambda r: r.ticket)
            if symbol is None or r.request.symbol == symbol
        ]

    def positions(self, symbol: str | None = None) -> list[BrokerPosition]:
        self._require_connection()
        result = []
        for sym, book in sorted(self._books.items()):
            state = book.state
            if state.net_quantity == 0 or (symbol and sym != symbol):
                continue
            spec = self._specs[sym]
            mark = self._mark(sym, state.net_quantity) or state.average_price
            result.append(
                BrokerPosition(
                    ticket=str(book.ticket),
                    symbol=sym,
                    side=BUY if state.net_quantity > 0 else SELL,
                    volume=abs(state.net_quantity),
                    price_open=state.average_price,
                    price_current=mark,
                    profit=self._to_account(
                        unrealised_pnl(state, mark_price=mark, contract_size=spec.contract_size), spec
                    ).quantize(CENT, ROUND_HALF_EVEN),
                    ts=book.opened_at or self._now(),
                )
            )
        return result

    def deals_since(self, since: datetime, until: datetime | None = None) -> list[Deal]:
        self._require_connection()
        since = ensure_utc(since)
        until = ensure_utc(until) if until is not None else None
        return [d for d in self._deals if d.ts >= since and (until is None or d.ts <= until)]

    # ------------------------------------------------------------ trading

    def _result(self, request: OrderRequest, outcome: OrderOutcome, message: str, ts: datetime, **kw) -> OrderResult:
        return OrderResult(
            outcome=outcome,
            retcode=RETCODE_BY_OUTCOME.get(outcome),
            message=message,
            client_order_id=request.client_order_id,
            symbol=request.symbol,
            side=request.side,
            requested_volume=request.volume,
            ts=ts,
            **kw,
        )

    def _take_injected(self, symbol: str) -> _Injected | None:
        for item in self._injected:
            if item.symbol in (None, symbol):
                item.remaining -= 1
                if item.remaining <= 0:
                    self._injected.remove(item)
                return item
        return None

    def _rate_limited(self, now: datetime) -> bool:
        limit = self.config.max_orders_per_second
        if limit is None:
            return False
        while self._sent and now - self._sent[0] >= timedelta(seconds=1):
            self._sent.popleft()
        if len(self._sent) >= limit:
            return True
        self._sent.append(now)
        return False

    def _check_stops(self, request: OrderRequest, price: Decimal) -> str:
        """Empty when the stops sit on the right side of ``price`` (the closing price for market
        orders: bid for a buy, ask for a sell; the order price for pending orders)."""
        sl, tp = request.stop_loss, request.take_profit
        if request.side == BUY:
            if sl is not None and sl >= price:
                return f"stop loss {sl} must be below {price} for a buy"
            if tp is not None and tp <= price:
                return f"take profit {tp} must be above {price} for a buy"
        else:
            if sl is not None and sl <= price:
                return f"stop loss {sl} must be above {price} for a sell"
            if tp is not None and tp >= price:
                return f"take profit {tp} must be below {price} for a sell"
        return ""

    def send_order(self, request: OrderRequest) -> OrderResult:
        """Simulate one order; see the module docstring for which outcome happens when.

        Side effects: deals, positions and balance change on a fill; a resting order on PLACED
        or a RETURN remainder."""
        self._require_connection()
        now = self._now()
        if self._rate_limited(now):
            return self._result(request, Out.TOO_MANY_REQUESTS, f"more than {self.config.max_orders_per_second}/s", now)
        injected = self._take_injected(request.symbol)
        if injected is not None and not injected.executed:
            return self._result(request, injected.outcome, injected.message, now)
        spec = self._specs.get(request.symbol)
        if spec is None:
            return self._result(request, Out.INVALID, f"unknown symbol {request.symbol!r}", now)
        try:
            result = self._execute(request, spec, now)
        except NoConversionRate as exc:  # the account currency value of the trade is unknown
            return self._result(request, Out.PRICE_OFF, str(exc), now)
        if injected is not None:
            # The server executed it, but the answer we "received" is the injected one.
            return replace(
                result,
                outcome=injected.outcome,
                retcode=RETCODE_BY_OUTCOME.get(injected.outcome),
                message=injected.message,
                deals=(),
                filled_volume=ZERO,
            )
        return result

    def _execute(self, request: OrderRequest, spec: SymbolSpec, now: datetime) -> OrderResult:
        if not spec.trade_allowed:
            return self._result(request, Out.TRADE_DISABLED, f"trading {spec.symbol} is disabled", now)
        if not is_open(self._hours[spec.symbol], now):
            return self._result(request, Out.MARKET_CLOSED, f"{spec.symbol} is outside its trading hours at {now}", now)
        problem = spec.check_volume(request.volume)
        if problem:
            return self._result(request, Out.INVALID_VOLUME, problem, now)
        filling = request.filling or spec.preferred_filling()
        if filling not in spec.filling_modes:
            return self._result(request, Out.INVALID_FILL, f"{spec.symbol} does not allow filling {filling}", now)
        fill_time = now + self.config.latency
        quote = self._current_quote(spec.symbol, fill_time)
        if quote is None:
            return self._result(request, Out.PRICE_OFF, f"no quote for {spec.symbol}", now)
        if self.config.max_quote_age is not None and fill_time - quote.ts > self.config.max_quote_age:
            return self._result(request, Out.PRICE_OFF, f"{spec.symbol} quote from {quote.ts} is stale", now)
        quotes = {"bid": quote.bid, "ask": quote.ask}
        if request.order_type != OrderType.MARKET:
            return self._place(request, spec, quote, now, quotes)
        touch = quote.price_for(request.side)
        # As MT5 does: stops are judged against the price the position would close at.
        problem = self._check_stops(request, quote.price_for(SELL if request.side == BUY else BUY))
        if problem:
            return self._result(request, Out.INVALID_STOPS, problem, now, **quotes)
        slip_points = self.config.slippage_points
        if self.config.slippage_jitter_points:
            slip_points += self._random.randint(0, self.config.slippage_jitter_points)
        if slip_points > request.deviation_points:
            return self._result(
                request,
                Out.REQUOTE,
                f"price moved {slip_points} points, beyond the allowed deviation of {request.deviation_points}",
                now,
                **quotes,
            )
        slip = spec.point * slip_points
        price = touch + slip if request.side == BUY else touch - slip
        volume = request.volume
        available = self.config.size_at_touch
        if volume > available:
            if filling == FillingMode.FOK:
                return self._result(
                    request, Out.REJECT, f"fill or kill: {volume} lots asked, {available} at the touch", now, **quotes
                )
            volume = available - (available - spec.volume_min) % spec.volume_step
        if self._fill_would_exceed_margin(spec, request.side, volume, price):
            return self._result(request, Out.NO_MONEY, "not enough free margin for the order", now, **quotes)
        ticket = self._ticket()
        deal = self._book_deal(request, spec, ticket, volume, price, fill_time)
        outcome, rest = Out.DONE, request.volume - volume
        message = "done"
        if rest > 0:
            outcome = Out.DONE_PARTIAL
            if filling == FillingMode.RETURN:
                # MetaQuotes: under RETURN the remainder "is not canceled but processed further":
                # the same market order keeps working (see the module docstring).
                self._resting[ticket] = _Resting(ticket, request, rest, price, fill_time)
                message = f"{volume} filled; {rest} stays working as a market order (return)"
            else:
                message = f"{volume} filled; {rest} cancelled (immediate or cancel)"
        return self._result(
            request,
            outcome,
            message,
            fill_time,
            broker_order_id=str(ticket),
            filled_volume=volume,
            price=price,
            deals=(deal,),
            **quotes,
        )

    def _place(self, request: OrderRequest, spec: SymbolSpec, quote: Quote, now: datetime, quotes: dict) -> OrderResult:
        price = request.price
        if price is None:  # OrderRequest refuses pending orders without a price; never reached
            raise ValueError(f"{request.client_order_id}: a pending order needs a price")
        if price % spec.tick_size != 0:
            return self._result(request, Out.INVALID_PRICE, f"price {price} is not a multiple of {spec.tick_size}", now)
        touch = quote.price_for(request.side)
        below = price < touch
        wrong_side = (request.order_type == OrderType.LIMIT) != (below if request.side == BUY else not below)
        if wrong_side or price == touch:
            return self._result(
                request,
                Out.INVALID_PRICE,
                f"{request.side} {request.order_type} at {price} is on the wrong side of the market ({touch})",
                now,
                **quotes,
            )
        problem = self._check_stops(request, price)
        if problem:
            return self._result(request, Out.INVALID_STOPS, problem, now, **quotes)
        ticket = self._ticket()
        self._resting[ticket] = _Resting(ticket, request, request.volume, price, now)
        return self._result(request, Out.PLACED, "placed", now, broker_order_id=str(ticket), **quotes)

    def _match_resting(self, quote: Quote) -> list[Deal]:
        if not self._resting:  # the usual case on a quote: nothing rests
            return []
        deals = []
        for ticket, order in sorted(self._resting.items()):
            if order.request.symbol != quote.symbol:
                continue
            req = order.request
            touch = quote.price_for(req.side)
            if req.order_type == OrderType.MARKET:  # a RETURN remainder: at the touch, what it offers
                if not is_open(self._hours[quote.symbol], quote.ts):
                    continue
                deal = self._fill_market_rest(order, quote, touch)
                if deal is not None:
                    deals.append(deal)
                continue
            if req.order_type == OrderType.LIMIT:
                reached = touch <= order.price if req.side == BUY else touch >= order.price
                price = min(touch, order.price) if req.side == BUY else max(touch, order.price)
            else:
                reached = touch >= order.price if req.side == BUY else touch <= order.price
                price = touch
            if not reached or not is_open(self._hours[quote.symbol], quote.ts):
                continue
            spec = self._specs[quote.symbol]
            del self._resting[ticket]
            if self._fill_would_exceed_margin(spec, req.side, order.volume, price):
                continue  # cancelled for lack of margin, as a broker would
            deals.append(self._book_deal(req, spec, ticket, order.volume, price, quote.ts))
        return deals

    def _fill_market_rest(self, order: _Resting, quote: Quote, touch: Decimal) -> Deal | None:
        """Execute the working rest of a RETURN market order against ``quote``: up to
        ``size_at_touch`` on the volume grid; what is still unfilled keeps working."""
        spec = self._specs[quote.symbol]
        req = order.request
        available = self.config.size_at_touch
        volume = order.volume
        if volume > available:
            volume = available - (available - spec.volume_min) % spec.volume_step
        if volume <= 0:
            return None
        if self._fill_would_exceed_margin(spec, req.side, volume, touch):
            del self._resting[order.ticket]  # cancelled for lack of margin, as a broker would
            return None
        order.volume -= volume
        if order.volume <= 0:
            del self._resting[order.ticket]
        return self._book_deal(req, spec, order.ticket, volume, touch, quote.ts)

    def cancel_order(self, broker_order_id: str) -> OrderResult:
        self._require_connection()
        now = self._now()
        order = self._resting.pop(int(broker_order_id), None) if broker_order_id.isdigit() else None
        if order is None:
            stub = OrderRequest(client_order_id=f"#{broker_order_id}", symbol="?", side=BUY, volume=Decimal(1))
            return replace(self._result(stub, Out.INVALID, f"no open order {broker_order_id}", now), client_order_id="")
        return self._result(order.request, Out.DONE, "removed", now, broker_order_id=broker_order_id)

    def modify_order(
        self,
        broker_order_id: str,
        *,
        price: Decimal | None = None,
        stop_loss: Decimal | None = None,
        take_profit: Decimal | None = None,
    ) -> OrderResult:
        self._require_connection()
        now = self._now()
        order = self._resting.get(int(broker_order_id)) if broker_order_id.isdigit() else None
        if order is None:
            stub = OrderRequest(client_order_id=f"#{broker_order_id}", symbol="?", side=BUY, volume=Decimal(1))
            return replace(self._result(stub, Out.INVALID, f"no open order {broker_order_id}", now), client_order_id="")
        new_request = replace(
            order.request,
            price=price if price is not None else order.price,
            stop_loss=stop_loss if stop_loss is not None else order.request.stop_loss,
            take_profit=take_profit if take_profit is not None else order.request.take_profit,
        )
        if new_request == order.request:
            return self._result(order.request, Out.NO_CHANGES, "unchanged", now, broker_order_id=broker_order_id)
        problem = self._check_stops(new_request, new_request.price)
        if problem:
            return self._result(order.request, Out.INVALID_STOPS, problem, now, broker_order_id=broker_order_id)
        order.request, order.price = new_request, new_request.price
        return self._result(new_request, Out.DONE, "modified", now, broker_order_id=broker_order_id)

    # ------------------------------------------------------------ booking

    def _fill_would_exceed_margin(self, spec: SymbolSpec, side: str, volume: Decimal, price: Decimal) -> bool:
        """Refuse a fill whose resulting margin exceeds equity; a fill that reduces margin passes."""
        book = self._books.get(spec.symbol) or _Book()
        signed = volume if side == BUY else -volume
        after = apply_fill(book.state, signed_quantity=signed, price=price, contract_size=spec.contract_size)
        if abs(after.net_quantity) <= abs(book.state.net_quantity) and (
            after.net_quantity == 0 or (after.net_quantity > 0) == (book.state.net_quantity > 0)
        ):
            return False
        realised = self._to_account(after.realised_pnl - book.state.realised_pnl, spec)
        unrealised, margin = self._totals(override=(spec.symbol, after, price))
        equity = self.balance + realised + unrealised
        return margin > equity

    def _book_deal(
        self, request: OrderRequest, spec: SymbolSpec, order_ticket: int, volume: Decimal, price: Decimal, ts: datetime
    ) -> Deal:
        book = self._books.setdefault(spec.symbol, _Book())
        before = book.state
        signed = volume if request.side == BUY else -volume
        after = apply_fill(before, signed_quantity=signed, price=price, contract_size=spec.contract_size)
        if before.net_quantity == 0:
            entry = DealEntry.IN
            book.ticket, book.opened_at = order_ticket, ts
        elif after.net_quantity != 0 and (after.net_quantity > 0) != (before.net_quantity > 0):
            entry = DealEntry.INOUT
            book.ticket, book.opened_at = order_ticket, ts
        elif abs(after.net_quantity) < abs(before.net_quantity) or after.net_quantity == 0:
            entry = DealEntry.OUT
        else:
            entry = DealEntry.IN
        profit = self._to_account(after.realised_pnl - before.realised_pnl, spec).quantize(CENT, ROUND_HALF_EVEN)
        fee = -(self.config.commission_per_lot * volume).quantize(CENT, ROUND_HALF_EVEN)
        book.state = after
        self._booked += profit + fee
        deal = Deal(
            deal_id=str(self._ticket()),
            order_id=str(order_ticket),
            position_id=str(book.ticket),
            symbol=spec.symbol,
            side=request.side,
            volume=volume,
            price=price,
            ts=ts,
            entry=entry,
            fee=fee,
            profit=profit,
            magic=request.magic,
            comment=request.order_comment,
        )
        self._deals.append(deal)
        return deal
