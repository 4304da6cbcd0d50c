"""Every schema survives the wire (encode, both buses, decode) unchanged; bad messages are
dead-lettered with a reason that names the field, and the consumer loop keeps going."""

from __future__ import annotations

import json
import time
import uuid
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.tradeops.conftest import T0, tick
from tests.tradeops.samples import sample_event, sample_payload
from tradeops.bus.memory import MemoryBus
from tradeops.bus.tracing import traceparent_new
from tradeops.events import MAX_EVENT_BYTES, PAYLOADS, Fill, Tick, Topic, decode, encode, make_event
from tradeops.topics import dlq_name


def test_every_payload_has_a_sample_with_every_field_set():
    for payload_type in PAYLOADS:
        payload = sample_payload(payload_type)
        unset = [f for f in payload_type.__struct_fields__ if getattr(payload, f) in (None, "", (), {})]
        assert not unset, f"{payload_type.TYPE}: sample leaves {unset} empty"


@pytest.mark.parametrize("payload_type", PAYLOADS, ids=lambda p: p.TYPE)
def test_round_trip_through_the_wire_format(payload_type):
    event = sample_event(payload_type, traceparent=traceparent_new())
    again = decode(encode(event))
    assert again == event
    assert again.occurred_at.microsecond == 654321  # RTS 25: microseconds survive


@given(
    bid=st.decimals(min_value=Decimal("0.00001"), max_value=Decimal(100000), places=5),
    spread=st.decimals(min_value=Decimal(0), max_value=Decimal(1), places=5),
    micros=st.integers(min_value=0, max_value=999_999),
    symbol=st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ.#_", min_size=1, max_size=12),
)
@settings(max_examples=200, deadline=None)
def test_tick_round_trip_is_exact_for_any_price(bid, spread, micros, symbol):
    event = make_event(
        Tick(symbol=symbol, bid=bid, ask=bid + spread, ts=T0.replace(microsecond=micros)), source="p", key=symbol
    )
    decoded = decode(encode(event))
    assert decoded.payload.bid == bid and decoded.payload.ask == bid + spread
    assert decoded.occurred_at == event.occurred_at


@given(
    price=st.decimals(min_value=Decimal("0.00001"), max_value=Decimal(100000), places=5),
    with_mid=st.booleans(),
)
@settings(max_examples=100, deadline=None)
def test_a_fill_encoded_before_the_touch_was_kept_decodes_without_it(price, with_mid):
    """A Fill of before trading 0009 (no ``arrival_bid`` / ``arrival_ask``; older still, no
    ``arrival_mid``) decodes, the touch as None, every other field as it was."""
    event = sample_event(Fill)
    wire = json.loads(encode(event))
    old = {k: v for k, v in wire["payload"].items() if k not in ("arrival_bid", "arrival_ask")}
    old["price"] = str(price)
    if not with_mid:
        del old["arrival_mid"]
    fill = decode(json.dumps({**wire, "payload": old}).encode()).payload
    assert fill.arrival_bid is None and fill.arrival_ask is None
    assert fill.price == price and fill.arrival_mid == (event.payload.arrival_mid if with_mid else None)
    assert fill.broker_deal_id == event.payload.broker_deal_id and fill.ts == event.payload.ts


def _bad_messages() -> dict[str, tuple[bytes, str, str]]:
    """name -> (bytes, expected reason, text the detail must contain)."""
    good = json.loads(encode(tick()))
    unknown_version = {**good, "version": 99}
    missing = {**good, "payload": {k: v for k, v in good["payload"].items() if k != "bid"}}
    wrong_type = {**good, "payload": {**good["payload"], "bid": [1, 2]}}
    oversized = {**good, "payload": {**good["payload"], "symbol": "X" * (MAX_EVENT_BYTES + 10)}}
    return {
        "malformed": (b"\x00\xffnot json at all", "malformed", ""),
        "unknown_version": (json.dumps(unknown_version).encode(), "unknown_schema", "version 99"),
        "unknown_type": (json.dumps({**good, "type": "market.quote"}).encode(), "unknown_schema", "market.quote"),
        "missing_field": (json.dumps(missing).encode(), "invalid_payload", "bid"),
        "wrong_type": (json.dumps(wrong_type).encode(), "invalid_payload", "$.payload.bid"),
        "oversized": (json.dumps(oversized).encode(), "oversized", str(MAX_EVENT_BYTES)),
    }


BAD = _bad_messages()


def test_memory_bus_dead_letters_bad_messages_and_keeps_consuming():
    bus = MemoryBus()
    sub = bus.subscribe([Topic.MARKET_DATA], "g")
    bus.publish(tick(seq=1))
    for value, _, _ in BAD.values():
        bus.publish_raw(Topic.MARKET_DATA, value, key="EURUSD")
    bus.publish(tick(seq=2))
    records = sub.poll(max_records=100)
    assert [r.event.payload.volume for r in records] == [1, 2]  # the good ones, in order
    letters = bus.dead_letters(Topic.MARKET_DATA)
    assert [d.reason for d in letters] == [reason for _, reason, _ in BAD.values()]
    for (name, (value, _, needle)), letter in zip(BAD.items(), letters, strict=True):
        assert needle in letter.detail, name
        assert letter.headers["dlq.source.topic"] == Topic.MARKET_DATA
        assert int(letter.headers["dlq.original_size"]) == len(value)
    assert letters[-1].headers["dlq.truncated"] == "true"  # an oversized message is kept as a prefix


@pytest.mark.kafka
def test_kafka_dead_letters_bad_messages_with_reason_headers(kafka_bus):
    from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

    trace = traceparent_new()
    # A foreign producer that allows messages up to the broker's limit (1 MiB), past ours.
    foreign = Producer({"bootstrap.servers": kafka_bus.bootstrap_servers, "message.max.bytes": 1_048_576})
    with kafka_bus.subscribe([Topic.MARKET_DATA], "wire-test") as sub:
        kafka_bus.publish(tick("EURUSD", 1, traceparent=trace))
        assert kafka_bus.flush(30) == 0
        for value, _, _ in BAD.values():
            foreign.produce(
                kafka_bus.physical(Topic.MARKET_DATA), value, "EURUSD", headers=[("traceparent", trace.encode())]
            )
        assert foreign.flush(30) == 0
        kafka_bus.publish(tick("EURUSD", 2))
        assert kafka_bus.flush(30) == 0
        got = []
        for _ in range(60):
            got += sub.poll(max_records=100, timeout=0.5)
            if len(got) >= 2:
                break
        assert [r.event.payload.volume for r in got] == [1, 2]  # the loop went on past the bad ones
        assert got[0].event.traceparent == trace and got[0].headers["traceparent"] == trace
        sub.commit()

    # The dead-letter topic read from its beginning by partition assignment, not a group
    # subscription (no group join or rebalance to wait for: once, on a loaded machine, 60 polls of
    # a fresh group's subscription read nothing), and a deadline rather than a count of polls.
    dlq = kafka_bus.physical(dlq_name(Topic.MARKET_DATA))
    reader = Consumer(
        {
            "bootstrap.servers": kafka_bus.bootstrap_servers,
            "group.id": f"dlq-{uuid.uuid4()}",
            "enable.auto.commit": False,
        }
    )
    assert kafka_bus.flush(30) == 0  # the dead letters sent
    try:
        # The topic is created by its first dead letter: on a loaded machine its metadata can lag
        # behind (no partitions listed yet, and an assignment of none reads nothing for ever).
        deadline = time.monotonic() + 60
        partitions = {}
        while not partitions and time.monotonic() < deadline:
            partitions = reader.list_topics(dlq, timeout=30).topics[dlq].partitions
            if not partitions:
                time.sleep(0.5)
        reader.assign([TopicPartition(dlq, p, OFFSET_BEGINNING) for p in sorted(partitions)])
        letters = []
        deadline = time.monotonic() + 60
        while len(letters) < len(BAD) and time.monotonic() < deadline:
            msg = reader.poll(0.5)
            if msg is not None and msg.error() is None:
                letters.append(msg)
    finally:
        reader.close()
    headers = [{k: v.decode() for k, v in m.headers()} for m in letters]
    assert [h["dlq.reason"] for h in headers] == [reason for _, reason, _ in BAD.values()]
    for (name, (value, _, needle)), h, m in zip(BAD.items(), headers, letters, strict=True):
        assert needle in h["dlq.detail"], name
        assert h["dlq.group"] == "wire-test" and h["traceparent"] == trace
        assert int(h["dlq.original_size"]) == len(value)
        if name != "oversized":
            assert m.value() == value  # the dead letter is the message as it arrived
    assert headers[-1]["dlq.truncated"] == "true"


@pytest.mark.kafka
def test_kafka_publish_refuses_an_oversized_event(kafka_bus):
    from tradeops.bus import EventTooLarge

    huge = make_event(
        Tick(symbol="X" * (MAX_EVENT_BYTES + 1), bid=Decimal(1), ask=Decimal(1), ts=T0), source="t", key="X"
    )
    with pytest.raises(EventTooLarge):
        kafka_bus.publish(huge)


@pytest.mark.kafka
def test_every_schema_survives_a_trip_through_kafka_and_the_memory_bus(kafka_bus):
    from tradeops.bus.runner import ALL_TOPICS

    sent = {e.event_id: e for e in (sample_event(p, traceparent=traceparent_new()) for p in PAYLOADS)}
    memory = MemoryBus()
    with memory.subscribe(ALL_TOPICS, "trip") as sub:
        for event in sent.values():
            memory.publish_raw(event.topic, encode(event), key=event.key)  # as bytes: decoded by the consumer
        assert {r.event.event_id: r.event for r in sub.poll(100)} == sent

    with kafka_bus.subscribe(ALL_TOPICS, "trip") as sub:
        for event in sent.values():
            kafka_bus.publish(event)
        assert kafka_bus.flush(30) == 0
        got = {}
        for _ in range(60):
            got.update({r.event.event_id: r for r in sub.poll(100, timeout=0.5)})
            if len(got) == len(sent):
                break
    assert {i: r.event for i, r in got.items()} == sent
    assert all(r.headers["traceparent"] == sent[i].traceparent for i, r in got.items())  # W3C header too
    assert {r.topic for r in got.values()} == {p.TOPIC for p in PAYLOADS}


@pytest.mark.kafka
def test_when_the_dead_letter_cannot_be_written_the_offset_is_not_committed(kafka, kafka_bus):
    from confluent_kafka.admin import AdminClient, NewTopic

    from tradeops.bus import BusError

    # a dead-letter topic that refuses every message (max.message.bytes=64)
    admin = AdminClient({"bootstrap.servers": kafka})
    topic = "refusing"
    for future in admin.create_topics(
        [
            NewTopic(kafka_bus.physical(topic), 1, 1),
            NewTopic(kafka_bus.physical(dlq_name(topic)), 1, 1, config={"max.message.bytes": "64"}),
        ]
    ).values():
        future.result()
    try:
        kafka_bus.publish_raw(topic, b"{broken", key="K")
        assert kafka_bus.flush(30) == 0
        with kafka_bus.subscribe([topic], "refused") as sub:
            for _ in range(60):
                if sub.poll(10, timeout=0.5) == [] and sub._dead_lettered:
                    break
            with pytest.raises(BusError) as info:
                sub.commit()
            assert info.value.code == "dlq_unavailable"
            with pytest.raises(BusError):
                sub.poll(10, timeout=0.1)  # the member is broken: it must be replaced
        letters = []
        with kafka_bus.subscribe([topic], "refused") as again:  # the group has not moved past it
            for _ in range(60):
                again.poll(10, timeout=0.5)
                if again._dead_lettered:
                    letters.append(True)
                    break
        assert letters
    finally:
        from tradeops.bus.provision import topics_delete

        topics_delete(admin, [kafka_bus.physical(topic), kafka_bus.physical(dlq_name(topic))])


def test_random_event_ids_are_version_4_uuids_in_every_respect():
    """``make_event``'s default id (``random_event_id``, built without ``UUID.__init__``) is what
    ``uuid.uuid4()`` gives: version 4, RFC 4122 variant, the same object in every respect, and
    an envelope carrying one goes over the wire and back unchanged."""
    import pickle

    from tradeops.events import random_event_id

    ids = [random_event_id() for _ in range(2000)]
    assert len({i.int for i in ids}) == len(ids)
    for got in ids:
        twin = uuid.UUID(bytes=got.bytes, version=4)
        assert got == twin and got.version == 4 and got.variant == uuid.RFC_4122
        assert (str(got), repr(got), hash(got), got.is_safe, got.bytes) == (
            str(twin),
            repr(twin),
            hash(twin),
            twin.is_safe,
            twin.bytes,
        )
        assert pickle.loads(pickle.dumps(got)) == twin  # noqa: S301  our own bytes
    event = make_event(
        Tick(symbol="EURUSD", bid=Decimal("1.1"), ask=Decimal("1.2"), ts=T0),
        source="test",
        key="EURUSD",
    )
    assert event.event_id.version == 4 and decode(encode(event)) == event


def test_random_event_ids_are_never_handed_out_twice_across_threads_or_a_fork():
    """Random ids come from ``os.urandom`` many at a time: threads drawing at once never get the
    same id, and a forked child does not hand out the ids its parent drew but had not used."""
    import os
    import threading

    from tradeops.events import random_event_id

    random_event_id()  # the parent holds a drawn pool now
    got: list[list] = [[] for _ in range(8)]

    def draw(into):
        for _ in range(3000):
            into.append(random_event_id().int)

    threads = [threading.Thread(target=draw, args=(into,)) for into in got]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [i for into in got for i in into]
    assert len(set(every)) == len(every) == 8 * 3000

    from tradeops import events

    events._random_ids_draw()  # a full pool drawn, none used: all of it the parent's to hand out
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, to the parent
        try:
            os.write(write, "\n".join(str(random_event_id().int) for _ in range(50)).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = {int(line) for line in pipe.read().split()}
    os.waitpid(pid, 0)
    parent = {random_event_id().int for _ in range(50)}
    assert len(child) == 50 and not child & parent
