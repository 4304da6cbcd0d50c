"""Headroom: the largest order an account may still send on one instrument and side before a
risk limit refuses it. Pure (no Django, no clock, no I/O).

The strategy consults it when it sizes an order (``trading.strategy``), so it asks for what the
limits leave instead of sending orders bound to be refused; the risk checks of the gate still
run on every order (defence in depth: a sized order must pass them too). It reads the same
limits (``LimitBook``) and the same account state (``AccountBook``) as the checks in
``trading.risk.manager`` and follows their arithmetic:

- ``risk.max_position`` (per instrument): worst case on the order's side = position + open
  orders on that side + this order; ``|worst| <= max_position_lots``. Opposite orders may never
  fill, so they do not count (as in ``MaxPositionCheck``).
- ``risk.max_gross_exposure`` / ``risk.max_net_exposure`` (account currency): positions + open
  orders at their marks + this order at its price, one formula for the checks and for this
  module (``AccountBook.order_exposure``); an order that leaves the exposure no higher than it
  was passes too (it is reducing). Since an order of no size leaves the exposure where it is,
  every size from the minimum volume up to the headroom passes, not only the headroom itself:
  the strategy may ask for less than the headroom and still be let through.
- ``risk.insufficient_margin``: the order's margin must fit in free margin, unless the order
  only shrinks the position.
- ``risk.max_open_orders``: one more open order must fit.
- ``risk.reduce_only`` / ``risk.trading_halted`` (the account's trading state, read from the
  risk manager's memory as the gate reads it, ``RiskManager.trading_state``): HALTED leaves no
  room; REDUCING leaves room only on the side that shrinks the position (plus open orders, as
  ``TradingStateCheck`` counts it), and at most that position, so a reduce-only account gets
  orders that close what it holds instead of growth orders bound to be refused. The detail says
  why it is REDUCING (``RiskManager.reducing_reason``: the loss limit and its figure).
- ``risk.breaker_open`` while the account's breaker is half-open with its one trial order out
  (``RiskManager.breaker_trial_reason``): no room, the trial named, until the trial resolves;
  not HALTED, but nothing else may go (until 2026-12-07 every signal meanwhile was sized and
  refused by the gate's ``BreakerCheck``).

The limits the sizing cannot change (kill switch on a symbol or algorithm, message rates,
duplicates, stale signals, market hours) are left to the checks: their refusals explain
something about the state of the firm, not about the size.

How: each limit gives an upper bound in lots, solved in closed form; the smallest bound (and the
instrument's maximum volume) is rounded DOWN onto the volume grid, then that size is run
through the very check objects the gate runs. Rounding at a boundary (a limit landing exactly
on the grid, a currency conversion that does not divide exactly) can only make the verified
size smaller by a grid step or two, never let a breaching size through.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from trading.gate import GateContext
from trading.intents import BUY, SELL, OrderIntent
from trading.risk.manager import (
    ExposureCheck,
    MarginCheck,
    MaxPositionCheck,
    NetExposureCheck,
    RiskManager,
    TradingState,
    TradingStateCheck,
)
from trading.risk.state import AccountBook

ZERO = Decimal(0)
VERIFY_STEPS = 3  # grid steps tried below the closed-form size before giving up (rounding only)
PROBE_ID = "headroom-probe"


@dataclass(frozen=True, slots=True)
class Headroom:
    """``lots``: the largest size on the instrument's volume grid the sizing limits let through
    now (0: nothing fits, not even the minimum volume). ``code``: the reason code of the limit
    that binds ("" when only the instrument's maximum volume does). ``detail``: its figures."""

    lots: Decimal
    code: str = ""
    detail: str = ""

    @property
    def fits(self) -> bool:
        return self.lots > 0


def order_headroom(
    manager: RiskManager, *, account_id: int, symbol: str, side: str, price: Decimal, at: datetime
) -> Headroom:
    """Headroom of ``account_id`` for a ``side`` order on ``symbol`` priced at ``price`` (the
    reference price the order will carry), decided at ``at`` (event time).

    Preconditions: the instrument and the account are loaded in ``manager``. Reads only, but
    for rolling the account's day to ``at`` (what the gate's context does a moment later for the
    same time, ``RiskManager.context``), so the daily loss behind REDUCING is the gate's; the
    same state given to the gate a moment later gives the same answer (RTS 6 Art. 15 limits)."""
    if side not in (BUY, SELL):
        raise ValueError(f"side must be BUY or SELL, got {side!r}")
    spec = manager.specs[symbol]
    book = manager.account(account_id)
    book.roll_day(at)
    state = manager.trading_state(account_id, at)
    if state is TradingState.HALTED:
        why = manager.halt_reason(account_id, at)
        return Headroom(ZERO, "risk.trading_halted", f"account {account_id} is HALTED ({why}): no new orders")
    trial = manager.breaker_trial_reason(account_id, at)
    if trial:
        return Headroom(ZERO, "risk.breaker_open", trial)
    account_limits = manager.limits.for_account(account_id)

    limit = account_limits.max_open_orders
    if limit is not None and len(book.open_orders) + 1 > limit:
        return Headroom(ZERO, "risk.max_open_orders", f"{len(book.open_orders)} orders open; limit {limit}")

    bounds = [(spec.max_volume, "", f"{symbol}: instrument maximum volume {spec.max_volume}")]
    if state is TradingState.REDUCING:
        why = manager.reducing_reason(account_id)  # REDUCING is a breached loss limit: it names it
        reducing = _reduce_only_bound(book, account_id=account_id, symbol=symbol, side=side, why=why)
        if reducing[0] <= 0:
            return Headroom(ZERO, "risk.reduce_only", reducing[2])
        bounds.append(reducing)
    bounds += _position_bound(manager, book, account_id=account_id, symbol=symbol, side=side)
    bounds += _exposure_bounds(manager, book, account_id=account_id, symbol=symbol, side=side, price=price)
    bounds += _margin_bound(manager, book, account_id=account_id, symbol=symbol, side=side, price=price)
    lots, code, detail = min(bounds, key=lambda b: (b[0], b[1] == ""))  # a tie names the risk limit

    size = spec.round_volume_down(max(lots, ZERO))
    probe = _Probe(manager, account_id=account_id, symbol=symbol, side=side, price=price, at=at, state=state)
    for attempt in range(VERIFY_STEPS + 1):
        if size <= 0:
            return Headroom(ZERO, code, f"{detail}; below the minimum volume {spec.min_volume}")
        failure = probe.failure(size)
        if failure is None:
            up = size + spec.volume_step
            if attempt == 0 and up <= spec.max_volume and probe.failure(up) is None:
                size = up  # a bound landing exactly on the grid came out of a division a hair low
            return Headroom(size, code, detail)
        code, detail = failure  # the bound came out a hair high (rounding): step down the grid
        size = spec.round_volume_down(size - spec.volume_step)
    return Headroom(ZERO, code, f"{detail} (no size within {VERIFY_STEPS} volume steps of the bound passes)")


# ---------------------------------------------------------------- bounds, in lots, per limit


def _reduce_only_bound(book: AccountBook, *, account_id, symbol, side, why=""):
    """REDUCING: an order passes ``TradingStateCheck`` only when it shrinks position + open
    orders (all sides) without flipping it, so the room is that amount on the opposite side."""
    position = book.position(symbol)
    current = position + book.pending(symbol)
    sign = 1 if side == BUY else -1
    held = f"{symbol}: position {position}, with open orders {current}"
    state = f"account {account_id} is REDUCING" + (f" ({why})" if why else "")
    if current == 0 or current * sign > 0:
        grows = "open" if current == 0 else "grow"
        return (ZERO, "risk.reduce_only", f"{state}; {held}: a {side} would {grows} it")
    room = abs(current)
    return (room, "risk.reduce_only", f"{state}; {held}: at most {room} lots to {side}")


def _position_bound(manager, book: AccountBook, *, account_id, symbol, side):
    limit = manager.limits.for_instrument(account_id, symbol).max_position_lots
    if limit is None:
        return []
    position = book.position(symbol)
    pending = book.pending(symbol, side=side)
    sign = 1 if side == BUY else -1
    # BUY: position + pending buys + q <= limit; SELL: position + pending sells - q >= -limit.
    room = limit - sign * (position + pending)
    return [
        (
            room,
            "risk.max_position",
            f"{symbol}: position {position}, open {side} orders {abs(pending)}: room for {max(room, ZERO)} "
            f"lots to {side} within the {limit}-lot limit",
        )
    ]


def _exposure_bounds(manager, book: AccountBook, *, account_id, symbol, side, price):
    limits = manager.limits.for_account(account_id)
    if limits.max_gross_exposure is None and limits.max_net_exposure is None:
        return []
    # The checks' own formula (``AccountBook.order_exposure``): the others and what is held or
    # open on this instrument at their marks, the order's lots at its price; linear in q.
    exposure = book.order_exposure(symbol, price)
    unit = exposure.unit  # one lot at the order's price, account currency
    if unit <= 0:
        return []  # no price: the order adds no exposure the checks could count
    sign = 1 if side == BUY else -1
    bounds = []
    if limits.max_gross_exposure is not None:
        # other + |own + unit x sign q| <= ceiling, with ceiling >= other + |own| (the gross now):
        # the order may take the instrument's value to +-reach, and q = 0 always fits.
        gross_before = exposure.gross()
        ceiling = max(limits.max_gross_exposure, gross_before)
        reach = (ceiling - exposure.other_gross) / unit  # |own / unit + sign q| may reach this many lots
        room = reach - sign * exposure.own_value / unit
        bounds.append(
            (
                room,
                "risk.max_gross_exposure",
                f"gross exposure {gross_before:.2f} leaves {max(room, ZERO):.2f} lots of {symbol} "
                f"within the limit {limits.max_gross_exposure}",
            )
        )
    if limits.max_net_exposure is not None:
        # |net + unit x sign q| <= ceiling, with ceiling >= |net| (the net now): only the side the
        # order moves the net toward can bind, and q = 0 always fits.
        net_before = exposure.net()
        ceiling = max(limits.max_net_exposure, net_before)
        room = (ceiling - sign * exposure.signed_net()) / unit
        bounds.append(
            (
                room,
                "risk.max_net_exposure",
                f"net exposure {net_before:.2f} leaves {max(room, ZERO):.2f} lots of {symbol} "
                f"within the limit {limits.max_net_exposure}",
            )
        )
    return bounds


def _margin_bound(manager, book: AccountBook, *, account_id, symbol, side, price):
    if not manager.limits.for_account(account_id).check_margin:
        return []
    margin_rate = manager.specs[symbol].margin_rate
    per_lot = abs(book.notional(symbol, Decimal(1), price)) * margin_rate
    if per_lot <= 0:
        return []
    sign = 1 if side == BUY else -1
    current = book.position(symbol) + book.pending(symbol)
    reducing = abs(current) if current * sign < 0 else ZERO  # shrinking the position needs no margin
    free = book.free_margin()
    room = max(reducing, free / per_lot if free > 0 else ZERO)
    return [
        (
            room,
            "risk.insufficient_margin",
            f"free margin {free:.2f} covers {max(free, ZERO) / per_lot:.2f} lots of {symbol} at {per_lot:.2f} per lot",
        )
    ]


# ---------------------------------------------------------------- verification


class _Probe:
    """Runs a candidate size through the gate's own sizing checks (same objects, same state)."""

    def __init__(self, manager: RiskManager, *, account_id, symbol, side, price, at, state):
        sizing = (TradingStateCheck, MaxPositionCheck, ExposureCheck, NetExposureCheck, MarginCheck)
        self.checks = [cls(manager) for cls in sizing]
        self.context = GateContext(
            now=at,
            instrument=manager.specs[symbol],
            quote=manager.quotes.get(symbol),
            trading_state=state,
            account=manager.account(account_id),
        )
        self.fields = {"account_id": account_id, "symbol": symbol, "side": side, "reference_price": price, "ts": at}

    def failure(self, lots: Decimal) -> tuple[str, str] | None:
        intent = OrderIntent(client_order_id=PROBE_ID, quantity=lots, **self.fields)
        for check in self.checks:
            result = check(intent, self.context)
            if not result.passed:
                return result.code, result.detail
        return None
