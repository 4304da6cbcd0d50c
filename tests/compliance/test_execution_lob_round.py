"""Best execution and asymmetric slippage on an exchange-style book, 2026-12-05 late-morning round
(wip/exec19, docs/surveillance-rounds.md, wip/exec19):

- a market order walking the book (one instant, the first fill at the arrival touch, each later
  fill at or beyond the one before) is priced by the venue's depth, not by the firm: its later
  fills are not assessed against the arrival touch; a sweep that breaks the walk is;
- with ``exact_sign_test`` (on by default since wip/asym20, with ``gross_share``), the sign test
  is exact (binomial tail at z_threshold's level), so a client with fewer than ``min_fills``
  slippages, all or nearly all adverse, is assessed when quiet or at the end."""

from __future__ import annotations

from tests.compliance.helpers import market, q, run, surveil_restarted, sweep

BEST = {"best_execution_slippage"}
ASYM = {"asymmetric_slippage"}
QUOTE = q(0, "1.10000", "1.10010")  # ask 1.10010, a 1-pip spread
EXACT = {"asymmetric_slippage": {"exact_sign_test": True}}


def test_a_market_order_walking_the_book_from_the_touch_is_not_alerted():
    # 1.10010 (the touch), then 2 and 5 pips past it: the deeper levels its size took
    assert run([QUOTE, *sweep(["1.10010", "1.10030", "1.10060"])], only=BEST) == []
    # judged fill by fill against the arrival touch (the rule before), the 5-pip level is alerted
    off = {"best_execution_slippage": {"walk_exempt": False}}
    assert len(run([QUOTE, *sweep(["1.10010", "1.10030", "1.10060"])], only=BEST, params=off)) == 1


def test_a_sweep_whose_first_fill_is_already_past_the_touch_is_assessed():
    alerts = run([QUOTE, *sweep(["1.10040", "1.10050", "1.10060"])], only=BEST)
    assert len(alerts) == 1 and alerts[0]["evidence"]["episode"]["detections"] == 3  # 3, 4 and 5 pips
    assert alerts[0]["evidence"]["slippage_pips"] == 5.0


def test_a_sweep_priced_better_after_worse_breaks_the_walk_and_is_assessed():
    # 1.10070 then 1.10050: a level cannot come back inside the one just taken; from the break on
    # the fills are assessed (the 4-pip one), the 6-pip one before it was still a walk
    alerts = run([QUOTE, *sweep(["1.10010", "1.10070", "1.10050"])], only=BEST)
    assert len(alerts) == 1 and alerts[0]["evidence"]["slippage_pips"] == 4.0
    assert alerts[0]["evidence"]["episode"]["detections"] == 1


def test_a_restart_in_the_middle_of_a_sweep_keeps_the_walk():
    rows = [QUOTE, *sweep(["1.10010", "1.10030", "1.10060"])]
    # restored after the quote, the order and its first fill
    assert surveil_restarted(rows, only=BEST, restart_at=3) == []


def few(adverse: int, improved: int) -> list[dict]:
    """One client's market buys, each filled once half a pip past or inside the ask."""
    rows = [QUOTE]
    prices = ["1.10015"] * adverse + ["1.10005"] * improved
    for i, price in enumerate(prices):
        rows += market(30 * i + 1, f"a{i}", "K", "buy", 100_000, price)
    return rows


def test_twelve_slippages_all_adverse_are_alerted_by_the_exact_sign_test():
    alerts = run(few(12, 0), only=ASYM, params=EXACT)
    assert len(alerts) == 1
    ev = alerts[0]["evidence"]
    assert ev["sign_test"] == "exact binomial" and ev["p_value"] == 2.0**-12 and ev["adverse_fills"] == 12
    # the normal approximation (the default before wip/asym20) is not assessed under min_fills (20)
    assert run(few(12, 0), only=ASYM, params={"asymmetric_slippage": {"exact_sign_test": False}}) == []


def test_twelve_slippages_eight_adverse_four_improved_are_not_alerted():
    assert run(few(8, 4), only=ASYM, params=EXACT) == []  # P(X >= 8 | 12) = 0.19
    assert run(few(9, 0), only=ASYM, params=EXACT) == []  # under the fewest that can reach the level (10 at z 3)
