"""Metrics appear with the right labels after a pipeline run: events in and out per stage and
topic, consumer lag per topic and group, dead letters by reason, and the metrics stage's
fills, positions, refusals and alerts (the order path's own are in
tests/workers/test_order_path_observability.py)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from prometheus_client import REGISTRY

from tests.tradeops.conftest import T0, tick
from tests.tradeops.toy_stages import MidPrice
from tradeops.bus.memory import MemoryBus
from tradeops.bus.runner import EmbeddedDispatcher, StageRunner, pipeline_run
from tradeops.bus.tracing import traceparent_new
from tradeops.events import (
    Alert,
    CheckResult,
    Fill,
    OrderEvent,
    PositionChanged,
    RiskDecision,
    Topic,
    make_event,
)
from tradeops.observability.events import MetricsHandler
from tradeops.observability.metrics import reason_code
from tradeops.stages import STAGES, Stage, stages_wired

FEATURES = Stage("obs-features", (Topic.MARKET_DATA,), "obs-features", "tests.tradeops.toy_stages.MidPrice")
MODEL = Stage("obs-model", (Topic.FEATURES,), "obs-model", "tests.tradeops.toy_stages.UpIfAboveOne")


def value(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_events_in_and_out_per_stage_and_topic_dead_letters_and_lag():
    before_in = value("tradeops_events_in_total", stage="obs-features", topic=Topic.MARKET_DATA)
    before_out = value("tradeops_events_out_total", stage="obs-model", topic=Topic.PREDICTIONS)
    before_dead = value("tradeops_dead_letters_total", topic=Topic.MARKET_DATA, reason="handler_error")
    ticks = [tick(s, i, traceparent=traceparent_new()) for i in range(20) for s in ("EURUSD", "GBPUSD")]
    ticks.append(tick("POISON", 1))
    result = pipeline_run(ticks, stages=[FEATURES, MODEL], bus=MemoryBus(), batch_size=7)
    assert result.dead_letters == 1
    assert value("tradeops_events_in_total", stage="obs-features", topic=Topic.MARKET_DATA) - before_in == 41
    assert value("tradeops_events_out_total", stage="obs-model", topic=Topic.PREDICTIONS) - before_out == 40
    assert value("tradeops_dead_letters_total", topic=Topic.MARKET_DATA, reason="handler_error") - before_dead == 1
    assert value("tradeops_stage_batch_seconds_count", stage="obs-model") > 0
    assert value("tradeops_heartbeat_timestamp_seconds", process="stage-obs-features") > 0


def test_consumer_lag_per_topic_and_group():
    bus = MemoryBus()
    for i in range(12):
        bus.publish(tick("EURUSD", i))
    subscription = bus.subscribe(FEATURES.consumes, FEATURES.group)
    runner = StageRunner(stage=FEATURES, handler=MidPrice(), bus=bus, subscription=subscription)
    runner.meter.lag_every = 0
    runner.run_once(max_records=5, timeout=0)  # the first batch is timed: the lag once committed
    assert value("tradeops_consumer_lag", topic=Topic.MARKET_DATA, group="obs-features") == 7
    runner.run_once(max_records=100, timeout=0)  # not a timed batch: the lag is not looked at
    assert value("tradeops_consumer_lag", topic=Topic.MARKET_DATA, group="obs-features") == 7
    assert runner.run_once(max_records=100, timeout=0) == 0  # an empty poll looks again
    assert value("tradeops_consumer_lag", topic=Topic.MARKET_DATA, group="obs-features") == 0


class Sink:
    def handle(self, event):
        return []


def test_stage_totals_are_read_when_scraped():
    """Events in come from the runners' own stats (one topic) or a per-topic count (several);
    one batch in TIME_EVERY is timed; the heartbeat moves only when the stage did."""
    from tradeops.observability.stage import TIME_EVERY

    two = Stage("obs-two-topics", (Topic.MARKET_DATA, Topic.FEATURES), "obs-two-topics", "x.y")
    bus = MemoryBus()
    for i in range(3):
        bus.publish(tick("EURUSD", i))
    runners = [
        StageRunner(stage=stage, handler=handler, bus=bus, subscription=bus.subscribe(stage.consumes, stage.group))
        for stage, handler in ((FEATURES, MidPrice()), (two, Sink()))
    ]
    before = {
        "single": value("tradeops_events_in_total", stage="obs-features", topic=Topic.MARKET_DATA),
        "two_md": value("tradeops_events_in_total", stage="obs-two-topics", topic=Topic.MARKET_DATA),
        "two_f": value("tradeops_events_in_total", stage="obs-two-topics", topic=Topic.FEATURES),
        "timed": value("tradeops_stage_batch_seconds_count", stage="obs-two-topics"),
    }
    for _ in range(2 * TIME_EVERY):
        for runner in runners:
            runner.run_once(max_records=1, timeout=0)
    assert value("tradeops_events_in_total", stage="obs-features", topic=Topic.MARKET_DATA) - before["single"] == 3
    # the features stage's 3 outputs (one per tick) reach the second stage on the features topic
    assert value("tradeops_events_in_total", stage="obs-two-topics", topic=Topic.MARKET_DATA) - before["two_md"] == 3
    assert value("tradeops_events_in_total", stage="obs-two-topics", topic=Topic.FEATURES) - before["two_f"] == 3
    # six batches for the second stage: the first is timed, the next timed one is the 17th
    assert value("tradeops_stage_batch_seconds_count", stage="obs-two-topics") - before["timed"] == 1
    beat = value("tradeops_heartbeat_timestamp_seconds", process="stage-obs-two-topics")
    assert value("tradeops_heartbeat_timestamp_seconds", process="stage-obs-two-topics") == beat  # nothing moved


def test_embedded_dispatcher_counts_topics_and_times_one_pump_in_time_every_pump():
    """In the embedded dispatcher an event costs the meters nothing but plain counts: a stage
    that consumes several topics has its events in per topic read from the dispatcher's counts
    when scraped; one pump in TIME_EVERY_PUMP (the first included) has its events timed."""
    from tradeops.observability.stage import TIME_EVERY_PUMP

    two = Stage("obs-embedded-two", (Topic.MARKET_DATA, Topic.FEATURES), "obs-embedded-two", "x.y")
    ticks = [tick("EURUSD", i) for i in range(TIME_EVERY_PUMP + 6)]
    before = {
        "md": value("tradeops_events_in_total", stage="obs-embedded-two", topic=Topic.MARKET_DATA),
        "f": value("tradeops_events_in_total", stage="obs-embedded-two", topic=Topic.FEATURES),
        "timed": value("tradeops_stage_batch_seconds_count", stage="obs-embedded-two"),
    }
    result = pipeline_run(
        ticks, stages=[FEATURES, two], handlers={"obs-embedded-two": Sink()}, bus=MemoryBus(), batch_size=1
    )
    assert result.stages["obs-embedded-two"].consumed == 2 * len(ticks)
    after_md = value("tradeops_events_in_total", stage="obs-embedded-two", topic=Topic.MARKET_DATA)
    after_f = value("tradeops_events_in_total", stage="obs-embedded-two", topic=Topic.FEATURES)
    assert after_md - before["md"] == len(ticks)
    assert after_f - before["f"] == len(ticks)
    # lock-step: a pump per tick (its tick and its features); pumps 1 and TIME_EVERY_PUMP + 1 timed
    assert value("tradeops_stage_batch_seconds_count", stage="obs-embedded-two") - before["timed"] == 4


def test_metrics_off_wires_no_metrics_stage_and_no_meter(settings):
    """With METRICS_ENABLED off the metrics stage is not wired into a run (nor run alone), the
    runners have no meter and the dispatcher's pumps go through the runners themselves."""
    assert "metrics" in [s.name for s in stages_wired()]
    settings.METRICS_ENABLED = False
    assert [s.name for s in stages_wired()] == [s.name for s in STAGES if s.name != "metrics"]
    with pytest.raises(CommandError, match="METRICS_ENABLED"):
        call_command("run_stage", "metrics")
    bus = MemoryBus()
    runners = [StageRunner(stage=s, handler=h, bus=bus, subscription=None) for s, h in ((FEATURES, MidPrice()),)]
    assert runners[0].meter is None
    dispatcher = EmbeddedDispatcher(runners, bus=bus)
    assert dispatcher.timed_consumers is dispatcher.consumers
    assert not any(dispatcher._time_pump() for _ in range(200))
    dispatcher.close()


def test_a_redelivered_event_is_counted_as_a_duplicate():
    bus = MemoryBus()
    runner = StageRunner(stage=FEATURES, handler=MidPrice(), bus=bus, subscription=None)
    before = value("tradeops_event_duplicates_total", stage="obs-features")
    event = tick("EURUSD", 1)
    assert len(runner.handle_one(event, Topic.MARKET_DATA)) == 1
    assert runner.handle_one(event, Topic.MARKET_DATA) == []  # delivered again: skipped
    assert value("tradeops_event_duplicates_total", stage="obs-features") - before == 1


def test_model_serving_metrics_for_a_vector_that_produced_a_signal():
    from mlmodels.runtime import serving_observe
    from tradeops.events import Prediction, Signal

    class Validator:
        drift_scores = {"EURUSD": 0.07}

    prediction = Prediction(
        symbol="EURUSD", ts=T0, model="obs-model-a", model_version="1", direction=1, probability=0.72
    )
    signal = Signal(
        signal_id="s1",
        symbol="EURUSD",
        ts=T0,
        side="BUY",
        confidence=0.72,
        price=Decimal("1.1"),
        model_versions={},
        algo_id="obs",
    )
    timed = value("tradeops_model_prediction_seconds_count")
    confident = value("tradeops_model_confidence_count", model="obs-model-a")
    under = value("tradeops_model_confidence_bucket", model="obs-model-a", le="0.75")
    signals = value("tradeops_signals_total", symbol="EURUSD", side="BUY")
    out = [make_event(p, source="test", key="EURUSD") for p in (prediction, signal)]
    serving_observe(out, seconds=0.0004, validator=Validator())
    assert value("tradeops_model_prediction_seconds_count") - timed == 1
    assert value("tradeops_model_confidence_count", model="obs-model-a") - confident == 1
    assert value("tradeops_model_confidence_bucket", model="obs-model-a", le="0.75") - under == 1
    assert value("tradeops_signals_total", symbol="EURUSD", side="BUY") - signals == 1
    assert value("tradeops_model_drift_score", symbol="EURUSD") == 0.07


def test_metrics_stage_counts_fills_positions_refusals_and_alerts():
    handler = MetricsHandler()
    fills = value("tradeops_fills_total", symbol="EURUSD")
    refusals = value("tradeops_pretrade_refusals_total", control="compliance.max_order_volume")
    alerts = value("tradeops_alerts_total", type="wash_trade", severity="high")
    orders = value("tradeops_orders_total", outcome="filled", reason="none")
    payloads = [
        OrderEvent(
            client_order_id="o1",
            account_id=7,
            symbol="EURUSD",
            side="BUY",
            order_type="MARKET",
            quantity=Decimal("0.1"),
            status="FILLED",
            ts=T0,
        ),
        Fill(
            client_order_id="o1",
            broker_deal_id="d1",
            account_id=7,
            symbol="EURUSD",
            side="BUY",
            quantity=Decimal("0.1"),
            price=Decimal("1.1"),
            ts=T0,
        ),
        PositionChanged(
            account_id=7,
            symbol="EURUSD",
            net_quantity=Decimal("0.1"),
            average_price=Decimal("1.1"),
            realised_pnl=Decimal("12.5"),
            unrealised_pnl=Decimal("-3"),
            ts=T0,
        ),
        RiskDecision(
            client_order_id="o2",
            account_id=7,
            symbol="EURUSD",
            approved=False,
            checks=(
                CheckResult(name="max_order_volume", passed=False, code="compliance.max_order_volume"),
                CheckResult(name="price_collar", passed=True),
            ),
            ts=T0,
        ),
        Alert(alert_type="wash_trade", severity="high", ts=T0),
    ]
    for payload in payloads:
        assert handler.handle(make_event(payload, source="test", key="7")) == []
    assert value("tradeops_fills_total", symbol="EURUSD") - fills == 1
    assert value("tradeops_position_net_lots", account="7", symbol="EURUSD") == 0.1
    assert value("tradeops_position_pnl", account="7", symbol="EURUSD", kind="realised") == 12.5
    assert value("tradeops_position_pnl", account="7", symbol="EURUSD", kind="unrealised") == -3
    assert value("tradeops_pretrade_refusals_total", control="compliance.max_order_volume") - refusals == 1
    assert value("tradeops_alerts_total", type="wash_trade", severity="high") - alerts == 1
    # orders are the execution worker's to count (tests/workers/test_order_path_observability.py)
    assert value("tradeops_orders_total", outcome="filled", reason="none") == orders


def test_reason_codes_keep_labels_few():
    assert reason_code("risk.max_position: 6 > 5 lots; risk.reduce_only") == "risk.max_position"
    assert reason_code("broker REJECT: no money") == "broker_reject"
    assert reason_code("compliance.price_collar 40 bps > 25") == "compliance.price_collar"
    assert reason_code("something a person typed") == "other"
    assert reason_code("") == "none"


def test_breaker_state_is_a_gauge():
    from tradeops.breaker import CircuitBreaker

    clock = [0.0]
    breaker = CircuitBreaker("obs-test-peer", fail_max=1, reset_timeout=5, clock=lambda: clock[0])
    assert value("tradeops_breaker_state", breaker="obs-test-peer") == 0
    breaker.record_failure()
    assert value("tradeops_breaker_state", breaker="obs-test-peer") == 2
    clock[0] = 6
    breaker.before_call()
    assert value("tradeops_breaker_state", breaker="obs-test-peer") == 1
    breaker.record_success()
    assert value("tradeops_breaker_state", breaker="obs-test-peer") == 0
