"""The strategy: validated signals in, order intents out. Pure (no Django, no clock, no I/O).

Sizing, per account that trades the signal's algorithm:

- ``volatility`` (default): risk a fixed fraction of equity between entry and stop. The stop
  sits ``sl_atr`` x ATR from the entry, so lots = equity x ``risk_fraction`` / (stop distance x
  contract size): wide markets trade smaller. Without an ATR on the signal, ``price x
  volatility`` stands in for it; without either the signal is skipped (``skipped`` says why).
- ``fixed_fraction``: notional = equity x ``notional_fraction``; lots = notional / (price x
  contract size).

Lots are rounded DOWN onto the instrument's volume grid and capped at its maximum (and at
``max_lots``); a size below the minimum volume is skipped, never rounded up. Stop loss and take
profit are ``sl_atr`` / ``tp_atr`` ATRs from the signal price, on the tick grid.

Within the headroom (``headroom_of``, in the worker ``trading.risk.order_headroom`` over the risk
manager the gate reads): the size is shrunk to what the position, exposure, margin and open-order
limits leave (on the volume grid), and when not even the minimum volume fits the account is
skipped with the binding limit's code instead of sending an order bound to be refused. The
headroom reads the account's trading state too (the risk manager's memory, no query): while it
is REDUCING a signal that would open or grow a position is skipped (``strategy.reduce_only``)
and one that shrinks it is sized to at most the position; while it is HALTED nothing is sent
(``strategy.trading_halted``), nor while its breaker's one trial order is out
(``strategy.breaker_trial``, the trial named). The risk checks still run on every order (defence in depth).

Every skip is a ``SignalSkip`` with a stable code (``SKIP_CODES``), the signal's time and the
figures; ``last_skips`` holds those of the latest signal, for the runner to record in the audit
trail, and ``skipped`` the latest hundred, for logs.

Idempotent: one intent per (signal id, account), with a deterministic ``client_order_id``
(``trading.intents.client_order_id_for``), so a redelivered signal produces nothing new here and
the database refuses a second order with the same key anyway. Money is not converted between
currencies here: equity is taken as being in the instrument's quote currency (true for the USD
accounts trading xxxUSD pairs the firm runs today).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from tradeops.events import Envelope, Signal
from trading.intents import BUY, SELL, InstrumentSpec, OrderIntent, client_order_id_for
from trading.marketdata.sessions import is_open
from trading.risk.headroom import Headroom

ZERO = Decimal(0)

SKIP_CODES = {
    "strategy.invalid_side": "the signal's side is neither BUY nor SELL",
    "strategy.unknown_instrument": "no instrument of that symbol is loaded",
    "strategy.market_closed": "the instrument is outside its trading hours at the signal's time",
    "strategy.invalid_price": "the signal's reference price is not positive",
    "strategy.low_confidence": "confidence below the strategy's minimum",
    "strategy.algo_not_traded": "the signal's algorithm is not traded by this strategy",
    "strategy.no_volatility": "volatility sizing needs an ATR or a volatility on the signal",
    "strategy.below_min_volume": "the size the sizing rule gives is below the instrument's minimum volume",
    "strategy.no_headroom": "a risk limit leaves less than the minimum volume (``limit_code`` names it)",
    "strategy.reduce_only": "the account is REDUCING and the signal would open or grow a position",
    "strategy.trading_halted": "the account is HALTED (operator, kill switch or circuit breaker)",
    "strategy.breaker_trial": "the account's breaker is half-open and its one trial order is still out",
}
# The headroom's codes that say the account's trading state left no room, not a limit's size.
STATE_SKIPS = {
    "risk.reduce_only": "strategy.reduce_only",
    "risk.trading_halted": "strategy.trading_halted",
    "risk.breaker_open": "strategy.breaker_trial",
}


@dataclass(frozen=True, slots=True)
class SignalSkip:
    """A validated signal that produced no order (for one account, or for all when
    ``account_id`` is None), and why. ``ts`` is the signal's time (event time). For
    ``strategy.no_headroom`` (and ``strategy.reduce_only`` / ``strategy.trading_halted``),
    ``wanted`` is the size the sizing rule asked for and ``limit_code`` the risk check whose limit
    binds (``risk.max_position``, ``risk.reduce_only``...)."""

    signal_id: str
    symbol: str
    side: str
    ts: datetime
    code: str
    reason: str
    account_id: int | None = None
    algo_id: str = ""
    wanted: Decimal | None = None
    limit_code: str = ""


class HeadroomOf(Protocol):
    def __call__(self, *, account_id: int, symbol: str, side: str, price: Decimal, at: datetime) -> Headroom: ...


@dataclass(frozen=True, slots=True)
class StrategyConfig:
    sizing: str = "volatility"  # volatility | fixed_fraction
    risk_fraction: Decimal = Decimal("0.005")  # volatility sizing: equity at risk to the stop
    notional_fraction: Decimal = Decimal("0.10")  # fixed_fraction sizing: notional / equity
    sl_atr: Decimal = Decimal(2)
    tp_atr: Decimal = Decimal(3)
    min_confidence: float = 0.0
    max_lots: Decimal | None = None
    algo_ids: frozenset[str] | None = None  # None: every algorithm's signals
    remember: int = 100_000  # signal ids kept for the idempotency check

    def __post_init__(self):
        if self.sizing not in ("volatility", "fixed_fraction"):
            raise ValueError(f"sizing must be 'volatility' or 'fixed_fraction', got {self.sizing!r}")


class Strategy:
    """``handle(event)`` → order intents for a ``signal.validated`` event; anything else → []."""

    def __init__(
        self,
        *,
        instruments: dict[str, InstrumentSpec],
        accounts: Sequence[int],
        equity_of: Callable[[int], Decimal],
        headroom_of: HeadroomOf | None = None,
        config: StrategyConfig | None = None,
    ):
        self.instruments = instruments
        self.accounts = tuple(accounts)
        self.equity_of = equity_of
        self.headroom_of = headroom_of  # None: size without regard to the risk limits
        self.config = config or StrategyConfig()
        self._seen: OrderedDict[str, None] = OrderedDict()
        self.skipped: list[SignalSkip] = []  # the latest hundred, for logs
        self.last_skips: list[SignalSkip] = []  # those of the latest signal, for the runner to record
        self.shrunk = 0  # intents sized down to the headroom

    def handle(self, event: Envelope) -> list[OrderIntent]:
        payload = event.payload
        if not isinstance(payload, Signal):
            return []
        return self.on_signal(payload)

    def on_signal(self, signal: Signal) -> list[OrderIntent]:
        self.last_skips = []
        if signal.signal_id in self._seen:
            return []
        self._remember(signal.signal_id)
        code, reason = self._refusal(signal)
        if code:
            self._skip(signal, code, reason)
            return []
        spec = self.instruments[signal.symbol]
        atr = self._atr(signal)
        intents = []
        for account_id in self.accounts:
            lots = self.size(spec=spec, signal=signal, atr=atr, equity=self.equity_of(account_id))
            if lots <= 0:
                reason = f"account {account_id}: size below the minimum volume {spec.min_volume}"
                self._skip(signal, "strategy.below_min_volume", reason, account_id=account_id)
                continue
            if self.headroom_of is not None:
                room = self.headroom_of(
                    account_id=account_id, symbol=signal.symbol, side=signal.side, price=signal.price, at=signal.ts
                )
                if not room.fits:
                    reason = f"account {account_id}: {lots} lots wanted; {room.code or 'no limit'}: {room.detail}"
                    self._skip(
                        signal,
                        STATE_SKIPS.get(room.code, "strategy.no_headroom"),
                        reason,
                        account_id=account_id,
                        wanted=lots,
                        limit_code=room.code,
                    )
                    continue
                if room.lots < lots:
                    lots = room.lots
                    self.shrunk += 1
            stop_loss = take_profit = None
            if atr:
                direction = 1 if signal.side == BUY else -1
                stop_loss = spec.round_price(signal.price - direction * self.config.sl_atr * atr)
                take_profit = spec.round_price(signal.price + direction * self.config.tp_atr * atr)
            intents.append(
                OrderIntent(
                    client_order_id=client_order_id_for(signal_id=signal.signal_id, account_id=account_id),
                    account_id=account_id,
                    symbol=signal.symbol,
                    side=signal.side,
                    quantity=lots,
                    reference_price=signal.price,
                    ts=signal.ts,
                    stop_loss=stop_loss if stop_loss and stop_loss > 0 else None,
                    take_profit=take_profit if take_profit and take_profit > 0 else None,
                    algo_id=signal.algo_id,
                    signal_id=signal.signal_id,
                )
            )
        return intents

    def size(self, *, spec: InstrumentSpec, signal: Signal, atr: Decimal | None, equity: Decimal) -> Decimal:
        """Lots for one account, on the volume grid; 0 when the size is below the minimum."""
        cfg = self.config
        if equity <= 0:
            return ZERO
        if cfg.sizing == "volatility":
            if not atr:
                return ZERO
            risk_money = equity * cfg.risk_fraction
            raw = risk_money / (cfg.sl_atr * atr * spec.contract_size)
        else:
            raw = equity * cfg.notional_fraction / (signal.price * spec.contract_size)
        if cfg.max_lots is not None:
            raw = min(raw, cfg.max_lots)
        return spec.round_volume_down(raw)

    # ------------------------------------------------------------ helpers

    def _refusal(self, signal: Signal) -> tuple[str, str]:
        if signal.side not in (BUY, SELL):
            return "strategy.invalid_side", f"side {signal.side!r} is neither BUY nor SELL"
        if signal.symbol not in self.instruments:
            return "strategy.unknown_instrument", f"no instrument {signal.symbol!r} is loaded"
        hours = self.instruments[signal.symbol].trading_hours
        if hours and not is_open(hours, signal.ts):
            return "strategy.market_closed", f"{signal.symbol} is outside its trading hours at {signal.ts.isoformat()}"
        if signal.price <= 0:
            return "strategy.invalid_price", f"reference price {signal.price} is not positive"
        if signal.confidence < self.config.min_confidence:
            return "strategy.low_confidence", f"confidence {signal.confidence} below {self.config.min_confidence}"
        if self.config.algo_ids is not None and signal.algo_id not in self.config.algo_ids:
            return "strategy.algo_not_traded", f"algorithm {signal.algo_id!r} is not traded here"
        if self.config.sizing == "volatility" and self._atr(signal) is None:
            return "strategy.no_volatility", "volatility sizing needs an ATR or a volatility on the signal"
        return "", ""

    @staticmethod
    def _atr(signal: Signal) -> Decimal | None:
        if signal.atr is not None and signal.atr > 0:
            return Decimal(repr(signal.atr))
        if signal.volatility is not None and signal.volatility > 0:
            return signal.price * Decimal(repr(signal.volatility))
        return None

    def forget(self, signal_id: str) -> None:
        """Handle ``signal_id`` again when it comes back: its handling failed part-way (the
        database went away) and the runner will deliver it again."""
        self._seen.pop(signal_id, None)

    def _remember(self, signal_id: str) -> None:
        self._seen[signal_id] = None
        if len(self._seen) > self.config.remember:
            self._seen.popitem(last=False)

    def _skip(self, signal: Signal, code: str, reason: str, **account_figures) -> None:
        skip = SignalSkip(
            signal_id=signal.signal_id,
            symbol=signal.symbol,
            side=signal.side,
            ts=signal.ts,
            code=code,
            reason=reason,
            algo_id=signal.algo_id,
            **account_figures,
        )
        self.last_skips.append(skip)
        self.skipped.append(skip)
        del self.skipped[:-100]
