"""Momentum ignition: the move is the crowd's (2026-12-05 early-morning round, wip/mom15). While
the burst went on (to ``burst_settle_s`` after its last order) the other accounts bought (sold)
aggressively at least ``crowd_multiple`` (3) times the burst's quantity: the account traded with
a market others were moving, it did not move it, and it is not alerted. A burst that moved the
market on its own, with the crowd quiet or trading before or after it, is alerted as before."""

from __future__ import annotations

import orjson

from compliance.surveillance.params import MomentumIgnitionParams
from compliance.surveillance.records import record_decoder
from compliance.surveillance.state import STATE_VERSION
from tests.compliance.helpers import market, restarted_before, run
from tests.compliance.test_momentum_late_reversal import three_order_burst

ONLY = {"momentum_ignition"}
OFF = {"momentum_ignition": {"crowd_multiple": None}}


def burst_with_crowd(times=(1.0, 3.0, 5.0), qty=4_000_000):
    """Three buys of 1 million that lift EURUSD 6 pips, sold a minute later; another account
    buys ``qty`` at market at each of ``times``."""
    rows = three_order_burst(reversal_after=60.0)
    for i, t in enumerate(times):
        rows += market(t, f"c{i}", "CROWD", "buy", qty, "1.10030")
    return rows


def test_the_default_is_the_chosen_rule():
    assert MomentumIgnitionParams().crowd_multiple == 3.0


def test_a_burst_that_moved_the_market_on_its_own_is_alerted():
    (alert,) = run(burst_with_crowd(times=()), only=ONLY)
    assert alert["order_ids"] == ["m0", "m1", "m2", "rev"] and alert["evidence"]["crowd_qty"] == 0


def test_near_miss_the_crowd_bought_four_times_the_burst_beside_it():
    """12 million bought by another account during the 3-million burst: the move is the crowd's.
    The rule off, it was alerted."""
    assert run(burst_with_crowd(), only=ONLY) == []
    (old,) = run(burst_with_crowd(), only=ONLY, params=OFF)
    assert old["order_ids"] == ["m0", "m1", "m2", "rev"] and old["evidence"]["crowd_qty"] is None


def test_a_crowd_of_less_than_three_times_the_burst_is_alerted():
    (alert,) = run(burst_with_crowd(qty=2_000_000), only=ONLY)
    assert alert["evidence"]["crowd_qty"] == 6_000_000


def test_the_crowd_before_the_burst_or_after_it_settled_does_not_count():
    (alert,) = run(burst_with_crowd(times=(-60.0, -30.0, 40.0)), only=ONLY)
    assert alert["evidence"]["crowd_qty"] == 0


def test_the_crowd_is_read_across_a_restart():
    """A restart after the crowd's first two buys and the account's first two: the snapshot keeps
    the symbol's aggressive volume and where it stood when the chain began (version 10)."""
    rows = sorted(burst_with_crowd(), key=lambda r: r["ts"])
    doc, restarted, rest = restarted_before(rows, "m2", only=ONLY)
    assert doc["version"] == STATE_VERSION >= 10
    for row in rest:
        restarted.process(record_decoder.decode(orjson.dumps(row)))
    assert restarted.take_alerts() + restarted.finish() == []
