"""Momentum ignition: the burst ends at its first pause (2026-12-04 last-evening round,
wip/mom11). Once a chain has ignited, same-way orders after a pause longer than
``burst_pause_s`` are the account carrying on, not the burst: the move must be the burst's own
(and the whole one-way run's), and the reversal must cover the run. Before, three quick child
orders and minutes of slicing made one "burst" whose move was the market's over all of it. The
chains keep where the burst ended, so the snapshot is version 8."""

from __future__ import annotations

import orjson

from compliance.surveillance.params import MomentumIgnitionParams
from compliance.surveillance.records import record_decoder
from compliance.surveillance.state import STATE_VERSION
from tests.compliance.helpers import market, q, restarted_before, run
from tests.compliance.test_momentum_late_reversal import _quiet_path

ONLY = {"momentum_ignition"}
OLD = {"momentum_ignition": {"burst_pause_s": None}}


def burst_pause_more_then_sale():
    """Three buys 2 s apart that move EURUSD 6 pips, held; a 20-s pause; two more buys 2 s apart
    at the moved price; the account sells all five ten minutes later at the moved price."""
    rows = _quiet_path(0)
    for i in range(3):
        rows += market(2.0 * i, f"m{i}", "M", "buy", 1_000_000, f"{1.10010 + 0.0002 * i:.5f}")
        rows.append(q(2.0 * i + 0.5, f"{1.10020 + 0.0002 * i:.5f}", f"{1.10030 + 0.0002 * i:.5f}"))
    for i in range(2):
        rows += market(24.0 + 2.0 * i, f"c{i}", "M", "buy", 1_000_000, "1.10070")
    for t in range(10, 660, 20):
        rows.append(q(t, "1.10060", "1.10070"))
    rows += market(630.0, "rev", "M", "sell", 5_000_000, "1.10060")
    return rows


def slicing_then_sale():
    """An execution algorithm working a parent: three child buys 2 s apart, then one every 20 s
    for five minutes, while the market drifts up 10 pips at its own pace (a quote every 5 s);
    then it sells the parent. The first three children did not move the price."""
    rows = _quiet_path(0)
    for i in range(3):
        rows += market(2.0 * i, f"m{i}", "M", "buy", 500_000, "1.10010")
    for k, t in enumerate(range(24, 324, 20)):
        rows += market(float(t), f"s{k}", "M", "buy", 500_000, f"{1.10010 + 0.0010 * t / 320:.5f}")
    for t in range(1, 400, 5):
        level = 0.0010 * min(t, 320) / 320
        rows.append(q(t, f"{1.10000 + level:.5f}", f"{1.10010 + level:.5f}"))
    rows += market(400.0, "rev", "M", "sell", 9_000_000, "1.10100")
    return rows


def test_the_burst_ends_at_its_first_pause_by_default():
    p = MomentumIgnitionParams()
    assert p.burst_pause_s == p.max_gap_s == 10.0


def test_a_burst_with_a_pause_and_a_reversal_of_the_whole_run_alerts():
    (alert,) = run(burst_pause_more_then_sale(), only=ONLY)
    ev = alert["evidence"]
    assert ev["burst_orders"] == 3 and ev["carried_on_orders"] == 2
    assert ev["carried_on_qty"] == 2_000_000 and ev["reversal_fraction"] == 1.0
    assert ev["move_bps"] >= ev["min_move_bps"] and ev["run_move_bps"] >= ev["move_bps"]
    assert alert["order_ids"] == ["m0", "m1", "m2", "c0", "c1", "rev"]


def test_the_reversal_must_cover_what_the_account_carried_on_with():
    """The same burst, sold 2 million of the 5 bought (two thirds of the burst, two fifths of the
    run: the account still holds most of the position) is not a reversal; 3 million is."""
    for qty, alerts in ((2_000_000, 0), (3_000_000, 1)):
        rows = [r for r in burst_pause_more_then_sale() if r.get("order_id") != "rev"]
        rows += market(630.0, "rev", "M", "sell", qty, "1.10060")
        assert len(run(rows, only=ONLY)) == alerts


def test_near_miss_slicing_after_three_quick_child_orders():
    """The old rule saw one 18-order "burst" of five minutes and the market's drift over all of it
    as its move; the burst (the first three children) moved nothing."""
    assert run(slicing_then_sale(), only=ONLY) == []
    (old,) = run(slicing_then_sale(), only=ONLY, params=OLD)
    assert old["evidence"]["burst_orders"] == 18


def test_where_the_burst_ended_survives_a_restart():
    rows = sorted(burst_pause_more_then_sale(), key=lambda r: r["ts"])
    doc, restarted, rest = restarted_before(rows, "c1", only=ONLY)
    assert doc["version"] == STATE_VERSION >= 8
    for row in rest:
        restarted.process(record_decoder.decode(orjson.dumps(row)))
    (alert,) = restarted.take_alerts() + restarted.finish()
    assert alert.evidence["burst_orders"] == 3 and alert.evidence["carried_on_orders"] == 2
