"""The risk manager: hot state for every account, the trading state, and the pre-trade risk checks.

Pure (no Django, no clock, no I/O). The execution worker owns one ``RiskManager``: it loads the
limits (``trading.models.RiskLimit`` → ``LimitBook``), the engaged kill switches and the open
positions and orders at start, feeds it every fill, order update and quote, and puts
``risk_checks(manager)`` at the front of the pre-trade gate.

Every check has a stable reason code (``CODES``). Trading states (NautilusTrader's model):

- ACTIVE: everything the limits allow;
- REDUCING: only orders that shrink a position, while the daily loss limit or the maximum
  drawdown is breached (a risk manager ends a drawdown's by re-basing the peak equity:
  ``peak_equity_rebase``);
- HALTED: no new orders (the kill switch on all/the account, or the account's open circuit
  breaker: one per account, ``BreakerBook``); cancels are always allowed (RTS 6 Art. 12).

Both are computed from what the manager holds, never set: an operator halts with the kill switch
(persisted, audited, mirrored here). Until 2026-12-07 NautilusTrader's operator setting
(``set_trading_state``, kept in memory only) was here too, called by no console, API, admin page
or command: a state that no audit record, snapshot reload or second worker would have seen.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from tradeops.breaker import BreakerState
from tradeops.events import CheckResult, Envelope, Tick
from trading.gate import GateContext, PreTradeCheck, failed
from trading.intents import InstrumentSpec, IntentAction, OrderIntent, Quote
from trading.marketdata.sessions import is_open
from trading.position_math import PositionState
from trading.risk.breaker import BreakerBook
from trading.risk.killswitch import KillScope, KillSwitchBook
from trading.risk.limits import LimitBook
from trading.risk.state import AccountBook, OpenOrder, is_reducing, signature


class TradingState(StrEnum):
    ACTIVE = "ACTIVE"
    REDUCING = "REDUCING"
    HALTED = "HALTED"


CODES = {
    "trading_state": ("risk.trading_halted", "risk.reduce_only"),
    "kill_switch": ("risk.kill_switch_engaged",),
    "circuit_breaker": ("risk.breaker_open",),
    "market_hours": ("risk.market_closed",),
    "market_data": ("risk.stale_market_data",),
    "max_position": ("risk.max_position",),
    "max_gross_exposure": ("risk.max_gross_exposure",),
    "max_net_exposure": ("risk.max_net_exposure",),
    "margin": ("risk.insufficient_margin",),
    "daily_loss": ("risk.daily_loss_limit",),
    "max_drawdown": ("risk.max_drawdown",),
    "submit_rate": ("risk.submit_rate",),
    "modify_rate": ("risk.modify_rate",),
    "max_open_orders": ("risk.max_open_orders",),
    "duplicate_order": ("risk.duplicate_order",),
    "signal_age": ("risk.stale_signal",),
}


class RiskManager:
    def __init__(
        self,
        *,
        limits: LimitBook | None = None,
        breakers: BreakerBook | None = None,
        kill_switch: KillSwitchBook | None = None,
        max_signal_age: timedelta | None = None,
        stale_after: timedelta | None = None,
    ):
        self.limits = limits or LimitBook()
        self.max_signal_age = max_signal_age  # refuse intents decided this long before the latest quote
        self.stale_after = stale_after  # refuse orders on an instrument whose latest quote is older than this
        self.breakers = breakers if breakers is not None else BreakerBook()  # an empty book is falsy
        self.kill_switch = kill_switch or KillSwitchBook()
        self.accounts: dict[int, AccountBook] = {}
        self.specs: dict[str, InstrumentSpec] = {}
        self.quotes: dict[str, Quote] = {}

    # ------------------------------------------------------------ set-up

    def add_instrument(self, spec: InstrumentSpec) -> None:
        self.specs[spec.symbol] = spec
        for book in self.accounts.values():
            book.add_instrument(spec)

    def add_account(self, account_id: int, *, balance: Decimal, currency: str = "USD", now=None) -> AccountBook:
        book = AccountBook(account_id=account_id, balance=balance, currency=currency, now=now)
        for spec in self.specs.values():
            book.add_instrument(spec)
        self.accounts[account_id] = book
        self.breakers.for_account(account_id)  # its breaker (and gauge) exists from the start, closed
        return book

    def account(self, account_id: int) -> AccountBook:
        try:
            return self.accounts[account_id]
        except KeyError:
            raise KeyError(f"account {account_id} is not loaded in the risk manager") from None

    # ------------------------------------------------------------ state

    def trading_state(self, account_id: int, now: datetime | None = None) -> TradingState:
        """The most severe of: the kill switch on all/this account and this account's open breaker
        (HALTED), a breached daily loss or drawdown limit (REDUCING); else ACTIVE."""
        if self.kill_switch.account_halted(account_id):
            return TradingState.HALTED
        if now is not None:
            breaker = self.breakers.for_account(account_id)
            if not breaker.allow(now) and breaker.state(now) is BreakerState.OPEN:
                return TradingState.HALTED
        book = self.accounts.get(account_id)
        if book is not None and self._loss_breached(book):
            return TradingState.REDUCING
        return TradingState.ACTIVE

    def halt_reason(self, account_id: int, now: datetime | None = None) -> str:
        """Why ``trading_state`` says HALTED, in the words the gate's checks use ("" when it
        does not): for the sizing's skip, so the trader reads the cause, not only the state."""
        if self.kill_switch.account_halted(account_id):
            every = (KillScope.ALL.value, "") in self.kill_switch.engaged
            return "kill switch engaged on " + ("all" if every else f"account={account_id}")
        if now is not None:
            breaker = self.breakers.for_account(account_id)
            if not breaker.allow(now) and breaker.state(now) is BreakerState.OPEN:
                return f"account {account_id}'s trading breaker open" + (
                    f" ({breaker.reason})" if breaker.reason else ""
                )
        return ""

    def breaker_trial_reason(self, account_id: int, now: datetime) -> str:
        """Why no order may go although the account is not HALTED: its breaker is half-open and
        its one trial order is still out ("" otherwise). The sizing skips on it
        (``strategy.breaker_trial``) as it does on HALTED; the gate's ``BreakerCheck`` still
        refuses an order that gets that far (``risk.breaker_open``)."""
        breaker = self.breakers.for_account(account_id)
        if not breaker.trial_out(now):
            return ""
        trial = f"its trial order {breaker.trial_order_id}" if breaker.trial_order_id else "its trial order"
        return (
            f"account {account_id}'s trading breaker is half-open"
            + (f" ({breaker.reason})" if breaker.reason else "")
            + f": {trial} is still out, nothing else goes until it resolves"
        )

    def reducing_reason(self, account_id: int) -> str:
        """Which loss limit makes the account REDUCING, with its figure against the limit ("" when
        none is breached): for the sizing's skip and the worker's records, so the trader and the
        risk manager read the cause (and whether re-basing the peak equity would end it)."""
        book = self.accounts.get(account_id)
        if book is None:
            return ""
        limits = self.limits.for_account(account_id)
        why = []
        if limits.max_drawdown is not None and book.drawdown() >= limits.max_drawdown:
            why.append(
                f"drawdown {book.drawdown():.4%} of peak equity {book.peak_equity:.2f} "
                f">= limit {limits.max_drawdown:.2%}"
            )
        if limits.daily_loss_limit is not None and book.daily_loss() >= limits.daily_loss_limit:
            why.append(
                f"daily loss {book.daily_loss():.2f} since {book.day} 00:00 UTC >= limit {limits.daily_loss_limit:.2f}"
            )
        return "; ".join(why)

    def peak_equity_rebase(self, account_id: int) -> tuple[Decimal, Decimal]:
        """Re-base the account's peak equity on its equity now (a risk manager acknowledged the
        drawdown, with four eyes: ``trading.controls.drawdown``): the drawdown becomes 0, so a
        REDUCING it caused ends, and the drawdown limit counts afresh from here. A flat account
        cannot earn a drawdown back; without this only a change of the limit ended it. Returns
        (peak before, peak after). Precondition: the account is loaded."""
        return self.account(account_id).peak_rebase()

    def _loss_breached(self, book: AccountBook) -> bool:
        limits = self.limits.for_account(book.account_id)
        if limits.daily_loss_limit is not None and book.daily_loss() >= limits.daily_loss_limit:
            return True
        return limits.max_drawdown is not None and book.drawdown() >= limits.max_drawdown

    def context(self, intent: OrderIntent, *, now: datetime | None = None, **extra) -> GateContext:
        """Everything a check may read for this intent (the gate's context)."""
        now = now or intent.ts
        book = self.account(intent.account_id)
        book.roll_day(now)
        return GateContext(
            now=now,
            instrument=self.specs[intent.symbol],
            quote=self.quotes.get(intent.symbol),
            trading_state=self.trading_state(intent.account_id, now),
            account=book,
            extra=extra,
        )

    # ------------------------------------------------------------ updates

    def on_quote(self, quote: Quote, *, mid: Decimal | None = None) -> None:
        """Take the latest quote; an older one arriving late (out of order) is ignored. ``mid``:
        ``quote.mid`` when the caller has computed it already (the worker marks with it too)."""
        current = self.quotes.get(quote.symbol)
        if current is not None and quote.ts < current.ts:
            return
        self.quotes[quote.symbol] = quote
        if mid is None:
            mid = quote.mid
        for book in self.accounts.values():
            book.mark(quote.symbol, mid, quote.ts)

    def on_order_sent(self, intent: OrderIntent) -> None:
        """The order is on its way to the broker: it counts as open (pending exposure)."""
        book = self.account(intent.account_id)
        if intent.action == IntentAction.SUBMIT:
            book.order_opened(
                OpenOrder(
                    client_order_id=intent.client_order_id,
                    symbol=intent.symbol,
                    side=intent.side,
                    remaining=intent.quantity,
                    algo_id=intent.algo_id,
                    trader_id=intent.trader_id,
                )
            )

    def on_fill(
        self,
        *,
        account_id: int,
        client_order_id: str,
        symbol: str,
        side: str,
        quantity: Decimal,
        price: Decimal,
        fee: Decimal = Decimal(0),
        now: datetime | None = None,
    ) -> PositionState:
        book = self.account(account_id)
        before = book.realised_since_load
        signed = quantity if side == "BUY" else -quantity
        state = book.apply_fill(symbol, signed, price, fee)
        book.order_filled(client_order_id, quantity)
        if now is not None:
            self.breakers.for_account(account_id).record_pnl(book.realised_since_load - before, now=now)
        return state

    def on_order_closed(self, account_id: int, client_order_id: str) -> None:
        self.account(account_id).order_closed(client_order_id)

    def on_event(self, event: Envelope) -> None:
        """Market data only. Fills and order updates come from the worker's own writes through
        ``on_fill``/``on_order_sent``/``on_order_closed``, never from trading-events, so a fill
        the worker recorded cannot be applied twice when its event comes back on the bus."""
        payload = event.payload
        if isinstance(payload, Tick):
            self.on_quote(Quote(payload.symbol, payload.bid, payload.ask, payload.ts))


# ---------------------------------------------------------------- checks


class _Check:
    name = ""
    applies_to_cancels = False

    def __init__(self, manager: RiskManager):
        self.m = manager
        self._pass = CheckResult(name=self.name, passed=True)

    def ok(self) -> CheckResult:
        return self._pass


def _increases(book: AccountBook, intent: OrderIntent) -> bool:
    current = book.position(intent.symbol) + book.pending(intent.symbol)
    return not is_reducing(current, intent.signed_quantity)


class TradingStateCheck(_Check):
    name = "trading_state"

    def __call__(self, intent: OrderIntent, ctx: GateContext) -> CheckResult:
        state = ctx.trading_state
        if state == TradingState.HALTED:
            return failed(self.name, "risk.trading_halted", f"account {intent.account_id} is HALTED")
        if state == TradingState.REDUCING and _increases(ctx.account, intent):
            return failed(
                self.name,
                "risk.reduce_only",
                f"account {intent.account_id} is REDUCING: only orders that shrink a position are allowed",
            )
        return self.ok()


class KillSwitchCheck(_Check):
    name = "kill_switch"

    def __call__(self, intent, ctx):
        hit = self.m.kill_switch.blocking(intent)
        if hit is None:
            return self.ok()
        scope, value = hit
        return failed(
            self.name, "risk.kill_switch_engaged", f"kill switch engaged on {scope}{'=' + value if value else ''}"
        )


class BreakerCheck(_Check):
    name = "circuit_breaker"

    def __call__(self, intent, ctx):
        breaker = self.m.breakers.for_account(intent.account_id)
        if breaker.allow(ctx.now):
            return self.ok()
        state = breaker.state(ctx.now)
        detail = f"account {intent.account_id}'s trading breaker {state}" + (
            f" ({breaker.reason})" if breaker.reason else ""
        )
        if state is BreakerState.HALF_OPEN:
            detail += "; the trial order is still out"
        return failed(self.name, "risk.breaker_open", detail)

    def on_sent(self, intent, ctx):
        self.m.breakers.for_account(intent.account_id).on_trial(ctx.now, order_id=intent.client_order_id)


class MarketHoursCheck(_Check):
    """The instrument is outside its trading sessions (``InstrumentSpec.trading_hours``, UTC) at
    the decision time: refused here, with a reason, rather than sent for the venue to refuse.
    The strategy does not size signals of a closed market; this catches the rest (an order over
    the API, a signal decided just before the close)."""

    name = "market_hours"

    def __call__(self, intent, ctx):
        hours = ctx.instrument.trading_hours
        if not hours or is_open(hours, ctx.now):
            return self.ok()
        return failed(
            self.name, "risk.market_closed", f"{intent.symbol} is outside its trading hours at {ctx.now.isoformat()}"
        )


class MarketDataCheck(_Check):
    """No quote for the instrument, or the latest one older than ``stale_after`` at the decision
    time: the order is refused, for THIS instrument only. Stale market data is a property of the
    instrument's feed, not of the account's conduct: the account's other instruments trade on,
    and the breaker (which halts the account) is left alone. Without a current price no price
    collar can be applied (RTS 6 Art. 15(1)(a)), and the venue would refuse a market order too
    (MT5's TRADE_RETCODE_PRICE_OFF, "no quotes")."""

    name = "market_data"

    def __call__(self, intent, ctx):
        limit = self.m.stale_after
        if limit is None or intent.action != IntentAction.SUBMIT:
            return self.ok()
        if ctx.quote is None:
            return failed(
                self.name,
                "risk.stale_market_data",
                f"no market data for {intent.symbol}: orders on it are refused until it is quoted",
            )
        age = ctx.now - ctx.quote.ts
        if age > limit:
            return failed(
                self.name,
                "risk.stale_market_data",
                f"the latest {intent.symbol} quote is {age.total_seconds():.3f} s old at "
                f"{ctx.now.isoformat()}; limit {limit.total_seconds():.0f} s",
            )
        return self.ok()


class MaxPositionCheck(_Check):
    """Worst case per side: the position if every open order on the order's side filled, plus
    this one, must stay within the limit (opposite orders may never fill, so they do not count)."""

    name = "max_position"

    def __call__(self, intent, ctx):
        limit = self.m.limits.for_instrument(intent.account_id, intent.symbol).max_position_lots
        if limit is None:
            return self.ok()
        book = ctx.account
        worst = book.position(intent.symbol) + book.pending(intent.symbol, side=intent.side) + intent.signed_quantity
        if abs(worst) > limit and (worst > 0) == (intent.signed_quantity > 0):
            return failed(
                self.name,
                "risk.max_position",
                f"{intent.symbol}: position could reach {worst} lots with open orders on that side; limit {limit}",
            )
        return self.ok()


class ExposureCheck(_Check):
    name = "max_gross_exposure"

    def __call__(self, intent, ctx):
        limits = self.m.limits.for_account(intent.account_id)
        if limits.max_gross_exposure is None and limits.max_net_exposure is None:
            return self.ok()
        exposure = ctx.account.order_exposure(intent.symbol, intent.reference_price)
        gross_before, gross = exposure.gross(), exposure.gross(intent.signed_quantity)
        if limits.max_gross_exposure is not None and gross > limits.max_gross_exposure and gross > gross_before:
            return failed(
                self.name,
                "risk.max_gross_exposure",
                f"gross exposure would be {gross:.2f}; limit {limits.max_gross_exposure}",
            )
        return self.ok()


class NetExposureCheck(_Check):
    name = "max_net_exposure"

    def __call__(self, intent, ctx):
        limit = self.m.limits.for_account(intent.account_id).max_net_exposure
        if limit is None:
            return self.ok()
        exposure = ctx.account.order_exposure(intent.symbol, intent.reference_price)
        net_before, net = exposure.net(), exposure.net(intent.signed_quantity)
        if net > limit and net > net_before:
            return failed(self.name, "risk.max_net_exposure", f"net exposure would be {net:.2f}; limit {limit}")
        return self.ok()


class MarginCheck(_Check):
    name = "margin"

    def __call__(self, intent, ctx):
        if not self.m.limits.for_account(intent.account_id).check_margin:
            return self.ok()
        book = ctx.account
        if not _increases(book, intent):
            return self.ok()
        required = (
            abs(book.notional(intent.symbol, intent.quantity, intent.reference_price)) * ctx.instrument.margin_rate
        )
        free = book.free_margin()
        if required > free:
            return failed(
                self.name, "risk.insufficient_margin", f"order needs margin {required:.2f}; free margin {free:.2f}"
            )
        return self.ok()


class DailyLossCheck(_Check):
    name = "daily_loss"

    def __call__(self, intent, ctx):
        limit = self.m.limits.for_account(intent.account_id).daily_loss_limit
        if limit is None:
            return self.ok()
        book = ctx.account
        loss = book.daily_loss()
        if loss >= limit and _increases(book, intent):
            return failed(self.name, "risk.daily_loss_limit", f"daily loss {loss:.2f} has reached the limit {limit}")
        return self.ok()


class DrawdownCheck(_Check):
    name = "max_drawdown"

    def __call__(self, intent, ctx):
        limit = self.m.limits.for_account(intent.account_id).max_drawdown
        if limit is None:
            return self.ok()
        book = ctx.account
        dd = book.drawdown()
        if dd >= limit and _increases(book, intent):
            return failed(
                self.name,
                "risk.max_drawdown",
                f"drawdown {dd:.4f} from peak equity {book.peak_equity:.2f} has reached the limit {limit}",
            )
        return self.ok()


class SubmitRateCheck(_Check):
    name = "submit_rate"

    def __call__(self, intent, ctx):
        if intent.action != IntentAction.SUBMIT:
            return self.ok()
        limit = self.m.limits.for_account(intent.account_id).max_submits_per_second
        if limit is None:
            return self.ok()
        sent = ctx.account.rate(ctx.now)
        if sent + 1 > limit:
            return failed(self.name, "risk.submit_rate", f"{sent} orders sent in the last second; limit {limit}/s")
        return self.ok()

    def on_sent(self, intent, ctx):
        if intent.action in (IntentAction.SUBMIT, IntentAction.MODIFY):
            ctx.account.record_sent(intent, ctx.now, modify=intent.action == IntentAction.MODIFY)


class ModifyRateCheck(_Check):
    name = "modify_rate"

    def __call__(self, intent, ctx):
        if intent.action != IntentAction.MODIFY:
            return self.ok()
        limit = self.m.limits.for_account(intent.account_id).max_modifies_per_second
        if limit is None:
            return self.ok()
        sent = ctx.account.rate(ctx.now, modify=True)
        if sent + 1 > limit:
            return failed(self.name, "risk.modify_rate", f"{sent} modifications in the last second; limit {limit}/s")
        return self.ok()


class MaxOpenOrdersCheck(_Check):
    name = "max_open_orders"

    def __call__(self, intent, ctx):
        if intent.action != IntentAction.SUBMIT:
            return self.ok()
        limit = self.m.limits.for_account(intent.account_id).max_open_orders
        if limit is None:
            return self.ok()
        open_count = len(ctx.account.open_orders)
        if open_count + 1 > limit:
            return failed(self.name, "risk.max_open_orders", f"{open_count} orders open; limit {limit}")
        return self.ok()


class DuplicateOrderCheck(_Check):
    name = "duplicate_order"

    def __call__(self, intent, ctx):
        if intent.action != IntentAction.SUBMIT:
            return self.ok()
        book = ctx.account
        if intent.client_order_id in book.open_orders:
            return failed(self.name, "risk.duplicate_order", f"order {intent.client_order_id} is already open")
        window = self.m.limits.for_account(intent.account_id).duplicate_window_ms
        if window:
            last = book.recent_signatures.get(signature(intent))
            if last is not None and ctx.now - last < timedelta(milliseconds=window):
                return failed(
                    self.name,
                    "risk.duplicate_order",
                    f"same {intent.side} {intent.quantity} {intent.symbol} sent "
                    f"{(ctx.now - last).total_seconds() * 1000:.0f} ms ago",
                )
        return self.ok()


class SignalAgeCheck(_Check):
    """The market has moved on since the decision: the latest quote is newer than the intent by
    more than ``max_signal_age`` (a lagging pipeline, a replay, a redelivered backlog)."""

    name = "signal_age"

    def __call__(self, intent, ctx):
        limit = self.m.max_signal_age
        if limit is None or ctx.quote is None or intent.action != IntentAction.SUBMIT:
            return self.ok()
        age = ctx.quote.ts - intent.ts
        if age > limit:
            return failed(
                self.name,
                "risk.stale_signal",
                f"decided at {intent.ts.isoformat()}, {age.total_seconds():.0f} s before the latest quote; "
                f"limit {limit.total_seconds():.0f} s",
            )
        return self.ok()


CHECK_CLASSES: tuple[type[_Check], ...] = (
    TradingStateCheck,
    KillSwitchCheck,
    BreakerCheck,
    MarketHoursCheck,
    MarketDataCheck,
    MaxPositionCheck,
    ExposureCheck,
    NetExposureCheck,
    MarginCheck,
    DailyLossCheck,
    DrawdownCheck,
    SubmitRateCheck,
    ModifyRateCheck,
    MaxOpenOrdersCheck,
    DuplicateOrderCheck,
    SignalAgeCheck,
)


def risk_checks(manager: RiskManager) -> Iterable[PreTradeCheck]:
    """The risk checks bound to ``manager``, in the order the gate runs them."""
    return [cls(manager) for cls in CHECK_CLASSES]
