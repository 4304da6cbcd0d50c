"""How far a symmetric client's improvements reach, 2026-12-06 noon (wip/lob45,
docs/surveillance-rounds.md 12:00 round; ``BestExecutionParams.dismiss_symmetric_reach``): a
held mark of a client asymmetric slippage found symmetric is dismissed when it lies within this
multiple of the largest improvement the client was given (1.0, the rule before, by default).
A symmetric policy draws its marks and its improvements alike: its largest mark lies a little
past its largest improvement as often as not."""

from __future__ import annotations

from tests.compliance.helpers import run
from tests.compliance.test_best_ex_symmetric_dismissed import BOTH, client, types


def reach(k: float) -> dict:
    return {"best_execution_slippage": {"dismiss_symmetric_reach": k}}


def test_a_mark_a_little_past_the_largest_improvement_is_the_symmetric_policys_at_1_5():
    # symmetric marks and improvements; the 2.2-pip mark (held) is 1.29x the 1.7-pip improvement
    rows = client([1.5, -1.5] * 5 + [2.2, -1.7])
    assert types(run(rows, only=BOTH, params=reach(1.5))) == []
    assert types(run(rows, only=BOTH)) == ["best_execution_slippage"]  # the rule before


def test_near_miss_a_mark_past_the_reach_stays_best_executions():
    # 3.0 pips against a 1.7-pip improvement (1.76x): best execution's at 1.5
    rows = client([1.5, -1.5] * 5 + [3.0, -1.7])
    assert types(run(rows, only=BOTH, params=reach(1.5))) == ["best_execution_slippage"]


def test_near_miss_a_client_never_improved_reaches_nothing():
    # one-way marks with a tiny clipped improvement (0.1 pip): asymmetric slippage's, not dismissed
    rows = client([1.5] * 10 + [2.5, -0.1])
    assert types(run(rows, only=BOTH, params=reach(1.5))) == ["asymmetric_slippage"]
