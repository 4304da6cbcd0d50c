"""Marking the close: the print's distance from the market after it counts as the print's move
only for a push that was most of the window's pressure into the print, with
``reversal_min_window_share`` set (2026-12-05 late night, wip/close30; off by default since
wip/close31). Pure: no database."""

from __future__ import annotations

from tests.compliance.helpers import close, market, q, run

ONLY = {"marking_the_close"}
ON = {"marking_the_close": {"reversal_min_window_share": 0.5}}


def print_that_came_back(other: list[tuple[float, str]]) -> list:
    """Account C bought a 2,000,000 block at 1,000 s and held it, then buys 1,000,000 twice
    (3,420 s, 3,500 s) into the 3,600-s print; another account, O, trades 1,000,000 at each of
    ``other`` (time, side) in the same window. The market stands at 1.10000/1.10010 and prints
    at its mid: the print itself did not move; 300 s later the mid is 2.3 bps lower (the print
    stood above the market after it)."""
    rows = [q(0, "1.10000", "1.10010")]
    rows += market(1000, "blk", "C", "buy", 2_000_000, "1.10010")
    for i, t in enumerate((3420, 3500)):
        rows += market(t, f"c{i}", "C", "buy", 1_000_000, "1.10010")
    for i, (t, side) in enumerate(other):
        rows += market(t, f"o{i}", "O", side, 1_000_000, "1.10010" if side == "buy" else "1.10000")
    rows.sort(key=lambda r: r["ts"])
    rows.append(close(3600, "1.10005"))
    rows.append(q(3610, "1.09975", "1.09985"))
    rows.append(q(3950, "1.09975", "1.09985"))
    return rows


def test_marking_the_close_a_print_that_comes_back_after_the_accounts_push_is_alerted():
    # C was the window's only flow: the print standing 2.3 bps above the market after it is
    # the push coming back, alerted as a moved print.
    alerts = run(print_that_came_back([]), only=ONLY, params=ON)
    assert len(alerts) == 1
    ev = alerts[0]["evidence"]
    assert ev["print_moved"] is True and ev["share_of_window_aggressive_volume"] == 1.0
    assert ev["move_bps"] < ev["move_threshold_bps"] <= ev["reversal_after_print_bps"]
    assert ev["reversal_min_window_share"] == 0.5


def test_marking_the_close_near_miss_a_minority_push_in_a_print_others_sold_into():
    # O sells 3,000,000 one way in the same window (our held-out 47203 RET010, a 153,000 buy
    # beside a true mark's 5.9 M sell): C's 2,000,000 is 0.4 of the window's pressure, the
    # market's fall after the print is not C's push coming back. Not alerted with the rule on
    # (not dominant either); with the default (off since wip/close31: it lost true marks of
    # 0.34 on fresh books), alerted on the distance after the print alone.
    rows = print_that_came_back([(3430, "sell"), (3510, "sell"), (3590, "sell")])
    assert run(rows, only=ONLY, params=ON) == []
    off = run(rows, only=ONLY)
    assert len(off) == 1 and off[0]["account"] == "C"
    ev = off[0]["evidence"]
    assert ev["print_moved"] is True and ev["dominant_push"] is False
    assert ev["share_of_window_aggressive_volume"] == 0.4
