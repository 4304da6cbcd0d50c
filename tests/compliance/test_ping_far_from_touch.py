"""Ping orders priced away from the touch (2026-12-05 evening round 3, wip/qs24).

A ping probes for liquidity where it could trade: at or through the touch, inside the spread or
within a spread of it. An order parked ``max_spreads_behind`` (2) spreads or more behind the touch
on entry cannot find hidden liquidity: small orders pulled within a second there are fleeting
quotes (LOB dev 8's order-to-trade ``two_sided_far``), not pings.
"""

from __future__ import annotations

from tests.compliance.helpers import o, q, run


def _run_of(price: str):
    """8 small buys (5k) pulled 0.5 s after entry, 3 s apart, at ``price``; touch 1.10000/1.10010."""
    rows = [q(0, "1.10000", "1.10010")]
    for i in range(8):
        rows.append(o(3.0 * i + 1, "new", f"p{i}", "P", "buy", 5_000, price))
        rows.append(o(3.0 * i + 1.5, "cancel", f"p{i}", "P", "buy", 5_000, price))
    rows.append(q(60, "1.10000", "1.10010"))
    return rows


def test_small_orders_at_or_near_the_touch_are_pings():
    for price in ("1.10010", "1.10005", "1.10000", "1.09992"):  # at the ask, inside, at the bid, 0.8 spread behind
        alerts = run(_run_of(price), only={"ping_orders"})
        assert [a["alert_type"] for a in alerts] == ["ping_orders"], price


def test_small_orders_parked_spreads_behind_the_touch_are_not():
    assert run(_run_of("1.09975"), only={"ping_orders"}) == []  # 2.5 spreads behind the bid
    assert run(_run_of("1.09900"), only={"ping_orders"}) == []  # 10 spreads behind
    off = {"ping_orders": {"max_spreads_behind": None}}
    assert [a["alert_type"] for a in run(_run_of("1.09975"), only={"ping_orders"}, params=off)] == ["ping_orders"]
