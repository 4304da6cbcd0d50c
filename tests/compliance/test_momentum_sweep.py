"""Momentum ignition on an order book (2026-12-05 late-morning round, wip/mom19): a burst whose
orders each walked the book (filled at ``sweep_levels`` (2) or more prices: took the touch and
the levels behind it), at least ``min_aggressive_orders`` of them, and that moved the mid its way
``min_move_spreads`` spreads, has moved the book even when the move is under the bps floor and
the noise test (a deep book refilled within seconds, its touch 0.2 pip wide). Near-misses: the
same burst whose orders each filled at one price, the same sweeps in a market that refilled
behind them (the mid never moved two spreads), and the sweeping burst held."""

from __future__ import annotations

from compliance.surveillance.params import MomentumIgnitionParams
from tests.compliance.helpers import f, o, q, run

ONLY = {"momentum_ignition"}
OFF = {"momentum_ignition": {"sweep_levels": None}}
TICK = 0.00001  # a tenth of a pip


def _book(t0: float, t1: float, mid: float):
    """A tight EURUSD touch (0.2 pip) around ``mid``, +-0.1 pip, a quote every 5 s."""
    return [
        q(t, f"{mid - TICK + (TICK if k % 2 else 0):.5f}", f"{mid + TICK + (TICK if k % 2 else 0):.5f}")
        for k, t in enumerate(range(int(t0), int(t1), 5))
    ]


def sweep_burst(*, levels: int = 3, moves: bool = True, reverse: bool = True):
    """Three buys of 3 million 4 s apart, each filled at ``levels`` prices a tenth of a pip apart
    from the touch; the touch lifts 0.4 pip after each (``moves``: 1.2 pip = 6 spreads, 1.1 bps)
    or stays; the whole sold at market 90 s after the last."""
    mid = 1.10000
    rows = _book(-1800.0, 0.0, mid)
    for i in range(3):
        t = 4.0 * i
        ask = mid + TICK + (4 * TICK * i if moves else 0.0)  # the touch the order meets
        rows.append(o(t, "new", f"b{i}", "M", "buy", 3_000_000))
        for k in range(levels):
            rows.append(f(t + 0.01, f"b{i}", "M", "buy", 3_000_000 // levels, f"{ask + k * TICK:.5f}"))
        lift = 4 * TICK if moves else 0.0  # the touch after it: lifted, or refilled where it was
        rows.append(q(t + 0.02, f"{ask - 2 * TICK + lift:.5f}", f"{ask + lift:.5f}"))
    after = mid + (12 * TICK if moves else 0.0)
    rows += _book(12.5, 120.0, after)
    if reverse:
        rows.append(o(100.0, "new", "rev", "M", "sell", 9_000_000))
        rows.append(f(100.01, "rev", "M", "sell", 9_000_000, f"{after - TICK:.5f}"))
    return sorted(rows, key=lambda r: r["ts"])


def test_the_default_is_the_chosen_rule():
    assert MomentumIgnitionParams().sweep_levels == 2


def test_a_sweeping_burst_that_moved_the_touch_and_reversed_is_alerted():
    """1.1 bps (under the 3-bps floor) but 6 spreads, every order through three levels. Off, the
    old rule missed it."""
    (alert,) = run(sweep_burst(), only=ONLY)
    ev = alert["evidence"]
    assert alert["order_ids"] == ["b0", "b1", "b2", "rev"]
    assert ev["move_by_sweep"] is True and ev["swept_orders"] == 3
    assert ev["move_bps"] < ev["min_move_bps"] and ev["move_spreads"] >= ev["min_move_spreads"]
    assert 0.0 < alert["score"] < 1.0  # a calibrated probability (a weak sweep scores under 0.5)
    assert run(sweep_burst(), only=ONLY, params=OFF) == []


def test_near_miss_the_same_burst_filled_at_one_price_each():
    assert run(sweep_burst(levels=1), only=ONLY) == []


def test_near_miss_sweeps_in_a_book_refilled_behind_them():
    """The move test on its own: from flat (the fixture's account), three orders through the
    touch, turned, are an attempt (``attempt_from_flat_orders``, wip/mom36), off here."""
    assert (
        run(sweep_burst(moves=False), only=ONLY, params={"momentum_ignition": {"attempt_from_flat_orders": None}}) == []
    )
    (alert,) = run(sweep_burst(moves=False), only=ONLY)
    assert alert["evidence"]["attempt"] is True and alert["evidence"]["came_from_flat"] is True


def test_near_miss_the_sweeping_burst_held():
    assert run(sweep_burst(reverse=False), only=ONLY) == []
