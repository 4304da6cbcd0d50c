"""Momentum ignition: a stop-out is not ignition (2026-12-05 night round, wip/mom27). A burst that
moved the price and was held; the move came back and the mid went on past where the burst began;
the account closed the whole position at once, at a loss (``stop_out``: the reversal covers all
of the position when it is assessed, ``move_left_at_reversal`` < 0, ``reversal_capture_of_move``
< 0). Ignition unwinds into the move it made (2016/522 Annex II 1(b)); a position cut in full
once the price has come back is the stop-loss of a held burst. A sale into the move, and a
partial exit in a market that came back, still alert."""

from __future__ import annotations

from compliance.surveillance.params import MomentumIgnitionParams
from tests.compliance.helpers import f, market, o, q, run, ts
from tests.compliance.test_momentum_late_reversal import _quiet_path
from tests.compliance.test_momentum_sweep import TICK, _book, sweep_burst

ONLY = {"momentum_ignition"}
OFF = {"momentum_ignition": {"stop_out": False}}


def burst_then_exit(*, back: bool, qty: int = 3_000_000):
    """Three 1,000,000 buys 2 s apart that move EURUSD 6 pips; the market holds the move (or,
    ``back``, gives it all back 2-4 minutes after the burst and settles a pip under where it
    began); ten minutes after the burst the account sells ``qty`` at the bid."""
    rows = _quiet_path(0)
    for i in range(3):
        rows += market(2.0 * i, f"m{i}", "M", "buy", 1_000_000, f"{1.10010 + 0.0002 * i:.5f}")
        rows.append(q(2.0 * i + 0.5, f"{1.10020 + 0.0002 * i:.5f}", f"{1.10030 + 0.0002 * i:.5f}"))
    for t in range(10, 640, 20):
        level = 0.0006 if not back or t < 120 else max(-0.0001, 0.0006 * (240 - t) / 120)
        rows.append(q(t, f"{1.10000 + level:.5f}", f"{1.10010 + level:.5f}"))
    bid = "1.09990" if back else "1.10060"
    rows += market(604.0, "rev", "M", "sell", qty, bid)
    return rows


def test_the_rule_is_on_by_default():
    assert MomentumIgnitionParams().stop_out is True


def test_a_sale_of_the_whole_position_into_the_move_alerts():
    (alert,) = run(burst_then_exit(back=False), only=ONLY)
    ev = alert["evidence"]
    assert ev["reversal_fraction"] == 1.0 and ev["move_left_at_reversal"] >= 0.9
    assert ev["reversal_capture_of_move"] > 0 and ev["stop_out"] is True


def test_near_miss_a_held_burst_cut_in_full_at_a_loss_once_the_price_came_back():
    """The same burst, held; the mid came back a pip under where the burst began and the account
    sold all 3,000,000 at once, 5 pips under its average buy: a stop-loss, not alerted (with the
    rule off, alerted on the same figures)."""
    assert run(burst_then_exit(back=True), only=ONLY) == []
    (alert,) = run(burst_then_exit(back=True), only=ONLY, params=OFF)
    ev = alert["evidence"]
    assert ev["reversal_fraction"] == 1.0
    assert ev["move_left_at_reversal"] < 0 and ev["reversal_capture_of_move"] < 0


def test_a_partial_exit_in_a_market_that_came_back_still_alerts():
    """Half the position sold in the same faded market (the independent book's abusers turn late,
    in part): not the whole position closed at once, alerted."""
    (alert,) = run(burst_then_exit(back=True, qty=1_500_000), only=ONLY)
    ev = alert["evidence"]
    assert ev["reversal_fraction"] == 0.5 and ev["move_left_at_reversal"] < 0


def test_a_burst_that_moved_the_book_by_its_sweep_is_not_a_stop_out():
    """On an order book: three sweeps that lifted the touch 1.2 pip (6 spreads, by sweep); the book
    then refills 0.2 pip under where it began and the account sells all 9,000,000 at once at a
    loss. The mid never made a move of its own to come back from: alerted (the rule is for a move
    the mid made)."""
    rows = [r for r in sweep_burst(reverse=False) if not (r["type"] == "quote" and r["ts"] >= ts(12.5))]
    rows += _book(12.5, 120.0, 1.10000 - 2 * TICK)
    rows += [o(100.0, "new", "rev", "M", "sell", 9_000_000), f(100.01, "rev", "M", "sell", 9_000_000, "1.09997")]
    (alert,) = run(rows, only=ONLY)
    ev = alert["evidence"]
    assert ev["move_by_sweep"] is True and ev["reversal_fraction"] == 1.0
    assert ev["move_left_at_reversal"] < 0 and ev["reversal_capture_of_move"] < 0
