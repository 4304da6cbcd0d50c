"""Marking the close: the learned gate's concentration measured over the push's own run
(``close_gate_push_run_s``, the 2026-12-06 15:00 round, wip/close48). With the gate on (the
``otc`` profile), a push that opened before the 300-s window is measured as one run from its first
order, without ``push_run_min_share`` (the gate's share terms judge whether the account was the
market into the print). Off by default; on in the ``otc`` profile (600 s, with ``push_run_min_stake``
0.15: the lead's decision of 2026-12-06 21:20 UTC). These tests ask for the run without the stake
(``ON``) unless they say so. Pure: no database."""

from __future__ import annotations

from compliance.surveillance.params import MARKET_PROFILES, MarkingTheCloseParams
from tests.compliance.helpers import close, market, q, run
from tests.compliance.test_marking_push_run import one_pace_run

ONLY = {"marking_the_close"}
ON = {"marking_the_close": {"close_gate_push_run_s": 600, "push_run_min_stake": None}}
OFF = {"marking_the_close": {"close_gate_push_run_s": None}}


def test_the_gates_run_is_off_by_default_and_on_in_the_otc_profile_with_its_stake():
    assert MarkingTheCloseParams().close_gate_push_run_s is None
    otc = MARKET_PROFILES["otc"]["marking_the_close"]
    assert otc["close_gate_push_run_s"] == 600 and otc["push_run_min_stake"] == 0.15
    assert "close_gate_push_run_s" not in MARKET_PROFILES["order_book"].get("marking_the_close", {})


def test_a_push_that_opened_before_the_window_is_caught_by_the_gate_over_its_run():
    # Long 1,000,000, then eight buys of 300,000 one a minute (3,150-3,570 s) into the 3,600-s
    # print: inside the window the push's rate is 1.85x its own three orders before it, so the
    # gate reads a steady flow and stays under -1.125 (log-odds -1.16).
    rows = one_pace_run()
    assert run(rows, only=ONLY, params=OFF) == []
    alerts = run(rows, only=ONLY, params=ON)
    # The `otc` default (the run with its stake: 1,000,000 held before it, 0.67 x the push) alerts
    # it too, on the same figures.
    (default,) = run(rows, only=ONLY)
    assert default["evidence"]["close_gate_score"] == alerts[0]["evidence"]["close_gate_score"]
    assert len(alerts) == 1
    ev = alerts[0]["evidence"]
    assert ev["push_run_began_s_before_print"] == 449.95  # measured from the run's first fill
    assert ev["concentration"] is None  # no pace of its own before the run
    assert ev["close_gate_score"] == 2.4035 and ev["close_gate_threshold"] == -1.125
    assert ev["close_gate_push_run_s"] == 600
    assert ev["push_run_within_s"] is None  # the hand rules' run stays off


def test_the_gates_run_asks_no_share_the_gate_weighs_it():
    # E buys 130,000 after each of C's five orders in the window: C's share from the push's first
    # order is 0.70, under ``push_run_min_share`` (0.8), so the hand rules' run does not count it;
    # the gate's run does, and the gate's share terms weigh it (log-odds 1.74).
    rows = one_pace_run(other_qty=130_000)
    assert run(rows, only=ONLY, params={"marking_the_close": {"push_run_within_s": 600}}) == []
    alerts = run(rows, only=ONLY, params=ON)
    assert len(alerts) == 1
    assert alerts[0]["evidence"]["close_gate_score"] == 1.7352


def test_near_miss_a_run_the_price_at_the_print_does_not_stand_by():
    # The mid when the run began (1.10105) is above the mid at the print: not the run's price.
    assert run(one_pace_run(quote_before_run="1.10100"), only=ONLY, params=ON) == []


def test_near_miss_a_flow_one_way_from_earlier_than_the_run_allows():
    # The same run asked to have begun within 400 s of the print: it began 450 s before.
    assert run(one_pace_run(), only=ONLY, params={"marking_the_close": {"close_gate_push_run_s": 400}}) == []


def parent_through_the_hour() -> list:
    """Long 1,000,000, then an execution parent buying 300,000 a minute from 630 s to 3,570 s,
    the last eight orders each lifting the market a pip into the 3,600-s print at 1.10085."""
    rows = [q(0, "1.10000", "1.10010"), *market(10, "h", "C", "buy", 1_000_000, "1.10010")]
    for i, t in enumerate(range(630, 3600, 60)):
        step = i - 41 if t >= 3150 else -1
        rows += market(t, f"c{i}", "C", "buy", 300_000, f"{1.10010 + max(step, 0) * 0.0001:.5f}")
        if step >= 0:
            rows.append(q(t + 1, f"{1.10000 + (step + 1) * 0.0001:.5f}", f"{1.10010 + (step + 1) * 0.0001:.5f}"))
    rows.append(close(3600, "1.10085"))
    return rows


def test_near_miss_an_execution_parent_sliced_one_way_through_the_hour():
    # One way since 630 s with no gap over the window: a flow, not a run begun for the print; its
    # concentration stays the parent's pace (1.1) and the gate stays under its threshold (-1.55).
    rows = parent_through_the_hour()
    assert run(rows, only=ONLY, params=ON) == []
    seen = run(rows, only=ONLY, params={"marking_the_close": {**ON["marking_the_close"], "close_gate_threshold": -9.0}})
    assert len(seen) == 1
    ev = seen[0]["evidence"]
    assert ev["push_run_began_s_before_print"] is None and ev["concentration"] == 1.111
    assert ev["close_gate_score"] == -1.5519


def test_the_hand_rules_are_untouched():
    # ``close_gate`` off: the parameter is the gate's only; the hand rules read the run as pace.
    hand = {"marking_the_close": {"close_gate": False, "close_gate_push_run_s": 600}}
    assert run(one_pace_run(), only=ONLY, params=hand) == []
    assert run(one_pace_run(), only=ONLY, params=hand, market="order_book") == []
