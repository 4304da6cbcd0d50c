"""Marking the close: one-way judged over the push when the window is two-way
(``one_sided_push_min_orders``, 2026-12-06 06:00 round, wip/close37; off by default). Pure: no database."""

from __future__ import annotations

from tests.compliance.helpers import market, pushed_print, run

ONLY = {"marking_the_close"}
ON = {"marking_the_close": {"one_sided_push_min_orders": 3}}


def held_then_other_business(sells: list[tuple[float, int]]) -> list:
    """Long 1,000,000 (bought at 10 s), then C's sells at the given (time, qty), then three buys of
    1,000,000 (3,420-3,580 s) push the 3,600-s print up from 1.10000/1.10010 to 1.10040 (3.2 bps)."""
    before = market(10, "h", "C", "buy", 1_000_000, "1.10010")
    before += [row for i, (t, qty) in enumerate(sells) for row in market(t, f"s{i}", "C", "sell", qty, "1.10000")]
    return pushed_print(before, 3600)


def test_marking_the_close_a_push_after_business_the_other_way_in_the_window_is_one_way():
    # A sell of 500,000 at 3,320 s, before the push began: the window is 2,500,000 net of
    # 3,500,000 (0.71, under 0.8), the push itself all buys.
    rows = held_then_other_business([(3320, 500_000)])
    assert run(rows, only=ONLY) == []  # off: the window as a whole is judged
    alerts = run(rows, only=ONLY, params=ON)
    assert len(alerts) == 1
    ev = alerts[0]["evidence"]
    assert ev["one_sided"] == 0.7143 and ev["push_one_sided"] == 1.0
    assert ev["push_orders"] == 3 and ev["position_before_push"] == 500_000


def test_marking_the_close_near_miss_a_push_two_way_inside_itself():
    # The same buys with sells of 700,000 between them (3,460 and 3,540 s): the account trades
    # both ways into the print (net 1,600,000 of 4,400,000 over the push, 0.36), on or off.
    rows = held_then_other_business([(3460, 700_000), (3540, 700_000)])
    assert run(rows, only=ONLY) == []
    assert run(rows, only=ONLY, params=ON) == []


def test_marking_the_close_near_miss_a_short_series_after_business_the_other_way():
    # The same three-order push, asked for a series of four: the window's two-way business keeps
    # it out (a pair or a short series after other business is that business's tail).
    rows = held_then_other_business([(3320, 500_000)])
    assert run(rows, only=ONLY, params={"marking_the_close": {"one_sided_push_min_orders": 4}}) == []
