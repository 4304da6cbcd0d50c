"""Momentum ignition: the order that turns a burst that was not ignition opens the account's next
chain (2026-12-05 morning round, wip/mom16). An account that slices a small run one way, moving
nothing, and minutes later bursts the other way: the burst's first order covers half the run, so
it is the run's "reversal"; the run is assessed (no move) and, with ``turn_opens_chain`` off,
that order was spent on it and the burst of three was left with two and missed. On a seen
held-out book an institutional account's nine-slice buy run ten minutes before its sell burst
did exactly that."""

from __future__ import annotations

from compliance.surveillance.params import MomentumIgnitionParams
from tests.compliance.helpers import quick_sells, run
from tests.compliance.test_momentum_late_reversal import three_order_burst

ONLY = {"momentum_ignition"}
OFF = {"momentum_ignition": {"turn_opens_chain": False}}


def run_before(*, at: float = -300.0, qty: int = 400_000):
    """Three quick sells of ``qty`` at the flat market's bid, ``at`` s before the burst: a chain
    that ignites (three orders within 10 s) and moves nothing."""
    return quick_sells(at=at, qty=qty)


def test_the_default_is_the_chosen_rule():
    assert MomentumIgnitionParams().turn_opens_chain is True


def test_a_burst_after_a_run_the_other_way_is_alerted_from_its_first_order():
    """The first buy (1 million) covers half the 1.2-million sell run: it turns the run, which
    moved nothing, and it is the burst's first order too. The rule off, the burst was missed."""
    rows = three_order_burst(reversal_after=60.0) + run_before()
    (alert,) = run(rows, only=ONLY)
    assert alert["order_ids"] == ["m0", "m1", "m2", "rev"]
    assert alert["evidence"]["burst_orders"] == 3 and alert["evidence"]["sold_before"] == 1_200_000
    assert run(rows, only=ONLY, params=OFF) == []


def test_near_miss_the_same_run_then_a_burst_in_a_flat_market():
    """The run, then three buys that move nothing and a sale a minute later: no ignition either
    way (the buys' chain is made, and makes no move)."""
    rows = three_order_burst(move="none", reversal_after=60.0) + run_before()
    assert run(rows, only=ONLY) == []
    assert run(rows, only=ONLY, params=OFF) == []


def test_a_burst_that_is_ignition_is_unwound_not_pushed_again():
    """A buy burst that moved the price and is sold a minute later is alerted once: its reversal is
    its unwinding, not a new push (the rule only reopens a chain after a turn that was not
    ignition)."""
    (alert,) = run(three_order_burst(reversal_after=60.0), only=ONLY)
    assert alert["order_ids"] == ["m0", "m1", "m2", "rev"]
