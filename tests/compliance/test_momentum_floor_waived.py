"""Momentum ignition: the bps floor waived for a move of many spreads (2026-12-05 evening round,
wip/mom22). ``min_move_bps`` (3) is a dealer quote's scale; on a book whose touch is a tick wide
a move of ``floor_waived_spreads`` (10) spreads or more is a move in the book's own unit however
few bps it is. The noise test (``min_move_sigma``) and ``min_move_spreads`` still apply."""

from __future__ import annotations

from compliance.surveillance.params import MomentumIgnitionParams
from tests.compliance.helpers import market, q
from tests.compliance.helpers import run as run_otc

ONLY = {"momentum_ignition"}
OFF = {"momentum_ignition": {"floor_waived_spreads": None}}


def run(rows, *, only=None, params=None):
    """The ``otc`` profile with the move gate off: these tests pin the hand rules' bps floor and its
    waiver; since 2026-12-07 (the lead's decision, wip/mom51) the ``otc`` profile's move gate also
    alerts the 1.8-bps burst of five spreads sold into ten minutes later: test_momentum_move_gate.py."""
    params = dict(params or {})
    params["momentum_ignition"] = {"move_gate": False, **params.get("momentum_ignition", {})}
    return run_otc(rows, only=only, params=params)


def one_tick_burst(*, ticks: int = 20, touch: int = 1, noise: int = 0):
    """EURUSD quoted ``touch`` points wide (a point 0.09 bps) over a quiet half hour (every third
    quote 1 point up, or ``noise`` points); three buys 2 s apart move the mid
    ``ticks`` points (1.8 bps at 20), held; the account sells the whole burst ten minutes later."""
    pt = 0.00001
    rows = []
    for k, t in enumerate(range(-1800, 0, 20)):
        bid = 1.10000 + (noise or 1) * pt * (k % 3 == 1)
        rows.append(q(t, f"{bid:.5f}", f"{bid + touch * pt:.5f}"))
    for i in range(3):
        level = 1.10000 + ticks * pt * (i + 1) / 3
        rows += market(2.0 * i, f"m{i}", "M", "buy", 1_000_000, f"{level:.5f}")
        rows.append(q(2.0 * i + 0.5, f"{level:.5f}", f"{level + touch * pt:.5f}"))
    top = 1.10000 + ticks * pt
    for t in range(10, 620, 20):
        rows.append(q(t, f"{top:.5f}", f"{top + touch * pt:.5f}"))
    rows += market(604.0, "rev", "M", "sell", 3_000_000, f"{top:.5f}")
    return rows


def test_the_floor_is_waived_at_ten_spreads_by_default():
    p = MomentumIgnitionParams()
    assert p.floor_waived_spreads == 10.0 and p.min_move_bps == 3.0


def test_a_move_of_twenty_spreads_under_the_bps_floor_alerts():
    (alert,) = run(one_tick_burst(), only=ONLY)
    ev = alert["evidence"]
    assert ev["move_bps"] < ev["min_move_bps"] and ev["move_spreads"] >= 10
    assert not ev["move_by_sweep"] and ev["move_sigma"] >= ev["min_move_sigma"]
    assert run(one_tick_burst(), only=ONLY, params=OFF) == []


def test_near_miss_a_move_of_few_spreads_or_within_the_noise():
    """The same 1.8 bps on a touch four points wide (5 spreads: a dealer's scale, the floor
    applies), and 20 spreads in a market whose every third quote is 30 points up (the noise test)."""
    assert run(one_tick_burst(touch=4), only=ONLY) == []
    assert run(one_tick_burst(noise=30), only=ONLY) == []
