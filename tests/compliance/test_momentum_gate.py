"""Momentum ignition's learned gate (2026-12-06 09:00 round, wip/mom40, ``gate``; off by default):
a loose candidate stage (orders up to ``gate_max_gap_s`` apart) whose every candidate is scored by
the logistic model ``MOMENTUM_GATE`` in plain Python, the score against its threshold replacing
the hand tests; ``gate_candidates`` records every candidate with its features and the hand test
that stopped it; ``surveil_scenarios --momentum-candidates`` / ``--fit-momentum-gate`` extract
and fit. The tests pass the parameter explicitly, on and off."""

from __future__ import annotations

import json
from math import isclose

import orjson
import pytest
from django.core.management import CommandError, call_command

from compliance.scenarios.momentum_gate import THRESHOLD_GRID
from compliance.surveillance.engine import SurveillanceEngine
from compliance.surveillance.params import MOMENTUM_GATE, MOMENTUM_GATE_OTC, MomentumIgnitionParams
from compliance.surveillance.trade_detectors import momentum_gate_score
from tests.compliance.helpers import record_decoder, run, surveil_restarted
from tests.compliance.test_momentum_fresh_series import spaced_series

ONLY = {"momentum_ignition"}
ON = {"momentum_ignition": {"gate": True}}
OFF = {"momentum_ignition": {"gate": False}}


def candidates(rows):
    engine = SurveillanceEngine({"momentum_ignition": {"gate_candidates": True}}, only=ONLY)
    for row in sorted(rows, key=lambda r: r["ts"]):
        engine.process(record_decoder.decode(orjson.dumps(row)))
    engine.finish()
    return engine.units["momentum_ignition"].candidates


def test_off_by_default_and_off_is_the_detector_before_it():
    p = MomentumIgnitionParams()
    assert p.gate is False and p.gate_candidates is False
    for rows in (spaced_series(), spaced_series(gap=4.0), spaced_series(walked=0)):
        assert run(rows, only=ONLY) == run(rows, only=ONLY, params=OFF)


def test_a_newcomers_walked_series_turned_is_alerted_by_the_gate_and_its_evidence_names_each_feature():
    """Three buys 20 s apart by an account new to EURUSD, the first through two levels, the whole
    sold 90 s later: the gate scores it over its threshold; the evidence gives the probability,
    the threshold and each model feature's value and contribution to the log-odds."""
    (alert,) = run(spaced_series(), only=ONLY, params=ON)
    gate = alert["evidence"]["gate"]
    assert alert["order_ids"] == ["b0", "b1", "b2", "rev"]
    assert gate["probability"] >= gate["threshold"] == MOMENTUM_GATE["threshold"]
    assert set(gate["contributions"]) == set(MOMENTUM_GATE["features"])
    assert gate["contributions"]["newcomer"]["value"] == 1.0
    assert gate["hand_test_stopped"] is None
    total = gate["intercept"] + sum(c["contribution"] for c in gate["contributions"].values())
    assert isclose(total, gate["log_odds"], abs_tol=1e-3)
    assert gate["log_odds"] >= gate["threshold_log_odds"]


def test_near_miss_the_account_traded_the_symbol_before_is_scored_under_the_threshold():
    """The same series by an account that bought EURUSD half an hour before: a candidate (the
    loose stage takes the 20-s pauses), stopped by the hand rules' gap, and under the gate's
    threshold (not a newcomer, volume before): no alert."""
    rows = spaced_series(traded_before=1800.0)
    (cand,) = candidates(rows)
    assert cand["hand_stop"] == "gap" and cand["features"]["newcomer"] == 0.0
    assert momentum_gate_score(cand["features"], MOMENTUM_GATE, 0.45)["probability"] < MOMENTUM_GATE["threshold"]
    assert run(rows, only=ONLY, params=ON) == []


def test_near_miss_no_order_walked_and_a_held_series():
    assert run(spaced_series(walked=0), only=ONLY, params=ON) == []
    assert run(spaced_series(reverse=False), only=ONLY, params=ON) == []
    assert candidates(spaced_series(reverse=False)) == []


def test_the_candidates_carry_their_features_and_the_hand_test_that_stopped_them():
    (cand,) = candidates(spaced_series(walked=0))
    assert cand["hand_stop"] == "gap"
    assert cand["order_ids"] == ["b0", "b1", "b2", "rev"]
    assert cand["features"]["max_gap_s"] == pytest.approx(20.0)
    assert cand["features"]["walked_share"] == 0.0 and cand["features"]["hand_passed"] == 0.0
    assert set(MOMENTUM_GATE["features"]) <= set(cand["features"])


def test_the_gate_score_is_plain_logistic_arithmetic():
    model = {"features": {"a": (1.0, 2.0, 0.5), "b": (0.0, 1.0, -1.0)}, "intercept": 0.25, "threshold": 0.5}
    out = momentum_gate_score({"a": 3.0, "b": 1.0}, model, 0.5)
    assert out["contributions"] == {"a": {"value": 3.0, "contribution": 0.5}, "b": {"value": 1.0, "contribution": -1.0}}
    assert out["log_odds"] == -0.25 and isclose(out["probability"], 1 / (1 + 2.718281828459045**0.25), rel_tol=1e-5)


def test_a_restart_anywhere_in_the_series_still_catches_it_with_the_gate_on():
    rows = spaced_series()
    (expected,) = run(rows, only=ONLY, params=ON)
    for i in range(1, len(rows)):
        (alert,) = surveil_restarted(rows, only=ONLY, params=ON, restart_at=i)
        assert alert["order_ids"] == expected["order_ids"] and alert["evidence"]["gate"] == expected["evidence"]["gate"]


def test_the_fit_command_on_two_small_books(tmp_path, capsys):
    """Candidates of two one-hour development books, then the fit: grouped folds (one book each),
    the gate against the hand rules per book kind, and a model over the gate's features."""
    path = tmp_path / "candidates.jsonl"
    call_command("surveil_scenarios", "--seeds", "101,102", "--hours", "1", "--momentum-candidates", str(path))
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    summaries = [x for x in lines if "summary" in x]
    assert [s["group"] for s in summaries] == ["generator-dev-101", "generator-dev-102"]
    assert any(x.get("label") == "true" for x in lines) and any(x.get("label") == "background" for x in lines)
    capsys.readouterr()
    call_command("surveil_scenarios", "--fit-momentum-gate", str(path))
    fitted = json.loads(capsys.readouterr().out)
    assert fitted["books"] == 2 and fitted["folds"] == 2 and fitted["objective_on"] == "every book"
    assert set(fitted["modes"]) == {"alone", "beside_hand"}
    assert fitted["market"] == "order_book" and fitted["chosen_mode"] == "alone"
    assert set(fitted["modes"]["alone"]["cv_by_book_kind"]) == {"development"}
    assert set(fitted["model"]["features"]) == set(MOMENTUM_GATE["features"])
    # the FX books' move gate: the objective on the dealer books, a model of the move-stopped candidates
    call_command("surveil_scenarios", "--fit-momentum-gate", str(path), "--gate-market", "otc")
    otc = json.loads(capsys.readouterr().out)
    assert otc["market"] == "otc" and otc["objective_on"] == "generator,independent"
    assert otc["chosen_mode"] == "move" and set(otc["modes"]) == {"alone", "beside_hand", "move"}
    assert set(otc["model"]["features"]) == set(MOMENTUM_GATE_OTC["features"]) and otc["model"]["stops"] == ["move"]
    assert {r["threshold"] for r in otc["move_grid"]} == set(THRESHOLD_GRID)


def test_the_candidates_are_refused_on_the_fresh_seeds(tmp_path):
    with pytest.raises(CommandError, match="never on the fresh"):
        call_command("surveil_scenarios", "--held-out", "--momentum-candidates", str(tmp_path / "c.jsonl"))


def test_the_candidates_are_refused_on_the_confirmation_sets_the_seen_lists_hold(tmp_path):
    """The seen order-book seeds hold the CONFIRMATION sets (the round's row, never fitted
    on): named with --seeds, they are refused before any book is generated."""
    out = tmp_path / "c.jsonl"
    with pytest.raises(CommandError, match="seeds 88048 are lob CONFIRMATION sets"):
        call_command("surveil_scenarios", "--seen-lob", "--seeds", "43643,88048", "--momentum-candidates", str(out))
    assert not out.exists()
