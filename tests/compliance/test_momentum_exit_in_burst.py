"""Momentum ignition: the exit filled inside the burst (2026-12-05 evening round, wip/mom22).
The account's resting order the other way that filled while its chain was forming (before the
chain ignited) counts toward the reversal, as one filled after it does: an exit resting where
the burst pushes is the textbook ignition. Not for a liquidity provider: an account whose resting
orders had filled in the ``two_way_window_s`` before the chain, or filled the chain's way while it
formed, trades passively both ways as its routine. The chains keep the exit, so the snapshot is
version 23."""

from __future__ import annotations

import orjson

from compliance.surveillance.params import MomentumIgnitionParams
from compliance.surveillance.records import record_decoder
from compliance.surveillance.state import STATE_VERSION
from tests.compliance.helpers import f, market, o, q, restarted_before, run
from tests.compliance.test_momentum_late_reversal import _quiet_path

ONLY = {"momentum_ignition"}
OFF = {"momentum_ignition": {"exit_in_burst": False}}


def burst_with_exit(*, quoting_before: bool = False, taking_before: bool = False, bid_filled: bool = False):
    """Three buys 2 s apart that move EURUSD 6 pips; a sell of 1.5 million resting at 1.10030
    (placed at 1 s, above the touch) fills at 2.5 s, between the second and third buy; the
    account sells 1 million more ten minutes later (a third of the burst: half with the exit).
    ``quoting_before``: the account's resting bid and offer (200,000 each) filled in the five
    minutes before the burst (a market maker); ``taking_before``: the same trades taken by market
    orders. ``bid_filled``: its resting bid filled at 3 s."""
    rows = _quiet_path(0)
    if taking_before:
        rows += market(-190.0, "qb", "M", "buy", 200_000, "1.10010") + market(
            -140.0, "qa", "M", "sell", 200_000, "1.10000"
        )
    if quoting_before:
        rows += [
            o(-200.0, "new", "qb", "M", "buy", 200_000, "1.10000"),
            f(-190.0, "qb", "M", "buy", 200_000, "1.10000"),
        ]
        rows += [
            o(-150.0, "new", "qa", "M", "sell", 200_000, "1.10010"),
            f(-140.0, "qa", "M", "sell", 200_000, "1.10010"),
        ]
    for i in range(3):
        rows += market(2.0 * i, f"m{i}", "M", "buy", 1_000_000, f"{1.10010 + 0.0002 * i:.5f}")
        rows.append(q(2.0 * i + 0.5, f"{1.10020 + 0.0002 * i:.5f}", f"{1.10030 + 0.0002 * i:.5f}"))
    rows += [o(1.0, "new", "x", "M", "sell", 1_500_000, "1.10030"), f(2.5, "x", "M", "sell", 1_500_000, "1.10030")]
    if bid_filled:
        rows += [o(2.8, "new", "b", "M", "buy", 100_000, "1.10040"), f(3.0, "b", "M", "buy", 100_000, "1.10040")]
    for t in range(10, 640, 20):
        rows.append(q(t, "1.10060", "1.10070"))
    rows += market(604.0, "rev", "M", "sell", 1_000_000, "1.10060")
    return rows


def test_the_exit_in_the_burst_counts_by_default():
    assert MomentumIgnitionParams().exit_in_burst is True


def test_an_exit_filled_inside_the_burst_counts_toward_the_reversal():
    (alert,) = run(burst_with_exit(), only=ONLY)
    ev = alert["evidence"]
    assert ev["exit_in_burst_order_ids"] == ["x"] and ev["exit_in_burst_qty"] == 1_500_000
    assert ev["reversal_qty"] == 2_500_000 and ev["reversal_fraction"] == round(2.5 / 3, 4)
    assert alert["order_ids"] == ["m0", "m1", "m2", "x", "rev"]
    # Without the rule only the sale after the burst counts: a third of it, no reversal
    assert run(burst_with_exit(), only=ONLY, params=OFF) == []


def test_near_miss_a_market_makers_passive_fills_are_its_routine():
    """The same burst and fills from an account whose resting bid and offer had filled in the
    five minutes before (each far under the two-way test's half of the burst), or whose resting
    bid filled inside the burst too: its passive sell is the other leg of its quotes, not an exit."""
    assert run(burst_with_exit(quoting_before=True), only=ONLY) == []
    assert run(burst_with_exit(bid_filled=True), only=ONLY) == []
    # The same trades before the burst taken by market orders: not quoting, the exit counts
    assert len(run(burst_with_exit(taking_before=True), only=ONLY)) == 1


def test_the_exit_survives_a_restart():
    rows = sorted(burst_with_exit(), key=lambda r: r["ts"])
    doc, restarted, rest = restarted_before(rows, "m2", only=ONLY)
    assert doc["version"] == STATE_VERSION >= 23
    for row in rest:
        restarted.process(record_decoder.decode(orjson.dumps(row)))
    (alert,) = restarted.take_alerts() + restarted.finish()
    assert alert.evidence["exit_in_burst_order_ids"] == ["x"]
