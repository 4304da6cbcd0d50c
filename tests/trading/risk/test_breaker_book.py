"""The book of trading breakers, one per account: what opens one account's breaker halts that
account only (its broker's refusals, its losses, a trip naming it); a trip naming no account
halts every account the book holds. Each breaker names its account (listeners, gauge)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from prometheus_client import REGISTRY

from tests.trading.risk.helpers import ACCOUNT, T0, codes, decide, gate_for, intent, manager
from tradeops.breaker import BreakerState
from trading.risk import BreakerBook, TradingState

OTHER = 2


class Wall:
    def __init__(self, start: float = 1000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now


def two_accounts(**book):
    m = manager(breakers=BreakerBook(wall_clock=Wall(), **book))
    m.add_account(OTHER, balance=Decimal(100000), now=T0)
    return m


def test_a_breaker_is_made_on_first_use_with_the_book_thresholds_and_kept():
    changes = []
    book = BreakerBook(
        failure_threshold=2,
        cool_down=timedelta(seconds=7),
        loss_threshold=Decimal(300),
        wall_clock=Wall(),
        listeners=[lambda b, old, new, reason: changes.append((b.account_id, str(new), reason))],
    )
    assert len(book) == 0
    first = book.for_account(41)
    assert book.for_account(41) is first and len(book) == 1
    assert (first.account_id, first.cool_down, first.loss_threshold) == (41, timedelta(seconds=7), Decimal(300))
    assert REGISTRY.get_sample_value("tradeops_breaker_state", {"breaker": "trading:41"}) == 0
    first.record_failure("REJECT", now=T0)
    assert first.state(T0) is BreakerState.CLOSED  # two in a row, not one
    first.record_failure("REJECT", now=T0)
    assert first.state(T0) is BreakerState.OPEN
    assert changes == [(41, "open", "consecutive_failures:REJECT")]  # the listener is told whose
    assert REGISTRY.get_sample_value("tradeops_breaker_state", {"breaker": "trading:41"}) == 2
    assert book.for_account(42).state(T0) is BreakerState.CLOSED  # a new account's starts closed
    assert [a for a, _ in book.items()] == [41, 42]


def test_one_accounts_refusals_halt_that_account_only():
    m = two_accounts(failure_threshold=5, cool_down=timedelta(seconds=30))
    g = gate_for(m)
    for _ in range(5):
        m.breakers.for_account(ACCOUNT).record_failure("REJECT", now=T0)
    at = T0 + timedelta(seconds=1)
    refused = decide(m, g, intent(at=at))
    assert codes(refused) == {"risk.breaker_open", "risk.trading_halted"}
    assert f"account {ACCOUNT}'s trading breaker open" in refused.reason
    assert m.trading_state(ACCOUNT, at) == TradingState.HALTED
    assert decide(m, g, intent(at=at, account_id=OTHER)).approved
    assert m.trading_state(OTHER, at) == TradingState.ACTIVE
    assert m.breakers.for_account(OTHER).state(at) is BreakerState.CLOSED


def test_one_accounts_losses_open_its_breaker_only():
    m = two_accounts(loss_threshold=Decimal(100))
    fill = dict(symbol="EURUSD", quantity=Decimal(1), fee=Decimal(0), now=T0)
    m.on_fill(account_id=ACCOUNT, client_order_id="A1", side="BUY", price=Decimal("1.10000"), **fill)
    m.on_fill(account_id=ACCOUNT, client_order_id="A2", side="SELL", price=Decimal("1.09800"), **fill)  # -200
    assert m.breakers.for_account(ACCOUNT).state(T0) is BreakerState.OPEN
    assert m.breakers.for_account(ACCOUNT).reason.startswith("loss_threshold")
    assert m.breakers.for_account(OTHER).state(T0) is BreakerState.CLOSED
    assert m.breakers.for_account(OTHER).loss_since_close == 0


def test_a_trip_names_its_account_and_a_trip_naming_none_halts_every_account():
    m = two_accounts()
    m.breakers.trip("operator", account_id=OTHER, now=T0)
    assert m.trading_state(OTHER, T0) == TradingState.HALTED
    assert m.trading_state(ACCOUNT, T0) == TradingState.ACTIVE
    m.breakers.trip("risk manager: halt the desk", now=T0)
    assert {a: str(b.state(T0)) for a, b in m.breakers.items()} == {ACCOUNT: "open", OTHER: "open"}
    assert m.breakers.for_account(ACCOUNT).reason == "risk manager: halt the desk"


def test_the_trial_after_the_cool_down_is_the_accounts_own():
    """Half-open lets ONE trial through per account: the other account's orders are no trial."""
    m = two_accounts(failure_threshold=1, cool_down=timedelta(seconds=30))
    g = gate_for(m)
    m.breakers.for_account(ACCOUNT).record_failure("REJECT", now=T0)
    later = T0 + timedelta(seconds=31)
    assert decide(m, g, intent(qty="0.01", at=later, account_id=OTHER)).approved
    assert not m.breakers.for_account(ACCOUNT).trial_in_flight
    assert decide(m, g, intent(qty="0.01", at=later)).approved  # the account's trial
    assert codes(decide(m, g, intent(qty="0.02", at=later))) == {"risk.breaker_open"}
    assert decide(m, g, intent(qty="0.02", at=later, account_id=OTHER)).approved


def test_the_cool_down_must_be_positive():
    with pytest.raises(ValueError, match="cool_down"):
        BreakerBook(cool_down=timedelta(0))
