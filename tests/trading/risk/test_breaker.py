"""The trading circuit breaker's state changes, driven by injected clocks (event time and the
monotonic wall clock): its cool-down ends on whichever shows it first, so it always ends."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from tests.trading.risk.helpers import T0, codes, decide, gate_for, intent, manager
from tradeops.breaker import BreakerState
from trading.risk import BreakerBook, TradingBreaker, TradingState


class Clock:
    def __init__(self):
        self.now = T0

    def __call__(self):
        return self.now

    def advance(self, seconds: float):
        self.now += timedelta(seconds=seconds)


class Wall:
    """Monotonic seconds, moved by hand (frozen unless a test moves it)."""

    def __init__(self, start: float = 1000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now


def test_consecutive_failures_open_then_half_open_allows_exactly_one_trial_then_success_closes():
    clock = Clock()
    changes = []
    b = TradingBreaker(
        failure_threshold=3,
        cool_down=timedelta(seconds=10),
        clock=clock,
        wall_clock=Wall(),
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
    b = TradingBreaker(failure_threshold=1, cool_down=timedelta(seconds=5), clock=clock, wall_clock=Wall())
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
    b = TradingBreaker(loss_threshold=Decimal(500), clock=clock, wall_clock=Wall())
    b.record_pnl(Decimal(-300))
    b.record_pnl(Decimal(100))
    b.record_pnl(Decimal(-250))
    assert b.state() is BreakerState.CLOSED  # net loss 450
    b.record_pnl(Decimal(-51))
    assert b.state() is BreakerState.OPEN
    assert b.reason.startswith("loss_threshold")


def test_gate_refuses_while_open_and_halts_the_account_then_lets_one_trial_through():
    m = manager(breakers=BreakerBook(failure_threshold=1, cool_down=timedelta(seconds=30), wall_clock=Wall()))
    breaker = m.breakers.for_account(1)
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


def test_the_cool_down_ends_on_the_wall_clock_when_event_time_stops():
    """A replay that ended (or a feed gone quiet, a market closed for the weekend): event time no
    longer moves. On event time alone the breaker stayed open for ever; the wall clock ends it."""
    wall = Wall()
    b = TradingBreaker(failure_threshold=1, cool_down=timedelta(seconds=30), wall_clock=wall)
    b.record_failure("REJECT", now=T0)
    wall.now += 29.9
    assert b.state(T0) is BreakerState.OPEN and not b.allow(T0)
    wall.now += 0.1
    assert b.state(T0) is BreakerState.HALF_OPEN and b.allow(T0)
    b.on_trial(T0)
    assert not b.allow(T0)
    b.record_success(now=T0)
    assert b.state(T0) is BreakerState.CLOSED


def test_the_cool_down_ends_on_event_time_in_a_replay_faster_than_the_wall_clock():
    """A replay moves event time by an hour a bar in microseconds of wall clock: event time ends
    the cool-down as it did live, so a replay behaves as the live run it replays."""
    b = TradingBreaker(failure_threshold=1, cool_down=timedelta(seconds=30), wall_clock=Wall())
    b.record_failure("REJECT", now=T0)
    assert b.state(T0 + timedelta(seconds=29)) is BreakerState.OPEN
    assert b.state(T0 + timedelta(hours=1)) is BreakerState.HALF_OPEN


def test_a_failed_trial_and_a_trip_while_open_restart_the_cool_down_on_both_clocks():
    wall = Wall()
    b = TradingBreaker(failure_threshold=1, cool_down=timedelta(seconds=10), wall_clock=wall)
    b.record_failure(now=T0)
    wall.now += 10  # over on the wall clock
    assert b.allow(T0)
    b.on_trial(T0)
    b.record_failure("TIMEOUT", now=T0)  # the trial failed: a new cool-down, from now on both clocks
    assert b.state(T0) is BreakerState.OPEN
    wall.now += 6
    b.trip("operator", now=T0 + timedelta(seconds=6))  # already open: the cool-down starts again
    assert b.reason == "operator"
    wall.now += 9
    assert b.state(T0 + timedelta(seconds=15)) is BreakerState.OPEN  # 9 s on the wall, 9 s of event time
    wall.now += 1
    assert b.state(T0 + timedelta(seconds=15)) is BreakerState.HALF_OPEN


def test_a_trip_of_an_open_breaker_is_told_to_the_listeners_as_an_extension_with_its_reason():
    """A trip while open restarts the cool-down: the listeners hear it as (open, open, reason),
    whence the audit trail's ``trading_breaker.extended`` (until 2026-12-06 no one heard it, and the
    record said the breaker opened at T while it stayed open past T + cool-down). A trip of an open
    breaker whose cool-down is over (no trial sent yet) extends it too; a trip while half-open
    with a trial out is an opening, as before."""
    wall, changes = Wall(), []
    b = TradingBreaker(
        failure_threshold=1,
        cool_down=timedelta(seconds=10),
        wall_clock=wall,
        listeners=[lambda _b, old, new, reason: changes.append((str(old), str(new), reason))],
    )
    b.record_failure("REJECT", now=T0)
    wall.now += 4
    b.trip("operator: desk review", now=T0 + timedelta(seconds=4))
    assert changes == [("closed", "open", "consecutive_failures:REJECT"), ("open", "open", "operator: desk review")]
    wall.now += 12  # over since the extension
    assert b.state(T0 + timedelta(seconds=16)) is BreakerState.HALF_OPEN
    b.trip("loss", now=T0 + timedelta(seconds=16))  # open, its cool-down over, no trial yet: extended
    assert changes[-1] == ("open", "open", "loss") and b.state(T0 + timedelta(seconds=16)) is BreakerState.OPEN
    wall.now += 10
    b.on_trial(T0 + timedelta(seconds=26))  # half-open, the trial out
    b.trip("operator", now=T0 + timedelta(seconds=26))
    assert changes[-2:] == [("open", "half_open", "loss"), ("half_open", "open", "operator")]


def test_the_cool_down_must_be_positive():
    import pytest

    with pytest.raises(ValueError, match="cool_down must be positive"):
        TradingBreaker(cool_down=timedelta(0))


# ---------------------------------------------------------------- market data: the instrument, not the account


def test_an_order_on_an_instrument_without_quotes_is_refused_for_that_instrument_only():
    """Stale market data is a property of one instrument's feed: the order is refused with
    ``risk.stale_market_data``, the breaker stays closed, the account stays ACTIVE and its other
    instruments trade on (before 2026-12-06 the breaker opened and halted the account)."""
    from tests.trading.risk.helpers import EURUSD, GBPUSD
    from trading.intents import Quote
    from trading.risk import LimitBook, RiskLimits, RiskManager

    m = RiskManager(
        limits=LimitBook(RiskLimits(duplicate_window_ms=None)),
        breakers=BreakerBook(failure_threshold=1, wall_clock=Wall()),
        stale_after=timedelta(seconds=30),
    )
    m.add_instrument(EURUSD)
    m.add_instrument(GBPUSD)
    m.add_account(1, balance=Decimal(100000), now=T0)
    breaker = m.breakers.for_account(1)
    m.on_quote(Quote("EURUSD", Decimal("1.10000"), Decimal("1.10002"), T0))
    g = gate_for(m)
    unquoted = decide(m, g, intent(symbol="GBPUSD", price="1.30001", at=T0))
    assert codes(unquoted) == {"risk.stale_market_data"}
    assert "no market data for GBPUSD" in unquoted.reason
    assert breaker.state(T0) is BreakerState.CLOSED and m.trading_state(1, T0) == TradingState.ACTIVE
    assert decide(m, g, intent(symbol="EURUSD", at=T0)).approved
    # a quote older than stale_after at the decision time: the same, for that instrument
    stale = decide(m, g, intent(qty="0.5", symbol="EURUSD", at=T0 + timedelta(seconds=31)))
    assert codes(stale) == {"risk.stale_market_data"} and "31.000 s old" in stale.reason
    assert breaker.state(T0 + timedelta(seconds=31)) is BreakerState.CLOSED
    m.on_quote(Quote("EURUSD", Decimal("1.10000"), Decimal("1.10002"), T0 + timedelta(seconds=31)))
    assert decide(m, g, intent(qty="0.5", symbol="EURUSD", at=T0 + timedelta(seconds=31))).approved


def test_without_stale_after_market_data_is_not_checked():
    m = manager()  # stale_after None: the pure tests' default
    m.quotes.pop("GBPUSD")
    assert decide(m, gate_for(m), intent(symbol="GBPUSD", price="1.30001")).approved
