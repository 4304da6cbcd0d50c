"""Market profiles (``MARKET_PROFILES``): the detectors' defaults for the kind of market a firm's
orders trade on. ``order_book`` judges momentum ignition by its learned gate (wip/mom40); ``otc``
keeps the hand rules. Set by ``SURVEILLANCE_MARKET`` (the streaming stage), ``surveil --market``
and, in the evaluation, by the book's own market."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import orjson
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from compliance.consumers import SurveillanceConsumer, SurveillanceRule
from compliance.scenarios.evaluation import book_market
from compliance.surveillance.engine import SurveillanceEngine
from compliance.surveillance.params import MARKET_PROFILES, ParameterError, market_params
from tests.compliance.helpers import run
from tests.compliance.test_momentum_fresh_series import spaced_series

ONLY = {"momentum_ignition"}


def test_the_order_book_profile_turns_the_momentum_gate_on_and_otc_keeps_the_hand_rules():
    assert SurveillanceEngine(market="order_book").default_params["momentum_ignition"].gate is True
    assert SurveillanceEngine(market="otc").default_params["momentum_ignition"].gate is False
    assert SurveillanceEngine(market="order_book").default_params["marking_the_close"].print_purpose_gate is True
    assert SurveillanceEngine(market="otc").default_params["marking_the_close"].print_purpose_gate is False
    assert SurveillanceEngine().market == "otc"
    # the same series judged two ways: by the hand rules (otc) and by the gate (order book),
    # whose evidence gives its probability against its threshold
    rows = spaced_series()
    (hand,) = run(rows, only=ONLY)
    (gated,) = run(rows, only=ONLY, market="order_book")
    assert "gate" not in hand["evidence"]
    assert gated["evidence"]["gate"]["probability"] >= gated["evidence"]["gate"]["threshold"]
    # the order book's profile named as parameters on `otc` (less otc's own late turn) is the same
    book = {**MARKET_PROFILES["order_book"]}
    book["momentum_ignition"] = {**book["momentum_ignition"], "late_reversal_s": None}
    assert [gated] == run(rows, only=ONLY, params=book)


def test_a_rule_changing_one_threshold_keeps_the_profiles_gate_and_one_setting_it_off_turns_it_off():
    """A firm rule (or ``--params``) for momentum ignition sets the parameters it names; the others
    keep the market's defaults, as they keep the detector's on ``otc``: an officer tightening one
    threshold on the order book does not switch the learned gate off unseen."""
    engine = SurveillanceEngine({"momentum_ignition": {"min_aggressive_orders": 4}}, market="order_book")
    assert engine.default_params["momentum_ignition"].gate is True
    assert engine.default_params["momentum_ignition"].min_aggressive_orders == 4
    off = SurveillanceEngine({"momentum_ignition": {"gate": False}}, market="order_book")
    assert off.default_params["momentum_ignition"].gate is False
    rest = {
        "asymmetric_slippage": {"one_way_unheld": True},
        "best_execution_slippage": {"dismiss_symmetric_reach": 1.5},
        "spoofing": {"spoof_one_depth_bps": 0.01},
    }
    # a rule naming spoofing with nothing in it keeps the profile's one depth, one level
    assert market_params("order_book", {"spoofing": {}}) == {
        "momentum_ignition": {"gate": True},
        "marking_the_close": {"print_purpose_gate": True},
        **rest,
    }
    assert market_params("order_book", {"momentum_ignition": {"min_aggressive_orders": 4}}) == {
        "momentum_ignition": {"gate": True, "min_aggressive_orders": 4},
        "marking_the_close": {"print_purpose_gate": True},
        **rest,
    }
    assert market_params("order_book", {"asymmetric_slippage": {"min_fills": 30}})["asymmetric_slippage"] == {
        "one_way_unheld": True,
        "min_fills": 30,
    }


def test_scoped_rules_keep_the_markets_defaults_too():
    """An instrument (or account, algorithm) rule is the most specific parameter set for its
    scope; what it leaves out is the market's default, not the otc one."""
    engine = SurveillanceEngine(
        instrument_params={"momentum_ignition": {"EURUSD": {"min_aggressive_orders": 4}}},
        account_params={"momentum_ignition": {"7": {"gate": False}}},
        market="order_book",
    )
    router = engine.units["momentum_ignition"]
    assert router.by_symbol["EURUSD"].p.gate is True
    assert router.by_symbol["EURUSD"].p.min_aggressive_orders == 4
    assert router.by_account["7"].p.gate is False
    otc = SurveillanceEngine(instrument_params={"momentum_ignition": {"EURUSD": {"min_aggressive_orders": 4}}})
    assert otc.units["momentum_ignition"].by_symbol["EURUSD"].p.gate is False


def test_the_streaming_stage_keeps_the_gate_across_a_momentum_rule_change():
    """The product path: on the order book, an approved momentum ignition rule that changes one
    threshold is applied by the stage with the gate still on."""
    from tradeops.events import ComplianceRuleChanged

    consumer = SurveillanceConsumer(record=False, market="order_book")
    change = ComplianceRuleChanged(
        rule_id=1,
        code="momentum-ignition-firm",
        version=1,
        rule_type="momentum_ignition",
        scope="firm",
        scope_value="",
        parameters={"min_aggressive_orders": 4},
        active=True,
        actor="officer",
        ts=datetime(2026, 12, 6, 9, 0, tzinfo=UTC),
    )
    consumer.rule_apply(change)
    p = consumer.engine.default_params["momentum_ignition"]
    assert (p.gate, p.min_aggressive_orders, consumer.engine.market) == (True, 4, "order_book")


def test_an_unknown_market_is_refused_by_name():
    with pytest.raises(ParameterError, match="unknown market 'dark_pool'; known: otc, order_book"):
        SurveillanceEngine(market="dark_pool")


def test_surveil_market_option_and_setting(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_bytes(b"\n".join(orjson.dumps(r) for r in sorted(spaced_series(), key=lambda r: r["ts"])))
    out = tmp_path / "a.jsonl"

    err = io.StringIO()
    call_command("surveil", str(src), "--output", str(out), stderr=err)
    assert "market profile otc" in err.getvalue()
    assert b'"gate"' not in out.read_bytes()

    err = io.StringIO()
    call_command("surveil", str(src), "--output", str(out), "--market", "order_book", stderr=err)
    assert "market profile order_book" in err.getvalue()
    assert b'"gate"' in out.read_bytes()

    with override_settings(SURVEILLANCE_MARKET="order_book"):
        err = io.StringIO()
        call_command("surveil", str(src), "--output", str(out), stderr=err)
        assert "market profile order_book" in err.getvalue()

    with pytest.raises(CommandError, match="invalid choice: 'lit'"):
        call_command("surveil", str(src), "--output", str(out), "--market", "lit", stderr=io.StringIO())


def test_the_streaming_stage_keeps_its_market_across_a_rule_change():
    consumer = SurveillanceConsumer(record=False, market="order_book")
    assert consumer.engine.market == "order_book"
    assert consumer.engine.default_params["momentum_ignition"].gate is True
    consumer.rules[("wash_trade", "firm", "")] = SurveillanceRule("wash_trade", "firm", "", {})
    from compliance.consumers import engine_build

    assert engine_build(consumer.rules.values(), market=consumer.market).market == "order_book"
    with pytest.raises(ParameterError, match="unknown market"):
        SurveillanceConsumer(record=False, market="nowhere")


def test_each_scenario_book_is_surveilled_on_its_own_market():
    assert book_market("lob") == "order_book"
    assert book_market("generator") == book_market("independent") == "otc"


def test_the_rules_admin_gives_the_markets_default_for_a_parameter_the_profile_sets():
    """What the officer reads as a parameter's default is what the stage runs it at: on the order
    book, momentum ignition's gate defaults to on, and a proposal leaving a set gate out says so."""
    from django.core.exceptions import ValidationError

    from compliance.rule_parameters import check_rule_parameters_proposal, rule_parameters_help

    with override_settings(SURVEILLANCE_MARKET="order_book"):
        assert "gate: default true on the order_book market" in rule_parameters_help("momentum_ignition", None)
        with pytest.raises(ValidationError, match=r"set it to null to return it to its default \(its default: true\)"):
            check_rule_parameters_proposal(rule_type="momentum_ignition", parameters={}, current={"gate": False})
    with override_settings(SURVEILLANCE_MARKET="otc"):
        assert "gate: default false;" in rule_parameters_help("momentum_ignition", None)
    assert "on the" not in rule_parameters_help("max_order_value", None)


def test_an_unknown_surveillance_market_setting_is_a_system_check_error_naming_it():
    """Every management command runs the system checks before it starts (``run_stage
    surveillance``, ``run_embedded``): an unknown ``SURVEILLANCE_MARKET`` stops it there, naming
    the setting and the known markets, not with a bare ParameterError from inside the stage."""
    from django.core.checks import run_checks

    with override_settings(SURVEILLANCE_MARKET="lit"):
        (error,) = [m for m in run_checks() if m.id == "compliance.E001"]
        assert "SURVEILLANCE_MARKET='lit' names no market profile; known: otc, order_book" in error.msg
    with override_settings(SURVEILLANCE_MARKET="order_book"):
        assert not [m for m in run_checks() if m.id == "compliance.E001"]
