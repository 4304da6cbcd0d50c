"""One depth, one level (``SpoofingParams.spoof_one_depth_bps``; 2026-12-07, wip/lob52; off by default,
on in the ``order_book`` profile since 2026-12-07 02:55 UTC).

A spoofer that adds its bait progressively places each order the same way behind the touch as it
then stands; when the touch moved between the orders they went in at two prices, which
``levels_as_placed`` counts as two levels (layering). With the rule on, the orders' depths behind
the touch at their own arrival decide: one depth is spoofing; a ladder (depths stepping away from
the first order) stays layering. The rule only names an alert's type: it raises none.
"""

from __future__ import annotations

import orjson

from tests.compliance.helpers import market, o, q, run
from tests.compliance.test_spoofing_baseline import _surveil
from tests.compliance.test_spoofing_lob_round import _moved, _waited

ON = {"spoofing": {"spoof_one_depth_bps": 0.01}}


def _progressive(depth_pips=(1.0, 1.0)):
    """Buys of 500k added 4 s apart, each ``depth_pips`` behind the bid quoted when it went in (the
    touch moves up 0.5 pip between them), a 100k market sell at 10 s, the buys cancelled 1 s later."""
    rows = []
    bid = 1.10000
    for i, depth in enumerate(depth_pips):
        b = bid + 0.00005 * i
        rows.append(q(4 * i, f"{b:.5f}", f"{b + 0.0001:.5f}"))
        rows.append(o(4 * i + 0.1, "new", f"s{i}", "S", "buy", 500_000, f"{b - depth * 0.0001:.5f}"))
    b = bid + 0.00005 * (len(depth_pips) - 1)
    rows += market(10, "real", "S", "sell", 100_000, f"{b:.5f}")
    for i in range(len(depth_pips)):
        rows.append(o(11 + 0.01 * i, "cancel", f"s{i}", "S", "buy", 500_000))
    rows.append(q(40, f"{b:.5f}", f"{b + 0.0001:.5f}"))
    return rows


def test_bait_added_at_one_depth_behind_a_moving_touch_is_spoofing_with_the_rule_on():
    rows = _progressive()
    off = run(rows, only={"spoofing"})
    assert [a["alert_type"] for a in off] == ["layering"]  # two prices placed: today's reading
    on = run(rows, only={"spoofing"}, params=ON)
    assert [a["alert_type"] for a in on] == ["spoofing"]
    ev = on[0]["evidence"]
    assert ev["price_levels"] == 2 and ev["depth_levels"] == 1 and ev["spoof_one_depth_bps"] == 0.01
    assert [c["placed_depth_bps"] for c in ev["cancelled_orders"]] == [0.909, 0.909]


def test_a_ladder_added_progressively_at_stepping_depths_stays_layering():
    """The near-miss: the same moving touch, the second order one pip deeper than the first."""
    on = run(_progressive((1.0, 2.0)), only={"spoofing"}, params=ON)
    assert [a["alert_type"] for a in on] == ["layering"]
    assert on[0]["evidence"]["depth_levels"] == 2


def test_a_ladder_placed_at_once_stays_layering():
    rows = _moved(["1.09990", "1.09985", "1.09980"], ["1.09990", "1.09985", "1.09980"])
    on = run(rows, only={"spoofing"}, params=ON)
    assert [a["alert_type"] for a in on] == ["layering"] and on[0]["evidence"]["depth_levels"] == 3
    # and a ladder moved onto one price (``levels_as_placed``) is still the ladder
    moved = _moved(["1.09990", "1.09985", "1.09980"], ["1.09980", "1.09980", "1.09980"])
    assert [a["alert_type"] for a in run(moved, only={"spoofing"}, params=ON)] == ["layering"]


def test_the_canonical_near_misses_stay_quiet_with_the_rule_on():
    """A bait that led an unrelated market order by minutes; a large order that sits and is
    withdrawn with nothing traded on the other side."""
    assert run(_waited(genuine="market"), only={"spoofing"}, params=ON) == []
    alone = [
        q(0, "1.10000", "1.10010"),
        o(1, "new", "big", "S", "buy", 5_000_000, "1.09990"),
        o(300, "cancel", "big", "S", "buy", 5_000_000, "1.09990"),
        q(400, "1.10000", "1.10010"),
    ]
    assert run(alone, only={"spoofing"}, params=ON) == []


def test_a_restart_anywhere_changes_nothing_with_the_rule_on():
    """Each order's arrival quote is in the snapshot already: no new state."""
    rows = _progressive()
    plain = _surveil(rows, params=ON)
    assert [a["alert_type"] for a in plain] == ["spoofing"]
    for cut in range(1, len(rows)):
        assert orjson.dumps(_surveil(rows, restart_at=cut, params=ON)) == orjson.dumps(plain)
