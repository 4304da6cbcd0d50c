"""Marking the close: a run that slowed into the print is not one push (``push_run_no_slower``,
the 2026-12-06 18:00 round, wip/close49). A run of the account's own orders the push's way
(``push_run_within_s``, or the gate's ``close_gate_push_run_s``) is measured as one push only when
the push inside the window traded at least as fast as the run's orders before it. Off by default
and in every market profile. Pure: no database."""

from __future__ import annotations

from compliance.surveillance.params import MARKET_PROFILES, MarkingTheCloseParams
from tests.compliance.helpers import run
from tests.compliance.test_marking_block_build import build_then_push
from tests.compliance.test_marking_push_run import one_pace_run

ONLY = {"marking_the_close"}
# Every run parameter named, so the `otc` profile's gate run and stake do not leak in.
GATE_RUN = {"close_gate_push_run_s": 600, "push_run_min_stake": None}
HAND_RUN = {"push_run_within_s": 600, "push_run_min_stake": None}
NO_SLOWER = {"push_run_no_slower": True}
NO_RUN = {"close_gate_push_run_s": None, "push_run_min_stake": None}


def block_not_held() -> list:
    """test_marking_block_build.py's near-miss: five buys of 1,500,000 in 80 s (3,140-3,220 s),
    then three buys of 1,000,000 (3,420-3,580 s) into the 3,600-s print: the block traded up to
    200 s before the push and not held is the account's pace, not a stake held for the print."""
    return build_then_push([3140, 3160, 3180, 3200, 3220], 1_500_000)


def test_no_slower_is_off_by_default_and_in_every_market_profile():
    assert MarkingTheCloseParams().push_run_no_slower is False
    for profile in MARKET_PROFILES.values():
        assert "push_run_no_slower" not in profile.get("marking_the_close", {})


def test_a_run_at_one_pace_into_the_print_is_still_one_push():
    # Eight buys of 300,000 one a minute into the print: the push inside the window (1,500,000
    # over 270 s) is no slower than the run's three orders before it (900,000 over 180 s).
    for params in (HAND_RUN, GATE_RUN):
        alerts = run(one_pace_run(), only=ONLY, params={"marking_the_close": {**params, **NO_SLOWER}})
        assert len(alerts) == 1
        assert alerts[0]["evidence"]["push_run_began_s_before_print"] == 449.95


def test_near_miss_a_block_traded_before_the_push_and_not_held():
    # Read as one run, the block and the push are one push (the gate's run alerts it, log-odds
    # 1.74); the run slowed into the print (7,500,000 over the 280 s before the push, then
    # 3,000,000 over its 180 s), so its block is the account's pace and the test keeps it.
    rows = block_not_held()
    assert run(rows, only=ONLY) == []
    assert len(run(rows, only=ONLY, params={"marking_the_close": GATE_RUN})) == 1
    assert len(run(rows, only=ONLY, params={"marking_the_close": HAND_RUN})) == 1
    for params in (HAND_RUN, GATE_RUN):
        assert run(rows, only=ONLY, params={"marking_the_close": {**params, **NO_SLOWER}}) == []


def test_the_canonical_near_misses_stay_quiet_with_the_hand_run_and_no_slower():
    # test_marking_push_run.py's and test_marking_block_build.py's near-misses, on the `otc`
    # profile (the gate on) with ``push_run_within_s`` 600 (its share 0.8) and ``push_run_no_slower``.
    on = {"marking_the_close": {**HAND_RUN, **NO_SLOWER}}
    assert run(one_pace_run(other_qty=130_000), only=ONLY, params=on) == []  # not the market (0.70)
    assert run(one_pace_run(quote_before_run="1.10100"), only=ONLY, params=on) == []  # price not its way
    assert run(block_not_held(), only=ONLY, params=on) == []
    parent = build_then_push([1700 + 170 * i for i in range(8)], 1_000_000)
    assert run(parent, only=ONLY, params=on) == []  # an execution parent through the hour
    # and their true cases are still alerted
    assert len(run(build_then_push([2000, 2020, 2040, 2060, 2080], 1_500_000), only=ONLY, params=on)) == 1


def test_the_hand_rules_without_a_run_are_untouched():
    # No run asked: the parameter alone changes nothing.
    assert run(one_pace_run(), only=ONLY, params={"marking_the_close": {**NO_RUN, **NO_SLOWER}}) == []
    assert run(block_not_held(), only=ONLY, params={"marking_the_close": {**NO_RUN, **NO_SLOWER}}) == []
    hand = {"marking_the_close": {"close_gate": False, **HAND_RUN, **NO_SLOWER}}
    assert len(run(one_pace_run(), only=ONLY, params=hand)) == 1
    assert run(block_not_held(), only=ONLY, params=hand) == []
