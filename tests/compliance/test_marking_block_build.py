"""Marking the close: a block build is the stake, not the pace (2026-12-05 evening night,
wip/close26). Pure: no database."""

from __future__ import annotations

from tests.compliance.helpers import market, pushed_print, run

ONLY = {"marking_the_close"}


def build_then_push(times: list[float], qty: int) -> list:
    """Bought ``qty`` in each of orders at ``times`` (all one way, nothing else traded), then three
    buys of 1,000,000 in the last three minutes (3,420-3,580 s) push the 3,600-s print up from a
    1.10000/1.10010 market to 1.10040 (3.2 bps)."""
    build = [row for i, t in enumerate(times) for row in market(t, f"b{i}", "C", "buy", qty, "1.10010")]
    return pushed_print(build, 3600)


def test_marking_the_close_a_position_built_in_one_block_and_held_is_the_stake_not_the_pace():
    # Five buys of 1,500,000 within 80 s (2,000-2,080 s), then held 1,340 s untouched before the
    # push (the limit order book's 61032 1124784 USDJPY mark): each counts as 1.5x the push's
    # largest order, 7,500,000 over the 1,800-s look-back, and the push would be only 4x that
    # "pace". The build is the position the print serves, not the account's way of trading.
    rows = build_then_push([2000, 2020, 2040, 2060, 2080], 1_500_000)
    alerts = run(rows, only=ONLY)
    assert len(alerts) == 1
    ev = alerts[0]["evidence"]
    assert ev["block_build"] is True and ev["concentration"] is None
    assert ev["aggressive_qty_before_push"] == 0 and ev["position_before_push"] == 7_500_000
    assert ev["build_orders"] == 5 and ev["build_began_s_before_push"] - ev["build_ended_s_before_push"] == 80
    # The rule off (every order before the push is its pace): concentration 4.0 < 5, not alerted.
    off = {"marking_the_close": {"block_build_span_s": None}}
    assert run(rows, only=ONLY, params=off) == []


def test_marking_the_close_near_miss_an_institutional_parent_sliced_one_way_through_the_hour():
    # The same stake bought one way in eight slices of 1,000,000 every 170 s (1,700-2,890 s, a
    # span of 1,190 s) and held 530 s: an execution parent working through the hour whose last
    # slices run into the print are its pace (3.75x), which the concentration test is for.
    rows = build_then_push([1700 + 170 * i for i in range(8)], 1_000_000)
    assert run(rows, only=ONLY) == []
    # Without the span limit the parent would be read as a block build and alerted.
    wide = {"marking_the_close": {"block_build_span_s": 3600.0}}
    alerts = run(rows, only=ONLY, params=wide)
    assert len(alerts) == 1 and alerts[0]["evidence"]["block_build"] is True
    # A block of the same five orders traded up to 200 s before the push (not held 300 s): its
    # pace, not a stake taken and held for the print.
    late = build_then_push([3140, 3160, 3180, 3200, 3220], 1_500_000)
    assert run(late, only=ONLY) == []
    assert len(run(late, only=ONLY, params={"marking_the_close": {"block_build_held_s": 0}})) == 1
