"""Spoofing, one order's partial fills are one trade (2026-12-05 night, wip/spoof27).

``episode_per_order``: an exchange reports an order that fills in parts as several executions.
The cancels that follow different partial fills of one genuine order are one episode (read from
its latest fill, the lead counted to its first, the size ratio against the quantity the order
filled over them): the limit order book's ladders pulled at once after a genuine order filled in
two parts were split into a one-order 'spoofing' alert beside the 'layering' one.
"""

from __future__ import annotations

import orjson

from tests.compliance.helpers import f, o, q, run
from tests.compliance.test_spoofing_baseline import _surveil


def _ladder(*, one_order=True):
    """Three sells 2-4 pips behind the ask at 1.5, 10 and 20 s; a 100k buy limit at the bid at
    30 s filled 60k at 31 s and 40k at 32 s (``one_order=False``: two buy limits, one filled at
    31 s, the other at 32 s); the three sells pulled together at 34 s. The first sell led the
    first fill by 29.5 s and the second by 30.5 s (past ``max_lead_s``)."""
    rows = [q(0, "1.10000", "1.10010")]
    ladder = [("l0", 1.5, "1.10030"), ("l1", 10, "1.10040"), ("l2", 20, "1.10050")]
    rows += [o(t, "new", oid, "S", "sell", 1_000_000, px) for oid, t, px in ladder]
    if one_order:
        rows += [
            o(30, "new", "real", "S", "buy", 100_000, "1.10000"),
            f(31, "real", "S", "buy", 60_000, "1.10000"),
            f(32, "real", "S", "buy", 40_000, "1.10000"),
        ]
    else:
        rows += [
            o(30, "new", "real1", "S", "buy", 60_000, "1.10000"),
            o(30.5, "new", "real2", "S", "buy", 40_000, "1.10000"),
            f(31, "real1", "S", "buy", 60_000, "1.10000"),
            f(32, "real2", "S", "buy", 40_000, "1.10000"),
        ]
    rows += [o(34, "cancel", oid, "S", "sell", 1_000_000, px) for oid, _t, px in ladder]
    rows.append(q(70, "1.10000", "1.10010"))
    return rows


def test_a_ladder_pulled_after_one_orders_two_partial_fills_is_one_layering_alert():
    alerts = run(_ladder(), only={"spoofing"})
    assert [a["alert_type"] for a in alerts] == ["layering"]
    ev = alerts[0]["evidence"]
    assert ev["price_levels"] == 3 and len(ev["cancelled_orders"]) == 3
    assert ev["fill"]["qty"] == 100_000 and ev["fill"]["partial_fills"] == 2  # the order's fills
    assert ev["size_ratio"] == 30.0
    assert ev["lead_before_fill_s"] == 29.5  # to the order's first fill
    assert [c["cancel_after_fill_s"] for c in ev["cancelled_orders"]] == [2.0, 2.0, 2.0]  # from its latest
    # one episode per execution report (the rule off): the first sell alone is a 'spoofing'
    off = run(_ladder(), only={"spoofing"}, params={"spoofing": {"episode_per_order": False}})
    assert sorted(a["alert_type"] for a in off) == ["layering", "spoofing"]


def test_two_orders_filled_one_after_the_other_stay_two_episodes():
    """The near-miss of the rule: two genuine orders are two trades, each with its own episode."""
    alerts = run(_ladder(one_order=False), only={"spoofing"})
    assert sorted(a["alert_type"] for a in alerts) == ["layering", "spoofing"]
    assert all(a["evidence"]["fill"]["partial_fills"] == 1 for a in alerts)


def test_a_restart_anywhere_changes_nothing():
    """The merged episode's first fill is in the snapshot (version 37)."""
    for rows in (_ladder(), _ladder(one_order=False)):
        plain = _surveil(rows)
        for cut in range(1, len(rows)):
            assert orjson.dumps(_surveil(rows, restart_at=cut)) == orjson.dumps(plain)
