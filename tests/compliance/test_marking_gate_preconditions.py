"""Marking the close's learned gate under its preconditions (2026-12-06 13:20 round, wip/close47;
docs/surveillance-rounds.md): ``close_gate_print_moved`` (the print, or the mid at it, stood the
push's way of where the push began) and ``close_gate_position_favoured`` (the account holds a
position the print favours), the definition of the abuse that the gate may not override. Off by
default. The rows are test_detectors.py's near-misses the gate alerts on the ``otc`` profile
(-1.125). Pure: no database."""

from __future__ import annotations

from compliance.surveillance.params import MARKET_PROFILES, MarkingTheCloseParams
from tests.compliance.helpers import market, pushed_print, run
from tests.compliance.test_detectors import (
    close_rows,
    dominant_rows,
    opened_early_rows,
    print_against_push_rows,
    short_cover_rows,
)
from tests.compliance.test_marking_operating_point import TAIL

ONLY = {"marking_the_close"}
BOTH = {"marking_the_close": {"close_gate_print_moved": True, "close_gate_position_favoured": True}}
PRINT = {"marking_the_close": {"close_gate_print_moved": True}}
POSITION = {"marking_the_close": {"close_gate_position_favoured": True}}
HAND = {"marking_the_close": {"close_gate": False}}


def test_the_preconditions_are_off_by_default_and_in_every_profile():
    p = MarkingTheCloseParams()
    assert p.close_gate_print_moved is False and p.close_gate_position_favoured is False
    for profile in MARKET_PROFILES.values():
        marking = profile.get("marking_the_close", {})
        assert "close_gate_print_moved" not in marking and "close_gate_position_favoured" not in marking


def test_a_print_that_went_the_other_way_is_not_alerted_by_the_gate():
    # The print stood under where the push began (the mid 9 bps lower after it): not pushed. The
    # gate alerts it at -1.125 on the push's shape (window share, no flow after, concentration).
    (alert,) = run(print_against_push_rows(), only=ONLY)
    ev = alert["evidence"]
    assert ev["move_bps"] < 0 and ev["hand_stop"] == "print_move" and ev["close_gate_score"] >= -1.125
    assert run(print_against_push_rows(), only=ONLY, params=PRINT) == []
    assert run(print_against_push_rows(), only=ONLY, params=BOTH) == []
    # the position precondition alone does not stop it: the account is long 300,000 the push's way
    assert len(run(print_against_push_rows(), only=ONLY, params=POSITION)) == 1


def test_unmoved_prints_of_the_hand_rules_near_misses_are_not_alerted_by_the_gate():
    for rows in (
        short_cover_rows(),  # a short covered into an unmoved print
        dominant_rows(300_000, both_ways=True),  # a small long from business both ways, unmoved
        opened_early_rows("1.10005", moved=False),  # the bulk left the print where it was
    ):
        (alert,) = run(rows, only=ONLY)
        assert alert["evidence"]["move_bps"] == 0 and alert["evidence"]["hand_stop"] == "print_move"
        assert run(rows, only=ONLY, params=BOTH) == []
        assert run(rows, only=ONLY, params=HAND) == []


def test_a_push_for_no_position_is_not_alerted_by_the_gate():
    # Sold 3,000,000 two hours before, nothing bought since: the push up into the print cuts the
    # short; the print favours no position the account holds (favoured_position_qty <= 0).
    rows = pushed_print(market(10, "old", "C", "sell", 3_000_000, "1.10000"), 7600)
    alerts = run(rows, only=ONLY, params={"marking_the_close": {"close_gate_threshold": -3.0}})
    assert len(alerts) == 1 and alerts[0]["evidence"]["favoured_position_qty"] <= 0
    low_with = {"marking_the_close": {"close_gate_threshold": -3.0, "close_gate_position_favoured": True}}
    assert run(rows, only=ONLY, params=low_with) == []


def test_marks_the_gate_catches_still_alert():
    # A pushed print for a held position, and the absorbed mark the operating point was chosen
    # for (the print at the touch, 0.45 bps over the mid where the push began).
    for rows in (close_rows(held_before=True), TAIL):
        (plain,) = run(rows, only=ONLY)
        (kept,) = run(rows, only=ONLY, params=BOTH)
        assert kept["order_ids"] == plain["order_ids"] and kept["score"] == plain["score"]
        assert kept["evidence"]["close_gate_print_moved"] is True
        assert kept["evidence"]["close_gate_position_favoured"] is True


def test_the_hand_rules_are_untouched_by_the_preconditions():
    hand_with = {"marking_the_close": {"close_gate": False, "close_gate_print_moved": True}}
    for rows in (close_rows(held_before=True), dominant_rows(4_000_000), print_against_push_rows()):
        assert run(rows, only=ONLY, params=hand_with) == run(rows, only=ONLY, params=HAND)
