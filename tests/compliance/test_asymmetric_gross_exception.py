"""Best execution's case needs a gross exception, 2026-12-05 evening round (wip/exec22,
docs/surveillance-rounds-exec22.md; ``AsymmetricSlippageParams.gross_multiple``): a client whose
one-way marks mostly spill past best execution's bar but all stay within twice it is the
asymmetric policy (a tolerance set just past the bar), alerted as asymmetric; the same client
with marks past twice the bar is best execution's case, as before."""

from __future__ import annotations

from tests.compliance.helpers import run
from tests.compliance.test_asymmetric_best_ex_case import BOTH, client  # a 1-pip spread: the bar is 2 pips

BEFORE = {"asymmetric_slippage": {"gross_multiple": None}}


def types(alerts) -> list[str]:
    return sorted(a["alert_type"] for a in alerts)


def test_marks_spilling_just_past_the_bar_are_the_asymmetric_policy():
    # 12 adverse marks, 9 of them 2.5-3.5 pips (past the 2-pip bar, within twice it): 0.75
    rows = client([1.5, 2.5, 3.0, 3.5] * 3)
    alerts = run(rows, only=BOTH)
    assert types(alerts) == ["asymmetric_slippage"]  # best execution held its 9 for it
    ev = alerts[0]["evidence"]
    assert ev["adverse_beyond_best_execution"] == 9 and ev["adverse_past_gross_multiple"] == 0
    assert ev["best_execution_fills_held"] == 9
    assert types(run(rows, only=BOTH, params=BEFORE)) == ["best_execution_slippage"]


def test_a_gross_exception_among_them_is_best_executions_case():
    # the same client, one mark of 5 pips (past twice the bar): best execution's, as before
    rows = client([1.5, 2.5, 3.0, 3.5] * 2 + [1.5, 2.5, 3.0, 5.0])
    assert types(run(rows, only=BOTH)) == ["best_execution_slippage"]
    assert types(run(rows, only=BOTH, params=BEFORE)) == ["best_execution_slippage"]


HOLD = {"best_execution_slippage": {"hold_without_gross": True}}
NO_HOLD = {"best_execution_slippage": {"hold_without_gross": False}}


def test_with_hold_without_gross_best_execution_waits_for_the_review():
    # marks all past the bar (share 1 / 1 from the first) but within twice it: off, best
    # execution opens its run at the first and the client is alerted twice; on (the default
    # since 2026-12-05 night, wip/bex27), its detections wait for the asymmetric review, which
    # takes them
    rows = client([2.5, 3.0, 3.5] * 4)
    assert types(run(rows, only=BOTH, params=NO_HOLD)) == ["asymmetric_slippage", "best_execution_slippage"]
    assert types(run(rows, only=BOTH)) == ["asymmetric_slippage"]
    alerts = run(rows, only=BOTH, params=HOLD)
    assert types(alerts) == ["asymmetric_slippage"]
    assert alerts[0]["evidence"]["best_execution_fills_held"] == 12


def test_with_hold_without_gross_a_gross_exception_is_still_never_held():
    assert types(run(client([5.0] * 12), only=BOTH, params=HOLD)) == ["best_execution_slippage"]
