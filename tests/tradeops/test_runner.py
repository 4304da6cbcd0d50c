"""Stage runners: the same pure handler on the memory bus and on Kafka; dedupe by event_id,
deterministic output ids, dead-lettering of handler failures, trace propagation, commands."""

from __future__ import annotations

import io
import pickle
import uuid

import pytest
from django.core.management import call_command

from tests.tradeops.conftest import tick
from tests.tradeops.toy_stages import MidPrice
from tradeops import stages as stage_registry
from tradeops.bus.memory import MemoryBus
from tradeops.bus.runner import OUTPUT_ID_NAMESPACE, output_event_id, pipeline_run, stage_run
from tradeops.bus.tracing import traceparent_new, traceparent_parse
from tradeops.events import Tick, Topic, encode
from tradeops.stages import Stage

FEATURES = Stage("toy-features", (Topic.MARKET_DATA,), "toy-features", "tests.tradeops.toy_stages.MidPrice")
MODEL = Stage("toy-model", (Topic.FEATURES,), "toy-model", "tests.tradeops.toy_stages.UpIfAboveOne")


@pytest.fixture
def toy_registry():
    saved = list(stage_registry.STAGES)
    stage_registry.STAGES[:] = [FEATURES, MODEL]
    yield
    stage_registry.STAGES[:] = saved


def _ticks(n=30):
    return [tick(s, i, traceparent=traceparent_new()) for i in range(n) for s in ("EURUSD", "GBPUSD")]


def test_pipeline_runs_every_stage_and_taps_every_event():
    source = _ticks()
    seen = []
    result = pipeline_run(source, stages=[FEATURES, MODEL], bus=MemoryBus(), batch_size=7, on_event=seen.append)
    assert result.source_events == 60
    assert result.stages["toy-features"].produced == 60 and result.stages["toy-model"].produced == 60
    by_topic = {t: [e for e in seen if e.topic == t] for t in (Topic.MARKET_DATA, Topic.FEATURES, Topic.PREDICTIONS)}
    assert [len(v) for v in by_topic.values()] == [60, 60, 60]
    # a prediction belongs to the trace of the tick it came from (W3C traceparent, new span)
    tick_traces = {traceparent_parse(e.traceparent)[0] for e in by_topic[Topic.MARKET_DATA]}
    for prediction in by_topic[Topic.PREDICTIONS]:
        trace_id, span_id, _ = traceparent_parse(prediction.traceparent)
        assert trace_id in tick_traces


def test_a_redelivered_event_is_not_applied_twice_and_outputs_keep_their_ids():
    handler = MidPrice()
    source = _ticks(5)
    first = []
    stages, handlers = [FEATURES], {"toy-features": handler}
    pipeline_run(source + source[:3], stages=stages, handlers=handlers, bus=MemoryBus(), on_event=first.append)
    assert sum(handler.applied.values()) == 10  # the three repeats were dropped by event_id
    # another process handling the same inputs publishes the same output ids: downstream dedupe works
    second = []
    pipeline_run(source, stages=[FEATURES], bus=MemoryBus(), on_event=second.append)
    ids = lambda events: sorted(str(e.event_id) for e in events if e.topic == Topic.FEATURES)  # noqa: E731
    assert ids(first) == ids(second)


def test_recent_ids_keep_ids_out_of_garbage_collection():
    """A dedupe window holds up to a million ids; as ints (untracked) a full collection does not
    walk them, as UUID objects it would."""
    import gc
    import uuid

    from tradeops.bus.runner import RecentIds

    recent = RecentIds(capacity=3)
    ids = [uuid.uuid4() for _ in range(5)]
    for event_id in ids:
        recent.add(event_id)
    assert len(recent) == 3 and ids[4] in recent and uuid.UUID(int=ids[3].int) in recent
    assert ids[0] not in recent and ids[1] not in recent  # oldest forgotten first
    assert not any(gc.is_tracked(key) for key in recent._ids)


def test_a_failing_handler_dead_letters_the_event_and_the_stage_goes_on():
    bus = MemoryBus()
    source = [tick("EURUSD", 1), tick("POISON", 2), tick("EURUSD", 3)]
    result = pipeline_run(source, stages=[FEATURES], bus=bus)
    assert result.stages["toy-features"].produced == 2
    [letter] = bus.dead_letters(Topic.MARKET_DATA)
    assert letter.reason == "handler_error" and "poison tick" in letter.detail
    assert letter.headers["dlq.stage"] == "toy-features"


def test_run_pipeline_command_reads_an_events_file(tmp_path, toy_registry):
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(encode(e) for e in _ticks(10)) + b"\n{broken\n")
    out, err = io.StringIO(), io.StringIO()
    call_command("run_pipeline", events_file=str(path), stdout=out, stderr=err)
    assert "20 source events" in out.getvalue() and "1 bad lines" in out.getvalue()
    assert "toy-model: consumed 20, produced 20" in out.getvalue()
    assert "line 21" in err.getvalue()


def test_run_stage_lists_and_refuses_unknown_stages(toy_registry):
    out = io.StringIO()
    call_command("run_stage", "--list", stdout=out)
    assert "toy-features" in out.getvalue() and "group=toy-model" in out.getvalue()
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no stage named 'nope'"):
        call_command("run_stage", "nope")


@pytest.mark.kafka
def test_the_same_stage_runs_on_kafka_and_on_memory_with_the_same_outputs(kafka_bus):
    source = _ticks(20)
    memory = MemoryBus()
    memory.publish_many(source)
    memory_stats = stage_run(FEATURES, bus=memory, idle_exit=0, poll_timeout=0)
    with memory.subscribe([Topic.FEATURES], "check") as sub:
        memory_out = {r.event.event_id: r.event for r in sub.poll(1000)}

    kafka_bus.publish_many(source)
    assert kafka_bus.flush(30) == 0
    kafka_stats = stage_run(FEATURES, bus=kafka_bus, max_events=len(source), idle_exit=20, poll_timeout=0.5)
    assert kafka_stats.consumed == memory_stats.consumed == 40
    kafka_out = {}
    with kafka_bus.subscribe([Topic.FEATURES], "check") as sub:
        for _ in range(60):
            kafka_out.update({r.event.event_id: r.event for r in sub.poll(1000, timeout=0.5)})
            if len(kafka_out) >= 40:
                break
    assert kafka_out == memory_out  # same handler, same events, same ids, either backend


def test_a_live_source_is_pumped_at_each_heartbeat_not_held_for_a_full_chunk():
    seen = []

    def live_feed():
        yield tick("EURUSD", 1)
        yield None  # nothing new yet: what came so far must be processed now
        assert any(e.topic == Topic.FEATURES for e in seen)
        yield tick("EURUSD", 2)

    result = pipeline_run(live_feed(), stages=[FEATURES], bus=MemoryBus(), batch_size=1000, on_event=seen.append)
    assert result.source_events == 2 and result.stages["toy-features"].produced == 2


class _DatabaseDown:
    """A handler whose database goes away on the second event."""

    def __init__(self):
        self.calls = 0

    def handle(self, event):
        from django.db import OperationalError

        self.calls += 1
        if self.calls == 2:
            raise OperationalError("connection to server at 127.0.0.1:5432 failed")
        return []


def test_an_infrastructure_failure_stops_the_stage_uncommitted_instead_of_dead_lettering():
    from django.db import OperationalError

    from tradeops.bus.runner import StageRunner

    bus = MemoryBus()
    for event in [tick("EURUSD", 1), tick("EURUSD", 2), tick("EURUSD", 3)]:
        bus.publish(event)
    runner = StageRunner(
        stage=FEATURES, handler=_DatabaseDown(), bus=bus, subscription=bus.subscribe(FEATURES.consumes, "g")
    )
    with pytest.raises(OperationalError):
        runner.run_once()
    assert bus.dead_letters(Topic.MARKET_DATA) == []
    # Restarted, the group gets the uncommitted batch again: the event is not lost.
    runner.subscription.close()
    again = bus.subscribe(FEATURES.consumes, "g").poll(max_records=10, timeout=0.1)
    assert [r.event.payload.ts for r in again] == [tick("EURUSD", i).payload.ts for i in (1, 2, 3)]


class _Writes:
    """A stage that, on the tick at ``index``, writes an outbox row in a transaction of its own."""

    def __init__(self, index: int):
        self.index, self.seen = index, 0

    def handle(self, event):
        from django.db import transaction

        from tradeops.events import Alert, make_event
        from tradeops.outbox.services import outbox_append

        self.seen += 1
        if self.seen == self.index:
            with transaction.atomic():
                outbox_append(event=make_event(Alert(alert_type="written", ts=event.occurred_at), source="t", key="x"))
        return []


def test_the_embedded_relay_reads_the_outbox_only_when_something_was_written(db):
    """No query between every two events: the relay is stepped when a transaction wrote outbox
    rows (and on its slow rescan), and what was written reaches the bus at once."""
    from tradeops.outbox.relay import OutboxRelay

    reads = []

    class CountingRelay(OutboxRelay):
        def _start_batch(self) -> None:
            reads.append(1)
            super()._start_batch()

    bus = MemoryBus()
    writer = Stage("toy-writer", (Topic.MARKET_DATA,), "toy-writer", "unused")
    seen = []
    relay = CountingRelay(bus=bus, use_lock=False, rescan_every=3600)
    result = pipeline_run(
        _ticks(200), stages=[writer], handlers={"toy-writer": _Writes(150)}, bus=bus, batch_size=1, relay=relay,
        on_event=seen.append,
    )  # fmt: skip
    assert result.source_events == 400 and result.outbox_events == 1
    assert [e.payload.alert_type for e in seen if e.type == "alert.raised"] == ["written"]
    assert len(reads) <= 3, reads  # the first look, the one after the write (and its follow-up), not 400
    from tradeops.outbox.models import Outbox

    assert relay.stats.marked == 1 and not Outbox.objects.filter(sent_at__isnull=True).exists()


def test_the_embedded_relay_marks_its_rows_together_not_once_per_step(db):
    """Rows relayed between two of the sinks' batches (here: none is due before the end) are
    marked sent in one UPDATE, not one per relay step; every row reaches the bus once and all
    are marked when the run ends."""
    from tradeops.outbox.models import Outbox
    from tradeops.outbox.relay import OutboxRelay

    marks = []

    class CountingRelay(OutboxRelay):
        def mark_sent(self) -> int:
            n = super().mark_sent()
            if n:
                marks.append(n)
            return n

    bus = MemoryBus()
    writer = Stage("toy-writer", (Topic.MARKET_DATA,), "toy-writer", "unused")
    seen = []
    relay = CountingRelay(bus=bus, use_lock=False, rescan_every=3600)
    result = pipeline_run(
        _ticks(100), stages=[writer], handlers={"toy-writer": _WritesEvery(10)}, bus=bus, batch_size=1,
        relay=relay, on_event=seen.append, sink_seconds=3600,
    )  # fmt: skip
    assert result.source_events == 200 and result.outbox_events == 20
    assert len([e for e in seen if e.type == "alert.raised"]) == 20  # each relayed once
    assert not Outbox.objects.filter(sent_at__isnull=True).exists()
    assert marks == [20]  # no sink batch was due before the end: one UPDATE for the 20 rows


class _WritesEvery:
    """A stage that writes an outbox row in a transaction of its own on every ``n``-th tick."""

    def __init__(self, n: int):
        self.n, self.seen = n, 0

    def handle(self, event):
        from django.db import transaction

        from tradeops.events import Alert, make_event
        from tradeops.outbox.services import outbox_append

        self.seen += 1
        if self.seen % self.n == 0:
            with transaction.atomic():
                outbox_append(event=make_event(Alert(alert_type="written", ts=event.occurred_at), source="t", key="x"))
        return []


class _Sees:
    """Records what it is handed, in order: (type, symbol, per-key sequence or mid)."""

    def __init__(self):
        self.seen = []

    def handle(self, event):
        payload = event.payload
        is_tick = isinstance(payload, Tick)
        self.seen.append(("tick" if is_tick else "features", payload.symbol, int(payload.volume) if is_tick else None))
        return []


def test_the_embedded_run_hands_each_event_to_its_consumers_before_anything_it_caused():
    """A stage consuming market data and what the features stage derives from it sees, in
    lock-step, each tick, then its features, then the next tick: never a derived event before
    its cause nor after the next source event (the execution worker must see a bar's signal
    before the next quote, and the quote the signal was made on before the signal)."""
    watcher = Stage("toy-watcher", (Topic.FEATURES, Topic.MARKET_DATA), "toy-watcher", "unused")
    sees = _Sees()
    source = [tick("EURUSD", i) for i in range(6)]
    pipeline_run(source, stages=[FEATURES, watcher], handlers={"toy-watcher": sees}, bus=MemoryBus(), batch_size=1)
    assert [t for t, _, _ in sees.seen] == ["tick", "features"] * 6
    assert [seq for t, _, seq in sees.seen if t == "tick"] == list(range(6))
    # the same with the consumer registered before the producer: the order is the events', not the registry's
    sees = _Sees()
    pipeline_run(source, stages=[watcher, FEATURES], handlers={"toy-watcher": sees}, bus=MemoryBus(), batch_size=1)
    assert [t for t, _, _ in sees.seen] == ["tick", "features"] * 6


class _TicksOnly(_Sees):
    """Consumes market data and features, but says it has nothing to do with features."""

    def __init__(self):
        super().__init__()
        self.asked = []

    def wants(self, kind):
        self.asked.append(kind.__name__)
        return kind is Tick


def test_a_consumer_is_not_handed_the_payloads_it_says_it_has_nothing_to_do_with():
    """``wants(payload class)`` is asked once per class; events of a class it declines still
    count as consumed by its stage but never reach its handler, while the other consumers of
    the topic get them as before."""
    watcher = Stage("toy-watcher", (Topic.FEATURES, Topic.MARKET_DATA), "toy-watcher", "unused")
    other = Stage("toy-other", (Topic.FEATURES, Topic.MARKET_DATA), "toy-other", "unused")
    picky, sees = _TicksOnly(), _Sees()
    source = [tick("EURUSD", i) for i in range(6)]
    result = pipeline_run(
        source,
        stages=[FEATURES, watcher, other],
        handlers={"toy-watcher": picky, "toy-other": sees},
        bus=MemoryBus(),
        batch_size=1,
    )
    assert [t for t, _, _ in picky.seen] == ["tick"] * 6
    assert sorted(picky.asked) == ["Features", "Tick"]  # once per class
    assert [t for t, _, _ in sees.seen] == ["tick", "features"] * 6
    assert result.stages["toy-watcher"].consumed == result.stages["toy-other"].consumed == 12


class _DeclinesLearnedSymbols(_Sees):
    """Ignores every tick of a symbol once it has seen a tick with volume 2 for it, and says so
    through the live set ``declined_keys`` returns (as the feature stage does for bar-fed symbols)."""

    def __init__(self):
        super().__init__()
        self.done: set[str] = set()
        self.asked = []

    def declined_keys(self, kind):
        self.asked.append(kind.__name__)
        return self.done if kind is Tick else None

    def handle(self, event):
        payload = event.payload
        if payload.symbol in self.done:
            raise AssertionError(f"handed a tick of {payload.symbol}, which it declined")
        super().handle(event)
        if payload.volume == 2:
            self.done.add(payload.symbol)
        return []


def test_a_consumer_is_not_handed_the_events_of_keys_it_declines_once_it_declines_them():
    """``declined_keys(payload class)`` is asked once per class and read before every event: a
    key the handler adds to it later is declined from then on, the other keys are handed over,
    the other consumers get everything, and the declined events still count as consumed."""
    watcher = Stage("toy-watcher", (Topic.MARKET_DATA,), "toy-watcher", "unused")
    other = Stage("toy-other", (Topic.MARKET_DATA,), "toy-other", "unused")
    picky, sees = _DeclinesLearnedSymbols(), _Sees()
    source = [tick("EURUSD", i) for i in range(5)] + [tick("GBPUSD", i) for i in range(2)]
    result = pipeline_run(
        source,
        stages=[watcher, other],
        handlers={"toy-watcher": picky, "toy-other": sees},
        bus=MemoryBus(),
        batch_size=1,
    )
    assert [(s, v) for _, s, v in picky.seen] == [
        ("EURUSD", 0),
        ("EURUSD", 1),
        ("EURUSD", 2),
        ("GBPUSD", 0),
        ("GBPUSD", 1),
    ]
    assert picky.asked == ["Tick"]  # once per class
    assert len(sees.seen) == 7
    assert result.stages["toy-watcher"].consumed == result.stages["toy-other"].consumed == 7


class _Sink:
    """A sink with ``handle_batch``: counts calls; refuses a batch holding a POISON feature."""

    def __init__(self):
        self.batches = []

    def handle(self, event):
        if event.payload.symbol == "POISON":
            raise ValueError("poison in the sink")
        self.batches.append([event.payload.symbol])
        return []

    def handle_batch(self, events):
        if any(e.payload.symbol == "POISON" for e in events):
            raise ValueError("poison in the batch")
        self.batches.append([e.payload.symbol for e in events])
        return []


def test_a_sink_gets_what_one_pump_brought_in_one_call_and_a_poison_event_alone_is_dead_lettered():
    sink_stage = Stage("toy-sink", (Topic.MARKET_DATA, Topic.FEATURES), "toy-sink", "unused")
    sink, bus = _Sink(), MemoryBus()
    source = [tick("EURUSD", 1), tick("GBPUSD", 2), tick("USDJPY", 3)]
    result = pipeline_run(source, stages=[FEATURES, sink_stage], handlers={"toy-sink": sink}, bus=bus, batch_size=3)
    # one call for the pump: the three ticks and the three features derived from them
    assert sink.batches == [["EURUSD", "GBPUSD", "USDJPY"] * 2]
    assert result.stages["toy-sink"].consumed == 6
    # a batch the sink refuses is handled again event by event: only the poison one is dead-lettered
    sink = _Sink()
    pipeline_run(
        [tick("EURUSD", 1), tick("POISON", 2)], stages=[sink_stage], handlers={"toy-sink": sink}, bus=bus, batch_size=2
    )
    assert sink.batches == [["EURUSD"]]
    [letter] = bus.dead_letters(Topic.MARKET_DATA)
    assert letter.headers["dlq.stage"] == "toy-sink" and "poison in the sink" in letter.detail


def test_output_event_ids_are_the_uuid5_of_stage_input_and_index():
    """The runner's own computation gives exactly ``uuid.uuid5`` (ids already written stay valid)."""
    for stage in ("ml-predict", "execution", "surveillance-é"):
        for index in range(4):
            input_id = uuid.uuid4()
            expected = uuid.uuid5(OUTPUT_ID_NAMESPACE, f"{stage}:{input_id}:{index}")
            got = output_event_id(stage=stage, input_id=input_id, index=index)
            assert got == expected and got.version == 5 and got.variant == uuid.RFC_4122
            # built without UUID.__init__ (uuid_of_int): the same object in every respect
            assert (str(got), repr(got), hash(got), got.is_safe) == (
                str(expected),
                repr(expected),
                hash(expected),
                expected.is_safe,
            )
            assert pickle.loads(pickle.dumps(got)) == expected  # noqa: S301  our own bytes


def test_replayed_event_ids_are_the_uuid5_of_what_was_replayed():
    """``replay_event_id`` hashes with a prefix computed once per source: still exactly the
    ``uuid5`` ids earlier replays wrote (a restarted replay must recognise them)."""
    from datetime import UTC, datetime
    from decimal import Decimal

    from tradeops.events import Bar, Tick
    from workers.collector import REPLAY_ID_NAMESPACE, replay_event_id

    ts = datetime(2017, 4, 23, 21, 20, tzinfo=UTC)
    tick = Tick(symbol="EURUSD", bid=Decimal("1.08930"), ask=Decimal("1.08938"), ts=ts)
    bar = Bar(
        symbol="EURUSD", timeframe="H1", ts=ts, open=Decimal(1), high=Decimal(2), low=Decimal(1), close=Decimal(2)
    )
    for source in ("replay", "mt5-é"):
        for payload, name in (
            (tick, f"tick:EURUSD:{ts.isoformat()}:1.08930:1.08938"),
            (bar, f"bar:EURUSD:H1:{ts.isoformat()}:2"),
        ):
            assert replay_event_id(source, payload) == uuid.uuid5(
                OUTPUT_ID_NAMESPACE, f"{source}:{REPLAY_ID_NAMESPACE}:{name}"
            )


def test_the_embedded_dispatcher_keeps_each_dedupe_window_near_its_capacity():
    """The windows are trimmed once per ``TRIM_EVERY`` dispatched events, not after every pump:
    a window never holds more than its capacity plus that many ids, and a redelivered event
    within the window is still recognised."""
    from tradeops.bus.runner import EmbeddedDispatcher, RecentIds, StageRunner

    window = RecentIds(capacity=50)
    runner = StageRunner(stage=FEATURES, handler=MidPrice(), bus=MemoryBus(), subscription=None, dedupe=window)
    dispatcher = EmbeddedDispatcher([runner], bus=MemoryBus())
    every = EmbeddedDispatcher.TRIM_EVERY
    largest = 0
    events = _ticks(3 * every)
    for event in events:  # lock-step: one pump per source event
        dispatcher.publish([event])
        dispatcher.pump()
        largest = max(largest, len(window))
    assert window.capacity < largest <= window.capacity + every
    assert len(window) <= window.capacity + every
    dispatcher.publish([events[-1]])  # the last one again: within the window, a duplicate
    dispatcher.pump()
    assert runner.stats.duplicates == 1
    dispatcher.close()


def test_a_handler_works_in_its_events_trace_and_leaves_the_context_as_it_found_it():
    """A handler sees its event's traceparent as the work in hand, whether the event carries one
    or none (a source event: nothing to set then); after the call the context holds what it held
    before, also when the handler set it and did not put it back, or did and then raised."""
    from tradeops.bus.runner import StageRunner
    from tradeops.observability.tracing import current_traceparent_var, traceparent_current

    leaked = traceparent_new()

    class Recorder:
        def __init__(self):
            self.seen = []

        def handle(self, event):
            self.seen.append(traceparent_current())
            if event.payload.volume % 3 == 1:
                current_traceparent_var.set(leaked)  # a handler that leaks a value
            if event.payload.volume % 3 == 2:
                current_traceparent_var.set(leaked)
                raise RuntimeError("poison")  # dead-lettered, and the context still restored
            return []

    handler = Recorder()
    runner = StageRunner(stage=FEATURES, handler=handler, bus=MemoryBus(), subscription=None)
    carried = traceparent_new()
    events = [tick("EURUSD", i, traceparent=carried if i % 2 else "") for i in range(12)]
    assert traceparent_current() == ""
    for event in events:
        runner.handle_one(event, Topic.MARKET_DATA)
        assert traceparent_current() == ""  # what it was before each call
    assert handler.seen == [e.traceparent for e in events]
    assert runner.stats.dead_lettered == 4
    token = current_traceparent_var.set(carried)  # work in hand already in that trace: the same
    try:
        runner.handle_one(tick("EURUSD", 13, traceparent=carried), Topic.MARKET_DATA)
        runner.handle_one(tick("EURUSD", 14, traceparent=""), Topic.MARKET_DATA)
        assert traceparent_current() == carried
        assert handler.seen[-2:] == [carried, ""]
    finally:
        current_traceparent_var.reset(token)
