"""Momentum ignition: a small order the other way does not cut a chain after it ignited either
(2026-12-05 night round, wip/mom28, ``small_turn_after_ignition``). Before ignition an aggressive
order the other way under ``min_cut_fraction`` of the chain is the account's other business
(``min_cut_fraction``); with the rule the same reading holds for the chain's whole life: when the
account goes on the chain's way after trading the other way for less than that fraction, the
chain carries on and its reversal starts afresh. A real turn (the fraction or more) still cuts."""

from __future__ import annotations

from compliance.surveillance.params import MomentumIgnitionParams
from tests.compliance.helpers import market, q, run
from tests.compliance.test_momentum_late_reversal import _quiet_path

ONLY = {"momentum_ignition"}
ON = {"momentum_ignition": {"small_turn_after_ignition": True}}
OFF = {"momentum_ignition": {"small_turn_after_ignition": False}}


def split_burst(turn_qty: int):
    """Five 1,000,000 EURUSD buys 2 s apart that move the mid 10 pips (the chain ignites at the
    third); 0.2 s after the third the account sells ``turn_qty`` at the bid; ten minutes later it
    sells 2,500,000 into the move (half of the five buys)."""
    rows = _quiet_path(0)
    for i in range(5):
        rows += market(2.0 * i, f"m{i}", "M", "buy", 1_000_000, f"{1.10010 + 0.0002 * i:.5f}")
        rows.append(q(2.0 * i + 0.5, f"{1.10020 + 0.0002 * i:.5f}", f"{1.10030 + 0.0002 * i:.5f}"))
    rows += market(4.2, "bg", "M", "sell", turn_qty, "1.10060")
    for t in range(20, 640, 20):
        rows.append(q(t, "1.10100", "1.10110"))
    rows += market(604.0, "rev", "M", "sell", 2_500_000, "1.10100")
    return rows


def _buys(alert):
    return sorted(o for o in alert["order_ids"] if o.startswith("m"))


def test_the_rule_is_on_by_default():
    assert MomentumIgnitionParams().small_turn_after_ignition is True
    assert MomentumIgnitionParams().min_cut_fraction == 0.05


def test_a_small_sell_after_ignition_does_not_split_the_burst():
    """A 90,000 sell (3 % of the chain) between the third and fourth buys: with the rule, one burst
    of five buys, its reversal the 2,500,000 sale (half of it); without, the chain is cut after the
    third buy and the alert covers three."""
    (alert,) = run(split_burst(90_000), only=ONLY, params=ON)
    assert _buys(alert) == ["m0", "m1", "m2", "m3", "m4"]
    assert "bg" not in alert["order_ids"]
    (cut,) = run(split_burst(90_000), only=ONLY, params=OFF)
    assert _buys(cut) == ["m0", "m1", "m2"]


def test_near_miss_a_real_turn_after_ignition_still_cuts_the_chain():
    """A 400,000 sell (13 % of the chain) after the third buy is a turn: the chain is cut there
    with the rule too, and the alert covers the first three buys."""
    (alert,) = run(split_burst(400_000), only=ONLY, params=ON)
    assert _buys(alert) == ["m0", "m1", "m2"]
    assert "bg" in alert["order_ids"]
