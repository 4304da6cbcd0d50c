"""Momentum ignition's move gate keeps the run test (2026-12-07 03:00 round, wip/mom53,
``move_gate_run``; off by default and in every profile). The move gate (wip/mom51, on in ``otc``)
reads on a burst that only the move tests stopped and skips every later hand test, the run test
among them: so a weak burst that the account then carried on the same way, pausing again and again
(an execution parent, accumulation), and whose whole run moved nothing either was scored on the
burst alone. With ``move_gate_run`` such a burst is stopped as the hand rules stop a carried-on run
that made no move; a weak burst the account did not carry on, or carried on after one pause with
quick orders (one burst with a pause inside), is read by the gate as before. No new state: the
rule reads the chain's fills, run peak and where its burst ended, which the snapshot keeps."""

from __future__ import annotations

from compliance.surveillance.params import MARKET_PROFILES, MomentumIgnitionParams
from tests.compliance.helpers import market, run, surveil_restarted
from tests.compliance.test_momentum_move_gate import quiet_burst_under_the_floor

ONLY = {"momentum_ignition"}
GATE = {"momentum_ignition": {"move_gate": True}}
ON = {"momentum_ignition": {"move_gate": True, "move_gate_run": True}}
LOW_GATE = {"momentum_ignition": {"move_gate": True, "move_gate_threshold": 0.05}}
LOW_ON = {"momentum_ignition": {"move_gate": True, "move_gate_threshold": 0.05, "move_gate_run": True}}


def burst_under_the_floor_carried_on(slices: int = 4):
    """The move gate's minimal true case (three buys 2 s apart from flat lift EURUSD 3 pips, 2.7 bps,
    held and sold ten minutes later at the moved price), with the account carrying on: ``slices``
    more buys of uneven sizes (no parent's cadence) at the moved price, 30 s apart from 30 s after
    the burst (after its pause, within ``carry_on_s`` of each other), that move nothing; the sale
    covers the whole run."""
    rows = [r for r in quiet_burst_under_the_floor() if r.get("order_id") != "rev"]
    sizes = [(800_000, 1_200_000, 900_000, 1_100_000)[k % 4] for k in range(slices)]
    for k, qty in enumerate(sizes):
        rows += market(34.0 + 30.0 * k, f"c{k}", "M", "buy", qty, "1.10070")
    rows += market(604.0, "rev", "M", "sell", 3_000_000 + sum(sizes), "1.10060")
    return rows


def burst_under_the_floor_with_one_pause():
    """The move gate's minimal true case with one pause inside the burst: three buys 2 s apart from
    flat lift EURUSD 3 pips, a 20-s pause, three more buys 2 s apart at the moved price (the
    generator's paused burst); sold ten minutes later at the moved price."""
    rows = [r for r in quiet_burst_under_the_floor() if r.get("order_id") != "rev"]
    for k, qty in enumerate((800_000, 1_200_000, 900_000)):
        rows += market(24.0 + 2.0 * k, f"c{k}", "M", "buy", qty, "1.10070")
    rows += market(604.0, "rev", "M", "sell", 5_900_000, "1.10060")
    return rows


def test_off_by_default_and_in_every_profile():
    assert MomentumIgnitionParams().move_gate_run is False
    for profile in MARKET_PROFILES.values():
        assert "move_gate_run" not in profile.get("momentum_ignition", {})


def test_the_gates_true_case_is_still_alerted_with_the_rule_on():
    rows = quiet_burst_under_the_floor()
    (alert,) = run(rows, only=ONLY, params=ON)
    assert alert["order_ids"] == ["m0", "m1", "m2", "rev"]
    assert alert["evidence"]["carried_on_orders"] == 0
    assert alert["evidence"]["gate"]["hand_test_stopped"] == "move"
    assert run(rows, only=ONLY, params=GATE) == run(rows, only=ONLY, params=ON)


def test_near_miss_a_weak_burst_carried_on_is_not_read_by_the_gate_with_the_rule_on():
    """The burst made 2.7 bps and the four slices after it nothing: the run made no move, and its
    turn is the run's. The gate alone alerts it on the burst's figures; with the rule it is quiet,
    as the hand rules are (the gate off)."""
    rows = burst_under_the_floor_carried_on()
    (gated,) = run(rows, only=ONLY, params=GATE)
    assert gated["evidence"]["carried_on_orders"] >= 1 and gated["evidence"]["gate"]["hand_test_stopped"] == "move"
    assert gated["evidence"]["run_move_bps"] < gated["evidence"]["min_move_bps"]
    assert run(rows, only=ONLY, params=ON) == []
    assert run(rows, only=ONLY, params={"momentum_ignition": {"move_gate": False, "move_gate_run": True}}) == []


def test_a_weak_burst_with_one_pause_inside_is_still_read_by_the_gate_with_the_rule_on():
    """One pause, then quick orders: the burst's own continuation (the lead's one pause the other
    way round), not slicing; the rule leaves it to the gate. The gate's model scores this synthetic
    case under its 0.2 (p 0.08: three more orders and a pause weigh against it), so both runs read it
    at a threshold of 0.05, where the gate alerts it: the same alert with the rule on and off."""
    rows = burst_under_the_floor_with_one_pause()
    (alert,) = run(rows, only=ONLY, params=LOW_ON)
    assert alert["evidence"]["carried_on_orders"] == 3 and alert["evidence"]["gate"]["hand_test_stopped"] == "move"
    assert run(rows, only=ONLY, params=LOW_ON) == run(rows, only=ONLY, params=LOW_GATE)
    # the slicing near-miss at that threshold: the gate alone alerts it, the rule does not
    near = burst_under_the_floor_carried_on()
    assert len(run(near, only=ONLY, params=LOW_GATE)) == 1 and run(near, only=ONLY, params=LOW_ON) == []


def test_a_burst_that_moved_keeps_the_hand_rules_whatever_the_rule():
    """The rule changes only what the gate reads: a burst the move tests passed, carried on and
    sold (test_momentum_carried_on.py's case), is judged by the hand rules alone, on or off."""
    from tests.compliance.test_momentum_carried_on import burst_pause_more_then_sale

    rows = burst_pause_more_then_sale()
    assert run(rows, only=ONLY, params=ON) == run(rows, only=ONLY, params=GATE)
    assert len(run(rows, only=ONLY, params=ON)) == 1


def test_a_restart_anywhere_keeps_both_readings():
    near_rows = burst_under_the_floor_carried_on()
    for true_rows, params in ((quiet_burst_under_the_floor(), ON), (burst_under_the_floor_with_one_pause(), LOW_ON)):
        (expected,) = run(true_rows, only=ONLY, params=params)
        for i in range(1, len(true_rows)):
            (alert,) = surveil_restarted(true_rows, only=ONLY, params=params, restart_at=i)
            assert alert["order_ids"] == expected["order_ids"]
            assert alert["evidence"]["gate"] == expected["evidence"]["gate"]
    for i in range(1, len(near_rows)):
        assert surveil_restarted(near_rows, only=ONLY, params=ON, restart_at=i) == []
        assert surveil_restarted(near_rows, only=ONLY, params=LOW_ON, restart_at=i) == []
