"""Momentum ignition with short bursts and late reversals (2026-12-04, wip/surveillance8): a
chain of three aggressive orders is enough when the burst itself moved the price (the peak mid
from its first order to ``burst_settle_s`` after its last, against the spread and the
instrument's own volatility), and the reversal may come up to ``reversal_window_s`` after the
burst. Near-misses: the same burst in a flat market, a burst that is held, a move that comes
only minutes after the burst (someone else's flow or news), a reversal after the window. The
snapshot that carries the burst's own peak is version 5 (7 since the chains also keep the mid
when the reversal began); an older one is refused."""

from __future__ import annotations

import logging

import orjson

from compliance.consumers import SurveillanceConsumer
from compliance.surveillance.engine import SurveillanceEngine
from compliance.surveillance.params import MARKET_PROFILES, MomentumIgnitionParams
from compliance.surveillance.records import record_decoder
from compliance.surveillance.state import STATE_VERSION, state_dump
from tests.compliance.helpers import market, q, restarted_before, run
from tests.compliance.test_state import _tick

P = MomentumIgnitionParams()
ONLY = {"momentum_ignition"}


def _quiet_path(until: float, start: float = -1800.0):
    """A calm EURUSD before the burst (a quote every 20 s, +-0.5 pip): the volatility baseline."""
    return [
        q(t, f"{1.10000 + (0.00005 if k % 2 else 0):.5f}", f"{1.10010 + (0.00005 if k % 2 else 0):.5f}")
        for k, t in enumerate(range(int(start), int(until), 20))
    ]


def three_order_burst(*, move: str = "burst", reversal_after: float = 600.0, reverse: bool = True):
    """Three buys 2 s apart; the market moves 6 pips during the burst (``move="burst"``), not at
    all (``"none"``), or only 5 minutes after it (``"late"``); a sell of the whole burst
    ``reversal_after`` s after the last buy, at the moved price (or the flat one)."""
    rows = _quiet_path(0)
    for i in range(3):
        rows += market(
            2.0 * i, f"m{i}", "M", "buy", 1_000_000, f"{1.10010 + (0.0002 * i if move == 'burst' else 0):.5f}"
        )
        if move == "burst":
            rows.append(q(2.0 * i + 0.5, f"{1.10020 + 0.0002 * i:.5f}", f"{1.10030 + 0.0002 * i:.5f}"))
    # the market afterwards: held at the moved level (or flat), a quote every 20 s
    for t in range(10, int(4.0 + reversal_after) + 20, 20):
        level = 0.0006 if move == "burst" or (move == "late" and t >= 300) else 0.0
        rows.append(q(t, f"{1.10000 + level:.5f}", f"{1.10010 + level:.5f}"))
    if reverse:
        price = "1.10060" if move != "none" else "1.10000"
        rows += market(4.0 + reversal_after, "rev", "M", "sell", 3_000_000, price)
    return rows


def test_the_defaults_are_the_chosen_rule():
    assert P.min_aggressive_orders == 3 and P.reversal_window_s == 900.0
    assert P.burst_settle_s == 15.0 and P.min_move_sigma == 1.4


def test_three_orders_that_move_the_price_and_a_reversal_ten_minutes_later():
    (alert,) = run(three_order_burst(), only=ONLY)
    ev = alert["evidence"]
    assert ev["burst_orders"] == 3 and ev["reversal_order_ids"] == ["rev"]
    assert 590 <= ev["reversal_after_burst_s"] <= ev["reversal_window_s"]
    assert ev["move_bps"] >= ev["min_move_bps"] and ev["move_spreads"] >= ev["min_move_spreads"]
    assert ev["burst_peak_mid"] > 1.1005


def test_near_miss_the_same_burst_in_a_flat_market():
    assert run(three_order_burst(move="none"), only=ONLY) == []


def test_near_miss_a_burst_that_moves_the_price_and_is_held():
    assert run(three_order_burst(reverse=False), only=ONLY) == []


def test_near_miss_a_move_that_comes_minutes_after_the_burst():
    """The price moves 5 minutes after three buys in a flat market, and the account sells into it:
    the burst did not move the market (until the reversal the peak is 6 pips; the burst's is 0)."""
    assert run(three_order_burst(move="late"), only=ONLY) == []
    until_reversal = {"momentum_ignition": {"burst_settle_s": None}}
    assert len(run(three_order_burst(move="late"), only=ONLY, params=until_reversal)) == 1


def test_near_miss_a_reversal_after_the_window():
    # The hand rules' window (900 s); the `otc` profile's late turn into the move (1200 s, a turn
    # while the move still stands) is test_momentum_late_turn.py's.
    no_late = {"momentum_ignition": {"late_reversal_s": None}}
    assert run(three_order_burst(reversal_after=P.reversal_window_s + 120), only=ONLY, params=no_late) == []
    late = MARKET_PROFILES["otc"]["momentum_ignition"]["late_reversal_s"]
    assert run(three_order_burst(reversal_after=late + 120), only=ONLY) == []


def test_a_burst_waiting_for_its_late_reversal_survives_a_restart():
    rows = sorted(three_order_burst(), key=lambda r: r["ts"])
    doc, restarted, rest = restarted_before(rows, "rev", only=ONLY)
    assert doc["version"] == STATE_VERSION >= 7
    for row in rest:
        restarted.process(record_decoder.decode(orjson.dumps(row)))
    (alert,) = restarted.take_alerts() + restarted.finish()
    assert alert.evidence["burst_orders"] == 3 and alert.evidence["reversal_order_ids"] == ["rev"]


def _v4_snapshot_of(engine) -> bytes:
    """What the previous code wrote: version 4, the chains without the burst's peak and notional."""
    doc = orjson.loads(state_dump(engine))
    doc["version"] = 4
    for inst in doc["detectors"]["momentum_ignition"]["instances"].values():
        for key in ("chains", "awaiting"):
            for chain in inst["state"][key]:
                del chain["burst_peak"], chain["rev_notional"]
    return orjson.dumps(doc)


def test_a_version_4_snapshot_is_refused_and_the_stage_starts_with_empty_windows(caplog):
    rows = sorted(three_order_burst(), key=lambda r: r["ts"])
    cut = next(i for i, r in enumerate(rows) if r.get("order_id") == "rev")
    engine = SurveillanceEngine()
    for row in rows[:cut]:
        engine.process(record_decoder.decode(orjson.dumps(row)))
    with caplog.at_level(logging.ERROR, logger="compliance.consumers"):
        consumer = SurveillanceConsumer(owners={}, contract_sizes={}, record=False, state=_v4_snapshot_of(engine))
    assert f"snapshot version 4, this code reads version {STATE_VERSION}" in consumer.restore_report["discarded"]
    assert "saved windows discarded, starting afresh" in caplog.text
    assert consumer.engine.units["momentum_ignition"].chains == {}
    assert consumer.handle(_tick(5)) == []
