"""Momentum ignition: a fresh burst after the account fell silent is a chain of its own
(2026-12-04 night round, wip/mom13). Once a chain has ignited, a same-way order more than
``carry_on_s`` after the chain's last order begins a new chain, and the old one waits for its
reversal as any parked chain does. Before, an institutional account whose execution algorithm
had sliced a parent (three quick child orders ignited a chain) and then bought in a quick burst
up to 900 s later saw the burst taken in as the parent "carried on": its reversal had to cover
the parent's slices too, and the burst was never measured on its own."""

from __future__ import annotations

import orjson

from compliance.surveillance.params import MomentumIgnitionParams
from compliance.surveillance.records import record_decoder
from compliance.surveillance.state import STATE_VERSION
from tests.compliance.helpers import market, q, restarted_before, run
from tests.compliance.test_momentum_late_reversal import _quiet_path

ONLY = {"momentum_ignition"}
OLD = {"momentum_ignition": {"carry_on_s": None}}


def parent_then_burst(*, silence: float = 300.0, move: bool = True):
    """An execution algorithm's three child buys of 2 million, 2 s apart, in a flat EURUSD; the
    account is silent for ``silence`` s; then three quick buys of 1 million that lift the mid 2 pips
    each (``move``; or a flat market: the parent resumed), held at the moved level; the account
    sells 3 million a minute after the last buy."""
    rows = _quiet_path(0)
    for i in range(3):
        rows += market(2.0 * i, f"p{i}", "M", "buy", 2_000_000, "1.10010")
    start = 4.0 + silence
    for t in range(10, int(start), 20):
        rows.append(q(t, "1.10000", "1.10010"))
    for i in range(3):
        t = start + 2.0 * i
        step = 0.0002 * i if move else 0.0
        rows += market(t, f"m{i}", "M", "buy", 1_000_000, f"{1.10010 + step:.5f}")
        if move:
            rows.append(q(t + 0.5, f"{1.10020 + step:.5f}", f"{1.10030 + step:.5f}"))
    level = 0.0006 if move else 0.0
    for t in range(int(start) + 10, int(start) + 80, 10):
        rows.append(q(t, f"{1.10000 + level:.5f}", f"{1.10010 + level:.5f}"))
    rows += market(start + 64.0, "rev", "M", "sell", 3_000_000, f"{1.10000 + level:.5f}")
    return rows


def test_the_default_is_the_chosen_rule():
    p = MomentumIgnitionParams()
    assert p.carry_on_s == 180.0 and p.carry_on_s > p.burst_pause_s


def test_a_burst_after_the_parent_fell_silent_is_measured_on_its_own():
    (alert,) = run(parent_then_burst(), only=ONLY)
    ev = alert["evidence"]
    assert alert["order_ids"] == ["m0", "m1", "m2", "rev"]
    assert ev["burst_orders"] == 3 and ev["carried_on_orders"] == 0
    assert ev["reversal_fraction"] == 1.0
    assert ev["move_bps"] >= ev["min_move_bps"] and ev["move_spreads"] >= ev["min_move_spreads"]


def test_the_old_rule_took_the_burst_in_as_the_parent_carried_on():
    """The burst joined the parent's chain (9 million to cover; 3 sold) and nothing was alerted."""
    assert run(parent_then_burst(), only=ONLY, params=OLD) == []


def test_within_carry_on_s_the_orders_are_still_the_parent_carried_on():
    """A minute's silence is the parent being worked, as before (the reversal must cover it)."""
    assert run(parent_then_burst(silence=60.0), only=ONLY) == []


def test_near_miss_the_parent_resumes_in_a_flat_market_and_is_sold():
    """The quick orders after the silence are the parent resuming: no move, no alert (the fresh
    chain must make its own move, as any burst)."""
    assert run(parent_then_burst(move=False), only=ONLY) == []


def test_the_silence_is_read_across_a_restart():
    """The rule reads the chain's last order time, which the snapshot keeps since version 8."""
    rows = sorted(parent_then_burst(), key=lambda r: r["ts"])
    doc, restarted, rest = restarted_before(rows, "m0", only=ONLY)
    assert doc["version"] == STATE_VERSION >= 8
    for row in rest:
        restarted.process(record_decoder.decode(orjson.dumps(row)))
    (alert,) = restarted.take_alerts() + restarted.finish()
    assert alert.order_ids == ["m0", "m1", "m2", "rev"]
