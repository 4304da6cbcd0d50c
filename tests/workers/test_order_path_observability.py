"""The execution worker's own observability: the order path's latency by step, orders by outcome
and refusal reason, the kill switches it sees; an order in a sampled trace gets a span per step
and its audit records and trading-events name the signal's trace; a trace not sampled still
names its trace id in the audit records but makes no span."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from prometheus_client import REGISTRY

from tests.workers.conftest import T0, make_worker, signal, tick
from tradeops.audit.models import AuditRecord
from tradeops.bus.memory import MemoryBus
from tradeops.bus.runner import StageRunner
from tradeops.bus.tracing import sample_ratio_set, traceparent_new, traceparent_parse
from tradeops.events import KillSwitchChanged, make_event
from tradeops.observability import tracing
from tradeops.outbox.models import Outbox
from tradeops.stages import stage_get
from trading.models import Order
from trading.risk import RiskLimits

STEPS = ("gate", "broker", "write", "total")


def value(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def spans():
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    tracing.tracing_setup(service_name="tradeops-test", exporter=exporter, instrument=False)
    yield exporter
    tracing.tracing_shutdown()


def run_stage(worker, *events) -> None:
    """The events through the execution stage's runner, as ``run_execution_worker`` handles them."""
    bus = MemoryBus()
    stage = stage_get("execution")
    runner = StageRunner(stage=stage, handler=worker, bus=bus, subscription=bus.subscribe(stage.consumes, stage.group))
    for event in events:
        bus.publish(event)
    while runner.run_once(max_records=100, timeout=0):
        pass


def audit_payloads(action: str) -> list[dict]:
    return [json.loads(p) for p in AuditRecord.objects.filter(action=action).values_list("payload", flat=True)]


def test_a_filled_order_is_timed_by_step_counted_and_traced_into_its_audit_records(
    worker, account, spans, django_capture_on_commit_callbacks
):
    counts = {step: value("tradeops_order_path_seconds_count", step=step) for step in STEPS}
    filled = value("tradeops_orders_total", outcome="filled", reason="none")
    appended = value("tradeops_audit_appends_total", category="trading")
    root = traceparent_new(sampled=True)
    trace_id = traceparent_parse(root)[0]
    event = signal()
    with django_capture_on_commit_callbacks(execute=True):
        run_stage(worker, make_event(event.payload, source="test", key="EURUSD", traceparent=root))
    assert Order.objects.get().status == "FILLED"
    # the order path's own audit append (trading.orders.write) is counted at commit
    assert value("tradeops_audit_appends_total", category="trading") - appended >= 4

    for step in STEPS:
        assert value("tradeops_order_path_seconds_count", step=step) - counts[step] == 1
    assert value("tradeops_order_path_seconds_sum", step="total") > 0
    assert value("tradeops_orders_total", outcome="filled", reason="none") - filled == 1

    finished = spans.get_finished_spans()
    stage_span = next(s for s in finished if s.name == "execution signal.validated")
    order_span = next(s for s in finished if s.name == "order")
    assert f"{order_span.context.trace_id:032x}" == trace_id
    assert order_span.parent.span_id == stage_span.context.span_id
    steps = {s.name: s for s in finished if s.parent is not None and s.parent.span_id == order_span.context.span_id}
    assert set(steps) == {"order.gate", "order.broker", "order.write"}
    assert steps["order.gate"].end_time <= steps["order.broker"].start_time <= steps["order.write"].start_time
    assert (
        order_span.start_time <= steps["order.gate"].start_time and steps["order.write"].end_time <= order_span.end_time
    )

    # The order's own audit records name the trace; its trading-events carry it.
    for action in ("order.created", "order.filled", "execution.recorded", "position.updated"):
        (payload,) = audit_payloads(action)
        assert payload["context"]["trace_id"] == trace_id, action
    for row in Outbox.objects.filter(event_type__in=["order.lifecycle", "execution.fill", "position.changed"]):
        assert traceparent_parse(row.traceparent)[0] == trace_id


def test_a_refused_order_is_counted_by_its_reason_code(broker, account):
    refused = value("tradeops_orders_total", outcome="rejected", reason="risk.max_position")
    gates = value("tradeops_order_path_seconds_count", step="gate")
    brokers = value("tradeops_order_path_seconds_count", step="broker")
    w = make_worker(broker, account, limits=RiskLimits(max_position_lots=Decimal("0.01"))).start()
    w.strategy.headroom_of = None  # a strategy blind to the limits: the gate refuses
    w.handle(tick())
    w.handle(signal())
    assert Order.objects.get().status == "REJECTED"
    assert value("tradeops_orders_total", outcome="rejected", reason="risk.max_position") - refused == 1
    assert value("tradeops_order_path_seconds_count", step="gate") - gates == 1
    assert value("tradeops_order_path_seconds_count", step="broker") == brokers  # never sent


def test_kill_switches_engaged_by_scope_are_the_workers_view(worker):
    engage = KillSwitchChanged(scope="instrument", scope_value="EURUSD", engaged=True, actor="u", reason="r", ts=T0)
    worker.handle(make_event(engage, source="test", key="EURUSD"))
    assert value("tradeops_kill_switches_engaged", scope="instrument") == 1
    release = KillSwitchChanged(scope="instrument", scope_value="EURUSD", engaged=False, actor="u", reason="r", ts=T0)
    worker.handle(make_event(release, source="test", key="EURUSD"))
    assert value("tradeops_kill_switches_engaged", scope="instrument") == 0


def test_a_trace_not_sampled_makes_no_span_but_its_id_is_still_in_the_audit_record(worker, spans):
    sample_ratio_set(0.0)
    try:
        root = traceparent_new()  # at ratio 0: not sampled (flags 00)
        assert root.endswith("-00")
        event = signal()
        run_stage(worker, make_event(event.payload, source="test", key="EURUSD", traceparent=root))
    finally:
        sample_ratio_set(1.0)
    assert Order.objects.get().status == "FILLED"
    assert spans.get_finished_spans() == ()
    (payload,) = audit_payloads("order.created")
    assert payload["context"] == {"trace_id": traceparent_parse(root)[0], "traceparent": root}
