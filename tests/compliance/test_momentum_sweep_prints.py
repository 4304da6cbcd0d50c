"""Momentum ignition's move by sweep read from the burst's own prints (2026-12-05 23:00 round,
wip/mom32, ``sweep_prints``): a burst whose orders each walked the book (``sweep_levels``), at
least ``min_aggressive_orders`` of them, whose furthest fill stood ``min_move_spreads`` spreads
beyond the mid at its first order, then reversed, is alerted even where the other participants
refilled the book behind each order and the mid never moved (the trades printed at the walked
prices). Near-misses: the same sweeps reaching only 1.5 spreads, and the sweeping burst held.

And an attempt (``attempt_min_orders``, MAR Art. 15): five or more aggressive orders one way, at
least one of which walked the book, that moved nothing and were turned. Near-misses: four orders,
five that each filled at one price (a dealer's book), and the attempt held."""

from __future__ import annotations

from compliance.surveillance.params import MomentumIgnitionParams
from tests.compliance.helpers import f, o, q, run
from tests.compliance.test_momentum_sweep import TICK, _book, sweep_burst

ONLY = {"momentum_ignition"}
# The fixtures' account comes to EURUSD flat: with ``attempt_from_flat_orders`` (wip/mom36) any
# three of its orders with one through the touch, turned, are an attempt. These tests read the
# sweep's prints and ``attempt_min_orders`` on their own, so that rule is off here
# (tests/compliance/test_momentum_attempt_from_flat.py tests it).
FLAT_OFF = {"attempt_from_flat_orders": None}
OFF = {"momentum_ignition": {"sweep_prints": False, **FLAT_OFF}}


def test_the_default_is_the_chosen_rule():
    assert MomentumIgnitionParams().sweep_prints is True


def test_sweeps_printed_two_spreads_through_a_refilled_book_and_reversed_are_alerted():
    """Three buys each through five levels (the touch and four ticks behind it: the furthest
    fill 2 spreads above the mid at the first order); the book refilled behind each, the mid
    never moved; the whole sold 88 s later. Off, the mid alone, missed."""
    rows = sweep_burst(levels=5, moves=False)
    (alert,) = run(rows, only=ONLY)
    ev = alert["evidence"]
    assert alert["order_ids"] == ["b0", "b1", "b2", "rev"]
    assert ev["move_by_sweep"] is True and ev["swept_orders"] == 3
    assert ev["move_spreads"] < ev["min_move_spreads"] <= ev["burst_print_spreads"]
    assert ev["burst_print_spreads"] == 2.0
    assert run(rows, only=ONLY, params=OFF) == []


def test_near_miss_sweeps_printed_only_one_and_a_half_spreads_through():
    """The same through four levels: the furthest fill 1.5 spreads above the mid."""
    rows = sweep_burst(levels=4, moves=False)
    assert run(rows, only=ONLY, params={"momentum_ignition": FLAT_OFF}) == []


def test_near_miss_the_sweeping_burst_held():
    assert run(sweep_burst(levels=5, moves=False, reverse=False), only=ONLY) == []


# An attempt at ignition on the book (``attempt_min_orders``, MAR Art. 15)

ATTEMPT_OFF = {"momentum_ignition": {"attempt_min_orders": None}}
ATTEMPT_ONLY = {"momentum_ignition": FLAT_OFF}


def attempt_burst(*, n: int = 5, walked: int = 1, reverse: bool = True):
    """``n`` buys of 1 million 3 s apart into a book refilled behind each (the mid never moves):
    the first ``walked`` of them through two levels (the touch and a tick behind it), the rest at
    the touch; the whole sold at market 90 s after the last."""
    mid = 1.10000
    rows = _book(-1800.0, 0.0, mid)
    for i in range(n):
        t = 3.0 * i
        ask = mid + TICK
        rows.append(o(t, "new", f"b{i}", "M", "buy", 1_000_000))
        if i < walked:
            rows.append(f(t + 0.01, f"b{i}", "M", "buy", 500_000, f"{ask:.5f}"))
            rows.append(f(t + 0.01, f"b{i}", "M", "buy", 500_000, f"{ask + TICK:.5f}"))
        else:
            rows.append(f(t + 0.01, f"b{i}", "M", "buy", 1_000_000, f"{ask:.5f}"))
        rows.append(q(t + 0.02, f"{mid - TICK:.5f}", f"{mid + TICK:.5f}"))
    end = 3.0 * (n - 1)
    rows += _book(end + 0.5, end + 120.0, mid)
    if reverse:
        rows.append(o(end + 90.0, "new", "rev", "M", "sell", n * 1_000_000))
        rows.append(f(end + 90.01, "rev", "M", "sell", n * 1_000_000, f"{mid - TICK:.5f}"))
    return sorted(rows, key=lambda r: r["ts"])


def test_attempt_default_is_the_chosen_rule():
    assert MomentumIgnitionParams().attempt_min_orders == 5


def test_five_orders_one_through_the_touch_that_moved_nothing_then_turned_is_an_attempt():
    rows = attempt_burst()
    (alert,) = run(rows, only=ONLY, params=ATTEMPT_ONLY)
    ev = alert["evidence"]
    assert alert["order_ids"] == ["b0", "b1", "b2", "b3", "b4", "rev"]
    assert ev["attempt"] is True and ev["move_by_sweep"] is False
    assert ev["swept_orders"] == 1 and ev["burst_orders"] == ev["attempt_min_orders"] == 5
    assert ev["move_bps"] < ev["min_move_bps"]
    assert run(rows, only=ONLY, params=ATTEMPT_OFF) == []


def test_near_miss_four_orders():
    """Under ``attempt_min_orders`` (from flat, ``attempt_from_flat_orders`` would take it)."""
    assert run(attempt_burst(n=4), only=ONLY, params=ATTEMPT_ONLY) == []


def test_near_miss_five_orders_none_through_the_touch():
    """A dealer's book fills each order at one price: the series alone, no book taken, is not an attempt."""
    assert run(attempt_burst(walked=0), only=ONLY) == []


def test_near_miss_the_attempt_held():
    assert run(attempt_burst(reverse=False), only=ONLY) == []
