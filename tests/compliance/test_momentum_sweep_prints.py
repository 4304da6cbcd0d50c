"""Momentum ignition's move by sweep read from the burst's own prints (2026-12-05 23:00 round,
wip/mom32, ``sweep_prints``): a burst whose orders each walked the book (``sweep_levels``), at
least ``min_aggressive_orders`` of them, whose furthest fill stood ``min_move_spreads`` spreads
beyond the mid at its first order, then reversed, is alerted even where the other participants
refilled the book behind each order and the mid never moved (the trades printed at the walked
prices). Near-misses: the same sweeps reaching only 1.5 spreads, and the sweeping burst held."""

from __future__ import annotations

from compliance.surveillance.params import MomentumIgnitionParams
from tests.compliance.helpers import run
from tests.compliance.test_momentum_sweep import sweep_burst

ONLY = {"momentum_ignition"}
OFF = {"momentum_ignition": {"sweep_prints": False}}


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
    assert run(rows, only=ONLY) == []


def test_near_miss_the_sweeping_burst_held():
    assert run(sweep_burst(levels=5, moves=False, reverse=False), only=ONLY) == []
