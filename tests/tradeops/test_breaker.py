"""tradeops.breaker: closed -> open after fail_max, refuses while open, one trial when half-open."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeops.breaker import BreakerState, CircuitBreaker, CircuitOpenError


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def boom():
    raise ConnectionError("peer down")


def test_opens_after_fail_max_consecutive_failures_and_refuses_without_calling():
    clock = Clock()
    changes = []
    breaker = CircuitBreaker(
        "peer", fail_max=3, reset_timeout=10, clock=clock, listeners=[lambda b, o, n: changes.append((o, n))]
    )
    for _ in range(2):
        with pytest.raises(ConnectionError):
            breaker.call(boom)
    assert breaker.state is BreakerState.CLOSED
    assert breaker.call(lambda: "ok") == "ok" and breaker.failures == 0  # a success resets the count
    for _ in range(3):
        with pytest.raises(ConnectionError):
            breaker.call(boom)
    assert breaker.state is BreakerState.OPEN
    calls = []
    clock.now = 4
    with pytest.raises(CircuitOpenError) as refused:
        breaker.call(calls.append, 1)
    assert calls == [] and refused.value.retry_after == pytest.approx(6) and refused.value.code == "circuit_open"
    assert changes == [(BreakerState.CLOSED, BreakerState.OPEN)]


def test_half_open_trial_closes_on_success_and_reopens_on_failure():
    clock = Clock()
    breaker = CircuitBreaker("peer", fail_max=1, reset_timeout=10, clock=clock)
    with pytest.raises(ConnectionError):
        breaker.call(boom)
    clock.now = 10
    assert breaker.state is BreakerState.HALF_OPEN
    with pytest.raises(ConnectionError):
        breaker.call(boom)
    assert breaker.state is BreakerState.OPEN
    clock.now = 15
    with pytest.raises(CircuitOpenError):
        breaker.call(lambda: None)  # the new open period started at 10
    clock.now = 20
    assert breaker.call(lambda: 42) == 42 and breaker.state is BreakerState.CLOSED


def test_excluded_errors_are_the_callers_fault_and_do_not_open_it():
    breaker = CircuitBreaker("peer", fail_max=1, exclude=[ValueError], clock=Clock())
    with pytest.raises(ValueError):
        breaker.call(int, "not a number")
    assert breaker.state is BreakerState.CLOSED


def test_force_open_and_reset():
    clock = Clock()
    breaker = CircuitBreaker("peer", fail_max=5, reset_timeout=30, clock=clock)
    breaker.force_open()
    with pytest.raises(CircuitOpenError):
        breaker.call(lambda: None)
    breaker.reset()
    assert breaker.state is BreakerState.CLOSED and breaker.call(lambda: 1) == 1
    with pytest.raises(ValueError):
        CircuitBreaker("bad", fail_max=0)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.just("ok"), st.just("fail"), st.floats(min_value=0, max_value=20)), max_size=40))
def test_breaker_matches_a_reference_model(steps):
    """Against a model written from the definition: the breaker calls the peer exactly when the
    model says it may, and is open exactly when the model says so."""
    clock = Clock()
    breaker = CircuitBreaker("peer", fail_max=3, reset_timeout=10, clock=clock)
    state, failures, opened_at = "closed", 0, 0.0
    for step in steps:
        if isinstance(step, float):
            clock.now += step
            continue
        allowed = state == "closed" or clock.now - opened_at >= 10
        calls = []

        def peer(step=step, calls=calls):
            calls.append(1)
            if step == "fail":
                raise ConnectionError

        try:
            breaker.call(peer)
        except (ConnectionError, CircuitOpenError):
            pass
        assert bool(calls) == allowed
        if allowed:
            if step == "ok":
                state, failures = "closed", 0
            else:
                failures += 1
                if state != "closed" or failures >= 3:
                    state, opened_at = "open", clock.now
        assert (breaker.state is BreakerState.OPEN) == (state == "open" and clock.now - opened_at < 10)
