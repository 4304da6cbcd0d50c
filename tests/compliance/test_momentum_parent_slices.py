"""Momentum ignition: the account's own execution parent is kept out of a burst's chain
(2026-12-06 15:00 round, wip/mom48, ``parent_slices_apart``, off by default). An institutional
client slices a parent in the symbol (orders of one size, tens of seconds apart) and bursts the
same way inside the parent's run: with the rule off the parent's slices carried on after the
burst join its chain (``carry_on_s``), so the turn is measured against the parent's quantity too
and falls under half (held-out 4504 INS019, 98945 INS021), or a slice leads the burst and the move
is measured from it (84390 INS017), or the burst joins the parent's own chain (tuning 302 INS023).
With it on, an order of the size of the account's previous same-way order (leaving out those
under ``max_gap_s`` before it and the chain's own burst) is a slice and belongs to no chain; since
wip/momb48 (15:40 round) only as the third or later of a series at a cadence (the one before the
previous of the size too, the order's gap at most ``max_gap_s`` longer than the series' gap), so a
fixed-lot trader's burst is not read as slices. The recent fills keep the order's size and id:
the snapshot is version 54 (unchanged by wip/momb48)."""

from __future__ import annotations

from compliance.surveillance.params import MomentumIgnitionParams
from compliance.surveillance.state import STATE_VERSION
from tests.compliance.helpers import market, q, run, surveil_restarted
from tests.compliance.test_momentum_late_reversal import _quiet_path, three_order_burst

ONLY = {"momentum_ignition"}
ON = {"momentum_ignition": {"parent_slices_apart": True}}
SLICE = 2_000_000


def parent(*, start: float = -300.0, end: float = 600.0, every: float = 40.0, moved_from: float | None = 0.0):
    """Account M's execution parent: buys of 2 million every ``every`` s from ``start`` to ``end``
    (offset 1 s from the burst's orders), filled at the ask (1.10010 until ``moved_from``, the
    moved ask 1.10070 after; None: never moved)."""
    rows, t, i = [], start + 1.0, 0
    while t < end:
        moved = moved_from is not None and t >= moved_from
        rows += market(t, f"p{i}", "M", "buy", SLICE, "1.10070" if moved else "1.10010")
        t, i = t + every, i + 1
    return rows


def test_off_by_default_and_the_snapshot_is_version_54():
    assert MomentumIgnitionParams().parent_slices_apart is False
    assert STATE_VERSION == 54


def test_a_burst_inside_a_cadenced_parent_is_caught():
    """Three buys that lift EURUSD 6 pips inside the account's parent (2 million every 40 s), the
    burst's 3 million sold ten minutes later: off, the parent's slices after the burst join its
    chain and the sale is under half of it (missed); on, the chain is the burst's own."""
    rows = three_order_burst() + parent()
    assert run(rows, only=ONLY) == []
    (alert,) = run(rows, only=ONLY, params=ON)
    assert alert["order_ids"] == ["m0", "m1", "m2", "rev"]
    ev = alert["evidence"]
    assert ev["burst_orders"] == 3 and ev["carried_on_orders"] == 0 and ev["reversal_fraction"] == 1.0


def test_near_miss_a_cadenced_parent_alone():
    """The parent alone while the market rises 6 pips, then a sale of 3 million: no burst, on or
    off (the rule must not make a parent's slices read as one)."""
    rows = [r for r in three_order_burst() if r.get("order_id", "").startswith("rev") or r["type"] == "quote"]
    rows += parent(every=12.0, end=300.0)
    assert run(rows, only=ONLY) == []
    assert run(rows, only=ONLY, params=ON) == []


def test_near_miss_a_parent_with_a_held_burst():
    """The burst inside the parent, held (never sold): nothing to alert, on or off."""
    rows = three_order_burst(reverse=False) + parent()
    assert run(rows, only=ONLY) == []
    assert run(rows, only=ONLY, params=ON) == []


def test_a_burst_of_equal_orders_longer_than_the_gap_stays_one_burst():
    """Four buys of 1 million 6 s apart (18 s in all) that lift EURUSD 6 pips, sold ten minutes
    later: the later orders are of the size of one more than ``max_gap_s`` before them, but that
    one is the burst's own, so none is taken for a slice: one alert with all four, on as off."""
    rows = _quiet_path(0)
    for i in range(4):
        rows += market(6.0 * i, f"m{i}", "M", "buy", 1_000_000, f"{1.10010 + 0.0002 * min(i, 2):.5f}")
        rows.append(q(6.0 * i + 0.5, f"{1.10020 + 0.0002 * min(i, 2):.5f}", f"{1.10030 + 0.0002 * min(i, 2):.5f}"))
    rows += [q(t, "1.10060", "1.10070") for t in range(30, 640, 20)]
    rows += market(620.0, "rev", "M", "sell", 4_000_000, "1.10060")
    (alert,) = run(rows, only=ONLY, params=ON)
    assert alert["order_ids"] == ["m0", "m1", "m2", "m3", "rev"]
    assert run(rows, only=ONLY) == [alert]


def test_restart_in_the_middle_of_the_burst():
    """A restart between the burst's second and third buy, inside the parent's run (the recent
    fills that tell a slice restored), still catches it."""
    rows = sorted(three_order_burst() + parent(), key=lambda r: r["ts"])
    at = next(i for i, r in enumerate(rows) if r.get("order_id") == "m2" and r["type"] == "order")
    (alert,) = surveil_restarted(rows, only=ONLY, params=ON, restart_at=at)
    assert alert["order_ids"] == ["m0", "m1", "m2", "rev"]


def test_restart_after_the_burst_between_two_slices():
    """A restart after the burst, before the parent's next slice: the restored recent fills still
    tell that slice from the burst (it is kept out, and the sale covers the burst)."""
    rows = sorted(three_order_burst() + parent(), key=lambda r: r["ts"])
    at = next(i for i, r in enumerate(rows) if r.get("order_id") == "p9" and r["type"] == "order")
    (alert,) = surveil_restarted(rows, only=ONLY, params=ON, restart_at=at)
    assert alert["order_ids"] == ["m0", "m1", "m2", "rev"]


# A fixed-lot trader (2026-12-06 15:40 round, wip/momb48): every order the same size (retail's
# 1.00 lot, a desk's standard clip). One earlier order of the size is not a cadence: a parent's
# slices are a series (three or more, each more than ``max_gap_s`` after the one before, the
# last gap at most ``max_gap_s`` longer than the one before it), so such a trader's burst is
# still a burst.
ON_NO_TWO_WAY = {"momentum_ignition": {"parent_slices_apart": True, "two_way_fraction": None}}


def fixed_lot(times_sides, qty: int = 1_000_000):
    """The account's earlier orders at the flat market's touch, all of the burst's order size."""
    rows = []
    for i, (t, side) in enumerate(times_sides):
        rows += market(t, f"b{i}", "M", side, qty, "1.10010" if side == "buy" else "1.10000")
    return rows


def test_a_fixed_lot_trader_trading_both_ways_before_its_burst_is_alerted():
    """wip/momb48's failing case (test_momentum_two_way's near-miss with the two-way rule off):
    1 million bought, sold, bought, sold 40 s apart, then three buys of 1 million that lift EURUSD
    6 pips, sold a minute later. mom48's rule read the buy 160 s before the burst as a cadence and
    kept the whole burst out; two buys 80 s apart and a burst 160 s later are no series."""
    rows = three_order_burst(reversal_after=60.0) + fixed_lot(
        [(-240.0, "buy"), (-200.0, "sell"), (-160.0, "buy"), (-120.0, "sell")]
    )
    off = {"momentum_ignition": {"two_way_fraction": None}}
    (old,) = run(rows, only=ONLY, params=off)
    assert run(rows, only=ONLY, params=ON_NO_TWO_WAY) == [old]
    assert old["order_ids"] == ["m0", "m1", "m2", "rev"]


def test_a_fixed_lot_trader_buying_one_way_minutes_before_its_burst_is_alerted():
    """Four buys of 1 million 40 s apart (a series at a cadence), then two minutes later three
    buys of 1 million within 4 s that lift EURUSD 6 pips, sold a minute later: the burst's first
    order comes 120 s after the series' last, no slice of a 40-s cadence; alerted on as off."""
    rows = three_order_burst(reversal_after=60.0) + fixed_lot([(-240.0 + 40.0 * i, "buy") for i in range(4)])
    (old,) = run(rows, only=ONLY)
    assert old["order_ids"] == ["m0", "m1", "m2", "rev"]
    assert run(rows, only=ONLY, params=ON) == [old]


def test_a_fixed_lot_trader_with_scattered_earlier_buys_is_alerted():
    """Buys of 1 million at -290, -170 and -130 s (gaps 120 and 40 s: no cadence), then the
    burst of three 1-million buys and its sale: alerted on as off."""
    rows = three_order_burst(reversal_after=60.0) + fixed_lot([(-290.0, "buy"), (-170.0, "buy"), (-130.0, "buy")])
    (old,) = run(rows, only=ONLY)
    assert old["order_ids"] == ["m0", "m1", "m2", "rev"]
    assert run(rows, only=ONLY, params=ON) == [old]


def test_a_fixed_lot_trader_buying_once_before_its_burst_is_alerted():
    """One buy of 1 million a minute before the burst of three: one order is no series."""
    rows = three_order_burst(reversal_after=60.0) + fixed_lot([(-60.0, "buy")])
    (old,) = run(rows, only=ONLY)
    assert run(rows, only=ONLY, params=ON) == [old]


def test_a_burst_inside_a_parent_that_speeds_up_is_caught():
    """The parent's slices 40 s apart, then 25 s apart from two minutes before the burst (a VWAP
    into volume): a gap shorter than the series' is still its cadence (read one way), so the
    slices after the burst are kept out and the burst is alerted on its own orders."""
    rows, t, i = [], -299.0, 0
    while t < 600.0:
        rows += market(t, f"p{i}", "M", "buy", SLICE, "1.10070" if t >= 0 else "1.10010")
        t, i = t + (40.0 if t < -120.0 else 25.0), i + 1
    rows += three_order_burst()
    assert run(rows, only=ONLY) == []
    (alert,) = run(rows, only=ONLY, params=ON)
    assert alert["order_ids"] == ["m0", "m1", "m2", "rev"]
