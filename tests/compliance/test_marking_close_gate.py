"""Marking the close: the pushes at a print recorded with their features (``gate_candidates``), the
learned gate (``close_gate``, off by default; on in the ``otc`` market profile at log-odds -1.125
since the 2026-12-06 12:00 round, wip/close45) and its fit command (2026-12-06 09:00 round,
wip/close40). Pure but for the command test."""

from __future__ import annotations

import io
import json
import math

import orjson
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from compliance.surveillance.engine import SurveillanceEngine
from compliance.surveillance.params import CLOSE_GATE
from compliance.surveillance.records import record_decoder
from compliance.surveillance.trade_detectors import CLOSE_GATE_FEATURES, MarkingTheCloseDetector, close_gate_score
from tests.compliance.helpers import market, pushed_print, q, run, surveil_restarted

ONLY = {"marking_the_close"}


def build_then_push(times: list[float], qty: int) -> list:
    """Bought ``qty`` in each of orders at ``times`` (one way), then three buys of 1,000,000 in the
    last three minutes push the 3,600-s print up from a 1.10000/1.10010 market to 1.10040."""
    build = [row for i, t in enumerate(times) for row in market(t, f"b{i}", "C", "buy", qty, "1.10010")]
    return pushed_print(build, 3600)


# A true mark: a stake built in one block and held (test_marking_block_build's case), then pushed.
TRUE_MARK = build_then_push([2000, 2020, 2040, 2060, 2080], 1_500_000)
# Its near-miss: an execution parent sliced one way through the hour, its last slices into the print.
PARENT = build_then_push([1700 + 170 * i for i in range(8)], 1_000_000)


def candidates(rows, params=None):
    engine = SurveillanceEngine({"marking_the_close": {"gate_candidates": True, **(params or {})}}, only=ONLY)
    for row in sorted(rows, key=lambda r: r["ts"]):
        engine.process(record_decoder.decode(orjson.dumps(row)))
    alerts = [a.as_dict() for a in engine.finish()]
    (detector,) = [d for d in engine.detectors if isinstance(d, MarkingTheCloseDetector)]
    return detector.candidates, alerts


def test_every_push_at_a_print_is_recorded_with_its_features_and_the_hand_test_that_stopped_it():
    cands, alerts = candidates(TRUE_MARK)
    (push,) = cands
    assert push["hand_stop"] is None and push["order_ids"] == ["c0", "c1", "c2"]
    assert set(push["features"]) == set(CLOSE_GATE_FEATURES)
    assert push["features"]["share"] == 1.0 and push["features"]["log_position"] > 0
    # the hand rules' alerts are unchanged by the recording (the same pushes, the same orders)
    assert [a["order_ids"] for a in alerts] == [a["order_ids"] for a in run(TRUE_MARK, only=ONLY)]
    # the parent's push fails the concentration test: recorded, named, not alerted
    cands, alerts = candidates(PARENT)
    assert alerts == [] and [c["hand_stop"] for c in cands] == ["min_concentration"]
    assert cands[0]["features"]["log_concentration"] < math.log(5.0)  # under min_concentration


def test_the_gate_is_off_by_default_and_on_in_the_otc_profile_at_its_operating_point():
    # the detector's own default and the order book's profile: the hand rules
    hand = {"marking_the_close": {"close_gate": False}}
    alerts = run(TRUE_MARK, only=ONLY, params=hand)
    assert len(alerts) == 1 and "close_gate_score" not in alerts[0]["evidence"]
    assert "hand_stop" not in alerts[0]["evidence"]
    alerts = run(TRUE_MARK, only=ONLY, market="order_book")  # its print gate names the hand stop
    assert len(alerts) == 1 and "close_gate_score" not in alerts[0]["evidence"]
    # otc (the FX books; 2026-12-06 12:00 round, wip/close45): the gate at log-odds -1.125
    (alert,) = run(TRUE_MARK, only=ONLY)
    assert alert["evidence"]["close_gate_threshold"] == -1.125 and alert["evidence"]["hand_stop"] is None


def test_the_fit_command_runs_on_a_tiny_book_and_refuses_a_confirmation_seed(tmp_path):
    out, err = io.StringIO(), io.StringIO()
    path = tmp_path / "cands.jsonl"
    call_command(
        "surveil_scenarios",
        "--fit-close-gate",
        "--seeds",
        "101",
        "--hours",
        "1.5",
        "--candidates",
        str(path),
        stdout=out,
        stderr=err,
    )
    fitted = json.loads(out.getvalue())
    assert fitted["books"] == 1 and fitted["folds"] == []  # too few books for cross-validation
    gate = fitted["gate"]
    assert gate["features"] == list(CLOSE_GATE_FEATURES) and len(gate["coef"]) == len(CLOSE_GATE_FEATURES)
    assert path.exists()  # extracted once, read again on the next run
    again = io.StringIO()
    call_command("surveil_scenarios", "--fit-close-gate", "--candidates", str(path), stdout=again)
    assert json.loads(again.getvalue())["gate"]["coef"] == gate["coef"]
    with pytest.raises(CommandError, match="not an allowed book"):
        call_command("surveil_scenarios", "--fit-close-gate", "--seen-independent", "--seeds", "54886")


def test_a_restart_anywhere_changes_no_gated_alert():
    # the gate's pushes wait after the print as the hand rules' do (the same pending entries,
    # their verdict in the evidence): the snapshot's shape is unchanged (STATE_VERSION 53)
    params = {"marking_the_close": {"close_gate": True}}
    rows = [*TRUE_MARK, q(3700, "1.10000", "1.10010")]  # a quote after the print: a cut there holds the wait
    whole = surveil_restarted(rows, only=ONLY, params=params)
    assert len(whole) == 1 and "close_gate_contributions" in whole[0]["evidence"]
    n = len(rows)
    for cut in (n // 3, n - 3, n - 1):
        assert surveil_restarted(rows, only=ONLY, restart_at=cut, params=params) == whole


def test_the_gate_alerts_a_true_mark_and_names_each_figures_contribution():
    params = {"marking_the_close": {"close_gate": True, "close_gate_threshold": None}}  # the fitted threshold
    (alert,) = run(TRUE_MARK, only=ONLY, params=params)
    ev = alert["evidence"]
    assert ev["close_gate_threshold"] == CLOSE_GATE["threshold"] and ev["close_gate_fitted"] == CLOSE_GATE["fitted"]
    assert set(ev["close_gate_contributions"]) == {"intercept", *CLOSE_GATE_FEATURES}
    assert sum(ev["close_gate_contributions"].values()) == pytest.approx(ev["close_gate_score"], abs=1e-3)
    assert ev["close_gate_score"] >= ev["close_gate_threshold"] and ev["hand_stop"] is None
    assert alert["order_ids"] == ["c0", "c1", "c2"]
    # a threshold above its score (passed explicitly) drops it
    higher = {"marking_the_close": {"close_gate": True, "close_gate_threshold": ev["close_gate_score"] + 0.01}}
    assert run(TRUE_MARK, only=ONLY, params=higher) == []


def test_the_gate_near_miss_an_execution_parent_scores_under_its_threshold():
    # the parent's figures are a mark's (share, one-way, print moved, a position) but its pace
    # before the push is its own (concentration 3.75 < 5): the hand rules' verdict and the
    # concentration vote weigh it under the threshold
    assert run(PARENT, only=ONLY, params={"marking_the_close": {"close_gate": True}}) == []
    (push,), _alerts = candidates(PARENT)
    z, contributions = close_gate_score(push["features"], CLOSE_GATE)
    assert z < CLOSE_GATE["threshold"] and contributions["hand_pass"] < 0 and contributions["ok_concentration"] < 0
