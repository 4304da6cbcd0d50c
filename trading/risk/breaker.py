"""The trading circuit breaker: stops new orders when the broker or the P&L says something is
wrong with the account's conduct, and lets one trial order through after a cool-down.

Built on the generic ``tradeops.breaker.CircuitBreaker`` (closed / open / half-open), with the
triggers that are specific to trading:

- ``failure_threshold`` consecutive broker errors or rejects (``record_failure``);
- realised losses since the breaker last closed beyond ``loss_threshold`` (``record_pnl``);
- an operator or the risk manager (``trip``).

Stale market data is NOT a trigger: it is a property of one instrument's feed, not of the
account, so the risk manager refuses orders on that instrument only (``risk.stale_market_data``,
``trading.risk.manager.MarketDataCheck``); until 2026-12-06 an order on a symbol without quotes
opened this breaker and halted every order of the worker's accounts.

After ``cool_down`` it half-opens: exactly ONE trial order may be sent (``allow`` is true until
``on_trial`` marks the trial as in flight); the trial's outcome closes it (``record_success``)
or opens it again (``record_failure``). The cool-down is over when ``cool_down`` has passed on
EITHER clock since the breaker opened: event time (``now``, so a replay behaves as live did and
a fast replay is not held up by the wall clock) or the monotonic wall clock (``wall_clock``,
so a cool-down ends even when event time stops: a replay that ended, a feed that went quiet, a
market closed for the weekend). On event time alone a breaker opened after a replay's last event
never closed.

Pure: event time comes in as ``now`` (aware datetime) on every call, or from the injected
``clock`` when ``now`` is omitted; the wall clock is the injected ``wall_clock`` (monotonic
seconds). State changes go to ``listeners`` (``(breaker, old, new, reason)``), where the runner
publishes an alert and writes the audit record. So does an extension: a trip of a breaker that is
open already (its cool-down running, or over but no trial sent yet) restarts its cool-down from
now, and the listeners hear it as ``(open, open, reason)`` (``trading_breaker.extended`` in the
audit trail): until 2026-12-06 it was heard by no one, and the trail, the console and a restart's
restore all counted the cool-down from the first opening while the breaker stayed open longer.

One breaker per trading account (``BreakerBook``): the triggers are the account's conduct (its
broker's refusals, its losses), so they halt that account only. Until 2026-12-06 a worker trading
several accounts held one breaker, and one account's five refusals halted them all. Each breaker
names its account (``account_id``): its listeners' records, and its gauge
``tradeops_breaker_state{breaker="trading:<account id>"}``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from decimal import Decimal

from tradeops.breaker import BreakerState, CircuitBreaker

Listener = Callable[["TradingBreaker", BreakerState, BreakerState, str], None]

BREAKER_OBJECT_TYPE = "trading_breaker"  # the audit trail's object type of a breaker's moves


def breaker_object_id(*, source: str, account: int | str | None) -> str:
    """The audit trail's object id of execution worker ``source``'s trading breaker of
    ``account``: ``<source>:<account id>``, or ``<source>`` alone for a breaker that guards the
    whole worker (every breaker record before 2026-12-06). The one place that says it: the
    breaker's records are written (``trading.controls.services``), read back by a restarted
    worker (``trading.controls.selectors.trading_breakers_last_moves``) and shown on the console
    (``trading.console.selectors``) under it."""
    account = "" if account is None else str(account)
    return f"{source}:{account}" if account else source


def breaker_object_source(object_id: str, *, account: int | str | None) -> str:
    """The worker (``source``) of a breaker record's object id, given the account the record
    names (its ``after.account``; empty or None for a worker-wide breaker): the inverse of
    ``breaker_object_id``. A worker name may itself hold a colon, so the id is not split on one."""
    account = "" if account is None else str(account)
    return object_id.removesuffix(f":{account}") if account else object_id


class TradingBreaker:
    def __init__(
        self,
        *,
        account_id: int | None = None,
        failure_threshold: int = 5,
        cool_down: timedelta = timedelta(seconds=30),
        loss_threshold: Decimal | None = None,
        clock: Callable[[], datetime] | None = None,
        wall_clock: Callable[[], float] = time.monotonic,
        listeners: Iterable[Listener] = (),
    ):
        if cool_down <= timedelta(0):
            raise ValueError("cool_down must be positive")
        self.account_id = account_id
        self._clock = clock
        self._wall = wall_clock
        self.cool_down = cool_down
        self._event_now: datetime | None = None
        self._opened_event: datetime | None = None  # when it last opened, event time (None: restored)
        self._opened_wall: float | None = None  # and wall clock (None: never opened)
        # The inner breaker's clock is a flag, not a time: its ``_opened_at`` while the cool-down
        # runs, ``_opened_at + reset_timeout`` once it is over on either of our two clocks.
        self._inner_seconds = 0.0
        self._inner = CircuitBreaker(
            "trading" if account_id is None else f"trading:{account_id}",
            fail_max=failure_threshold,
            reset_timeout=cool_down.total_seconds(),
            clock=lambda: self._inner_seconds,
            listeners=[self._on_inner_change],
        )
        self.loss_threshold = loss_threshold
        self.listeners: list[Listener] = list(listeners)
        self.loss_since_close = Decimal(0)
        self.trial_in_flight = False
        self.trial_order_id = ""  # the client order id of the trial in flight ("" when none, or not told)
        self.reason = ""
        self._pending_reason = ""

    # ------------------------------------------------------------ time

    def _tick(self, now: datetime | None) -> None:
        if now is None:
            if self._clock is None:
                raise ValueError("TradingBreaker needs `now` or an injected clock")
            now = self._clock()
        self._event_now = now
        inner = self._inner
        if inner._state is BreakerState.OPEN and self.cool_down_over():
            self._inner_seconds = inner._opened_at + inner.reset_timeout
        else:
            self._inner_seconds = inner._opened_at if inner._state is BreakerState.OPEN else 0.0

    def _mark_opened(self) -> None:
        self._opened_event = self._event_now
        self._opened_wall = self._wall()
        self._inner_seconds = self._inner._opened_at  # the cool-down starts again

    def cool_down_over(self) -> bool:
        """Has ``cool_down`` passed since the breaker opened, in event time or on the wall clock?
        (As of the last ``now`` given; meaningless while closed.)"""
        if self._opened_wall is None:
            return True
        if (
            self._opened_event is not None
            and self._event_now is not None
            and self._event_now - self._opened_event >= self.cool_down
        ):
            return True
        return self._wall() - self._opened_wall >= self.cool_down.total_seconds()

    def _on_inner_change(self, _inner, old: BreakerState, new: BreakerState) -> None:
        if new is BreakerState.CLOSED:
            self.loss_since_close = Decimal(0)
            self.reason = ""
        elif new is BreakerState.OPEN:
            self.reason = self._pending_reason or "consecutive_failures"
            self._mark_opened()
        if new is not BreakerState.HALF_OPEN:
            self.trial_in_flight = False
            self.trial_order_id = ""
        # A closing carries no reason of its own, except a trial resolved late (``trial_resolve``).
        told = self._pending_reason if new is BreakerState.CLOSED else self.reason
        for listener in self.listeners:
            listener(self, old, new, told)

    # ------------------------------------------------------------ queries

    def state(self, now: datetime | None = None) -> BreakerState:
        self._tick(now)
        return self._inner.state

    def allow(self, now: datetime | None = None) -> bool:
        """May an order be sent now? Closed: yes. Open: no. Half-open: only if no trial is out."""
        state = self.state(now)
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN:
            return not self.trial_in_flight
        return False

    @property
    def consecutive_failures(self) -> int:
        return self._inner.failures

    # ------------------------------------------------------------ events

    def on_trial(self, now: datetime | None = None, *, order_id: str = "") -> None:
        """An order is being sent. In half-open it is the one trial (``order_id``, its client
        order id, is kept to name it: ``trial_order_id``); nothing else goes until it resolves."""
        self._tick(now)
        if self._inner.state is BreakerState.HALF_OPEN:
            self._inner.before_call()  # moves the inner breaker from expired-open to half-open
            self.trial_in_flight = True
            self.trial_order_id = order_id

    def trial_out(self, now: datetime | None = None) -> bool:
        """Half-open with its one trial order in flight: nothing else may go until it resolves
        (``allow`` is false), though the breaker is not OPEN."""
        return self.state(now) is BreakerState.HALF_OPEN and self.trial_in_flight

    def record_success(self, now: datetime | None = None) -> None:
        """The broker accepted an order (filled or placed)."""
        self._tick(now)
        self._inner.record_success()

    def record_failure(self, reason: str = "broker_error", now: datetime | None = None) -> None:
        """A broker error, timeout or reject."""
        self._tick(now)
        self._pending_reason = f"consecutive_failures:{reason}"
        if self._inner.state is BreakerState.HALF_OPEN:
            self._inner.before_call()
        self._inner.record_failure()
        self._pending_reason = ""

    def trial_resolve(self, order_id: str, *, succeeded: bool, reason: str, now: datetime | None = None) -> bool:
        """The outcome of trial order ``order_id``, learnt late: its write failed after the broker
        answered, so ``record_success``/``record_failure`` never came, and reconciliation has since
        settled the order with the broker. Resolves the trial as its outcome would have: success
        closes the breaker, failure opens it again (``reason`` goes to the listeners, so the
        change is recorded like any other). Does nothing, and returns False, unless the breaker is
        half-open with exactly that trial out: one that moved on since (tripped, restored) is left
        as it is. Returns True when it resolved the trial."""
        if not order_id or not self.trial_out(now) or self.trial_order_id != order_id:
            return False
        if not succeeded:
            self.record_failure(reason, now=now)
            return True
        self._pending_reason = reason
        try:
            self._inner.record_success()
        finally:
            self._pending_reason = ""
        return True

    def record_pnl(self, realised: Decimal, now: datetime | None = None) -> None:
        """Realised P&L of a fill (negative is a loss). Opens past ``loss_threshold``."""
        self._tick(now)
        self.loss_since_close -= realised
        breached = self.loss_threshold is not None and self.loss_since_close > self.loss_threshold
        if breached and self._inner.state is not BreakerState.OPEN:
            self.trip(f"loss_threshold:{self.loss_since_close}>{self.loss_threshold}", now=now)

    def trip(self, reason: str, now: datetime | None = None) -> None:
        """Open now (a trigger above, an operator, or the risk manager). Already open: the
        cool-down starts again from now, with ``reason``, and the listeners hear the extension
        as ``(open, open, reason)``."""
        self._tick(now)
        self._pending_reason = reason
        already_open = self._inner._state is BreakerState.OPEN
        if already_open:
            self.reason = reason
        self._inner.force_open()
        self._pending_reason = ""
        if already_open:  # no state change, but the cool-down restarts: an extension, told as (open, open)
            self._mark_opened()
            for listener in self.listeners:
                listener(self, BreakerState.OPEN, BreakerState.OPEN, self.reason)

    def reset(self, now: datetime | None = None) -> None:
        self._tick(now)
        self._inner.reset()

    def restore(self, *, reason: str, open_for: timedelta | None, now: datetime | None = None) -> None:
        """Start open as the worker's previous process left it (a restart): opened ``open_for``
        ago in real time (wall clock: the time between the opening's record and now), or with
        its cool-down over when ``open_for`` is None (it was half-open: one trial order may go).
        Once ``open_for`` reaches ``cool_down`` it half-opens as it would have. Only the wall
        clock counts this cool-down: the opening's event time and this process's are not on one
        clock (a replay started again; the wall clock read as event time before its first
        event), so a replay is held by up to ``cool_down`` of real time, never let through early.
        Precondition: closed (a breaker is restored once, at start-up, before any order). No
        listener is told: the caller records the restore (``trading_breaker.restored``), which
        raises no second alert and engages no second kill switch."""
        self._tick(now)
        if self._inner._state is not BreakerState.CLOSED:
            raise ValueError(f"restore: account {self.account_id}'s breaker is {self._inner._state}, not closed")
        waited = self.cool_down if open_for is None else max(open_for, timedelta(0))
        self.reason = reason
        self.trial_in_flight = False
        self.trial_order_id = ""
        self._inner.restore_open()
        self._opened_event = None
        self._opened_wall = self._wall() - waited.total_seconds()
        self._tick(now)

    def __repr__(self) -> str:
        return f"<TradingBreaker account={self.account_id} {self._inner._state} reason={self.reason!r}>"


class BreakerBook:
    """The trading breakers of a worker, one per account (keyed by account id), each created on
    first use with the book's thresholds, cool-down, clocks and listeners. Pure, like the breaker.

    ``trip`` names the account it halts; without one it trips every breaker in the book (an
    operator's or the risk manager's halt of everything the worker trades)."""

    def __init__(
        self,
        *,
        failure_threshold: int = 5,
        cool_down: timedelta = timedelta(seconds=30),
        loss_threshold: Decimal | None = None,
        clock: Callable[[], datetime] | None = None,
        wall_clock: Callable[[], float] = time.monotonic,
        listeners: Iterable[Listener] = (),
    ):
        if cool_down <= timedelta(0):
            raise ValueError("cool_down must be positive")
        self.failure_threshold = failure_threshold
        self.cool_down = cool_down
        self.loss_threshold = loss_threshold
        self._clock = clock
        self._wall = wall_clock
        self.listeners: list[Listener] = list(listeners)
        self._breakers: dict[int, TradingBreaker] = {}

    def for_account(self, account_id: int) -> TradingBreaker:
        """The account's breaker (closed when new)."""
        breaker = self._breakers.get(account_id)
        if breaker is None:
            breaker = self._breakers[account_id] = TradingBreaker(
                account_id=account_id,
                failure_threshold=self.failure_threshold,
                cool_down=self.cool_down,
                loss_threshold=self.loss_threshold,
                clock=self._clock,
                wall_clock=self._wall,
            )
            breaker.listeners = self.listeners  # the book's list: a listener added later hears every breaker
        return breaker

    def items(self) -> list[tuple[int, TradingBreaker]]:
        """(account id, breaker), in account id order."""
        return sorted(self._breakers.items())

    def trip(self, reason: str, *, account_id: int | None = None, now: datetime | None = None) -> None:
        """Open the account's breaker now, or every account's when ``account_id`` is None."""
        targets = [self.for_account(account_id)] if account_id is not None else [b for _, b in self.items()]
        for breaker in targets:
            breaker.trip(reason, now=now)

    def __len__(self) -> int:
        return len(self._breakers)

    def __repr__(self) -> str:
        return f"<BreakerBook {dict(self.items())}>"
