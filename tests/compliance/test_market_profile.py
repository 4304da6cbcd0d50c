"""Market profiles (``MARKET_PROFILES``): the detectors' defaults for the kind of market a firm's
orders trade on. ``order_book`` judges momentum ignition by its learned gate (wip/mom40); ``otc``
keeps the hand rules. Set by ``SURVEILLANCE_MARKET`` (the streaming stage), ``surveil --market``
and, in the evaluation, by the book's own market."""

from __future__ import annotations

import io

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
    assert SurveillanceEngine().market == "otc"
    # the same series judged two ways: by the hand rules (otc) and by the gate (order book),
    # whose evidence gives its probability against its threshold
    rows = spaced_series()
    (hand,) = run(rows, only=ONLY)
    (gated,) = run(rows, only=ONLY, market="order_book")
    assert "gate" not in hand["evidence"]
    assert gated["evidence"]["gate"]["probability"] >= gated["evidence"]["gate"]["threshold"]
    assert [gated] == run(rows, only=ONLY, params=MARKET_PROFILES["order_book"])


def test_a_detectors_parameters_given_replace_its_profile_as_they_replace_the_defaults():
    """A firm rule (or ``--params``) for momentum ignition sets the detector as a whole: the
    profile is the market's defaults, as the parameters' defaults are for ``otc``."""
    engine = SurveillanceEngine({"momentum_ignition": {"min_aggressive_orders": 3}}, market="order_book")
    assert engine.default_params["momentum_ignition"].gate is False
    assert market_params("order_book", {"wash_trade": {}}) == {"momentum_ignition": {"gate": True}, "wash_trade": {}}


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
