"""A small circuit breaker: closed, open, half-open (pybreaker's model, Hystrix's one trial call).

Every call that leaves the process goes through one (ARCHITECTURE.md, Resilience). While
``closed`` calls pass and consecutive failures are counted; ``fail_max`` of them in a row open
it. While ``open`` every call is refused at once with ``CircuitOpenError`` (the caller's
fallback runs instead of waiting on a dead peer). After ``reset_timeout`` seconds the next call
is let through as a trial (``half_open``): success closes the breaker, failure opens it again
for another ``reset_timeout``.

The clock is injectable (``clock=`` returns monotonic seconds) so tests are deterministic.
State changes are reported to ``listeners`` (callables taking ``(breaker, old, new)``), which
is where a runner publishes an ``Alert``; the breaker itself does no I/O. Its state is the
``tradeops_breaker_state{breaker=name}`` gauge (0 closed, 1 half-open, 2 open).
Not thread-safe on purpose: one runner loop owns one breaker.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from enum import StrEnum
from typing import TypeVar

from tradeops.core.errors import ApplicationError
from tradeops.observability.metrics import BREAKER_VALUES, breaker_state

T = TypeVar("T")


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitOpenError(ApplicationError):
    """Refused without calling: the breaker is open. ``retry_after`` is in seconds."""

    code = "circuit_open"
    http_status = 503

    def __init__(self, name: str, retry_after: float):
        super().__init__(
            f"circuit {name!r} is open; next trial in {retry_after:.1f}s",
            extra={"breaker": name, "retry_after": round(retry_after, 3)},
        )
        self.retry_after = retry_after


Listener = Callable[["CircuitBreaker", BreakerState, BreakerState], None]


class CircuitBreaker:
    """``fail_max`` consecutive failures open the circuit for ``reset_timeout`` seconds.

    ``exclude``: exception types that are the caller's fault (a refused order, a bad request)
    and must not count as the peer failing; they propagate and count as a success.
    """

    def __init__(
        self,
        name: str,
        *,
        fail_max: int = 5,
        reset_timeout: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        exclude: Iterable[type[BaseException]] = (),
        listeners: Iterable[Listener] = (),
    ):
        if fail_max < 1:
            raise ValueError("fail_max must be at least 1")
        if reset_timeout <= 0:
            raise ValueError("reset_timeout must be positive")
        self.name = name
        self.fail_max = fail_max
        self.reset_timeout = reset_timeout
        self._clock = clock
        self._exclude = tuple(exclude)
        self.listeners: list[Listener] = list(listeners)
        self._state = BreakerState.CLOSED
        self.failures = 0  # consecutive
        self._opened_at = 0.0
        self._gauge = breaker_state.labels(name)
        self._gauge.set(BREAKER_VALUES[self._state])

    @property
    def state(self) -> BreakerState:
        """The state as a caller would find it now (an expired open reads as half-open)."""
        if self._state is BreakerState.OPEN and self._clock() - self._opened_at >= self.reset_timeout:
            return BreakerState.HALF_OPEN
        return self._state

    def _set(self, new: BreakerState) -> None:
        old = self._state
        self._state = new
        if old is not new:
            self._gauge.set(BREAKER_VALUES[new])
            for listener in self.listeners:
                listener(self, old, new)

    def before_call(self) -> None:
        """Raise CircuitOpenError if the call must not happen; move to half-open when it is time."""
        if self._state is BreakerState.OPEN:
            waited = self._clock() - self._opened_at
            if waited < self.reset_timeout:
                raise CircuitOpenError(self.name, self.reset_timeout - waited)
            self._set(BreakerState.HALF_OPEN)

    def record_success(self) -> None:
        self.failures = 0
        if self._state is not BreakerState.CLOSED:
            self._set(BreakerState.CLOSED)

    def record_failure(self) -> None:
        self.failures += 1
        if self._state is BreakerState.HALF_OPEN or self.failures >= self.fail_max:
            self._opened_at = self._clock()
            self._set(BreakerState.OPEN)

    def call(self, fn: Callable[..., T], *args, **kwargs) -> T:
        """Call ``fn`` through the breaker. Raises CircuitOpenError without calling when open."""
        self.before_call()
        try:
            result = fn(*args, **kwargs)
        except self._exclude:
            self.record_success()
            raise
        except Exception:
            self.record_failure()
            raise
        self.record_success()
        return result

    def force_open(self) -> None:
        """Open now (an operator or a health check decided the peer is down)."""
        self._opened_at = self._clock()
        self._set(BreakerState.OPEN)

    def restore_open(self) -> None:
        """Start open as a previous process left it (a restart), the cool-down running from now on
        this breaker's clock. No listener is told: nothing moved in this process, and the caller
        records the restore itself (an opening's listener would raise its alert a second time)."""
        self.failures = 0
        self._opened_at = self._clock()
        self._state = BreakerState.OPEN
        self._gauge.set(BREAKER_VALUES[self._state])

    def reset(self) -> None:
        """Close now and forget the failures."""
        self.failures = 0
        self._set(BreakerState.CLOSED)

    def __repr__(self) -> str:
        return f"<CircuitBreaker {self.name} {self.state} failures={self.failures}/{self.fail_max}>"
