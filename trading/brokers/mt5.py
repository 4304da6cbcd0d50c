"""MetaTrader 5 through MetaQuotes' ``MetaTrader5`` Python package, as MetaQuotes documents it.

The package ships Windows wheels only and talks over IPC to a running terminal, so it is imported
lazily (``module_name``, default ``"MetaTrader5"``; ``settings.MT5_MODULE`` can name a drop-in
bridge such as an rpyc proxy to a terminal under Wine). Tests inject a stand-in module.

What it does, and why:
- Every call that fails returns ``None`` in the package; ``last_error()`` says why. Connection
  class errors (``RES_E_INTERNAL_FAIL*``, -10000..-10005) mark the session down, count against
  the circuit breaker (``tradeops.breaker``) and, for reads, reconnect once and retry once. While
  the breaker is open every call raises ``BrokerUnavailable`` at once.
- ``order_send`` is never retried blindly on a lost connection: its outcome is ``CONNECTION`` or
  ``TIMEOUT`` (unknown) and the worker reconciles. A REQUOTE/PRICE_CHANGED is retried up to
  ``max_requotes`` times at the new price, but only while that price stays within
  ``deviation_points`` of the price when the order was first sent (the worst price the order
  accepts, best execution: MiFID II Art. 27).
- Every ``TRADE_RETCODE_*`` maps onto an ``OrderOutcome`` (``RETCODES``); an unknown code raises
  ``BrokerProtocolError`` (never guessed).
- Fills: MT5 has no callbacks, so after DONE/DONE_PARTIAL the adapter polls
  ``history_deals_get(ticket=order)`` until the deals add up to the confirmed volume or the poll
  times out (then ``deals_confirmed=False``: reconcile later with ``deals_since``).
- Filling modes come from ``symbol_info().filling_mode`` bit flags (FOK = 1, IOC = 2); the
  ``SYMBOL_FILLING_*`` names are missing from some builds, so we never read them. Return is
  offered for market orders only in Exchange execution, FOK always in Request/Instant execution,
  and pending orders rest with Return (MetaQuotes' fill policy notes).
- The order comment carries the client order id and must fit 27 characters.
- Datetimes passed to the package are aware UTC (a naive one is taken as local time). MT5 stamps
  ticks, bars and deals as seconds since the epoch *on the trade server's clock* (most servers
  run on EET with daylight saving, so a "UTC" stamp is two or three hours ahead); ``server_tz``
  (``settings.MT5_SERVER_TZ``, e.g. ``Europe/Athens``) converts both ways, DST included.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from decimal import Decimal
from types import ModuleType
from typing import Any

from tradeops.breaker import CircuitBreaker, CircuitOpenError
from tradeops.core.clock import ensure_utc, utcnow
from tradeops.events import Bar
from trading.brokers.base import (
    BUY,
    SELL,
    AccountInfo,
    Broker,
    BrokerConnectionError,
    BrokerError,
    BrokerNotConfigured,
    BrokerPosition,
    BrokerProtocolError,
    BrokerRequestError,
    BrokerUnavailable,
    Deal,
    DealEntry,
    FillingFlags,
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

logger = logging.getLogger(__name__)

Out = OrderOutcome
# Every trade server return code MetaQuotes documents (MQL5 reference, "Trade Server Return Codes").
RETCODES: dict[int, tuple[str, OrderOutcome]] = {
    10004: ("TRADE_RETCODE_REQUOTE", Out.REQUOTE),
    10006: ("TRADE_RETCODE_REJECT", Out.REJECT),
    10007: ("TRADE_RETCODE_CANCEL", Out.CANCELLED),
    10008: ("TRADE_RETCODE_PLACED", Out.PLACED),
    10009: ("TRADE_RETCODE_DONE", Out.DONE),
    10010: ("TRADE_RETCODE_DONE_PARTIAL", Out.DONE_PARTIAL),
    10011: ("TRADE_RETCODE_ERROR", Out.ERROR),
    10012: ("TRADE_RETCODE_TIMEOUT", Out.TIMEOUT),
    10013: ("TRADE_RETCODE_INVALID", Out.INVALID),
    10014: ("TRADE_RETCODE_INVALID_VOLUME", Out.INVALID_VOLUME),
    10015: ("TRADE_RETCODE_INVALID_PRICE", Out.INVALID_PRICE),
    10016: ("TRADE_RETCODE_INVALID_STOPS", Out.INVALID_STOPS),
    10017: ("TRADE_RETCODE_TRADE_DISABLED", Out.TRADE_DISABLED),
    10018: ("TRADE_RETCODE_MARKET_CLOSED", Out.MARKET_CLOSED),
    10019: ("TRADE_RETCODE_NO_MONEY", Out.NO_MONEY),
    10020: ("TRADE_RETCODE_PRICE_CHANGED", Out.PRICE_CHANGED),
    10021: ("TRADE_RETCODE_PRICE_OFF", Out.PRICE_OFF),
    10022: ("TRADE_RETCODE_INVALID_EXPIRATION", Out.INVALID),
    10023: ("TRADE_RETCODE_ORDER_CHANGED", Out.REJECT),
    10024: ("TRADE_RETCODE_TOO_MANY_REQUESTS", Out.TOO_MANY_REQUESTS),
    10025: ("TRADE_RETCODE_NO_CHANGES", Out.NO_CHANGES),
    10026: ("TRADE_RETCODE_SERVER_DISABLES_AT", Out.TRADE_DISABLED),
    10027: ("TRADE_RETCODE_CLIENT_DISABLES_AT", Out.TRADE_DISABLED),
    10028: ("TRADE_RETCODE_LOCKED", Out.LOCKED),
    10029: ("TRADE_RETCODE_FROZEN", Out.LOCKED),
    10030: ("TRADE_RETCODE_INVALID_FILL", Out.INVALID_FILL),
    10031: ("TRADE_RETCODE_CONNECTION", Out.CONNECTION),
    10032: ("TRADE_RETCODE_ONLY_REAL", Out.TRADE_DISABLED),
    10033: ("TRADE_RETCODE_LIMIT_ORDERS", Out.LIMIT_REACHED),
    10034: ("TRADE_RETCODE_LIMIT_VOLUME", Out.LIMIT_REACHED),
    10035: ("TRADE_RETCODE_INVALID_ORDER", Out.INVALID),
    10036: ("TRADE_RETCODE_POSITION_CLOSED", Out.POSITION_RULE),
    10038: ("TRADE_RETCODE_INVALID_CLOSE_VOLUME", Out.INVALID_VOLUME),
    10039: ("TRADE_RETCODE_CLOSE_ORDER_EXIST", Out.POSITION_RULE),
    10040: ("TRADE_RETCODE_LIMIT_POSITIONS", Out.LIMIT_REACHED),
    10041: ("TRADE_RETCODE_REJECT_CANCEL", Out.REJECT),
    10042: ("TRADE_RETCODE_LONG_ONLY", Out.POSITION_RULE),
    10043: ("TRADE_RETCODE_SHORT_ONLY", Out.POSITION_RULE),
    10044: ("TRADE_RETCODE_CLOSE_ONLY", Out.POSITION_RULE),
    10045: ("TRADE_RETCODE_FIFO_CLOSE", Out.POSITION_RULE),
    10046: ("TRADE_RETCODE_HEDGE_PROHIBITED", Out.POSITION_RULE),
}
RETCODE_BY_OUTCOME: dict[OrderOutcome, int] = {}
for _code, (_name, _outcome) in RETCODES.items():
    RETCODE_BY_OUTCOME.setdefault(_outcome, _code)

# last_error() codes (MetaTrader5 package documentation).
RES_S_OK = 1
RES_E_INVALID_PARAMS = -2
RES_E_NOT_FOUND = -4
RES_E_AUTH_FAILED = -6
RES_E_INTERNAL_FAIL_TIMEOUT = -10005
CONNECTION_ERRORS = frozenset({-10000, -10001, -10002, -10003, -10004, -10005})

TIMEFRAMES = ("M1", "M2", "M3", "M4", "M5", "M6", "M10", "M12", "M15", "M20", "M30")
TIMEFRAMES += ("H1", "H2", "H3", "H4", "H6", "H8", "H12", "D1", "W1", "MN1")
SYMBOL_TRADE_MODE_DISABLED = 0
SYMBOL_TRADE_EXECUTION_REQUEST = 0
SYMBOL_TRADE_EXECUTION_INSTANT = 1
SYMBOL_TRADE_EXECUTION_MARKET = 2
SYMBOL_TRADE_EXECUTION_EXCHANGE = 3
MARGIN_MODES = {0: "NETTING", 1: "EXCHANGE", 2: "HEDGING"}
DEAL_ENTRIES = {0: DealEntry.IN, 1: DealEntry.OUT, 2: DealEntry.INOUT, 3: DealEntry.OUT_BY}


def retcode_outcome(retcode: int) -> tuple[str, OrderOutcome]:
    """(MetaQuotes' name, our outcome) for a trade server return code; unknown codes are refused."""
    try:
        return RETCODES[retcode]
    except KeyError:
        raise BrokerProtocolError(
            f"MT5 returned trade retcode {retcode}, which is not in MetaQuotes' documented list"
        ) from None


def _dec(value: Any, what: str, places: int | None = None) -> Decimal:
    """A float from the terminal as an exact Decimal (shortest repr), optionally at ``places``."""
    if value is None:
        raise BrokerProtocolError(f"MT5 reply is missing {what}")
    try:
        number = Decimal(repr(float(value)))
    except (TypeError, ValueError):
        raise BrokerProtocolError(f"MT5 reply has a non-numeric {what}: {value!r}") from None
    if not number.is_finite():
        raise BrokerProtocolError(f"MT5 reply has a non-finite {what}: {value!r}")
    return number.quantize(Decimal(1).scaleb(-places)) if places is not None else number


def _field(record: Any, name: str) -> Any:
    """Read a field from a named tuple or a numpy record alike."""
    try:
        return getattr(record, name)
    except AttributeError:
        try:
            return record[name]
        except (KeyError, IndexError, ValueError, TypeError):
            raise BrokerProtocolError(f"MT5 reply {type(record).__name__} has no field {name!r}") from None


class MT5Broker(Broker):
    """One MT5 account through a terminal. Construct with credentials (from settings by
    ``get_broker``) and call ``connect()``. Thread-unsafe, like the package itself."""

    name = "mt5"

    def __init__(
        self,
        *,
        login: int = 0,
        password: str = "",
        server: str = "",
        path: str = "",
        timeout_ms: int = 60_000,
        module: ModuleType | Any | None = None,
        module_name: str = "MetaTrader5",
        breaker: CircuitBreaker | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        wall_clock: Callable[[], datetime] = utcnow,
        max_requotes: int = 3,
        poll_interval: float = 0.05,
        poll_timeout: float = 2.0,
        server_tz: tzinfo = UTC,
    ):
        self._module = module
        self._module_name = module_name
        self._credentials = {"login": login, "password": password, "server": server}
        self._path = path
        self._timeout_ms = timeout_ms
        self.breaker = breaker or CircuitBreaker("mt5", fail_max=3, reset_timeout=30.0, clock=monotonic)
        self._monotonic = monotonic
        self._sleep = sleep
        self._now = wall_clock
        self.max_requotes = max_requotes
        self.poll_interval = poll_interval
        self.poll_timeout = poll_timeout
        self.server_tz = server_tz
        self._connected = False
        self._specs: dict[str, SymbolSpec] = {}

    # ------------------------------------------------------------ session

    @property
    def mt5(self) -> Any:
        if self._module is None:
            try:
                self._module = importlib.import_module(self._module_name)
            except ImportError as exc:
                raise BrokerNotConfigured(
                    f"cannot import {self._module_name!r} ({exc}). MetaQuotes' MetaTrader5 package ships Windows "
                    "wheels only: run on Windows, or under Wine with a bridge (docs/market-data.md), "
                    "or set BROKER=paper"
                ) from None
        return self._module

    @property
    def connected(self) -> bool:
        return self._connected

    def _last_error(self) -> tuple[int, str]:
        err = self.mt5.last_error()
        try:
            code, message = err
            return int(code), str(message)
        except (TypeError, ValueError):
            raise BrokerProtocolError(f"MT5 last_error() returned {err!r}, expected (code, message)") from None

    def _open(self) -> None:
        kwargs: dict[str, Any] = {"timeout": self._timeout_ms}
        if self._path:
            kwargs["path"] = self._path
        if self._credentials["login"]:
            kwargs.update(self._credentials)
        if not self.mt5.initialize(**kwargs):
            code, message = self._last_error()
            self.mt5.shutdown()
            raise BrokerConnectionError(f"MT5 initialize failed: {code} {message}", extra={"mt5_error": code})
        terminal = self.mt5.terminal_info()
        if terminal is None or not _field(terminal, "connected"):
            self.mt5.shutdown()
            raise BrokerConnectionError("MT5 terminal is running but not connected to the trade server")
        self._connected = True
        self._specs.clear()

    def _ensure_connected(self) -> None:
        if self._connected:
            return
        try:
            self.breaker.before_call()
        except CircuitOpenError as exc:
            raise BrokerUnavailable(f"MT5: {exc.message}", extra=exc.extra) from None
        try:
            self._open()
        except BrokerConnectionError:
            self.breaker.record_failure()
            raise
        self.breaker.record_success()

    def connect(self) -> None:
        self._ensure_connected()

    def disconnect(self) -> None:
        if self._connected:
            self._connected = False
            self.mt5.shutdown()

    def _connection_lost(self, code: int, message: str, call: str) -> BrokerConnectionError:
        self._connected = False
        self.breaker.record_failure()
        logger.warning("MT5 %s lost the connection: %s %s (breaker %s)", call, code, message, self.breaker.state)
        return BrokerConnectionError(f"MT5 {call} failed: {code} {message}", extra={"mt5_error": code})

    def _read(self, call: str, *args, none_ok: bool = False, **kwargs) -> Any:
        """Call a read-only package function; reconnect once and retry once on a lost connection.

        ``none_ok``: a None with last_error RES_S_OK (or NOT_FOUND) means "nothing", not a failure."""
        for attempt in (1, 2):
            self._ensure_connected()
            result = getattr(self.mt5, call)(*args, **kwargs)
            if result is not None:
                self.breaker.record_success()
                return result
            code, message = self._last_error()
            if code in CONNECTION_ERRORS:
                error = self._connection_lost(code, message, call)
                if attempt == 2:
                    raise error
                continue
            if none_ok and code in (RES_S_OK, RES_E_NOT_FOUND):
                return None
            if code == RES_E_INVALID_PARAMS:
                raise BrokerRequestError(f"MT5 {call}{args!r} refused the arguments: {message}")
            raise BrokerError(f"MT5 {call}{args!r} failed: {code} {message}", extra={"mt5_error": code})
        raise AssertionError("unreachable")

    # ------------------------------------------------------------ conversions

    def _ts(self, seconds: Any, msc: Any = None) -> datetime:
        """A terminal time value (server clock, as epoch seconds or milliseconds) in aware UTC."""
        if msc:
            stamp = datetime.fromtimestamp(int(msc) / 1000, UTC)
        elif seconds is not None:
            stamp = datetime.fromtimestamp(int(seconds), UTC)
        else:
            raise BrokerProtocolError("MT5 reply has no time")
        if self.server_tz is UTC:
            return stamp
        return stamp.replace(tzinfo=None).replace(tzinfo=self.server_tz).astimezone(UTC)

    def _to_server(self, when: datetime) -> datetime:
        """An instant as the terminal expects it: the server's wall clock, labelled UTC (aware, so
        the package cannot take it for local time)."""
        when = ensure_utc(when)
        if self.server_tz is UTC:
            return when
        return when.astimezone(self.server_tz).replace(tzinfo=UTC)

    def _side(self, mt5_type: int, what: str) -> str:
        if mt5_type in (self.mt5.ORDER_TYPE_BUY, self.mt5.ORDER_TYPE_BUY_LIMIT, self.mt5.ORDER_TYPE_BUY_STOP):
            return BUY
        if mt5_type in (self.mt5.ORDER_TYPE_SELL, self.mt5.ORDER_TYPE_SELL_LIMIT, self.mt5.ORDER_TYPE_SELL_STOP):
            return SELL
        raise BrokerProtocolError(f"MT5 {what} has an unknown type {mt5_type!r}")

    def _quote(self, symbol: str, tick: Any, digits: int | None) -> Quote:
        bid = _dec(_field(tick, "bid"), f"{symbol} bid", digits)
        ask = _dec(_field(tick, "ask"), f"{symbol} ask", digits)
        last = _field(tick, "last")
        return Quote(
            symbol=symbol,
            bid=bid,
            ask=ask,
            ts=self._ts(_field(tick, "time"), _field(tick, "time_msc")),
            last=_dec(last, f"{symbol} last", digits) if last else None,
            volume=_dec(_field(tick, "volume"), f"{symbol} volume"),
        )

    def _deal(self, raw: Any) -> Deal:
        deal_type = int(_field(raw, "type"))
        if deal_type == self.mt5.DEAL_TYPE_BUY:
            side = BUY
        elif deal_type == self.mt5.DEAL_TYPE_SELL:
            side = SELL
        else:
            raise BrokerProtocolError(f"MT5 deal {_field(raw, 'ticket')} is not a trade (type {deal_type})")
        entry = int(_field(raw, "entry"))
        if entry not in DEAL_ENTRIES:
            raise BrokerProtocolError(f"MT5 deal {_field(raw, 'ticket')} has an unknown entry {entry}")
        fee = _dec(_field(raw, "commission"), "deal commission") + _dec(_field(raw, "fee"), "deal fee")
        return Deal(
            deal_id=str(_field(raw, "ticket")),
            order_id=str(_field(raw, "order")),
            position_id=str(_field(raw, "position_id")),
            symbol=str(_field(raw, "symbol")),
            side=side,
            volume=_dec(_field(raw, "volume"), "deal volume"),
            price=_dec(_field(raw, "price"), "deal price"),
            ts=self._ts(_field(raw, "time"), _field(raw, "time_msc")),
            entry=DEAL_ENTRIES[entry],
            fee=fee,
            swap=_dec(_field(raw, "swap"), "deal swap"),
            profit=_dec(_field(raw, "profit"), "deal profit"),
            magic=int(_field(raw, "magic")),
            comment=str(_field(raw, "comment")),
        )

    # ------------------------------------------------------------ reads

    def account_info(self) -> AccountInfo:
        raw = self._read("account_info")
        mode = int(_field(raw, "margin_mode"))
        if mode not in MARGIN_MODES:
            raise BrokerProtocolError(f"MT5 account margin_mode {mode} is unknown")
        return AccountInfo(
            login=int(_field(raw, "login")),
            server=str(_field(raw, "server")),
            currency=str(_field(raw, "currency")),
            balance=_dec(_field(raw, "balance"), "balance"),
            equity=_dec(_field(raw, "equity"), "equity"),
            margin=_dec(_field(raw, "margin"), "margin"),
            margin_free=_dec(_field(raw, "margin_free"), "margin_free"),
            leverage=int(_field(raw, "leverage")),
            margin_mode=MARGIN_MODES[mode],
            trade_allowed=bool(_field(raw, "trade_allowed")),
            name=str(_field(raw, "name")),
        )

    def symbol_spec(self, symbol: str) -> SymbolSpec:
        if symbol in self._specs:
            return self._specs[symbol]
        raw = self._read("symbol_info", symbol, none_ok=True)
        if raw is None:
            raise SymbolNotFound(f"MT5 does not offer symbol {symbol!r}")
        if not _field(raw, "visible") and not self.mt5.symbol_select(symbol, True):
            code, message = self._last_error()
            raise BrokerError(f"MT5 could not add {symbol} to Market Watch: {code} {message}")
        flags = FillingFlags(int(_field(raw, "filling_mode")) & 3)
        modes = set()
        if FillingFlags.FOK in flags:
            modes.add(FillingMode.FOK)
        if FillingFlags.IOC in flags:
            modes.add(FillingMode.IOC)
        exemode = int(_field(raw, "trade_exemode"))
        # MetaQuotes' fill policy notes: for market orders Return exists only in Exchange execution,
        # and Request/Instant execution always fill market orders Fill or Kill.
        if exemode == SYMBOL_TRADE_EXECUTION_EXCHANGE:
            modes.add(FillingMode.RETURN)
        elif exemode in (SYMBOL_TRADE_EXECUTION_REQUEST, SYMBOL_TRADE_EXECUTION_INSTANT):
            modes.add(FillingMode.FOK)
        digits = int(_field(raw, "digits"))
        spec = SymbolSpec(
            symbol=symbol,
            digits=digits,
            point=_dec(_field(raw, "point"), "point", digits),
            tick_size=_dec(_field(raw, "trade_tick_size"), "trade_tick_size", digits),
            contract_size=_dec(_field(raw, "trade_contract_size"), "trade_contract_size"),
            volume_min=_dec(_field(raw, "volume_min"), "volume_min"),
            volume_max=_dec(_field(raw, "volume_max"), "volume_max"),
            volume_step=_dec(_field(raw, "volume_step"), "volume_step"),
            filling_modes=frozenset(modes),
            currency_base=str(_field(raw, "currency_base")),
            currency_profit=str(_field(raw, "currency_profit")),
            currency_margin=str(_field(raw, "currency_margin")),
            trade_allowed=int(_field(raw, "trade_mode")) != SYMBOL_TRADE_MODE_DISABLED,
            description=str(_field(raw, "description")),
        )
        self._specs[symbol] = spec
        return spec

    def quote(self, symbol: str) -> Quote:
        digits = self.symbol_spec(symbol).digits
        tick = self._read("symbol_info_tick", symbol)
        return self._quote(symbol, tick, digits)

    def _market_quote(self, symbol: str) -> Quote | None:
        """The quote a market order is priced on, or None when the terminal has none (its tick
        read failed, or carries no bid or ask: a symbol with no prices yet, a market closed since
        the terminal started). A lost connection still raises (the session is down, not the price)."""
        try:
            quote = self.quote(symbol)
        except BrokerConnectionError:
            raise
        except BrokerError as exc:
            logger.warning("MT5: no quote for %s: %s", symbol, exc)
            return None
        return quote if quote.bid > 0 and quote.ask > 0 else None

    def ticks(self, symbol: str, *, since: datetime, count: int) -> list[Quote]:
        digits = self.symbol_spec(symbol).digits
        rows = self._read("copy_ticks_from", symbol, self._to_server(since), count, self.mt5.COPY_TICKS_ALL)
        return [self._quote(symbol, row, digits) for row in rows]

    def bars(self, symbol: str, *, timeframe: str, count: int, start_pos: int = 0) -> list[Bar]:
        if timeframe not in TIMEFRAMES:
            raise BrokerRequestError(f"timeframe {timeframe!r} is not one of {', '.join(TIMEFRAMES)}")
        spec = self.symbol_spec(symbol)
        rows = self._read("copy_rates_from_pos", symbol, getattr(self.mt5, f"TIMEFRAME_{timeframe}"), start_pos, count)
        bars = []
        for row in rows:
            bars.append(
                Bar(
                    symbol=symbol,
                    timeframe=timeframe,
                    ts=self._ts(_field(row, "time")),
                    open=_dec(_field(row, "open"), "bar open", spec.digits),
                    high=_dec(_field(row, "high"), "bar high", spec.digits),
                    low=_dec(_field(row, "low"), "bar low", spec.digits),
                    close=_dec(_field(row, "close"), "bar close", spec.digits),
                    volume=Decimal(int(_field(row, "tick_volume"))),
                    spread=Decimal(int(_field(row, "spread"))) * spec.point,
                )
            )
        return bars

    def open_orders(self, symbol: str | None = None) -> list[OpenOrder]:
        raw = self._read("orders_get", none_ok=True, **({"symbol": symbol} if symbol else {}))
        types = {
            self.mt5.ORDER_TYPE_BUY_LIMIT: OrderType.LIMIT,
            self.mt5.ORDER_TYPE_SELL_LIMIT: OrderType.LIMIT,
            self.mt5.ORDER_TYPE_BUY_STOP: OrderType.STOP,
            self.mt5.ORDER_TYPE_SELL_STOP: OrderType.STOP,
            self.mt5.ORDER_TYPE_BUY: OrderType.MARKET,
            self.mt5.ORDER_TYPE_SELL: OrderType.MARKET,
        }
        orders = []
        for row in raw or ():
            mt5_type = int(_field(row, "type"))
            if mt5_type not in types:
                raise BrokerProtocolError(f"MT5 order {_field(row, 'ticket')} has an unsupported type {mt5_type}")
            sl, tp = _field(row, "sl"), _field(row, "tp")
            orders.append(
                OpenOrder(
                    ticket=str(_field(row, "ticket")),
                    symbol=str(_field(row, "symbol")),
                    side=self._side(mt5_type, "order"),
                    order_type=types[mt5_type],
                    volume_initial=_dec(_field(row, "volume_initial"), "volume_initial"),
                    volume_current=_dec(_field(row, "volume_current"), "volume_current"),
                    price=_dec(_field(row, "price_open"), "price_open"),
                    ts=self._ts(_field(row, "time_setup"), _field(row, "time_setup_msc")),
                    stop_loss=_dec(sl, "sl") if sl else None,
                    take_profit=_dec(tp, "tp") if tp else None,
                    magic=int(_field(row, "magic")),
                    comment=str(_field(row, "comment")),
                )
            )
        return orders

    def positions(self, symbol: str | None = None) -> list[BrokerPosition]:
        raw = self._read("positions_get", none_ok=True, **({"symbol": symbol} if symbol else {}))
        result = []
        for row in raw or ():
            kind = int(_field(row, "type"))
            if kind not in (self.mt5.POSITION_TYPE_BUY, self.mt5.POSITION_TYPE_SELL):
                raise BrokerProtocolError(f"MT5 position {_field(row, 'ticket')} has an unknown type {kind}")
            result.append(
                BrokerPosition(
                    ticket=str(_field(row, "ticket")),
                    symbol=str(_field(row, "symbol")),
                    side=BUY if kind == self.mt5.POSITION_TYPE_BUY else SELL,
                    volume=_dec(_field(row, "volume"), "position volume"),
                    price_open=_dec(_field(row, "price_open"), "price_open"),
                    price_current=_dec(_field(row, "price_current"), "price_current"),
                    profit=_dec(_field(row, "profit"), "position profit"),
                    swap=_dec(_field(row, "swap"), "position swap"),
                    ts=self._ts(_field(row, "time"), _field(row, "time_msc")),
                    magic=int(_field(row, "magic")),
                    comment=str(_field(row, "comment")),
                )
            )
        return result

    def deals_since(self, since: datetime, until: datetime | None = None) -> list[Deal]:
        until = until or self._now()
        raw = self._read("history_deals_get", self._to_server(since), self._to_server(until), none_ok=True)
        kinds = (self.mt5.DEAL_TYPE_BUY, self.mt5.DEAL_TYPE_SELL)  # balance, credit, ... are not trades
        trades = [row for row in raw or () if int(_field(row, "type")) in kinds]
        return sorted((self._deal(row) for row in trades), key=lambda d: (d.ts, d.deal_id))

    def _deals_for_order(self, order_ticket: int, volume: Decimal) -> tuple[tuple[Deal, ...], bool]:
        """Poll the deal history until the order's deals add up to ``volume`` (or time out)."""
        deadline = self._monotonic() + self.poll_timeout
        while True:
            raw = self._read("history_deals_get", none_ok=True, ticket=order_ticket)
            deals = tuple(sorted((self._deal(row) for row in raw or ()), key=lambda d: (d.ts, d.deal_id)))
            if sum((d.volume for d in deals), Decimal(0)) >= volume:
                return deals, True
            if self._monotonic() >= deadline:
                return deals, False
            self._sleep(self.poll_interval)

    # ------------------------------------------------------------ trading

    def _result_from_none(self, request: OrderRequest, attempts: int, when: datetime) -> OrderResult:
        code, message = self._last_error()
        base = {
            "client_order_id": request.client_order_id,
            "symbol": request.symbol,
            "side": request.side,
            "requested_volume": request.volume,
            "ts": when,
            "attempts": attempts,
        }
        if code in CONNECTION_ERRORS:
            self._connection_lost(code, message, "order_send")
            outcome = Out.TIMEOUT if code == RES_E_INTERNAL_FAIL_TIMEOUT else Out.CONNECTION
            return OrderResult(outcome=outcome, message=f"{code} {message}; order state unknown, reconcile", **base)
        if code == RES_E_INVALID_PARAMS:
            return OrderResult(outcome=Out.INVALID, message=f"{code} {message}", **base)
        raise BrokerProtocolError(f"MT5 order_send returned None with last_error {code} {message}")

    def _trade_request(self, request: OrderRequest, spec: SymbolSpec, filling: FillingMode, price: Decimal) -> dict:
        mt5 = self.mt5
        if request.order_type == OrderType.MARKET:
            action = mt5.TRADE_ACTION_DEAL
            mt5_type = mt5.ORDER_TYPE_BUY if request.side == BUY else mt5.ORDER_TYPE_SELL
        else:
            action = mt5.TRADE_ACTION_PENDING
            if request.order_type == OrderType.LIMIT:
                mt5_type = mt5.ORDER_TYPE_BUY_LIMIT if request.side == BUY else mt5.ORDER_TYPE_SELL_LIMIT
            else:
                mt5_type = mt5.ORDER_TYPE_BUY_STOP if request.side == BUY else mt5.ORDER_TYPE_SELL_STOP
        fillings = {
            FillingMode.FOK: mt5.ORDER_FILLING_FOK,
            FillingMode.IOC: mt5.ORDER_FILLING_IOC,
            FillingMode.RETURN: mt5.ORDER_FILLING_RETURN,
        }
        trade = {
            "action": action,
            "symbol": request.symbol,
            "volume": float(request.volume),
            "type": mt5_type,
            "price": float(price),
            "deviation": request.deviation_points,
            "magic": request.magic,
            "comment": request.order_comment,
            "type_time": mt5.ORDER_TIME_GTC,
            "type_filling": fillings[filling],
        }
        if request.stop_loss is not None:
            trade["sl"] = float(request.stop_loss)
        if request.take_profit is not None:
            trade["tp"] = float(request.take_profit)
        if request.position:
            trade["position"] = int(request.position)
        return trade

    def send_order(self, request: OrderRequest) -> OrderResult:
        """Send one order; REQUOTE/PRICE_CHANGED retried within the deviation; fills polled.

        Side effects: an order at the broker. Raises BrokerUnavailable when the breaker is open,
        BrokerProtocolError for an unknown retcode; every broker answer is an OrderResult."""
        spec = self.symbol_spec(request.symbol)
        when = self._now()
        base = {
            "client_order_id": request.client_order_id,
            "symbol": request.symbol,
            "side": request.side,
            "requested_volume": request.volume,
        }
        if request.order_type != OrderType.MARKET:
            # Pending limit/stop orders rest with Return in Market and Exchange execution alike;
            # the symbol's filling flags are about market orders.
            filling = request.filling or FillingMode.RETURN
        else:
            filling = request.filling or spec.preferred_filling()
        if request.order_type == OrderType.MARKET and filling not in spec.filling_modes:
            allowed = ", ".join(sorted(spec.filling_modes))
            return OrderResult(
                outcome=Out.INVALID_FILL,
                retcode=10030,
                message=f"{request.symbol} allows filling {allowed}, not {filling}",
                ts=when,
                **base,
            )
        if request.order_type == OrderType.MARKET:
            quote = self._market_quote(request.symbol)
            if quote is None:
                # Immediate or cancel: without a price there is nothing to execute against. Refused
                # here, as the server would (TRADE_RETCODE_PRICE_OFF), not sent at price 0 or left
                # as an unknown state that waits on reconciliation.
                return OrderResult(
                    outcome=Out.PRICE_OFF,
                    retcode=10021,
                    message=f"TRADE_RETCODE_PRICE_OFF: no quote for {request.symbol}: a market order is not sent "
                    "without a price",
                    ts=when,
                    **base,
                )
            price = quote.price_for(request.side)
        else:
            price = request.price
        anchor = price
        limit = spec.point * request.deviation_points
        trade = self._trade_request(request, spec, filling, price)
        attempts = 0
        while True:
            attempts += 1
            self._ensure_connected()
            raw = self.mt5.order_send(trade)
            if raw is None:
                return self._result_from_none(request, attempts, self._now())
            self.breaker.record_success()
            retcode = int(_field(raw, "retcode"))
            name, outcome = retcode_outcome(retcode)
            if (
                outcome in (Out.REQUOTE, Out.PRICE_CHANGED)
                and request.order_type == OrderType.MARKET
                and attempts <= self.max_requotes
            ):
                new_price = self._requote_price(request, raw, spec)
                if abs(new_price - anchor) <= limit:
                    logger.info("%s %s at %s; retrying at %s", request.client_order_id, name, price, new_price)
                    price = new_price
                    trade["price"] = float(price)
                    continue
            break
        order_ticket = int(_field(raw, "order") or 0)
        volume = _dec(_field(raw, "volume"), "result volume")
        deals: tuple[Deal, ...] = ()
        confirmed = True
        if outcome in (Out.DONE, Out.DONE_PARTIAL) and order_ticket and volume > 0:
            deals, confirmed = self._deals_for_order(order_ticket, volume)
        if deals:
            filled = sum((d.volume for d in deals), Decimal(0))
        else:
            filled = volume if outcome in (Out.DONE, Out.DONE_PARTIAL) else Decimal(0)
        if deals:
            avg = sum((d.price * d.volume for d in deals), Decimal(0)) / filled
            avg_price = avg.quantize(Decimal(1).scaleb(-(spec.digits + 2)))
        else:
            raw_price = _field(raw, "price")
            avg_price = _dec(raw_price, "result price", spec.digits) if raw_price else None
        bid, ask = _field(raw, "bid"), _field(raw, "ask")
        return OrderResult(
            outcome=outcome,
            retcode=retcode,
            message=f"{name}: {_field(raw, 'comment')}",
            broker_order_id=str(order_ticket) if order_ticket else "",
            filled_volume=filled,
            price=avg_price,
            bid=_dec(bid, "bid", spec.digits) if bid else None,
            ask=_dec(ask, "ask", spec.digits) if ask else None,
            deals=deals,
            attempts=attempts,
            deals_confirmed=confirmed,
            ts=self._now(),
            **base,
        )

    def _requote_price(self, request: OrderRequest, raw: Any, spec: SymbolSpec) -> Decimal:
        """The price a requote offers: the reply's bid/ask when present, else a fresh tick."""
        offered = _field(raw, "ask" if request.side == BUY else "bid")
        if offered:
            return _dec(offered, "requote price", spec.digits)
        return self.quote(request.symbol).price_for(request.side)

    def _order_action(self, trade: dict, *, ticket: str, symbol: str = "") -> OrderResult:
        self._ensure_connected()
        raw = self.mt5.order_send(trade)
        request = OrderRequest(client_order_id=f"#{ticket}", symbol=symbol or "?", side=BUY, volume=Decimal(1))
        if raw is None:
            return self._result_from_none(request, 1, self._now())
        self.breaker.record_success()
        retcode = int(_field(raw, "retcode"))
        name, outcome = retcode_outcome(retcode)
        return OrderResult(
            outcome=outcome,
            retcode=retcode,
            message=f"{name}: {_field(raw, 'comment')}",
            client_order_id="",
            symbol=symbol,
            side="",
            requested_volume=Decimal(0),
            broker_order_id=ticket,
            ts=self._now(),
        )

    def cancel_order(self, broker_order_id: str) -> OrderResult:
        return self._order_action(
            {"action": self.mt5.TRADE_ACTION_REMOVE, "order": int(broker_order_id)}, ticket=broker_order_id
        )

    def modify_order(
        self,
        broker_order_id: str,
        *,
        price: Decimal | None = None,
        stop_loss: Decimal | None = None,
        take_profit: Decimal | None = None,
    ) -> OrderResult:
        current = {o.ticket: o for o in self.open_orders()}.get(broker_order_id)
        if current is None:
            raise BrokerRequestError(f"MT5 has no open order {broker_order_id} to modify")
        trade = {
            "action": self.mt5.TRADE_ACTION_MODIFY,
            "order": int(broker_order_id),
            "price": float(price if price is not None else current.price),
            "sl": float(stop_loss if stop_loss is not None else (current.stop_loss or 0)),
            "tp": float(take_profit if take_profit is not None else (current.take_profit or 0)),
            "type_time": self.mt5.ORDER_TIME_GTC,
        }
        return self._order_action(trade, ticket=broker_order_id, symbol=current.symbol)

    def check_order(self, request: OrderRequest) -> tuple[OrderOutcome, str]:
        """``order_check``: would the server accept it (margin, volume, stops)? No order is sent.

        Note: order_check answers retcode 0 for "would pass" on most builds; that reads as DONE."""
        spec = self.symbol_spec(request.symbol)
        if request.order_type == OrderType.MARKET:
            price = self.quote(request.symbol).price_for(request.side)
            filling = request.filling or spec.preferred_filling()
        else:
            price = request.price
            filling = request.filling or FillingMode.RETURN
        trade = self._trade_request(request, spec, filling, price)
        raw = self._read("order_check", trade)
        retcode = int(_field(raw, "retcode"))
        if retcode == 0:
            return Out.DONE, str(_field(raw, "comment"))
        return retcode_outcome(retcode)[1], str(_field(raw, "comment"))
