"""Asymmetric slippage vs best execution on the same fills, 2026-12-05 afternoon round (wip/asym20,
docs/surveillance-rounds-asym20.md):

- the sign test is exact by default (``exact_sign_test``): a client with 10-19 slippages, all or
  nearly all adverse, is assessed when quiet or at the end;
- best execution's case (``gross_share``): a client whose adverse slippages are, three in four or
  more, each beyond best execution's bar (2 pips and the prevailing spread) is left to best
  execution, which alerts those fills one by one; marks mostly within the bar, passed on one way
  only, are the asymmetric policy."""

from __future__ import annotations

import orjson

from compliance.surveillance.engine import SurveillanceEngine
from compliance.surveillance.records import record_decoder
from compliance.surveillance.state import state_dump, state_load
from tests.compliance.helpers import market, of_type, q, run

BOTH = {"best_execution_slippage", "asymmetric_slippage"}
QUOTE = q(0, "1.10000", "1.10010")  # ask 1.10010, a 1-pip spread: best execution's bar is 2 pips


def client(pips: list[float]) -> list[dict]:
    """One client's market buys, 30 s apart, each filled once this many pips past the ask."""
    rows = [QUOTE]
    for i, p in enumerate(pips):
        rows += market(30 * i + 1, f"a{i}", "K", "buy", 100_000, f"{1.10010 + p * 0.0001:.5f}")
    return rows


def test_marks_within_the_bar_passed_on_one_way_are_asymmetric_not_best_execution():
    alerts = run(client([1.5] * 12), only=BOTH)
    assert [a["alert_type"] for a in alerts] == ["asymmetric_slippage"]  # no fill is an exception
    ev = alerts[0]["evidence"]
    assert ev["adverse_fills"] == 12 and ev["adverse_beyond_best_execution"] == 0
    assert ev["sign_test"] == "exact binomial"


def test_a_policy_whose_larger_marks_pass_the_bar_is_still_asymmetric():
    # 8 marks of 1.5 pips, 4 of 3 pips (a third beyond the bar): best execution alerts the 4,
    # the client's run is the asymmetric policy
    alerts = run(client([1.5, 1.5, 3.0] * 4), only=BOTH)
    asym = of_type(alerts, "asymmetric_slippage")
    assert len(asym) == 1 and asym[0]["evidence"]["adverse_beyond_best_execution"] == 4
    # best execution held its 4 for the asymmetric assessment: named there, not alerted twice
    # (wip/bex20, ``asymmetric_hold_s``; tests/compliance/test_best_ex_holds_for_asymmetric.py)
    assert asym[0]["evidence"]["best_execution_fills_held"] == 4
    assert of_type(alerts, "best_execution_slippage") == []


def test_marks_each_beyond_the_bar_are_best_executions_case():
    # 5 pips: past twice the bar, gross exceptions (best execution's case needs one since
    # wip/exec22, ``gross_multiple``; tests/compliance/test_asymmetric_gross_exception.py)
    alerts = run(client([5.0] * 12), only=BOTH)
    assert [a["alert_type"] for a in alerts] == ["best_execution_slippage"]
    # without the rule the same client is typed both ways
    off = {"asymmetric_slippage": {"gross_share": None}}
    assert sorted(a["alert_type"] for a in run(client([5.0] * 12), only=BOTH, params=off)) == [
        "asymmetric_slippage",
        "best_execution_slippage",
    ]


def test_the_share_is_three_in_four_of_the_adverse_slippages():
    only = {"asymmetric_slippage"}
    assert run(client([5.0] * 9 + [1.0] * 3), only=only) == []  # 9 of 12 beyond the bar
    assert len(run(client([5.0] * 8 + [1.0] * 4), only=only)) == 1  # 8 of 12


def test_a_restart_keeps_the_count_beyond_the_bar():
    rows = sorted(client([5.0] * 12), key=lambda r: r["ts"])
    engine = SurveillanceEngine(only={"asymmetric_slippage"})
    for row in rows[:13]:  # the quote and six orders with their fills
        engine.process(record_decoder.decode(orjson.dumps(row)))
    restarted = SurveillanceEngine(only={"asymmetric_slippage"})
    state_load(restarted, state_dump(engine))
    for row in rows[13:]:
        restarted.process(record_decoder.decode(orjson.dumps(row)))
    assert restarted.finish() == []
