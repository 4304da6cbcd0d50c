"""Marking the close on the FX books' market profile (``otc``): the learned gate at the operating
point chosen on the allowed books, log-odds -1.125 instead of its fitted -0.75 (2026-12-06 12:00
round, wip/close45; docs/surveillance-rounds.md). Pure: no database."""

from __future__ import annotations

import pytest

from compliance.surveillance.params import CLOSE_GATE, MARKET_PROFILES
from tests.compliance.helpers import close, market, q, run, surveil_restarted

ONLY = {"marking_the_close"}
HAND = {"marking_the_close": {"close_gate": False}}
FITTED = {"marking_the_close": {"close_gate": True, "close_gate_threshold": None}}


def absorbed_mark(after_ratio: float) -> list:
    """Account C buys 7,500,000 in five orders (2,000-2,080 s) and holds it, then pushes four buys
    of 600,000 (3,340-3,580 s) into the 3,600-s print, which the market absorbs (the print at the
    touch, 1.10010, not moved), and buys ``after_ratio`` x the push (2,400,000) again at 3,650 s."""
    build = [
        row
        for i, t in enumerate((2000, 2020, 2040, 2060, 2080))
        for row in market(t, f"b{i}", "C", "buy", 1_500_000, "1.10010")
    ]
    rows = [q(0, "1.10000", "1.10010"), *build, q(3300, "1.10000", "1.10010")]
    for i, t in enumerate((3340, 3420, 3500, 3580)):
        rows += [*market(t, f"c{i}", "C", "buy", 600_000, "1.10010"), q(t + 1, "1.10000", "1.10010")]
    rows.append(close(3600, "1.10010"))
    if after_ratio:
        rows += market(3650, "a0", "C", "buy", int(after_ratio * 2_400_000), "1.10010")
    rows.append(q(3950, "1.10000", "1.10010"))
    return rows


# A mark the market absorbed, with a small same-way tail after the print (0.3 x the push): the hand
# rules drop an unmoved dominant push whose flow goes on over 0.25 x the push after the print.
TAIL = absorbed_mark(0.3)
# Its near-miss: the same stake and push, but the account keeps buying half the push again after
# the print: an order worked through the print, not aimed at it.
WORKED_THROUGH = absorbed_mark(0.5)


def test_otc_profile_judges_marking_by_the_gate_at_the_operating_point():
    otc = MARKET_PROFILES["otc"]["marking_the_close"]
    assert otc["close_gate"] is True and otc["close_gate_threshold"] == -1.125
    assert "close_gate" not in MARKET_PROFILES["order_book"].get("marking_the_close", {})


def test_a_mark_the_market_absorbed_with_a_small_tail_is_caught_at_the_operating_point():
    assert run(TAIL, only=ONLY, params=HAND) == []  # the hand rules: dominant_max_continuation
    assert run(TAIL, only=ONLY, params=FITTED) == []  # the gate at its fitted -0.75
    (alert,) = run(TAIL, only=ONLY)  # otc: the gate at -1.125
    ev = alert["evidence"]
    assert ev["hand_stop"] == "dominant_max_continuation" and ev["print_moved"] is False
    assert ev["close_gate_threshold"] == -1.125
    assert -1.125 <= ev["close_gate_score"] < CLOSE_GATE["threshold"]
    assert ev["continuation_after_print"] == pytest.approx(0.3)
    assert alert["order_ids"] == ["c0", "c1", "c2", "c3"]


def test_near_miss_an_order_worked_through_the_print_stays_under_the_operating_point():
    assert run(WORKED_THROUGH, only=ONLY) == []
    assert run(WORKED_THROUGH, only=ONLY, params=HAND) == []
    # its score is under the threshold by the flow after the print (the gate's largest weight,
    # -1.95 per push after it): the tail's push with 0.2 x the push more
    lower = {"marking_the_close": {"close_gate_threshold": -2.0}}
    (near,) = run(WORKED_THROUGH, only=ONLY, params=lower)
    (mark,) = run(TAIL, only=ONLY, params=lower)
    assert near["evidence"]["close_gate_score"] < -1.125 <= mark["evidence"]["close_gate_score"]
    drop = (
        near["evidence"]["close_gate_contributions"]["continuation"]
        - mark["evidence"]["close_gate_contributions"]["continuation"]
    )
    assert drop == pytest.approx(near["evidence"]["close_gate_score"] - mark["evidence"]["close_gate_score"], abs=1e-3)


def test_the_order_book_profile_keeps_its_hand_rules_on_the_same_rows():
    assert run(TAIL, only=ONLY, market="order_book") == []
    assert run(TAIL, only=ONLY, market="order_book") == run(TAIL, only=ONLY, params=HAND, market="order_book")


def test_a_restart_while_the_push_waits_after_the_print_changes_nothing():
    # the gate's pushes wait after the print in the same pending entries as the hand rules': the
    # snapshot's shape is unchanged (STATE_VERSION 53)
    rows = [*TAIL, q(4000, "1.10000", "1.10010")]
    whole = surveil_restarted(rows, only=ONLY)
    assert len(whole) == 1 and whole[0]["evidence"]["close_gate_threshold"] == -1.125
    n = len(rows)
    for cut in (n // 3, n - 5, n - 3, n - 1):
        assert surveil_restarted(rows, only=ONLY, restart_at=cut) == whole
