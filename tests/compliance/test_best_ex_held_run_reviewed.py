"""A held run is reviewed, not released unreviewed, 2026-12-05 evening round (wip/exec22,
docs/surveillance-rounds-exec22.md; ``BestExecutionParams.review_held``): when best execution's
hold of a client's detections reaches ``asymmetric_hold_s``, or nothing new is left for
asymmetric slippage to assess (the held fills came after its alert), asymmetric slippage assesses
the client then, and folds the run into its alert or clears it. A fair client reviewed at the cap
keeps best execution's alert; too few slippages for the test: released as before."""

from __future__ import annotations

from tests.compliance.helpers import f, o, pips_past_ask, run, slipped_buys

BOTH = {"best_execution_slippage", "asymmetric_slippage"}
BEFORE = {"best_execution_slippage": {"review_held": False}}


def types(alerts) -> list[str]:
    return sorted(a["alert_type"] for a in alerts)


def test_a_run_held_past_the_cap_is_reviewed_then_folded():
    # an asymmetric client trading for over 2 h, never quiet for 30 min: its first held
    # detection (a2, 1601 s) reaches the 7200 s cap while it still trades (13 slippages)
    rows = slipped_buys([1.5, 1.5, 3.0] * 5, gap=800.0)
    alerts = run(rows, only=BOTH)
    assert types(alerts) == ["asymmetric_slippage"]  # one episode: the review's and the end's
    ev = alerts[0]["evidence"]
    assert ev["episode"]["detections"] == 2
    before = types(run(rows, only=BOTH, params=BEFORE))  # released at the cap: best execution's
    assert before.count("asymmetric_slippage") == 1 and "best_execution_slippage" in before


def test_a_fair_client_reviewed_at_the_cap_keeps_best_executions_alert():
    # marks both ways: the review at the cap clears the client, the run is best execution's
    rows = slipped_buys([1.5, -1.5, 3.0, -1.5] * 4, gap=800.0)
    alerts = run(rows, only=BOTH)
    assert set(types(alerts)) == {"best_execution_slippage"}
    assert types(run(rows, only=BOTH, params=BEFORE)) == types(alerts)


def test_fills_after_the_alert_join_it():
    # 20 marks of 1.5 pips (alerted at the 20th); the 20th order's second fill, 3 pips past
    # the ask, is a best-execution detection with nothing new for asymmetric to assess
    rows = slipped_buys([1.5] * 19, gap=60.0)
    t = 60.0 * 19 + 1
    rows += [
        o(t, "new", "a19", "K", "buy", 200_000),
        f(t + 0.05, "a19", "K", "buy", 100_000, pips_past_ask(1.5)),
        f(t + 0.1, "a19", "K", "buy", 100_000, pips_past_ask(3.0)),
    ]
    alerts = run(rows, only=BOTH)
    assert types(alerts) == ["asymmetric_slippage"]
    assert alerts[0]["evidence"]["best_execution_fills_held"] == 1
    assert types(run(rows, only=BOTH, params=BEFORE)) == ["asymmetric_slippage", "best_execution_slippage"]


def test_too_few_slippages_are_released_at_the_cap_as_before():
    # 6 slippages over 2 h (the exact test needs 10): nothing to review, best execution's alert
    # (an improvement among them: one way, the run would be asymmetric's, wip/asym35's
    # ``one_way_level``, tests/compliance/test_asymmetric_one_way_level.py)
    rows = slipped_buys([1.5, -0.5, 3.0] * 2, gap=1700.0)
    alerts = run(rows, only=BOTH)
    assert set(types(alerts)) == {"best_execution_slippage"}
    assert types(run(rows, only=BOTH, params=BEFORE)) == types(alerts)
