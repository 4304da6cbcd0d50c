"""Marking the close: a push that opened before the window measured as one run from its first
order (``push_run_within_s``, with ``push_run_min_share``; the 2026-12-06 07:00 round, wip/close39).
Off by default (None): every test passes the parameter explicitly, and ``OFF`` also turns off the
gate's own run, on in the ``otc`` profile (test_marking_gate_push_run.py). Pure: no database."""

from __future__ import annotations

from compliance.surveillance.params import MARKET_PROFILES
from tests.compliance.helpers import close, market, q, run

ONLY = {"marking_the_close"}
ON = {"marking_the_close": {"push_run_within_s": 600}}
OFF = {"marking_the_close": {"push_run_within_s": None, "close_gate_push_run_s": None}}


def one_pace_run(*, other_qty: int = 0, quote_before_run: str = "1.10000") -> list:
    """Long 1,000,000 (bought at 10 s), then a run of eight buys of 300,000 by C, one a minute
    (3,150-3,570 s), each lifting the market a pip, into the 3,600-s print at 1.10085: the push
    inside the window (3,330-3,570 s, five orders) is the run's own pace, not a quickening (its
    rate 1.85x the run's three orders before it). With ``other_qty``, E buys that much after each
    of C's orders inside the window; ``quote_before_run`` is the bid in force when the run began."""
    bid = float(quote_before_run)
    rows = [q(0, "1.10000", "1.10010"), *market(10, "h", "C", "buy", 1_000_000, "1.10010")]
    rows.append(q(3100, f"{bid:.5f}", f"{bid + 0.0001:.5f}"))
    for i, t in enumerate(range(3150, 3600, 60)):
        rows += market(t, f"c{i}", "C", "buy", 300_000, f"{1.10010 + i * 0.0001:.5f}")
        if other_qty and t >= 3300:
            rows += market(t + 5, f"e{i}", "E", "buy", other_qty, f"{1.10010 + i * 0.0001:.5f}")
        rows.append(q(t + 1, f"{1.10000 + (i + 1) * 0.0001:.5f}", f"{1.10010 + (i + 1) * 0.0001:.5f}"))
    rows.append(close(3600, "1.10085"))
    return rows


def test_marking_the_close_a_run_at_one_pace_into_the_print_is_one_push():
    rows = one_pace_run()
    assert run(rows, only=ONLY, params=OFF) == []  # the run's first orders read as the account's pace
    assert "push_run_within_s" not in MARKET_PROFILES["otc"]["marking_the_close"]  # the default is off
    alerts = run(rows, only=ONLY, params=ON)
    assert len(alerts) == 1
    ev = alerts[0]["evidence"]
    assert ev["push_orders"] == 5 and ev["share_of_aggressive_volume"] == 1.0
    assert ev["push_run_began_s_before_print"] == 449.95  # the run's first fill, 3,150.05 s
    assert ev["concentration"] is None  # no pace of its own before the run
    assert ev["push_run_within_s"] == 600 and ev["push_run_min_share"] == 0.8


def test_marking_the_close_near_miss_a_run_that_was_not_the_market_into_the_print():
    # E buys 130,000 after each of C's five orders in the window: C's share of the aggressive
    # volume from the push's first order is 1,500,000 of 2,150,000 (0.70, under 0.8).
    rows = one_pace_run(other_qty=130_000)
    assert run(rows, only=ONLY, params=OFF) == []
    assert run(rows, only=ONLY, params=ON) == []
    # At a share of 0.6 asked, the same run is one push.
    at_06 = {"marking_the_close": {"push_run_within_s": 600, "push_run_min_share": 0.6}}
    assert len(run(rows, only=ONLY, params=at_06)) == 1
    # The `otc` default (the gate's run, which asks no share: the gate weighs it) alerts it: 70 % of
    # the volume into a print it moved, for a position held before the run, is a mark by the
    # definition (the lead's decision of 2026-12-06 21:20 UTC; test_marking_gate_push_run.py).
    assert len(run(rows, only=ONLY)) == 1


def test_marking_the_close_near_miss_a_run_the_price_at_the_print_does_not_stand_by():
    # The mid when the run began (1.10105) is above the mid at the print (1.10085): the run did
    # not carry the price its way, whatever the push inside the window did.
    rows = one_pace_run(quote_before_run="1.10100")
    assert run(rows, only=ONLY, params=OFF) == []
    assert run(rows, only=ONLY, params=ON) == []


def test_marking_the_close_near_miss_a_flow_one_way_from_earlier_than_the_run_allows():
    # The same run asked to have begun within 400 s of the print: it began 450 s before (a flow
    # running one way from earlier is an execution parent's, not a run for the print).
    rows = one_pace_run()
    assert run(rows, only=ONLY, params={"marking_the_close": {"push_run_within_s": 400}}) == []
