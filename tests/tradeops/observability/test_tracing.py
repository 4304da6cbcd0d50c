"""Tracing: a trace crosses the Kafka hop with one trace id (in-memory span exporter, real Kafka);
each stage's span is the parent of the next; outputs carry the stage span's traceparent, the
same bytes with tracing on or off; events written through the outbox while a stage handles an
event continue its trace; database calls get spans."""

from __future__ import annotations

import pytest

from tests.tradeops.conftest import tick
from tests.tradeops.toy_stages import MidPrice, UpIfAboveOne
from tradeops.bus.memory import MemoryBus
from tradeops.bus.runner import pipeline_run, stage_run
from tradeops.bus.tracing import traceparent_new, traceparent_parse
from tradeops.events import Topic
from tradeops.observability import tracing
from tradeops.stages import Stage

FEATURES = Stage("trace-features", (Topic.MARKET_DATA,), "trace-features", "tests.tradeops.toy_stages.MidPrice")
MODEL = Stage("trace-model", (Topic.FEATURES,), "trace-model", "tests.tradeops.toy_stages.UpIfAboveOne")


def test_one_trace_across_the_kafka_hop(kafka_bus, spans):
    root = traceparent_new()
    trace_id, root_span, _ = traceparent_parse(root)
    kafka_bus.publish(tick("EURUSD", 1, traceparent=root))
    kafka_bus.flush(10)
    stage_run(FEATURES, bus=kafka_bus, handler=MidPrice(), max_events=1, idle_exit=20, poll_timeout=0.5)
    stage_run(MODEL, bus=kafka_bus, handler=UpIfAboveOne(), max_events=1, idle_exit=20, poll_timeout=0.5)
    consumer = kafka_bus.subscribe([Topic.PREDICTIONS], "trace-check")
    records = []
    for _ in range(40):
        records += consumer.poll(max_records=10, timeout=0.5)
        if records:
            break
    consumer.close()
    stage_spans = {s.name: s for s in spans.get_finished_spans() if s.name.startswith("trace-")}
    first, second = stage_spans["trace-features market.tick"], stage_spans["trace-model feature.vector"]
    assert {f"{s.context.trace_id:032x}" for s in (first, second)} == {trace_id}  # one trace id
    assert f"{first.parent.span_id:016x}" == root_span  # the tick's producer
    assert second.parent.span_id == first.context.span_id  # across the Kafka hop
    (record,) = records
    out_trace, out_span, _ = traceparent_parse(record.event.traceparent)
    assert out_trace == trace_id and int(out_span, 16) == second.context.span_id
    assert record.headers["traceparent"] == record.event.traceparent  # W3C header too
    assert first.attributes["messaging.destination.name"] == Topic.MARKET_DATA


def test_outputs_are_the_same_bytes_with_tracing_on_or_off(spans):
    ticks = [tick("EURUSD", i) for i in range(5)]  # no traceparent: a root per tick, from its id
    on = []
    pipeline_run(ticks, stages=[FEATURES, MODEL], bus=MemoryBus(), on_event=on.append)
    tracing.tracing_shutdown()
    off = []
    pipeline_run(ticks, stages=[FEATURES, MODEL], bus=MemoryBus(), on_event=off.append)
    assert [(e.event_id, e.traceparent) for e in on] == [(e.event_id, e.traceparent) for e in off]
    tick_ids = {f"{tracing.root_trace_id(t.event_id):032x}" for t in ticks}
    assert {traceparent_parse(e.traceparent)[0] for e in on if e.topic != Topic.MARKET_DATA} == tick_ids


class WritesThroughTheOutbox:
    """A stage handler that writes (as the execution worker does): its event goes via the outbox."""

    def handle(self, event):
        from django.db import connection, transaction

        from tradeops.events import Alert, make_event
        from tradeops.outbox.services import outbox_append

        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            outbox_append(event=make_event(Alert(alert_type="x", ts=event.payload.ts), source="t", key="k"))
        return []


@pytest.mark.django_db
def test_events_written_while_handling_continue_the_trace_and_queries_get_spans(spans):
    from tradeops.outbox.models import Outbox

    root = traceparent_new()
    stage = Stage("trace-writer", (Topic.MARKET_DATA,), "trace-writer", "x.y")
    pipeline_run(
        [tick("EURUSD", 1, traceparent=root)],
        stages=[stage],
        handlers={"trace-writer": WritesThroughTheOutbox()},
        bus=MemoryBus(),
    )
    row = Outbox.objects.get()
    assert traceparent_parse(row.traceparent)[0] == traceparent_parse(root)[0]
    stage_span = next(s for s in spans.get_finished_spans() if s.name == "trace-writer market.tick")
    assert int(traceparent_parse(row.traceparent)[1], 16) == stage_span.context.span_id
    db_spans = [s for s in spans.get_finished_spans() if s.name.startswith("db ")]
    assert any(
        s.attributes["db.statement"] == "SELECT 1" and s.parent.span_id == stage_span.context.span_id for s in db_spans
    )


@pytest.mark.django_db
def test_http_requests_get_spans(client, spans):
    response = client.get("/healthz", HTTP_TRACEPARENT="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    assert response.status_code == 200
    http = [s for s in spans.get_finished_spans() if s.kind.name == "SERVER"]
    assert http and f"{http[0].context.trace_id:032x}" == "4bf92f3577b34da6a3ce929d0e0e4736"


def test_sampling_is_decided_at_the_root_and_followed_by_every_stage(spans):
    """At ratio 0.25 about a quarter of the roots are sampled (the low 64 bits of the trace id, as
    OpenTelemetry's TraceIdRatioBased); only sampled traces make spans; a trace not sampled keeps
    its traceparent unchanged through the stages (no new string, no span); the stages' outputs
    are the same bytes whether this process traces or not."""
    from tradeops.bus.tracing import sample_ratio_set

    sample_ratio_set(0.25)
    try:
        ticks = [tick("EURUSD", i) for i in range(400)]  # roots: the decision is made here
        sampled_roots = {t.event_id for t in ticks if tracing.StageScope("x").sampled(t)}
        assert 60 <= len(sampled_roots) <= 140
        on = []
        pipeline_run(ticks, stages=[FEATURES, MODEL], bus=MemoryBus(), on_event=on.append)
        tracing.tracing_shutdown()
        off = []
        pipeline_run(ticks, stages=[FEATURES, MODEL], bus=MemoryBus(), on_event=off.append)
    finally:
        sample_ratio_set(1.0)
    assert [(e.event_id, e.traceparent) for e in on] == [(e.event_id, e.traceparent) for e in off]
    features = [e for e in on if e.topic == Topic.FEATURES]
    predictions = [e for e in on if e.topic == Topic.PREDICTIONS]
    sampled = [e for e in features if e.traceparent.endswith("-01")]
    assert 60 <= len(sampled) <= 140
    # A prediction in a trace not sampled carries its feature vector's traceparent unchanged.
    by_trace = {traceparent_parse(e.traceparent)[0]: e for e in features}
    for prediction in predictions:
        parent = by_trace[traceparent_parse(prediction.traceparent)[0]]
        if parent.traceparent.endswith("-00"):
            assert prediction.traceparent == parent.traceparent
        else:
            assert prediction.traceparent != parent.traceparent
    # One span per stage per sampled trace, none for the others.
    stage_spans = [s for s in spans.get_finished_spans() if s.name.startswith("trace-")]
    assert len([s for s in stage_spans if s.name.startswith("trace-features")]) == len(sampled)
    assert {f"{s.context.trace_id:032x}" for s in stage_spans} == {traceparent_parse(e.traceparent)[0] for e in sampled}


def test_an_invalid_traceparent_is_ignored_and_a_root_started():
    bad = tick("EURUSD", 1, traceparent="00-zz-not-a-traceparent")
    scope = tracing.StageScope("trace-features")
    made = scope.outputs_traceparent(bad)
    assert traceparent_parse(made)[0] == f"{tracing.root_trace_id(bad.event_id):032x}"


def test_a_roots_decision_is_the_sdks_rule_on_its_trace_id():
    """A stage decides a root from the event id's random bits (one mask, one comparison); that is
    exactly OpenTelemetry's TraceIdRatioBased on the root's trace id, so a process with the SDK
    (whose sampler sees that trace id) and one without decide alike, at any ratio."""
    import uuid

    import msgspec
    from opentelemetry.sdk.trace.sampling import Decision, TraceIdRatioBased

    from tradeops.bus.tracing import sample_bound, sample_ratio_set

    try:
        for ratio in (0.0, 0.01, 0.25, 0.5, 1.0):
            sample_ratio_set(ratio)
            sdk = TraceIdRatioBased(sample_bound() / (1 << 64))
            scope = tracing.StageScope("x")
            root = tick("EURUSD", 1)
            ids = [uuid.uuid4() for _ in range(2000)]
            ids += [uuid.UUID(int=(1 << 127) | (1 << 63) | x) for x in (0, 1, 2, 3)]  # edge values
            for event_id in ids:
                trace_id = tracing.root_trace_id(event_id)
                expected = sdk.should_sample(None, trace_id, "root").decision == Decision.RECORD_AND_SAMPLE
                assert tracing.root_sampled(event_id) is expected
                assert scope.sampled(msgspec.structs.replace(root, event_id=event_id)) is expected
            share = sum(tracing.root_sampled(i) for i in ids) / len(ids)
            assert abs(share - ratio) < 0.05
    finally:
        sample_ratio_set(1.0)


class CountingTracer:
    """The real SDK tracer, counting the spans asked of it (sampled or not: a non-recording span
    is an object too)."""

    def __init__(self, tracer) -> None:
        self.tracer, self.started = tracer, 0

    def start_span(self, *args, **kwargs):
        self.started += 1
        return self.tracer.start_span(*args, **kwargs)

    def start_as_current_span(self, *args, **kwargs):
        self.started += 1
        return self.tracer.start_as_current_span(*args, **kwargs)


def test_a_trace_not_sampled_asks_the_sdk_for_nothing(spans):
    """Tracing on, nothing sampled: the stages handle every event without asking the SDK for a
    span (not even a non-recording one); everything sampled: a span per stage per event."""
    from tradeops.bus.tracing import sample_ratio_set

    counting = CountingTracer(tracing._tracer)
    tracing._tracer = counting
    try:
        sample_ratio_set(0.0)
        ticks = [tick("EURUSD", i) for i in range(50)]
        pipeline_run(ticks, stages=[FEATURES, MODEL], bus=MemoryBus())
        assert counting.started == 0 and not spans.get_finished_spans()
        assert not tracing.current_sampled()
        sample_ratio_set(1.0)
        pipeline_run([tick("EURUSD", i) for i in range(5)], stages=[FEATURES, MODEL], bus=MemoryBus())
        assert counting.started >= 10
    finally:
        sample_ratio_set(1.0)
        tracing._tracer = counting.tracer


def test_a_celery_task_continues_the_trace_it_was_sent_in(spans):
    """Celery tasks get spans (OpenTelemetry's Celery instrumentation): the send in the sender's
    trace, the run in the worker as its child (a real worker: the solo pool, an in-memory broker)."""
    import time

    from celery import Celery
    from celery.contrib.testing.worker import start_worker

    import tradeops.observability.tasks  # noqa: F401 - registers celery_heartbeat (a shared task)

    task = "tradeops.observability.tasks.celery_heartbeat"
    app = Celery("trace-test", broker="memory://", backend="cache+memory://", set_as_current=False)
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        with tracing._tracer.start_as_current_span("sender") as sender:
            app.send_task(task)
        trace_id = sender.get_span_context().trace_id
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not any(s.name == f"run/{task}" for s in spans.get_finished_spans()):
            time.sleep(0.05)
    finished = {s.name: s for s in spans.get_finished_spans()}
    sent, ran = finished[f"apply_async/{task}"], finished[f"run/{task}"]
    assert sent.context.trace_id == ran.context.trace_id == trace_id
    assert ran.parent.span_id == sent.context.span_id
