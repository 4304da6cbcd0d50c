"""Ping orders, a message burst's small orders (2026-12-05 evening, wip/qs23).

An order entered or pulled while its account sent at least ``burst_messages`` new orders and
cancels on the instrument in the second up to it is one of the burst's messages (quote
stuffing's to judge), not a probe sent on its own; the burst's first messages, counted before it
reached that many, are its messages too. Our generator's and the other firm's stuffing bursts
carry a few small orders each: taken over several bursts they were alerted as a ping run.
"""

from __future__ import annotations

import orjson

from tests.compliance.helpers import o, q, run, surveil_restarted


def _surveil(rows, restart_at=None):
    return surveil_restarted(rows, only={"ping_orders"}, restart_at=restart_at)


def _pings(others: int, *, small_first: bool = True):
    """8 small buys (5k) pulled 0.2 s after entry, 3 s apart; around each, ``others`` large
    orders (500k) entered and cancelled by the same account within 0.3 s (2 messages each)."""
    rows = [q(0, "1.10000", "1.10010")]
    for i in range(8):
        t0 = 3.0 * i
        small_at = t0 if small_first else t0 + 0.25
        rows.append(o(small_at, "new", f"p{i}", "P", "buy", 5_000, "1.10010"))
        rows.append(o(small_at + 0.2, "cancel", f"p{i}", "P", "buy", 5_000, "1.10010"))
        for j in range(others):
            t = t0 + 0.01 + 0.28 * j / max(1, others)
            rows.append(o(t, "new", f"b{i}_{j}", "P", "sell", 500_000, "1.10030"))
            rows.append(o(t + 0.005, "cancel", f"b{i}_{j}", "P", "sell", 500_000, "1.10030"))
    rows.append(q(60, "1.10000", "1.10010"))
    return rows


def test_small_orders_probing_between_a_few_other_messages_are_pings():
    # 10 other orders around each ping: 22 messages in its second, under a burst
    alerts = run(_pings(10), only={"ping_orders"})
    assert [a["alert_type"] for a in alerts] == ["ping_orders"]
    assert alerts[0]["evidence"]["small_orders_cancelled"] == 8


def test_small_orders_inside_message_bursts_are_the_bursts_not_pings():
    for small_first in (True, False):  # at the burst's head (counted before it was one) or inside it
        rows = _pings(20, small_first=small_first)  # 42 messages in each second
        assert run(rows, only={"ping_orders"}) == [], small_first
        off = run(rows, only={"ping_orders"}, params={"ping_orders": {"burst_messages": None}})
        assert [a["alert_type"] for a in off] == ["ping_orders"], small_first


def test_a_restart_inside_a_burst_changes_nothing():
    """The last second's messages per account and symbol are in the snapshot (version 29)."""
    for rows in (_pings(20), _pings(10)):
        rows = sorted(rows, key=lambda r: r["ts"])
        plain = _surveil(rows)
        for cut in range(1, len(rows), 5):
            assert orjson.dumps(_surveil(rows, restart_at=cut)) == orjson.dumps(plain), cut
