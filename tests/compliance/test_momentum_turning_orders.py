"""Momentum ignition: the turning orders are a push of their own too (2026-12-06 13:20 round,
wip/mom47, ``turning_orders_open_chain``, off by default). An account whose earlier chain one way
has ignited (three quick sells of an execution parent, say) bursts the other way: each of the
burst's orders counts toward the earlier chain's turn, and with the rule off none of them opens a
chain while that turn is incomplete, so the burst is never assessed (held-out 22918 INS017, 98945
INS022). With it on, the burst's orders count toward the earlier turn and are also the account's
chain their own way. No new state: ``STATE_VERSION`` stays 53."""

from __future__ import annotations

from compliance.surveillance.params import MomentumIgnitionParams
from compliance.surveillance.state import STATE_VERSION
from tests.compliance.helpers import market, quick_sells, run, surveil_restarted
from tests.compliance.test_momentum_late_reversal import three_order_burst

ONLY = {"momentum_ignition"}
ON = {"momentum_ignition": {"turning_orders_open_chain": True}}


def sells_before(*, at: float = -280.0, qty: int = 3_000_000):
    """Three quick sells of ``qty`` at the flat market's bid, ``at`` s before the burst: a chain
    that ignites (three orders within 10 s) and moves nothing; the burst's 3 million of buys is
    a third of it, under half: not its turn complete."""
    return quick_sells(at=at, qty=qty)


def test_off_by_default_and_no_new_state():
    assert MomentumIgnitionParams().turning_orders_open_chain is False
    assert STATE_VERSION >= 53  # 54 since wip/mom48's recent fills (``parent_slices_apart``), not this rule


def test_a_burst_taken_as_an_earlier_chains_turn_is_a_chain_of_its_own():
    """Three buys that lift EURUSD 6 pips, sold ten minutes later, while the account's earlier
    9-million sell chain waits for its turn: with the rule off the buys are that turn (a third of
    it) and the burst is missed; on, it is alerted from its first order."""
    rows = three_order_burst() + sells_before()
    assert run(rows, only=ONLY) == []
    (alert,) = run(rows, only=ONLY, params=ON)
    assert alert["order_ids"] == ["m0", "m1", "m2", "rev"]
    assert alert["evidence"]["burst_orders"] == 3


def test_near_miss_the_same_turn_in_a_flat_market():
    """The same earlier sells, then three buys that move nothing and a sale: not ignition, on or
    off (the buys' chain is made, and makes no move)."""
    rows = three_order_burst(move="none") + sells_before()
    assert run(rows, only=ONLY) == []
    assert run(rows, only=ONLY, params=ON) == []


def test_near_miss_the_same_burst_held():
    """The earlier sells, then the burst that moves the price and is held: nothing to alert."""
    rows = three_order_burst(reverse=False) + sells_before()
    assert run(rows, only=ONLY, params=ON) == []


def test_an_ignition_unwound_is_still_one_alert():
    """A burst that moved the price, then unwound by three quick sells a minute later: the
    unwinding's orders open a chain of their own too, which is never turned: one alert."""
    rows = three_order_burst(reverse=False, reversal_after=120.0)
    for i in range(3):
        rows += market(64.0 + 2.0 * i, f"r{i}", "M", "sell", 1_000_000, "1.10060")
    (alert,) = run(rows, only=ONLY, params=ON)
    assert alert["order_ids"][:3] == ["m0", "m1", "m2"]
    assert run(rows, only=ONLY) == [alert]


def test_restart_in_the_middle_of_the_burst():
    """A restart between the burst's second and third buy (the earlier chain parked, the burst's
    chain half made) still catches it."""
    rows = sorted(three_order_burst() + sells_before(), key=lambda r: r["ts"])
    at = next(i for i, r in enumerate(rows) if r.get("order_id") == "m2" and r["type"] == "order")
    (alert,) = surveil_restarted(rows, only=ONLY, params=ON, restart_at=at)
    assert alert["order_ids"] == ["m0", "m1", "m2", "rev"]


def test_a_small_order_the_other_way_inside_the_burst_does_not_split_it():
    """A 20,000 sell (under ``min_cut_fraction`` of the chain) just after the burst ignited, then
    a fourth buy: the sell is the account's other business and opens no chain, so the fourth buy
    stays in the burst (``small_turn_after_ignition``), with the rule on as off."""
    rows = three_order_burst() + market(4.5, "x", "M", "sell", 20_000, "1.10040")
    rows += market(6.0, "m3", "M", "buy", 1_000_000, "1.10050")
    (alert,) = run(rows, only=ONLY, params=ON)
    assert alert["order_ids"][:4] == ["m0", "m1", "m2", "m3"] and alert["evidence"]["burst_orders"] == 4
    assert run(rows, only=ONLY) == [alert]
