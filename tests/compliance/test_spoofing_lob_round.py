"""Spoofing on an exchange's order book (2026-12-05 afternoon, wip/spoof20).

- The genuine order waited in the queue (``quiet_lead_to_order_arrival``): a quiet account's
  bait that went in with a small resting limit on the other side stays up until the market comes
  to that limit, minutes later; its lead is measured to the limit's arrival, not to its fill. A
  bait that led an unrelated market order by minutes, or a busy account's old resting order, is
  not tied to the fill.
- Levels as placed (``levels_as_placed``): a spoofer moves its bait back from an approaching
  touch; the orders' levels are the prices they went in at, so two orders placed at one price and
  moved back by different steps are spoofing, and a ladder moved onto one price is layering.
"""

from __future__ import annotations

import orjson

from tests.compliance.helpers import f, market, o, parked_cancels, q, run
from tests.compliance.test_spoofing_baseline import _surveil

OLD = {"quiet_lead_to_order_arrival": False, "levels_as_placed": False}


def _waited(*, genuine="limit", acct="S"):
    """A 1m buy 1 pip behind the touch at 500 s; a 100k sell limit at the ask 2 s later that rests
    until the market takes it at 620 s (``genuine="market"``: a market sell at 620 s instead);
    the buy cancelled 2 s after the fill."""
    rows = [
        q(490, "1.10000", "1.10010"),
        o(500, "new", "s0", acct, "buy", 1_000_000, "1.09990"),
    ]
    if genuine == "limit":
        rows += [
            o(502, "new", "real", acct, "sell", 100_000, "1.10010"),
            f(620, "real", acct, "sell", 100_000, "1.10010"),
        ]
    else:
        rows += market(620 - 0.05, "real", acct, "sell", 100_000, "1.10000")
    rows += [o(622, "cancel", "s0", acct, "buy", 1_000_000, "1.09990"), q(660, "1.10000", "1.10010")]
    return rows


def test_a_quiet_accounts_bait_up_while_its_genuine_limit_waited_is_alerted():
    alerts = run(_waited(), only={"spoofing"})
    assert [a["alert_type"] for a in alerts] == ["spoofing"]
    ev = alerts[0]["evidence"]
    assert ev["lead_before_fill_s"] == 120.0 and ev["max_lead_s"] == 30.0
    assert ev["lead_to_order_arrival"] is True and ev["quiet_account"]["quiet"]
    assert run(_waited(), only={"spoofing"}, params={"spoofing": OLD}) == []


def test_a_bait_that_led_a_market_order_by_two_minutes_is_not_alerted():
    assert run(_waited(genuine="market"), only={"spoofing"}) == []


def test_a_busy_accounts_old_resting_order_is_not_alerted():
    """Two cancels in the 600 s before the fill: the bait's lead stays 30 s to the fill."""
    assert run(parked_cancels([300, 400]) + _waited(), only={"spoofing"}) == []


def _moved(prices_placed, prices_moved):
    """Buys placed behind the touch at ``prices_placed``, moved to ``prices_moved`` (modify), a
    100k market sell fill at 10 s, the buys cancelled 1 s later."""
    rows = [q(0, "1.10000", "1.10010")]
    for i, price in enumerate(prices_placed):
        rows.append(o(0.1 * i, "new", f"s{i}", "S", "buy", 500_000, price))
    for i, price in enumerate(prices_moved):
        if price != prices_placed[i]:
            rows.append(o(5 + 0.1 * i, "modify", f"s{i}", "S", "buy", 500_000, price))
    rows += market(10, "real", "S", "sell", 100_000, "1.10000")
    for i, price in enumerate(prices_moved):
        rows.append(o(11 + 0.01 * i, "cancel", f"s{i}", "S", "buy", 500_000, price))
    rows.append(q(40, "1.10000", "1.10010"))
    return rows


def test_two_orders_at_one_price_moved_apart_are_spoofing():
    rows = _moved(["1.09990", "1.09990"], ["1.09985", "1.09980"])
    alerts = run(rows, only={"spoofing"})
    assert [a["alert_type"] for a in alerts] == ["spoofing"]
    ev = alerts[0]["evidence"]
    assert ev["price_levels"] == 1 and ev["levels_as_placed"] is True
    assert [c["placed_price"] for c in ev["cancelled_orders"]] == [1.0999, 1.0999]
    assert [a["alert_type"] for a in run(rows, only={"spoofing"}, params={"spoofing": OLD})] == ["layering"]


def test_a_ladder_moved_onto_one_price_is_layering():
    rows = _moved(["1.09990", "1.09985", "1.09980"], ["1.09980", "1.09980", "1.09980"])
    alerts = run(rows, only={"spoofing"})
    assert [a["alert_type"] for a in alerts] == ["layering"] and alerts[0]["evidence"]["price_levels"] == 3
    assert [a["alert_type"] for a in run(rows, only={"spoofing"}, params={"spoofing": OLD})] == ["spoofing"]


def test_a_restart_anywhere_changes_nothing():
    """The fill's order arrival and each order's placed price are in the snapshot (version 20)."""
    for rows in (_waited(), _moved(["1.09990", "1.09990"], ["1.09985", "1.09980"])):
        plain = _surveil(rows)
        assert len(plain) == 1
        for cut in range(1, len(rows)):
            assert orjson.dumps(_surveil(rows, restart_at=cut)) == orjson.dumps(plain)
