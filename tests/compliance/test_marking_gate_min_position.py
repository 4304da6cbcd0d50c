"""Marking the close: the learned gate under the hand rules' floor of a position
(``close_gate_min_position``, the 2026-12-07 00:00 round, wip/close51). Marking the close is
trading at the close to move the price for a position held; a client's fixing order holds none,
and the residue of its small business in the hour before is not a position the push is for. With
the rule on the gate alerts only a push whose favoured position is at least ``min_position`` (0.05)
x the push, the floor the hand rules' position test already asks. Off by default and in every
market profile. The rows are test_detectors.py's pushed print (three buys of 1,000,000 into a print
moved 3.5 bps) with the position before it varied. Pure: no database."""

from __future__ import annotations

from compliance.surveillance.params import MARKET_PROFILES, MarkingTheCloseParams
from tests.compliance.helpers import run
from tests.compliance.test_detectors import close_rows
from tests.compliance.test_marking_block_build import build_then_push
from tests.compliance.test_marking_push_run import one_pace_run
from tests.compliance.test_marking_push_run_no_slower import block_not_held

ONLY = {"marking_the_close"}
ON = {"marking_the_close": {"close_gate_min_position": True}}


def test_the_floor_is_off_by_default_and_in_every_profile():
    assert MarkingTheCloseParams().close_gate_min_position is False
    for profile in MARKET_PROFILES.values():
        assert "close_gate_min_position" not in profile.get("marking_the_close", {})


def test_a_push_for_a_small_position_held_before_it_is_still_alerted():
    # 200,000 bought an hour before, then the 3,000,000 push (0.067x: test_detectors.py's smallest
    # position the hand rules alert): over the floor of 0.05x, alerted as without the rule.
    rows = close_rows(held_before=True, held_qty=200_000)
    (plain,) = run(rows, only=ONLY)
    (kept,) = run(rows, only=ONLY, params=ON)
    assert kept["order_ids"] == plain["order_ids"] and kept["score"] == plain["score"]
    assert kept["evidence"]["favoured_position_qty"] == 200_000 and kept["evidence"]["close_gate_min_position"] is True


def test_near_miss_a_client_fixing_order_with_the_residue_of_small_business():
    # A client's fixing order: 10,000 bought an hour before (0.003x the push, the residue of its
    # small business; our held-out generator's FIX07 held 0.003x), then the same push. The hand
    # rules read the residue as a one-way build whatever its size and the `otc` gate alerts the
    # push; under the floor it is not alerted.
    rows = close_rows(held_before=True, held_qty=10_000)
    (plain,) = run(rows, only=ONLY)
    assert plain["evidence"]["favoured_position_qty"] == 10_000 and plain["evidence"]["push_qty"] == 3_000_000
    assert plain["evidence"]["close_gate_score"] >= -1.125
    assert run(rows, only=ONLY, params=ON) == []
    # 150,000 is the floor itself (0.05 x 3,000,000): alerted
    assert len(run(close_rows(held_before=True, held_qty=150_000), only=ONLY, params=ON)) == 1


def test_the_canonical_marking_near_misses_stay_quiet_with_the_floor():
    # The `otc` profile (the gate, its run and its stake, as on main) with the floor on: no
    # position, the block not held, the run the price did not stand by and the execution parent
    # stay quiet; the block built and held and the run at one pace are still alerted.
    assert run(close_rows(held_before=False), only=ONLY, params=ON) == []
    assert run(block_not_held(), only=ONLY, params=ON) == []
    assert run(one_pace_run(quote_before_run="1.10100"), only=ONLY, params=ON) == []
    assert run(build_then_push([1700 + 170 * i for i in range(8)], 1_000_000), only=ONLY, params=ON) == []
    assert len(run(build_then_push([2000, 2020, 2040, 2060, 2080], 1_500_000), only=ONLY, params=ON)) == 1
    assert len(run(one_pace_run(), only=ONLY, params=ON)) == 1


def test_the_hand_rules_are_untouched():
    hand = {"close_gate": False}
    for rows in (close_rows(held_before=True, held_qty=10_000), close_rows(held_before=True, held_qty=200_000)):
        with_floor = run(rows, only=ONLY, params={"marking_the_close": {**hand, "close_gate_min_position": True}})
        assert with_floor == run(rows, only=ONLY, params={"marking_the_close": hand})
