"""Momentum ignition: a two-way trader's turn is its routine (2026-12-05 early-morning round,
wip/mom15). When, in the ``two_way_window_s`` (300 s) before a burst's first order, the account
had both bought and sold at least ``two_way_fraction`` (0.5) of the burst's quantity each way (a
market maker, a two-way algorithm trading short and intense), its trade back after the burst is
the next leg of that flow, not the unwinding of a position the burst built, and it is not
alerted. On the independent book (another firm's) such algorithms' bursts were most of the false
alerts; an execution parent worked the other way before the burst is one-way and still counts."""

from __future__ import annotations

import orjson

from compliance.surveillance.params import MomentumIgnitionParams
from compliance.surveillance.records import record_decoder
from compliance.surveillance.state import STATE_VERSION
from tests.compliance.helpers import market, restarted_before, run
from tests.compliance.test_momentum_late_reversal import three_order_burst

ONLY = {"momentum_ignition"}
OFF = {"momentum_ignition": {"two_way_fraction": None}}


def before(sides, *, start: float = -240.0, step: float = 40.0, qty: int = 1_000_000):
    """The account's trades before the burst at the flat market's touch, ``step`` s apart."""
    rows = []
    for i, side in enumerate(sides):
        price = "1.10010" if side == "buy" else "1.10000"
        rows += market(start + step * i, f"b{i}", "M", side, qty, price)
    return rows


def burst_after(sides, **kw):
    """Three buys of 1 million that lift EURUSD 6 pips, sold a minute later, after ``sides``."""
    return three_order_burst(reversal_after=60.0) + before(sides, **kw)


def test_the_defaults_are_the_chosen_rule():
    p = MomentumIgnitionParams()
    assert p.two_way_window_s == 300.0 and p.two_way_fraction == 0.5


def test_a_burst_from_a_quiet_book_is_alerted():
    (alert,) = run(burst_after([]), only=ONLY)
    ev = alert["evidence"]
    assert alert["order_ids"] == ["m0", "m1", "m2", "rev"]
    assert ev["bought_before"] == 0 and ev["sold_before"] == 0


def test_near_miss_a_two_way_trader_bursts_and_trades_back():
    """In the five minutes before, it bought 2 million and sold 2 million (each at least half the
    burst's 3 million): its sale after the burst is its routine. The rule off, it was alerted."""
    rows = burst_after(["buy", "sell", "buy", "sell"])
    assert run(rows, only=ONLY) == []
    (old,) = run(rows, only=ONLY, params=OFF)
    assert old["order_ids"] == ["m0", "m1", "m2", "rev"] and old["evidence"]["bought_before"] is None


def test_a_one_way_parent_the_other_way_before_the_burst_is_no_two_way_flow():
    """An execution parent sold 4 million in slices before the buys: one-way, still alerted."""
    (alert,) = run(burst_after(["sell"] * 4), only=ONLY)
    assert alert["evidence"]["sold_before"] == 4_000_000 and alert["evidence"]["bought_before"] == 0


def test_two_way_flow_of_less_than_half_the_burst_each_way_is_alerted():
    (alert,) = run(burst_after(["buy", "sell", "buy", "sell"], qty=700_000), only=ONLY)
    assert alert["evidence"]["bought_before"] == 1_400_000


def test_two_way_flow_older_than_the_window_is_not_counted():
    (alert,) = run(burst_after(["buy", "sell", "buy", "sell"], start=-480.0, step=40.0), only=ONLY)
    assert alert["evidence"]["bought_before"] == 0 and alert["evidence"]["sold_before"] == 0


def test_the_flow_before_the_burst_is_read_across_a_restart():
    """A restart between the two-way flow and the burst: the snapshot keeps the account's recent
    fills (version 10), so the burst is still read as the two-way trader's."""
    rows = sorted(burst_after(["buy", "sell", "buy", "sell"]), key=lambda r: r["ts"])
    doc, restarted, rest = restarted_before(rows, "m0", only=ONLY)
    assert doc["version"] == STATE_VERSION >= 10
    for row in rest:
        restarted.process(record_decoder.decode(orjson.dumps(row)))
    assert restarted.take_alerts() + restarted.finish() == []
