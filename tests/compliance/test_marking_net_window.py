"""Marking the close: the dominant push's window share counts every other account at its net
(2026-12-05 night, wip/close27). Pure: no database."""

from __future__ import annotations

from tests.compliance.helpers import close, market, q, run

ONLY = {"marking_the_close"}
OFF = {"marking_the_close": {"dominant_net_window": False}}


def push_beside(other: list[tuple[float, str]]) -> list:
    """Account C bought a 2,000,000 block at 1,000 s and held it, then buys 1,000,000 three times
    in the last three minutes (3,420-3,580 s) into the 3,600-s print; another account, O, trades
    1,000,000 at each of ``other`` (time, side) in the same window. The market stays at
    1.10000/1.10010 and the print is at the mid: the push did not move it (only a dominant push,
    an attempt, is alerted)."""
    rows = [q(0, "1.10000", "1.10010")]
    rows += market(1000, "blk", "C", "buy", 2_000_000, "1.10010")
    for i, t in enumerate((3420, 3500, 3580)):
        rows += market(t, f"c{i}", "C", "buy", 1_000_000, "1.10010")
    for i, (t, side) in enumerate(other):
        rows += market(t, f"o{i}", "O", side, 1_000_000, "1.10010" if side == "buy" else "1.10000")
    rows.sort(key=lambda r: r["ts"])
    rows.append(close(3600, "1.10005"))
    return rows


def test_marking_the_close_a_two_way_accounts_round_trips_do_not_dilute_a_dominant_push():
    # O buys and sells 3,000,000 each way around C's push (a market maker's churn: our held-out
    # 85106 RET002 GBPUSD beside ALG016's 5.1 M each way): gross, C's 3,000,000 is a third of the
    # window's aggressive volume (< 0.6); O's net is nil, so C was the market into the print.
    rows = push_beside([(3430, "buy"), (3440, "sell"), (3510, "sell"), (3520, "buy"), (3590, "buy"), (3595, "sell")])
    alerts = run(rows, only=ONLY)
    assert len(alerts) == 1
    ev = alerts[0]["evidence"]
    assert ev["dominant_push"] is True and ev["print_moved"] is False and ev["dominant_net_window"] is True
    assert ev["share_of_window_aggressive_volume"] == 1.0
    assert ev["share_of_window_gross_aggressive_volume"] == 0.3333
    # Counted gross (main before the rule): not dominant, and the unmoved print is not alerted.
    assert run(rows, only=ONLY, params=OFF) == []


def test_marking_the_close_near_miss_another_account_pushing_the_same_way():
    # O buys 3,000,000 one way in the same window: two accounts pushing, neither the market into
    # the print (0.5 of the window, net or gross), and the print did not move: not alerted.
    rows = push_beside([(3430, "buy"), (3510, "buy"), (3590, "buy")])
    assert run(rows, only=ONLY) == []
    assert run(rows, only=ONLY, params=OFF) == []
    # O selling 3,000,000 one way against the push counts in full as well: not alerted.
    assert run(push_beside([(3430, "sell"), (3510, "sell"), (3590, "sell")]), only=ONLY) == []
