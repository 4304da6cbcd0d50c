"""The trading circuit breaker's state changes, driven by an injected clock."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from tests.trading.risk.helpers import T0, codes, decide, gate_for, intent, manager
from tradeops.breaker import BreakerState
from trading.risk import TradingBreaker, TradingState


class Clock:
    def __init__(self):
        self.now = T0

    def __call__(self):
        return self.now

    def advance(self, seconds: float):
        self.now += timedelta(seconds=seconds)


def test_consecutive_failures_open_then_half_open_allows_exactly_one_trial_then_success_closes():
    clock = Clock()
    changes = []
    b = TradingBreaker(
        failure_threshold=3,
        cool_down=timedelta(seconds=10),
        clock=clock,
        listeners=[lambda _b, old, new, reason: changes.append((old, new, reason))],
    )
    b.record_failure("REJECT")
    b.record_success()  # a success in between resets the count
    b.record_failure("REJECT")
    b.record_failure("TIMEOUT")
    assert b.state() is BreakerState.CLOSED and b.allow()
    b.record_failure("REJECT")
    assert b.state() is BreakerState.OPEN and not b.allow()
    assert changes[-1] == (BreakerState.CLOSED, BreakerState.OPEN, "consecutive_failures:REJECT")
    clock.advance(9.9)
    assert not b.allow()
    clock.advance(0.2)
    assert b.state() is BreakerState.HALF_OPEN
    assert b.allow()
    b.on_trial()
    assert not b.allow(), "only one trial order while half-open"
    b.record_success()
    assert b.state() is BreakerState.CLOSED and b.allow()
    assert changes[-1][1] is BreakerState.CLOSED


def test_failed_trial_reopens_for_another_cool_down():
    clock = Clock()
    b = TradingBreaker(failure_threshold=1, cool_down=timedelta(seconds=5), clock=clock)
    b.record_failure()
    clock.advance(5)
    assert b.allow()
    b.on_trial()
    b.record_failure("REJECT")
    assert b.state() is BreakerState.OPEN
    clock.advance(4)
    assert not b.allow()
    clock.advance(1)
    assert b.allow()


def test_losses_beyond_threshold_open_it():
    clock = Clock()
    b = TradingBreaker(loss_threshold=Decimal(500), clock=clock)
    b.record_pnl(Decimal(-300))
    b.record_pnl(Decimal(100))
    b.record_pnl(Decimal(-250))
    assert b.state() is BreakerState.CLOSED  # net loss 450
    b.record_pnl(Decimal(-51))
    assert b.state() is BreakerState.OPEN
    assert b.reason.startswith("loss_threshold")


def test_stale_market_data_opens_it():
    b = TradingBreaker(stale_after=timedelta(seconds=2))
    b.observe_quote_age(T0, T0 + timedelta(seconds=1.5))
    assert b.state(T0 + timedelta(seconds=1.5)) is BreakerState.CLOSED
    b.observe_quote_age(T0, T0 + timedelta(seconds=2.5))
    assert b.state(T0 + timedelta(seconds=2.5)) is BreakerState.OPEN
    assert b.reason == "stale_market_data:2.500s"
    b2 = TradingBreaker(stale_after=timedelta(seconds=2))
    b2.observe_quote_age(None, T0)
    assert b2.reason == "stale_market_data:none"


def test_gate_refuses_while_open_and_halts_the_account_then_lets_one_trial_through():
    breaker = TradingBreaker(failure_threshold=1, cool_down=timedelta(seconds=30), stale_after=None)
    m = manager(breaker=breaker)
    g = gate_for(m)
    breaker.record_failure("REJECT", now=T0)
    d = decide(m, g, intent(at=T0 + timedelta(seconds=1)))
    assert codes(d) == {"risk.breaker_open", "risk.trading_halted"}
    assert m.trading_state(1, T0 + timedelta(seconds=1)) == TradingState.HALTED
    later = T0 + timedelta(seconds=31)
    trial = decide(m, g, intent(qty="0.01", at=later))
    assert trial.approved
    d = decide(m, g, intent(qty="0.02", at=later))
    assert codes(d) == {"risk.breaker_open"}
    assert "trial order is still out" in d.reason
