"""Best execution, 2026-12-05 late-night round (wip/lob30, docs/surveillance-rounds-lob30.md):

- a sweep whose first print is past the arrival touch but within the bar is still a walk of the
  venue's levels: each later fill (one instant, at or beyond the one before) is read from that
  first print, not from the arrival touch (``walk_from_marked_first``);
- "beyond the bar" is read at 1e-6 pip: a fill exactly 2 pips past the touch is at the tolerance
  (``bar_exact``)."""

from __future__ import annotations

from tests.compliance.helpers import q, run, surveil_restarted, sweep

BEST = {"best_execution_slippage"}
QUOTE = q(0, "1.10000", "1.10010")  # ask 1.10010, a 1-pip spread: the bar is 2 pips
BEFORE = {"best_execution_slippage": {"walk_from_marked_first": False, "bar_exact": False}}


def test_a_sweep_from_a_first_print_marked_within_the_bar_is_read_from_that_print():
    # first print 0.3 pip past the ask, the next level 2.3 past the arrival touch (2.0 past the
    # first print): the LOB's symmetric near-miss (LOB I 54491 CL83928, X9554)
    rows = [QUOTE, *sweep(["1.10013", "1.10033"])]
    assert run(rows, only=BEST) == []
    before = run(rows, only=BEST, params=BEFORE)  # the rule before: against the arrival touch
    assert len(before) == 1 and before[0]["evidence"]["slippage_pips"] == 2.3


def test_a_level_past_the_bar_from_the_first_print_is_still_alerted():
    # the near-miss of the rule: the next level 2.6 pips past the first print
    alerts = run([QUOTE, *sweep(["1.10013", "1.10039"])], only=BEST)
    assert len(alerts) == 1 and alerts[0]["evidence"]["slippage_pips"] == 2.6


def test_a_marked_sweep_priced_back_inside_is_assessed_against_the_arrival_touch():
    # 1.10013, 1.10033 (2.0 past the first print: at the bar), 1.10032: a level came back inside
    # the one before (the desk's marks, not the depth): from the break the fills are read from
    # the arrival touch (2.2 pips)
    alerts = run([QUOTE, *sweep(["1.10013", "1.10033", "1.10032"])], only=BEST)
    assert len(alerts) == 1 and alerts[0]["evidence"]["slippage_pips"] == 2.2
    assert alerts[0]["evidence"]["episode"]["detections"] == 1


def test_a_first_print_past_the_bar_keeps_every_fill_against_the_arrival_touch():
    alerts = run([QUOTE, *sweep(["1.10040", "1.10050", "1.10060"])], only=BEST)
    assert len(alerts) == 1 and alerts[0]["evidence"]["episode"]["detections"] == 3


def test_a_fill_exactly_at_the_bar_is_not_beyond_it():
    # 147.100 -> 147.120 is 2.000000000001 pips in binary floating point
    rows = [q(0, "147.090", "147.100", sym="USDJPY"), *sweep(["147.120"], sym="USDJPY")]
    assert run(rows, only=BEST) == []
    assert len(run(rows, only=BEST, params=BEFORE)) == 1
    # a tenth of a pip past the bar is beyond it
    rows = [q(0, "147.090", "147.100", sym="USDJPY"), *sweep(["147.121"], sym="USDJPY")]
    assert len(run(rows, only=BEST)) == 1


def test_a_restart_in_the_middle_of_a_marked_sweep_keeps_its_first_print():
    rows = [QUOTE, *sweep(["1.10013", "1.10033"])]
    # restored after the quote, the order and its first fill
    assert surveil_restarted(rows, only=BEST, restart_at=3) == []
