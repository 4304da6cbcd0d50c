"""Marking the close: one-way judged over a series of orders into the print when the window is
two-way (``one_sided_push_min_orders``, 5 by default since the 2026-12-06 06:00 round, wip/close37).
Pure: no database."""

from __future__ import annotations

from tests.compliance.helpers import close, market, pushed_print, q, run

ONLY = {"marking_the_close"}
# The hand rules (``otc`` judges marking the close by the learned gate since the 2026-12-06 12:00
# round, wip/close45: these tests are of the hand test itself).
HAND = {"marking_the_close": {"close_gate": False}}
ON = {"marking_the_close": {"close_gate": False, "one_sided_push_min_orders": 3}}  # the three-order push of these rows
OFF = {"marking_the_close": {"close_gate": False, "one_sided_push_min_orders": None}}


def held_then_other_business(sells: list[tuple[float, int]]) -> list:
    """Long 1,000,000 (bought at 10 s), then C's sells at the given (time, qty), then three buys of
    1,000,000 (3,420-3,580 s) push the 3,600-s print up from 1.10000/1.10010 to 1.10040 (3.2 bps)."""
    before = market(10, "h", "C", "buy", 1_000_000, "1.10010")
    before += [row for i, (t, qty) in enumerate(sells) for row in market(t, f"s{i}", "C", "sell", qty, "1.10000")]
    return pushed_print(before, 3600)


def series_after_a_sell() -> list:
    """Long 1,000,000, a sell of 500,000 at 3,320 s, then a series of five buys of 600,000 (3,420-3,580 s)
    push the 3,600-s print up from 1.10000/1.10010 to 1.10040: the window is 2,500,000 net of
    3,500,000 (0.71), the series all buys."""
    rows = [q(0, "1.10000", "1.10010"), *market(10, "h", "C", "buy", 1_000_000, "1.10010")]
    rows += [*market(3320, "s", "C", "sell", 500_000, "1.10000"), q(3400, "1.10000", "1.10010")]
    for i, t in enumerate((3420, 3460, 3500, 3540, 3580)):
        rows += market(t, f"c{i}", "C", "buy", 600_000, "1.10010")
        rows.append(q(t + 1, f"1.100{10 + 6 * i:02d}", f"1.100{20 + 6 * i:02d}"))
    rows.append(close(3600, "1.10040"))
    return rows


def test_marking_the_close_a_series_into_the_print_after_business_the_other_way_is_one_way():
    rows = series_after_a_sell()
    assert run(rows, only=ONLY, params=OFF) == []  # the window as a whole: 0.71, under 0.8
    alerts = run(rows, only=ONLY, params=HAND)  # the default: a series of at least 5 judged by itself
    assert len(alerts) == 1
    ev = alerts[0]["evidence"]
    assert ev["one_sided"] == 0.7143 and ev["push_one_sided"] == 1.0 and ev["push_orders"] == 5


def test_marking_the_close_a_push_after_business_the_other_way_in_the_window_is_one_way():
    # A sell of 500,000 at 3,320 s, before the push began: the window is 2,500,000 net of
    # 3,500,000 (0.71, under 0.8), the push itself all buys.
    rows = held_then_other_business([(3320, 500_000)])
    assert run(rows, only=ONLY, params=OFF) == []  # off: the window as a whole is judged
    assert run(rows, only=ONLY, params=HAND) == []  # the default asks a series of 5: three orders are not one
    alerts = run(rows, only=ONLY, params=ON)
    assert len(alerts) == 1
    ev = alerts[0]["evidence"]
    assert ev["one_sided"] == 0.7143 and ev["push_one_sided"] == 1.0
    assert ev["push_orders"] == 3 and ev["position_before_push"] == 500_000


def test_marking_the_close_near_miss_a_push_two_way_inside_itself():
    # The same buys with sells of 700,000 between them (3,460 and 3,540 s): the account trades
    # both ways into the print (net 1,600,000 of 4,400,000 over the push, 0.36), on or off.
    rows = held_then_other_business([(3460, 700_000), (3540, 700_000)])
    assert run(rows, only=ONLY, params=OFF) == []
    assert run(rows, only=ONLY, params=ON) == []


def test_marking_the_close_near_miss_a_short_series_after_business_the_other_way():
    # The same three-order push, asked for a series of four: the window's two-way business keeps
    # it out (a pair or a short series after other business is that business's tail).
    rows = held_then_other_business([(3320, 500_000)])
    assert (
        run(rows, only=ONLY, params={"marking_the_close": {"close_gate": False, "one_sided_push_min_orders": 4}}) == []
    )
