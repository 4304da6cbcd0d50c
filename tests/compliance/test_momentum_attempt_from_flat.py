"""Momentum ignition's attempt from flat (2026-12-06 04:00 round, wip/mom36,
``attempt_from_flat_orders``): an account with no fill in the symbol in the ``two_way_window_s``
before its chain, whose short series of aggressive orders one way walked the book at least once
and moved nothing, then turned, is an attempt (MAR Art. 15) at ``attempt_from_flat_orders``
orders instead of ``attempt_min_orders``. Near-misses: the account traded the symbol 200 s
before (not flat), every order filled at one price (a dealer's book), and the series held.

On by default (it held on the CONFIRMATION sets: docs/surveillance-rounds.md); off is
``attempt_from_flat_orders`` None."""

from __future__ import annotations

from compliance.surveillance.params import MomentumIgnitionParams
from tests.compliance.helpers import f, o, run, surveil_restarted
from tests.compliance.test_momentum_sweep import TICK
from tests.compliance.test_momentum_sweep_prints import attempt_burst

ONLY = {"momentum_ignition"}
ON = {"momentum_ignition": {"attempt_from_flat_orders": 3}}
OFF = {"momentum_ignition": {"attempt_from_flat_orders": None}}


def test_the_default_is_the_chosen_rule():
    assert MomentumIgnitionParams().attempt_from_flat_orders == 3


def test_three_orders_from_flat_one_through_the_touch_then_turned_is_an_attempt():
    """Three buys 3 s apart, the first through two levels, the mid never moved; the whole sold
    90 s later by an account that had not traded EURUSD before: alerted on, not off (under the
    five orders ``attempt_min_orders`` asks of any account)."""
    rows = attempt_burst(n=3)
    (alert,) = run(rows, only=ONLY, params=ON)
    ev = alert["evidence"]
    assert alert["order_ids"] == ["b0", "b1", "b2", "rev"]
    assert ev["attempt"] is True and ev["came_from_flat"] is True
    assert ev["burst_orders"] == ev["attempt_from_flat_orders"] == 3 < ev["attempt_min_orders"]
    assert run(rows, only=ONLY, params=OFF) == []
    assert run(rows, only=ONLY) == run(rows, only=ONLY, params=ON)


def test_near_miss_the_account_traded_the_symbol_before():
    """The same series, the account having bought 100,000 EURUSD 200 s before: not flat."""
    rows = attempt_burst(n=3) + [
        o(-200.0, "new", "early", "M", "buy", 100_000),
        f(-199.99, "early", "M", "buy", 100_000, f"{1.10000 + TICK:.5f}"),
    ]
    assert run(rows, only=ONLY, params=ON) == []


def test_near_miss_from_flat_every_order_at_one_price():
    """From flat, three orders each filled at the touch: no book taken, not an attempt."""
    assert run(attempt_burst(n=3, walked=0), only=ONLY, params=ON) == []


def test_near_miss_from_flat_the_series_held():
    assert run(attempt_burst(n=3, reverse=False), only=ONLY, params=ON) == []


def test_a_restart_in_the_middle_of_the_series_still_catches_it():
    """The snapshot keeps the chain's record of what the account did before it (``two_way``,
    ``quoting``): restored between every pair of rows, the same one alert (no new state: the
    ``STATE_VERSION`` is unchanged)."""
    rows = attempt_burst(n=3)
    (expected,) = run(rows, only=ONLY)
    for i in range(1, len(rows)):
        (alert,) = surveil_restarted(rows, only=ONLY, restart_at=i)
        assert alert["order_ids"] == expected["order_ids"] and alert["evidence"]["came_from_flat"] is True
