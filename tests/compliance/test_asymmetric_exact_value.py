"""The test by value exact under ``min_fills``, 2026-12-05 evening round 2 (wip/exec23,
docs/surveillance-rounds-exec23.md; ``AsymmetricSlippageParams.exact_value_test``): a client with
10-19 slippages is assessed by value too, as the share of the 2^n sign patterns of its own
slippages whose sum reaches the observed one, against the count test's level. Eleven marks and
one clipped improvement: the count test cannot tell it from chance (p 0.0032), the sizes can."""

from __future__ import annotations

import orjson

from compliance.surveillance.engine import SurveillanceEngine
from compliance.surveillance.execution_quality import sign_flip_tail
from compliance.surveillance.params import GROSS_EXCEPTION_MULTIPLE, AsymmetricSlippageParams, BestExecutionParams
from compliance.surveillance.records import record_decoder
from compliance.surveillance.state import state_dump, state_load
from tests.compliance.helpers import market, q, run

ONLY = {"asymmetric_slippage"}
BEFORE = {"asymmetric_slippage": {"exact_value_test": False}}
QUOTE = q(0, "1.10000", "1.10010")  # ask 1.10010, a 1-pip spread


def client(pips: list[float]) -> list[dict]:
    """One client's market buys, 30 s apart, each filled once this many pips past the ask."""
    rows = [QUOTE]
    for i, p in enumerate(pips):
        rows += market(30 * i + 1, f"a{i}", "K", "buy", 100_000, f"{1.10010 + p * 0.0001:.5f}")
    return rows


CLIPPED = [1.5] * 5 + [-0.1] + [1.5] * 6  # 11 marks of 1.5 pips, one improvement of 0.1 pip
FAIR_SIZED = [1.5] * 5 + [-1.5] + [1.5] * 6  # the same count, the improvement as large


def test_eleven_marks_and_one_clipped_improvement_are_asymmetric_by_value():
    alerts = run(client(CLIPPED), only=ONLY)
    assert len(alerts) == 1
    ev = alerts[0]["evidence"]
    assert ev["asymmetric_by"] == "value" and ev["value_test"] == "exact sign-flip"
    assert ev["value_p_value"] == 2 / 4096  # the observed pattern and the all-adverse one
    assert ev["p_value"] > 0.003  # the count test alone: chance
    assert run(client(CLIPPED), only=ONLY, params=BEFORE) == []


def test_near_miss_an_improvement_as_large_as_the_marks_is_not_alerted():
    assert run(client(FAIR_SIZED), only=ONLY) == []  # 13 of 4096 patterns reach it: 0.0032


def test_the_tail_is_exact():
    assert sign_flip_tail([1.0] * 10, 1.0) == 2.0**-10
    assert sign_flip_tail([1.5] * 11 + [-1.5], 1.0) == 13 / 4096
    assert sign_flip_tail([1.0, -1.0, 2.0], 1.0) == 3 / 8  # sizes 1, 1, 2: +1+1+2, +1-1+2, -1+1+2


def test_a_restart_keeps_the_slippages():
    rows = sorted(client(CLIPPED), key=lambda r: r["ts"])
    engine = SurveillanceEngine(only=ONLY)
    for row in rows[:13]:  # the quote and six orders with their fills (the improvement among them)
        engine.process(record_decoder.decode(orjson.dumps(row)))
    restarted = SurveillanceEngine(only=ONLY)
    state_load(restarted, state_dump(engine))
    for row in rows[13:]:
        restarted.process(record_decoder.decode(orjson.dumps(row)))
    alerts = restarted.finish()
    assert len(alerts) == 1 and alerts[0].evidence["value_test"] == "exact sign-flip"


def test_one_definition_of_a_gross_exception():
    assert AsymmetricSlippageParams().gross_multiple == GROSS_EXCEPTION_MULTIPLE
    assert BestExecutionParams().asymmetric_hold_multiple == GROSS_EXCEPTION_MULTIPLE
