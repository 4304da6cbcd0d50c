"""Momentum ignition: a late turn into the move (2026-12-06 12:00 round, wip/mom45; off by default,
1200 s in the ``otc`` profile by the lead's decision of 2026-12-06 21:30 UTC). With
``late_reversal_s`` the reversal may complete up to that long after the burst instead of
``reversal_window_s`` (900 s), but a turn completed after ``reversal_window_s`` is alerted only
when the account turned into the move the burst made: the mid still held ``late_min_move_left``
(0.5) of the move when it began to turn, and the turn's price stood ``late_min_capture`` (0) of
the move beyond the burst's. Near-miss: the same late turn once the move has faded (a held
position cut). The rule adds no state: a burst waiting for its late turn survives a restart under
the current ``STATE_VERSION``."""

from __future__ import annotations

import orjson

from compliance.surveillance.engine import SurveillanceEngine
from compliance.surveillance.params import MomentumIgnitionParams
from compliance.surveillance.records import record_decoder
from compliance.surveillance.state import STATE_VERSION, state_dump, state_load
from tests.compliance.helpers import market, q, run
from tests.compliance.test_momentum_late_reversal import _quiet_path

ONLY = {"momentum_ignition"}
ON = {"momentum_ignition": {"late_reversal_s": 1200.0}}
OFF = {"momentum_ignition": {"late_reversal_s": None}}


def late_turn(*, reversal_after: float = 1000.0, faded: bool = False, qty: int = 3_000_000):
    """Three buys of 1 million 2 s apart lift EURUSD 6 pips; the market holds there (or, with
    ``faded``, is back where the burst began from 600 s on); the account sells ``qty`` (the whole
    burst) ``reversal_after`` s after its last buy, at the market."""
    rows = _quiet_path(0)
    for i in range(3):
        rows += market(2.0 * i, f"m{i}", "M", "buy", 1_000_000, f"{1.10010 + 0.0002 * i:.5f}")
        rows.append(q(2.0 * i + 0.5, f"{1.10020 + 0.0002 * i:.5f}", f"{1.10030 + 0.0002 * i:.5f}"))
    for t in range(10, int(4.0 + reversal_after) + 20, 20):
        level = 0.0 if faded and t >= 600 else 0.0006
        rows.append(q(t, f"{1.10000 + level:.5f}", f"{1.10010 + level:.5f}"))
    price = "1.10000" if faded else "1.10060"
    rows += market(4.0 + reversal_after, "rev", "M", "sell", qty, price)
    return rows


def test_the_default_is_off():
    p = MomentumIgnitionParams()
    assert p.late_reversal_s is None and p.reversal_window_s == 900.0
    assert p.late_min_move_left == 0.5 and p.late_min_capture == 0.0


def test_a_turn_into_the_move_1000_s_after_the_burst_is_alerted_with_the_rule_on():
    assert run(late_turn(), only=ONLY, params=OFF) == []  # off: past the 900-s window
    assert run(late_turn(), only=ONLY) == run(late_turn(), only=ONLY, params=ON)  # on in `otc`
    (alert,) = run(late_turn(), only=ONLY, params=ON)
    ev = alert["evidence"]
    assert alert["order_ids"] == ["m0", "m1", "m2", "rev"]
    assert ev["late_turn"] is True and ev["late_reversal_s"] == 1200.0
    assert 900 < ev["reversal_after_burst_s"] <= 1200
    assert ev["move_left_at_reversal"] >= 0.5 and ev["reversal_capture_of_move"] > 0


def test_a_turn_within_the_window_is_alerted_as_before():
    (off,) = run(late_turn(reversal_after=600.0), only=ONLY, params=OFF)
    (on,) = run(late_turn(reversal_after=600.0), only=ONLY, params=ON)
    assert on["evidence"]["late_turn"] is False and on["order_ids"] == off["order_ids"]


def test_near_miss_a_late_turn_once_the_move_has_faded():
    """The market is back where the burst began and the account sells 60 % of the position at a
    loss 1,000 s later: a held position cut, not alerted. A plain 1,200-s window alerts it (a cut
    in part is no stop-out)."""
    assert run(late_turn(faded=True, qty=1_800_000), only=ONLY, params=ON) == []
    plain = {"momentum_ignition": {"reversal_window_s": 1200.0}}
    (old,) = run(late_turn(faded=True, qty=1_800_000), only=ONLY, params=plain)
    assert old["evidence"]["move_left_at_reversal"] < 0.5


def test_a_turn_after_the_late_window_is_not_alerted():
    assert run(late_turn(reversal_after=1300.0), only=ONLY, params=ON) == []


def test_a_burst_waiting_for_its_late_turn_survives_a_restart():
    rows = sorted(late_turn(), key=lambda r: r["ts"])
    cut = next(i for i, r in enumerate(rows) if r.get("order_id") == "rev")
    engine = SurveillanceEngine(ON, only=ONLY)
    for row in rows[:cut]:
        engine.process(record_decoder.decode(orjson.dumps(row)))
    assert engine.take_alerts() == []
    snapshot = state_dump(engine)
    assert orjson.loads(snapshot)["version"] == STATE_VERSION
    restarted = SurveillanceEngine(ON, only=ONLY)
    assert state_load(restarted, snapshot)["restarted"] == []
    for row in rows[cut:]:
        restarted.process(record_decoder.decode(orjson.dumps(row)))
    (alert,) = restarted.take_alerts() + restarted.finish()
    assert alert.evidence["late_turn"] is True and alert.evidence["reversal_order_ids"] == ["rev"]


def test_the_order_books_gate_keeps_its_window():
    """The late turn is a hand rule: with the learned gate on (the order book's profile) the
    window stays ``reversal_window_s`` whatever ``late_reversal_s`` says, so the order book's
    alerts are the same with the rule on and off."""
    gate_on = {"momentum_ignition": {"gate": True, "late_reversal_s": 1200.0}}
    gate_off = {"momentum_ignition": {"gate": True}}
    for rows in (late_turn(), late_turn(reversal_after=600.0)):
        on, off = run(rows, only=ONLY, params=gate_on), run(rows, only=ONLY, params=gate_off)
        assert [(a["order_ids"], a["score"], a["start"], a["end"], a["evidence"]["gate"]) for a in on] == [
            (a["order_ids"], a["score"], a["start"], a["end"], a["evidence"]["gate"]) for a in off
        ]
    engine = SurveillanceEngine(gate_on, only=ONLY)
    assert engine.units["momentum_ignition"].rev_window == 900.0
