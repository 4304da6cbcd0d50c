"""Asymmetric slippage (ESMA CFD Q&A, MiFID II Art. 27), 2026-12-05 morning round (wip/exec16):
a client's whole history is assessed once more at the end of the input, and the test by value
(improvement passed on, but clipped) next to the test by count. Each with its near-miss."""

from __future__ import annotations

from compliance.surveillance.params import AsymmetricSlippageParams
from tests.compliance.helpers import market, q, run

BOOK = [q(0, "1.10000", "1.10010")]  # ask 1.10010 all along: a buy's slippage is its price past it
ONLY = {"asymmetric_slippage"}


def buys(prices: list[str], *, acct="K", start=1.0):
    rows = []
    for i, price in enumerate(prices):
        rows += market(start + 10 * i, f"{acct}{i}", acct, "buy", 100_000, price)
    return rows


ADVERSE, IMPROVED = "1.10015", "1.10005"  # half a pip past the ask, half a pip inside it


def test_a_client_whose_adverse_slippage_came_after_the_last_multiple_is_assessed_at_the_end():
    # 20 orders at 14 adverse / 6 improved (z 1.79 at the 20th: nothing), then 15 adverse: 29 / 6
    # after 35 orders (z 3.89), and no 40th order to be assessed at.
    prices = [ADVERSE if i % 10 < 7 else IMPROVED for i in range(20)] + [ADVERSE] * 15
    alerts = run([*BOOK, *buys(prices)], only=ONLY)
    assert len(alerts) == 1
    ev = alerts[0]["evidence"]
    assert (ev["adverse_fills"], ev["improved_fills"]) == (29, 6)
    assert ev["assessed"] == "end of input" and ev["z"] > ev["z_threshold"]
    assert ev["episode"]["detections"] == 1
    # Assessed at the multiples only (before this round), the 35 orders are never looked at again.
    assert run([*BOOK, *buys(prices)], only=ONLY, params={"asymmetric_slippage": {"assess_at_end": False}}) == []


def test_a_fair_client_with_as_many_orders_is_not_alerted_at_the_end():
    prices = [ADVERSE if i % 2 else IMPROVED for i in range(35)]  # 17 adverse, 18 improved
    assert run([*BOOK, *buys(prices)], only=ONLY) == []


def test_a_client_assessed_at_a_multiple_is_not_assessed_again_at_the_end():
    alerts = run([*BOOK, *buys([ADVERSE] * 40)], only=ONLY)
    assert len(alerts) == 1 and alerts[0]["evidence"]["episode"]["detections"] == 2  # at 20 and 40


def value_rows(improvement: str) -> list:
    """40 orders: 24 filled one pip past the ask, 16 inside it by ``improvement`` (as 3 to 2 by
    count, where a fair policy's 20 to 20 is within chance: sign test z 1.26)."""
    return [*BOOK, *buys(["1.10020" if i % 5 < 3 else improvement for i in range(40)])]


def test_improvement_passed_on_but_clipped_is_asymmetric_by_value():
    # Improvements of 0.2 pip against adverse slippage of a full pip: 24 pips paid, 3.2 received.
    alerts = run(value_rows("1.10008"), only=ONLY)
    assert len(alerts) == 1
    ev = alerts[0]["evidence"]
    assert ev["z"] < ev["z_threshold"] <= ev["z_value"] and ev["asymmetric_by"] == "value"
    assert ev["adverse_bps_total"] > 7 * ev["improvement_bps_total"]
    assert run(value_rows("1.10008"), only=ONLY, params={"asymmetric_slippage": {"value_z_threshold": None}}) == []


def test_the_same_count_mix_with_full_improvements_is_not_alerted():
    # Improvements of a full pip, as large as the adverse slippage: 24 paid, 16 received.
    assert run(value_rows("1.10000"), only=ONLY) == []


def test_the_value_test_is_on_by_default():
    assert AsymmetricSlippageParams().value_z_threshold is not None
