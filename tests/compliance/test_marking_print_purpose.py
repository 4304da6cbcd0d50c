"""Marking the close: the account's purpose recorded with the gate's candidates, and the print gate
on it (``print_purpose_gate``, off by default; 2026-12-06 10:00 round, wip/close43). A push that
passes every hand test but the print's is alerted when the position it favours is a stake taken
for the print (held 300-3,600 s before the push) and not unwound after it. Pure."""

from __future__ import annotations

import orjson

from compliance.surveillance.engine import SurveillanceEngine
from compliance.surveillance.records import record_decoder
from compliance.surveillance.trade_detectors import MarkingTheCloseDetector
from tests.compliance.helpers import close, market, q, run, surveil_restarted

ONLY = {"marking_the_close"}
# the print gate applies where the hand rules judge (``close_gate`` off: the order book's profile)
ON = {"marking_the_close": {"close_gate": False, "print_purpose_gate": True}}


def unmoved_print(block_at: float, print_at: float, *, after: list | None = None) -> list:
    """C bought a stake of 7,500,000 in one block (five orders 20 s apart from ``block_at``), then
    three buys of 1,000,000 in the last three minutes before the print at ``print_at``; another
    account (D) bought 2,500,000 into the window before C's push (C's push is 0.55 of the window's
    pressure: not dominant). The market stays 1.10000/1.10010 and the print is at its mid: the
    print did not move. ``after``: C's rows after the print."""
    rows = [q(0, "1.10000", "1.10010")]
    for i in range(5):
        rows += market(block_at + 20 * i, f"b{i}", "C", "buy", 1_500_000, "1.10010")
    rows += market(print_at - 250, "d0", "D", "buy", 2_500_000, "1.10010")
    for i, t in enumerate((print_at - 180, print_at - 100, print_at - 20)):
        rows += market(t, f"c{i}", "C", "buy", 1_000_000, "1.10010")
    rows += [close(print_at, "1.10005"), *(after or []), q(print_at + 400, "1.10000", "1.10010")]
    return rows


# A stake taken 1,420 s before the push and held: the print gate's true case.
STAKE = unmoved_print(2000, 3600)
# Its near-misses: the same push unwound after the print (sold 2,000,000: 0.67 of the push), and
# a position the account has held since before the look-back (a standing book, not a stake).
UNWOUND = unmoved_print(2000, 3600, after=market(3650, "u0", "C", "sell", 2_000_000, "1.10000"))
STANDING = unmoved_print(100, 4500)


def candidates(rows, params=None):
    engine = SurveillanceEngine({"marking_the_close": {"gate_candidates": True, **(params or {})}}, only=ONLY)
    for row in sorted(rows, key=lambda r: r["ts"]):
        engine.process(record_decoder.decode(orjson.dumps(row)))
    engine.finish()
    (detector,) = [d for d in engine.detectors if isinstance(d, MarkingTheCloseDetector)]
    return {c["account"]: c for c in detector.candidates}


def test_the_accounts_purpose_is_recorded_with_the_candidates():
    c = candidates(STAKE)["C"]
    assert c["hand_stop"] == "print_move"  # every other hand test passed
    purpose = c["purpose"]
    assert purpose["purpose_position_age_s"] == 3420 - 2000  # since the block's first fill
    assert purpose["purpose_build_orders"] == 5 and purpose["purpose_build_span_s"] == 80
    assert purpose["purpose_push_qty"] == 3_000_000 and purpose["purpose_unwind_qty"] == 0
    assert purpose["purpose_schedule_orders"] == 8  # the block's five and the push's three
    assert candidates(UNWOUND)["C"]["purpose"]["purpose_unwind_qty"] == 2_000_000
    assert candidates(STANDING)["C"]["purpose"]["purpose_position_age_s"] >= 3600


def test_the_print_gate_is_off_by_default_and_the_hand_rules_stop_the_push_at_the_print():
    assert run(STAKE, only=ONLY, params={"marking_the_close": {"close_gate": False}}) == []
    assert run(STAKE, only=ONLY) == []  # otc's gate (wip/close45) scores it under its threshold too


def test_the_print_gate_alerts_a_stake_taken_for_the_print():
    (alert,) = run(STAKE, only=ONLY, params=ON)
    ev = alert["evidence"]
    assert alert["account"] == "C" and alert["order_ids"] == ["c0", "c1", "c2"]
    assert ev["print_purpose_gate"] is True and ev["print_moved"] is False and ev["dominant_push"] is False
    assert ev["purpose_position_age_s"] == 1420 and ev["purpose_unwind_ratio"] == 0


def test_the_print_gate_near_misses_an_unwind_and_a_standing_book():
    assert run(UNWOUND, only=ONLY, params=ON) == []
    assert run(STANDING, only=ONLY, params=ON) == []


def test_a_restart_while_the_push_waits_after_the_print_changes_nothing():
    # the unwind is counted in the waiting alert's evidence (the snapshot's shape is unchanged:
    # STATE_VERSION stays 53)
    for rows, expected in ((STAKE, 1), (UNWOUND, 0)):
        whole = surveil_restarted(rows, only=ONLY, params=ON)
        assert len(whole) == expected
        n = len(rows)
        for cut in (n // 2, n - 4, n - 2, n - 1):
            assert surveil_restarted(rows, only=ONLY, restart_at=cut, params=ON) == whole
