"""The trading circuit breaker: stops new orders when the broker, the P&L or the market data
says something is wrong, and lets one trial order through after a cool-down.

Built on the generic ``tradeops.breaker.CircuitBreaker`` (closed / open / half-open), with the
triggers that are specific to trading:

- ``failure_threshold`` consecutive broker errors or rejects (``record_failure``);
- realised losses since the breaker last closed beyond ``loss_threshold`` (``record_pnl``);
- stale market data: the latest quote for the symbol about to be traded older than
  ``stale_after`` at decision time (``observe_quote_age``).

After ``cool_down`` it half-opens: exactly ONE trial order may be sent (``allow`` is true until
``on_trial`` marks the trial as in flight); the trial's outcome closes it (``record_success``)
or opens it again (``record_failure``).

Pure: time comes in as ``now`` (aware datetime) on every call, or from the injected ``clock``
when ``now`` is omitted. State changes go to ``listeners`` (``(breaker, old, new, reason)``),
where the runner publishes an alert and writes the audit record.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from decimal import Decimal

from tradeops.breaker import BreakerState, CircuitBreaker

Listener = Callable[["TradingBreaker", BreakerState, BreakerState, str], None]


class TradingBreaker:
    def __init__(
        self,
        *,
        failure_threshold: int = 5,
        cool_down: timedelta = timedelta(seconds=30),
        loss_threshold: Decimal | None = None,
        stale_after: timedelta | None = timedelta(seconds=30),
        clock: Callable[[], datetime] | None = None,
        listeners: Iterable[Listener] = (),
    ):
        self._clock = clock
        self._now_seconds = 0.0
        self._inner = CircuitBreaker(
            "trading",
            fail_max=failure_threshold,
            reset_timeout=cool_down.total_seconds(),
            clock=lambda: self._now_seconds,
            listeners=[self._on_inner_change],
        )
        self.loss_threshold = loss_threshold
        self.stale_after = stale_after
        self.listeners: list[Listener] = list(listeners)
        self.loss_since_close = Decimal(0)
        self.trial_in_flight = False
        self.reason = ""
        self._pending_reason = ""

    # ------------------------------------------------------------ time

    def _tick(self, now: datetime | None) -> None:
        if now is None:
            if self._clock is None:
                raise ValueError("TradingBreaker needs `now` or an injected clock")
            now = self._clock()
        self._now_seconds = now.timestamp()

    def _on_inner_change(self, _inner, old: BreakerState, new: BreakerState) -> None:
        if new is BreakerState.CLOSED:
            self.loss_since_close = Decimal(0)
            self.reason = ""
        elif new is BreakerState.OPEN:
            self.reason = self._pending_reason or "consecutive_failures"
        if new is not BreakerState.HALF_OPEN:
            self.trial_in_flight = False
        for listener in self.listeners:
            listener(self, old, new, self.reason)

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

    def on_trial(self, now: datetime | None = None) -> None:
        """An order is being sent. In half-open it is the one trial; nothing else goes until it resolves."""
        self._tick(now)
        if self._inner.state is BreakerState.HALF_OPEN:
            self._inner.before_call()  # moves the inner breaker from expired-open to half-open
            self.trial_in_flight = True

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

    def record_pnl(self, realised: Decimal, now: datetime | None = None) -> None:
        """Realised P&L of a fill (negative is a loss). Opens past ``loss_threshold``."""
        self._tick(now)
        self.loss_since_close -= realised
        breached = self.loss_threshold is not None and self.loss_since_close > self.loss_threshold
        if breached and self._inner.state is not BreakerState.OPEN:
            self.trip(f"loss_threshold:{self.loss_since_close}>{self.loss_threshold}", now=now)

    def observe_quote_age(self, quote_ts: datetime | None, now: datetime) -> None:
        """Open on stale market data: no quote, or the latest one older than ``stale_after``."""
        if self.stale_after is None:
            return
        self._tick(now)
        if quote_ts is None or now - quote_ts > self.stale_after:
            age = "none" if quote_ts is None else f"{(now - quote_ts).total_seconds():.3f}s"
            if self._inner.state is BreakerState.CLOSED:
                self.trip(f"stale_market_data:{age}", now=now)

    def trip(self, reason: str, now: datetime | None = None) -> None:
        """Open now (a trigger above, an operator, or the risk manager)."""
        self._tick(now)
        self._pending_reason = reason
        if self._inner._state is BreakerState.OPEN:
            self.reason = reason
        self._inner.force_open()
        self._pending_reason = ""

    def reset(self, now: datetime | None = None) -> None:
        self._tick(now)
        self._inner.reset()

    def __repr__(self) -> str:
        return f"<TradingBreaker {self._inner._state} reason={self.reason!r}>"
