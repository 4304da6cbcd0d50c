"""Marking the close: the learned gate and an execution parent's equal slices with no stake of
their own (``close_gate_parent_slices``, the 2026-12-07 03:00 round, wip/close53). Marking the close
is trading at the close to move the price for a position held; a benchmark order (a TWAP) slices
its parent into equal child orders on its own clock, and the position its earlier slices built is
the order being worked, not a stake the print is for. With the rule on the gate does not alert a
push whose account's orders the push's way over the 30 minutes before the print are at least that
many slices of one size when the favoured position, less what those slices bought before the push,
is under ``min_position`` x the push. Off by default and in every market profile. Pure: no
database."""

from __future__ import annotations

from compliance.surveillance.params import MARKET_PROFILES, MarkingTheCloseParams
from tests.compliance.helpers import close, market, q, run, surveil_restarted, ts
from tests.compliance.test_detectors import close_rows
from tests.compliance.test_marking_push_run import one_pace_run

ONLY = {"marking_the_close"}
ON = {"marking_the_close": {"close_gate_parent_slices": 5}}


def parent_into_print(*, held: int = 0, sizes: list[int] | None = None) -> list:
    """A parent of sixteen buys of 500,000 by C, one every 30 s (3,120-3,570 s), each lifting the
    market a pip, into the 3,600-s print at 1.10165 (with ``held``: bought at 10 s, an hour before;
    with ``sizes``: the children's sizes instead). Quotes run on after the print, so a restart can
    fall while the push waits ``after_s`` to see the flow after it."""
    sizes = sizes or [500_000] * 16
    rows = [q(0, "1.10000", "1.10010"), q(3070, "1.10000", "1.10010")]
    if held:
        rows += market(10, "h", "C", "buy", held, "1.10010")
    for i, qty in enumerate(sizes):
        t = 3120 + 30 * i
        rows += market(t, f"c{i}", "C", "buy", qty, f"{1.10010 + i * 0.0001:.5f}")
        rows.append(q(t + 1, f"{1.10000 + (i + 1) * 0.0001:.5f}", f"{1.10010 + (i + 1) * 0.0001:.5f}"))
    rows += [close(3600, "1.10165"), q(3700, "1.10150", "1.10160"), q(4000, "1.10150", "1.10160")]
    return rows


def test_the_rule_is_off_by_default_and_in_every_profile():
    assert MarkingTheCloseParams().close_gate_parent_slices is None
    for profile in MARKET_PROFILES.values():
        assert "close_gate_parent_slices" not in profile.get("marking_the_close", {})


def test_near_miss_a_parent_worked_into_the_print_from_flat_is_not_alerted():
    # No position before the parent: the push (its last ten slices) favours only the 3,000,000 its
    # own first six slices bought. The `otc` gate alerts it (its concentration is under the hand
    # rules' 5, the gate weighs it); with the rule it is the parent's schedule, not a mark.
    rows = parent_into_print()
    (plain,) = run(rows, only=ONLY)
    ev = plain["evidence"]
    assert ev["hand_stop"] == "min_concentration" and ev["close_gate_score"] >= ev["close_gate_threshold"]
    assert ev["favoured_position_qty"] == 3_000_000 and ev["push_qty"] == 5_000_000
    assert ev["purpose_schedule_orders"] == 16 and ev["purpose_schedule_size_cv"] == 0.0
    assert "close_gate_parent_slices" not in ev  # off: main's fields
    assert run(rows, only=ONLY, params=ON) == []


def test_the_same_slices_with_a_stake_held_before_them_are_still_alerted():
    # The minimal true case: the same parent after 1,000,000 bought an hour before (0.2x the push,
    # held): the print favours a stake of the account's own, so the gate judges it as without the rule.
    rows = parent_into_print(held=1_000_000)
    (plain,) = run(rows, only=ONLY)
    (kept,) = run(rows, only=ONLY, params=ON)
    assert kept["order_ids"] == plain["order_ids"] and kept["score"] == plain["score"]
    ev = kept["evidence"]
    assert ev["close_gate_parent_slices"] == 5 and ev["parent_stake_qty"] == 1_000_000
    assert ev["purpose_schedule_qty_before_push"] == 3_000_000


def test_clips_of_different_sizes_are_not_a_parent():
    # The same flow with children of 500,000 and 520,000 in turn: not one size, judged by the gate.
    rows = parent_into_print(sizes=[500_000 + 20_000 * (i % 2) for i in range(16)])
    assert len(run(rows, only=ONLY)) == 1
    assert len(run(rows, only=ONLY, params=ON)) == 1


def test_the_canonical_true_marks_are_still_alerted():
    # Three clips of 1,000,000 for a position of 1,000,000 (test_detectors.py's mark: three orders,
    # under the five a parent needs) and the run at one pace for a stake held before it (eight
    # buys of 300,000, one size, long 1,000,000 an hour before).
    for rows in (close_rows(held_before=True), one_pace_run()):
        assert len(run(rows, only=ONLY, params=ON)) == 1


def test_a_restart_while_the_push_waits_after_the_print_keeps_the_verdict():
    # The push waits `after_s` (300 s) after the 3,600-s print; the engine restarts at the 3,700-s
    # quote, from its snapshot (the pending alert's evidence carries the schedule's figures).
    for held, expected in ((0, 0), (1_000_000, 1)):
        rows = parent_into_print(held=held)
        at = [r["ts"] for r in sorted(rows, key=lambda r: r["ts"])].index(ts(3700))
        straight = surveil_restarted(rows, only=ONLY, params=ON)
        restarted = surveil_restarted(rows, only=ONLY, params=ON, restart_at=at)
        assert len(restarted) == expected
        assert [a["order_ids"] for a in restarted] == [a["order_ids"] for a in straight]


def test_the_hand_rules_are_untouched():
    hand = {"close_gate": False}
    for rows in (parent_into_print(), parent_into_print(held=1_000_000)):
        with_rule = run(rows, only=ONLY, params={"marking_the_close": {**hand, "close_gate_parent_slices": 5}})
        assert with_rule == run(rows, only=ONLY, params={"marking_the_close": hand})
