"""The risk manager's in-memory view of one account: positions, marks, open orders, equity.

Pure: no Django, no clock (every method that needs time takes ``now``). The execution worker
loads it from the system of record at start, then keeps it current from the fills, order
updates and ticks it handles, so a pre-trade decision never waits on the database.

Equity = cash balance at load + realised P&L since load + unrealised P&L marked to the latest
quote. Peak equity (for drawdown) and the equity at the start of the UTC day (for the daily
loss limit) are tracked from it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from trading.intents import BUY, InstrumentSpec, OrderIntent
from trading.position_math import PositionState, apply_fill, unrealised_pnl

ZERO = Decimal(0)
ONE_SECOND = timedelta(seconds=1)


@dataclass(slots=True)
class OpenOrder:
    client_order_id: str
    symbol: str
    side: str
    remaining: Decimal
    algo_id: str = ""
    trader_id: int | None = None

    @property
    def signed_remaining(self) -> Decimal:
        return self.remaining if self.side == BUY else -self.remaining


def is_reducing(current: Decimal, signed_quantity: Decimal) -> bool:
    """True if the trade only shrinks an existing position (never opens, grows or flips it)."""
    if current == 0 or signed_quantity == 0:
        return False
    return (current > 0) != (signed_quantity > 0) and abs(signed_quantity) <= abs(current)


class AccountBook:
    def __init__(self, *, account_id: int, balance: Decimal, currency: str = "USD", now: datetime | None = None):
        self.account_id = account_id
        self.currency = currency
        # Peak equity is tracked lazily (``_peak_*``): set these before anything reads equity.
        self._peak_due = False  # a mark since the last flush may have raised the peak
        self._peak_best: Decimal | None = None  # the single position's most favourable mark since
        self._peak_shape: tuple | None | bool = False  # ``_peak_shape_of``; False: to look at again
        self._balance = Decimal(balance)
        self._realised = ZERO
        self.specs: dict[str, InstrumentSpec] = {}
        self.positions: dict[str, PositionState] = {}
        self.marks: dict[str, Decimal] = {}
        self.open_orders: dict[str, OpenOrder] = {}
        self.submit_times: deque[datetime] = deque()
        self.modify_times: deque[datetime] = deque()
        self.recent_signatures: dict[tuple, datetime] = {}
        # Derived figures (unrealised P&L, margin, lots per symbol) cached until the next change:
        # the gate reads them several times per decision.
        self._cache: dict = {}
        equity = self.equity()
        self._peak = equity
        self.day: date | None = now.date() if now else None
        self.day_start_equity = equity

    # ------------------------------------------------------------ lazy peak equity
    #
    # The peak equity is the maximum of the equity after every change (fill, load, mark). A mark
    # changes the equity through the marked symbol's position only; while the account holds one
    # position (or none) priced in the account currency, that equity is monotonic in the mark, so
    # the maximum over a run of marks is the equity at the most favourable of them. Marks keep
    # only that mark (``_peak_best``); the peak is brought up to date ("flushed") before it is
    # read and before anything else that moves the equity changes (a fill, a load, the balance,
    # the realised P&L, a spec). Same figures, same first-reached value, as tracking every mark.

    @property
    def balance(self) -> Decimal:
        return self._balance

    @balance.setter
    def balance(self, value: Decimal) -> None:
        if self._peak_due:
            self._peak_flush()
        self._balance = value

    @property
    def realised_since_load(self) -> Decimal:
        return self._realised

    @realised_since_load.setter
    def realised_since_load(self, value: Decimal) -> None:
        if self._peak_due:
            self._peak_flush()
        self._realised = value

    @property
    def peak_equity(self) -> Decimal:
        if self._peak_due:
            self._peak_flush()
        return self._peak

    @peak_equity.setter
    def peak_equity(self, value: Decimal) -> None:
        if self._peak_due:
            self._peak_flush()
        self._peak = value

    def _peak_flush(self) -> None:
        """Apply the marks taken since the last flush to the peak (see above)."""
        self._peak_due = False
        best, self._peak_best = self._peak_best, None
        shape = self._peak_shape
        if shape:  # one position: the equity at its most favourable mark, as ``equity()`` adds it
            symbol, _, state, spec = shape
            pnl = unrealised_pnl(state, mark_price=best, contract_size=spec.contract_size)
            equity = self._balance + self._realised + (ZERO + self.to_account_currency(pnl, spec.quote_currency))
        else:  # no position: the equity does not depend on marks
            equity = self.equity()
        if equity > self._peak:
            self._peak = equity

    def _peak_shape_of(self) -> tuple | None:
        """``()`` without a position; (symbol, +1/-1, state, spec) with one in the account
        currency; None otherwise (every mark then tracks the peak at once)."""
        held = [(symbol, state) for symbol, state in self.positions.items() if state.net_quantity != 0]
        if not held:
            return ()
        if len(held) > 1:
            return None
        symbol, state = held[0]
        spec = self.specs.get(symbol)
        if spec is None or spec.quote_currency != self.currency or spec.contract_size <= 0:
            return None
        return (symbol, 1 if state.net_quantity > 0 else -1, state, spec)

    def _peak_reshape(self) -> None:
        """Positions or specs are about to change: flush, and look at the shape afresh after."""
        if self._peak_due:
            self._peak_flush()
        self._peak_shape = False

    # ------------------------------------------------------------ state updates

    def add_instrument(self, spec: InstrumentSpec) -> None:
        self._peak_reshape()
        self.specs[spec.symbol] = spec
        self._cache.clear()

    def clear_state(self) -> None:
        """Forget positions and open orders (before reloading them from the system of record)."""
        self._peak_reshape()
        self.positions.clear()
        self.open_orders.clear()
        self._cache.clear()

    def load_position(self, symbol: str, state: PositionState, mark: Decimal | None = None) -> None:
        """Set a position from the system of record (start-up, reconciliation)."""
        self._peak_reshape()
        self._cache.clear()
        self.positions[symbol] = PositionState(state.net_quantity, state.average_price, ZERO)
        if mark is not None:
            self.marks[symbol] = mark
        self._track_equity()

    def apply_fill(self, symbol: str, signed_quantity: Decimal, price: Decimal, fee: Decimal = ZERO) -> PositionState:
        """Apply one fill to the position (the same arithmetic as the order path, ``trading.orders``)."""
        self._peak_reshape()
        self._cache.clear()
        spec = self.specs[symbol]
        before = self.positions.get(symbol, PositionState())
        after = apply_fill(
            before, signed_quantity=signed_quantity, price=price, contract_size=spec.contract_size, fee=fee
        )
        self.realised_since_load += self.to_account_currency(
            after.realised_pnl - before.realised_pnl, spec.quote_currency
        )
        self.positions[symbol] = after
        self.marks.setdefault(symbol, price)
        self._track_equity()
        return after

    def mark(self, symbol: str, price: Decimal, now: datetime | None = None) -> None:
        self._cache.clear()
        self.marks[symbol] = price
        if now is not None and self.day != now.date():
            self.roll_day(now)
        shape = self._peak_shape
        if shape is False:
            shape = self._peak_shape = self._peak_shape_of()
        if shape is None:  # several positions, or a converted one: track at once
            self._track_equity()
        elif not shape:  # no position: the equity only moves if the balance did; flush on read
            self._peak_due = True
        elif symbol == shape[0]:  # the position's own symbol: keep the most favourable mark
            best = self._peak_best
            if best is None or (price > best if shape[1] > 0 else price < best):
                self._peak_best = price
            self._peak_due = True
        elif not self._peak_due:  # another symbol: the equity is as it was at the last change
            self._peak_best = self.marks.get(shape[0], shape[2].average_price)
            self._peak_due = True

    def restore(self, *, peak_equity: Decimal, day: date, day_start_equity: Decimal) -> None:
        """Take back the figures a restart would otherwise lose (from the account's last risk
        snapshot): the peak equity drawdown is measured from, and the day's starting equity."""
        self.peak_equity = max(self.peak_equity, Decimal(peak_equity))
        self.day = day
        self.day_start_equity = Decimal(day_start_equity)

    def peak_rebase(self) -> tuple[Decimal, Decimal]:
        """A risk manager acknowledged the drawdown (``RiskManager.peak_equity_rebase``): the
        peak equity drawdown is measured from becomes the equity now, so the drawdown is 0 and a
        new one counts from here. Returns (peak before, peak after). The day's starting equity is
        not touched: the daily loss is the day's, and ends with the day."""
        before = self.peak_equity  # brought up to date with the marks first
        self.peak_equity = after = self.equity()
        return before, after

    def roll_day(self, now: datetime) -> None:
        today = now.date()
        if self.day != today:
            self.day = today
            self.day_start_equity = self.equity()

    def order_opened(self, order: OpenOrder) -> None:
        self._cache.clear()
        self.open_orders[order.client_order_id] = order

    def order_filled(self, client_order_id: str, quantity: Decimal) -> None:
        order = self.open_orders.get(client_order_id)
        if order is None:
            return
        self._cache.clear()
        order.remaining -= quantity
        if order.remaining <= 0:
            del self.open_orders[client_order_id]

    def order_closed(self, client_order_id: str) -> None:
        if self.open_orders.pop(client_order_id, None) is not None:
            self._cache.clear()

    def record_sent(self, intent: OrderIntent, now: datetime, *, modify: bool = False) -> None:
        """RTS 6 Art. 15(2): the order counts toward the limits the moment it is sent."""
        (self.modify_times if modify else self.submit_times).append(now)
        self.recent_signatures[signature(intent)] = now
        if len(self.recent_signatures) > 4096:  # bound memory: drop entries older than a minute
            cutoff = now - timedelta(minutes=1)
            self.recent_signatures = {k: t for k, t in self.recent_signatures.items() if t >= cutoff}

    # ------------------------------------------------------------ derived figures

    def to_account_currency(self, amount: Decimal, currency: str) -> Decimal:
        """Convert through a quoted pair (``CCYACC`` or ``ACCCCY``) if one is marked; else 1:1."""
        if currency == self.currency or amount == 0:
            return amount
        direct = self.marks.get(currency + self.currency)
        if direct:
            return amount * direct
        inverse = self.marks.get(self.currency + currency)
        if inverse:
            return amount / inverse
        return amount

    def position(self, symbol: str) -> Decimal:
        state = self.positions.get(symbol)
        return state.net_quantity if state else ZERO

    def pending(self, symbol: str, side: str | None = None) -> Decimal:
        """Signed lots of open orders on ``symbol`` not yet filled (only ``side``'s when given)."""
        return sum(
            (o.signed_remaining for o in self.open_orders.values() if o.symbol == symbol and side in (None, o.side)),
            ZERO,
        )

    def unrealised(self) -> Decimal:
        hit = self._cache.get("unrealised")
        if hit is not None:
            return hit
        total = ZERO
        for symbol, state in self.positions.items():
            if state.net_quantity == 0:
                continue
            spec = self.specs[symbol]
            mark = self.marks.get(symbol, state.average_price)
            pnl = unrealised_pnl(state, mark_price=mark, contract_size=spec.contract_size)
            total += self.to_account_currency(pnl, spec.quote_currency)
        self._cache["unrealised"] = total
        return total

    def equity(self) -> Decimal:
        return self.balance + self.realised_since_load + self.unrealised()

    def notional(self, symbol: str, signed_lots: Decimal, price: Decimal | None = None) -> Decimal:
        spec = self.specs[symbol]
        px = price if price is not None else self.marks.get(symbol, ZERO)
        return self.to_account_currency(signed_lots * spec.contract_size * px, spec.quote_currency)

    def exposures(self) -> tuple[Decimal, Decimal]:
        """(gross, net) exposure in the account currency over positions plus pending orders, each
        instrument at its mark (net as an absolute value)."""
        hit = self._cache.get("exposures")
        if hit is None:
            gross = net = ZERO
            for symbol, qty in self._lots().items():
                if qty:
                    value = self.notional(symbol, qty)
                    gross += abs(value)
                    net += value
            hit = self._cache["exposures"] = (gross, abs(net))
        return hit

    def order_exposure(self, symbol: str, price: Decimal | None) -> OrderExposure:
        """The account's exposure as an order on ``symbol`` at ``price`` sees it: THE formula the
        exposure checks (``trading.risk.manager``) and the headroom (``trading.risk.headroom``)
        both use, so the size the sizing allows is the size the checks pass.

        Everything held or open is valued at its mark (the instrument of the order at ``price``
        only when it has no mark yet); the order's own lots at ``price`` (its mark without one).
        An order of no size therefore leaves the exposure exactly where it was, and the
        exposure is linear in the order's size on either side of zero."""
        key = ("order_exposure", symbol, price)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        mark = self.marks.get(symbol) or price or ZERO
        px = price or mark
        other_gross = other_net = ZERO
        own_value = ZERO
        for other, qty in self._lots().items():
            if not qty:
                continue
            if other == symbol:
                own_value = self.notional(symbol, qty, mark)
                continue
            value = self.notional(other, qty)
            other_gross += abs(value)
            other_net += value
        hit = self._cache[key] = OrderExposure(
            other_gross=other_gross,
            other_net=other_net,
            own_value=own_value,
            unit=self.notional(symbol, Decimal(1), px),
        )
        return hit

    def lots_by_symbol(self) -> dict[str, Decimal]:
        """Signed lots per symbol, positions plus open orders (a copy: the caller may change it)."""
        return dict(self._lots())

    def _lots(self) -> dict[str, Decimal]:
        """Signed lots per symbol: positions plus open orders (cached until the next change)."""
        lots = self._cache.get("lots")
        if lots is None:
            lots = {symbol: state.net_quantity for symbol, state in self.positions.items()}
            for order in self.open_orders.values():
                lots[order.symbol] = lots.get(order.symbol, ZERO) + order.signed_remaining
            self._cache["lots"] = lots
        return lots

    def used_margin(self) -> Decimal:
        hit = self._cache.get("used_margin")
        if hit is not None:
            return hit
        total = ZERO
        for symbol, state in self.positions.items():
            if state.net_quantity:
                total += abs(self.notional(symbol, state.net_quantity)) * self.specs[symbol].margin_rate
        for order in self.open_orders.values():
            total += abs(self.notional(order.symbol, order.remaining)) * self.specs[order.symbol].margin_rate
        self._cache["used_margin"] = total
        return total

    def free_margin(self) -> Decimal:
        return self.equity() - self.used_margin()

    def drawdown(self) -> Decimal:
        """Fraction below peak equity (0 at a new high)."""
        if self.peak_equity <= 0:
            return ZERO
        return max(ZERO, (self.peak_equity - self.equity()) / self.peak_equity)

    def daily_loss(self) -> Decimal:
        """Loss since the start of the UTC day, as a positive number (0 when up on the day)."""
        return max(ZERO, self.day_start_equity - self.equity())

    def rate(self, now: datetime, *, modify: bool = False) -> int:
        """Messages of that kind sent in the last second (sliding window)."""
        window = self.modify_times if modify else self.submit_times
        cutoff = now - ONE_SECOND
        while window and window[0] <= cutoff:
            window.popleft()
        return len(window)

    def _track_equity(self) -> None:
        if self._peak_due:
            self._peak_flush()
        equity = self.equity()
        if equity > self._peak:
            self._peak = equity


@dataclass(frozen=True, slots=True)
class OrderExposure:
    """Exposure (account currency) around one order: the other instruments' gross and signed net,
    the value of what is held or open on the order's instrument, and the value of one lot of the
    order. ``gross(q)`` / ``net(q)``: the account's exposure with the order's ``q`` signed lots
    added (``q = 0``: as it is now)."""

    other_gross: Decimal
    other_net: Decimal
    own_value: Decimal
    unit: Decimal

    def gross(self, signed_lots: Decimal = ZERO) -> Decimal:
        return self.other_gross + abs(self.own_value + self.unit * signed_lots)

    def signed_net(self, signed_lots: Decimal = ZERO) -> Decimal:
        return self.other_net + self.own_value + self.unit * signed_lots

    def net(self, signed_lots: Decimal = ZERO) -> Decimal:
        return abs(self.signed_net(signed_lots))


def signature(intent: OrderIntent) -> tuple:
    """What makes two orders duplicates of each other (vnpy's duplicate-order guard)."""
    return (intent.symbol, intent.side, intent.quantity, intent.order_type, intent.limit_price)
