"""Momentum ignition's newcomer's series (2026-12-06 06:00 round, wip/mom37, ``fresh_series_s``):
the chain of an account that had no fill in the symbol, either way, in the ``fresh_series_s``
before its first order may space its orders up to ``lead_pause_s`` apart instead of
``max_gap_s`` once one of them walked the book. Every other test applies (here the attempt from
flat: three orders, one through the touch, turned). Near-misses: the account traded the symbol
half an hour before (not a newcomer), no order walked the book (a dealer's book), the series was
held, and orders a minute apart (beyond ``lead_pause_s``).

On by default (3,600 s), by the lead's decision after the CONFIRMATION sets (LOB momentum 0.59 ->
0.78 for the independent book's strictly false alerts +3: docs/surveillance-rounds.md); the tests
pass it explicitly, on and off."""

from __future__ import annotations

from compliance.surveillance.params import MomentumIgnitionParams
from tests.compliance.helpers import f, o, q, run, surveil_restarted
from tests.compliance.test_momentum_sweep import TICK, _book

ONLY = {"momentum_ignition"}
ON = {"momentum_ignition": {"fresh_series_s": 3600.0}}
OFF = {"momentum_ignition": {"fresh_series_s": None}}


def spaced_series(*, gap: float = 20.0, walked: int = 1, reverse: bool = True, traded_before: float | None = None):
    """Three buys of 1 million ``gap`` s apart into a book refilled behind each (the mid never
    moves): the first ``walked`` through two levels (the touch and a tick behind it), the rest at
    the touch; the whole sold at market 90 s after the last. With ``traded_before``, the account
    bought 100,000 EURUSD that many seconds before the first buy."""
    mid = 1.10000
    rows = _book(-4000.0, 0.0, mid)
    if traded_before is not None:
        rows.append(o(-traded_before, "new", "early", "M", "buy", 100_000))
        rows.append(f(-traded_before + 0.01, "early", "M", "buy", 100_000, f"{mid + TICK:.5f}"))
    for i in range(3):
        t = gap * i
        ask = mid + TICK
        rows.append(o(t, "new", f"b{i}", "M", "buy", 1_000_000))
        if i < walked:
            rows.append(f(t + 0.01, f"b{i}", "M", "buy", 500_000, f"{ask:.5f}"))
            rows.append(f(t + 0.01, f"b{i}", "M", "buy", 500_000, f"{ask + TICK:.5f}"))
        else:
            rows.append(f(t + 0.01, f"b{i}", "M", "buy", 1_000_000, f"{ask:.5f}"))
        rows.append(q(t + 0.02, f"{mid - TICK:.5f}", f"{mid + TICK:.5f}"))
    end = gap * 2
    rows += _book(end + 0.5, end + 120.0, mid)
    if reverse:
        rows.append(o(end + 90.0, "new", "rev", "M", "sell", 3_000_000))
        rows.append(f(end + 90.01, "rev", "M", "sell", 3_000_000, f"{mid - TICK:.5f}"))
    return sorted(rows, key=lambda r: r["ts"])


def test_on_by_default_and_off_is_the_detector_before_it():
    """The default is the hour measured; off, the spaced series is no chain (as before the rule)."""
    assert MomentumIgnitionParams().fresh_series_s == 3600.0
    rows = spaced_series()
    assert run(rows, only=ONLY) == run(rows, only=ONLY, params=ON) != []
    assert run(rows, only=ONLY, params=OFF) == []


def test_a_newcomers_series_twenty_seconds_apart_one_through_the_touch_then_turned_is_alerted():
    """Three buys 20 s apart by an account with no EURUSD fill before, the first through two
    levels, the whole sold 90 s later: one chain (an attempt from flat) with the rule on; off, the
    20-s pauses break it (``max_gap_s`` 10) and nothing is alerted."""
    rows = spaced_series()
    (alert,) = run(rows, only=ONLY, params=ON)
    ev = alert["evidence"]
    assert alert["order_ids"] == ["b0", "b1", "b2", "rev"]
    assert ev["fresh_series"] is True and ev["fresh_series_s"] == 3600.0
    assert ev["attempt"] is True and ev["burst_orders"] == 3 and ev["burst_seconds"] == 40.0
    assert run(rows, only=ONLY, params=OFF) == []


def test_the_same_series_four_seconds_apart_is_a_quick_burst():
    """Quick orders need no newcomer's allowance: alerted on and off, ``fresh_series`` False."""
    rows = spaced_series(gap=4.0)
    (alert,) = run(rows, only=ONLY, params=ON)
    assert alert["evidence"]["fresh_series"] is False
    assert len(run(rows, only=ONLY, params=OFF)) == 1


def test_near_miss_the_account_traded_the_symbol_half_an_hour_before():
    """A fill 1,800 s before the series (beyond the 300-s flat window of the attempt, inside the
    hour): not a newcomer, the 20-s pauses break the chain."""
    assert run(spaced_series(traded_before=1800.0), only=ONLY, params=ON) == []


def test_an_hour_and_more_since_the_last_fill_is_a_newcomer_again():
    assert len(run(spaced_series(traded_before=3700.0), only=ONLY, params=ON)) == 1


def test_near_miss_no_order_walked_the_book():
    assert run(spaced_series(walked=0), only=ONLY, params=ON) == []


def test_near_miss_the_series_held():
    assert run(spaced_series(reverse=False), only=ONLY, params=ON) == []


def test_near_miss_orders_a_minute_apart():
    """Beyond ``lead_pause_s`` (45 s): three separate orders, not a series."""
    assert run(spaced_series(gap=60.0), only=ONLY, params=ON) == []


def test_a_restart_anywhere_in_the_series_still_catches_it():
    """The snapshot keeps each account's last fill in a symbol and the chain's ``fresh`` (state
    version 53): restored before every row, the same one alert."""
    rows = spaced_series()
    (expected,) = run(rows, only=ONLY, params=ON)
    for i in range(1, len(rows)):
        (alert,) = surveil_restarted(rows, only=ONLY, params=ON, restart_at=i)
        assert alert["order_ids"] == expected["order_ids"] and alert["evidence"]["fresh_series"] is True
