"""The in-process bus: the embedded run's default and the unit tests' backend.

It keeps Kafka's semantics where the handlers can notice them: topics have the catalogue's
partition counts, a key always lands in the same partition (per-key order), consumer groups
share partitions among their members and rebalance when one joins or leaves, positions are
committed explicitly and an uncommitted batch is delivered again after the member leaves.

Events travel as objects, not bytes (no encode/decode), which is what makes it fast; bytes
published with ``publish_raw`` (the outbox relay, tests) are decoded at poll time and refused
ones are dead-lettered exactly as on Kafka. Records every group has committed are trimmed, so a
long embedded run does not grow without bound. One lock guards the state: a publisher thread
and a consumer loop may share the bus.
"""

from __future__ import annotations

import threading
import zlib
from collections import defaultdict
from collections.abc import Sequence

from tradeops.bus.base import (
    DLQ_MAX_VALUE_BYTES,
    Bus,
    DeadLetter,
    DeliveryCallback,
    Record,
    Subscription,
    dead_letter_headers,
    logger,
)
from tradeops.events import TOPICS_BY_TYPE, EventDecodeError, decode
from tradeops.observability.metrics import dead_letters
from tradeops.topics import DLQ_SUFFIX, dlq_name, partitions_for

_TRIM_EVERY = 4096  # records; trimming is a list slice, cheap when amortised like this


class _Raw:
    """Bytes waiting to be decoded by the consumer (as a Kafka message would be)."""

    __slots__ = ("topic", "partition", "offset", "key", "value", "headers")

    def __init__(self, topic, partition, offset, key, value, headers):
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.key = key
        self.value = value
        self.headers = headers


class _Partition:
    __slots__ = ("records", "base")

    def __init__(self) -> None:
        self.records: list = []
        self.base = 0  # offset of records[0]

    @property
    def end(self) -> int:
        return self.base + len(self.records)


class _Topic:
    def __init__(self, name: str, partitions: int) -> None:
        self.name = name
        self.partitions = [_Partition() for _ in range(partitions)]
        self.groups: set[str] = set()
        self.published = 0  # records ever published to the topic (a cheap "anything new?")
        self._key_partition: dict[str | None, int] = {}
        self._round_robin = 0

    def partition_of(self, key: str | None) -> int:
        try:
            return self._key_partition[key]
        except KeyError:
            pass
        n = len(self.partitions)
        if key is None:
            self._round_robin = (self._round_robin + 1) % n
            return self._round_robin
        p = zlib.crc32(key.encode()) % n
        if len(self._key_partition) < 100_000:
            self._key_partition[key] = p
        return p


class _Group:
    def __init__(self, name: str) -> None:
        self.name = name
        self.members: list[MemorySubscription] = []
        self.committed: dict[tuple[str, int], int] = {}
        self.generation = 0
        self.assignment: dict[int, list[tuple[str, int]]] = {}
        self.owners: dict[tuple[str, int], MemorySubscription] = {}  # partition -> the member it is assigned to

    def rebalance(self, bus: MemoryBus) -> None:
        self.generation += 1
        self.assignment = {id(m): [] for m in self.members}
        self.owners = {}
        if not self.members:
            return
        topics = sorted({t for m in self.members for t in m.topics})
        partitions = [(t, p) for t in topics for p in range(len(bus._topic(t).partitions))]
        for i, tp in enumerate(partitions):
            eligible = [m for m in self.members if tp[0] in m.topics]
            if eligible:
                member = eligible[i % len(eligible)]
                self.assignment[id(member)].append(tp)
                self.owners[tp] = member


class MemoryBus(Bus):
    name = "memory"

    def __init__(self, *, default_partitions: int = 1) -> None:
        self._topics: dict[str, _Topic] = {}
        self._groups: dict[str, _Group] = {}
        self._dead: dict[str, list[DeadLetter]] = defaultdict(list)
        self._default_partitions = default_partitions
        self._lock = threading.RLock()
        self.published = 0

    # ------------------------------------------------------------ producer side

    def _topic(self, name: str) -> _Topic:
        topic = self._topics.get(name)
        if topic is None:
            topic = self._topics[name] = _Topic(name, partitions_for(name, self._default_partitions))
        return topic

    def publish(self, event, *, on_delivery: DeliveryCallback | None = None) -> None:
        name = TOPICS_BY_TYPE[event.type]
        key = event.key
        with self._lock:
            topic = self._topics.get(name) or self._topic(name)
            p = topic._key_partition.get(key)
            if p is None:
                p = topic.partition_of(key)
            part = topic.partitions[p]
            records = part.records
            records.append(Record(name, p, part.base + len(records), key, event))
            topic.published += 1
            self.published += 1
            self._ready(topic, p)
        if on_delivery is not None:
            on_delivery(None)

    def publish_many(self, events) -> None:
        """Publish a sequence of events under one lock (the pipeline's source path). The loop is
        inlined: at half a million events a second every attribute lookup shows."""
        topics = self._topics
        with self._lock:
            for event in events:
                name = TOPICS_BY_TYPE[event.type]
                topic = topics.get(name) or self._topic(name)
                key = event.key
                p = topic._key_partition.get(key)
                if p is None:
                    p = topic.partition_of(key)
                part = topic.partitions[p]
                records = part.records
                records.append(Record(name, p, part.base + len(records), key, event))
                topic.published += 1
                self._ready(topic, p)
            self.published += len(events)

    def publish_raw(self, topic, value, *, key=None, headers=None, on_delivery=None) -> None:
        if topic.endswith(DLQ_SUFFIX):
            with self._lock:
                self._dead[topic].append(DeadLetter(topic, key, bytes(value), dict(headers or {})))
        else:
            with self._lock:
                t = self._topic(topic)
                p = t.partition_of(key)
                part = t.partitions[p]
                part.records.append(_Raw(topic, p, part.end, key, bytes(value), headers))
                t.published += 1
                self.published += 1
                self._ready(t, p)
        if on_delivery is not None:
            on_delivery(None)

    def flush(self, timeout: float | None = None) -> int:
        return 0

    def _ready(self, topic: _Topic, partition: int) -> None:
        """A record landed in (topic, partition): tell the member of each group it is assigned to,
        so a poll looks only at partitions with something new. Precondition: the lock is held."""
        tp = (topic.name, partition)
        groups = self._groups
        for name in topic.groups:
            member = groups[name].owners.get(tp)
            if member is not None:
                member._ready.add(tp)

    def published_counter(self, topics: Sequence[str]):
        """A function returning how many records were ever published to ``topics`` (it only
        grows): a consumer loop polls a subscription only when it moved since its last poll
        (the embedded pipeline)."""
        with self._lock:
            found = tuple(self._topic(t) for t in topics)

        def published() -> int:
            count = 0
            for topic in found:
                count += topic.published
            return count

        return published

    # ------------------------------------------------------------ consumer side

    def subscribe(self, topics: Sequence[str], group: str, **options) -> MemorySubscription:
        with self._lock:
            g = self._groups.get(group)
            if g is None:
                g = self._groups[group] = _Group(group)
            for name in topics:
                self._topic(name).groups.add(group)
            sub = MemorySubscription(self, g, tuple(topics))
            g.members.append(sub)
            g.rebalance(self)
            return sub

    def _leave(self, sub: MemorySubscription) -> None:
        with self._lock:
            if sub in sub._group.members:
                sub._group.members.remove(sub)
                sub._group.rebalance(self)

    def _trim(self, topic: _Topic, partition: int) -> None:
        part = topic.partitions[partition]
        floor = min(
            (self._groups[g].committed.get((topic.name, partition), part.base) for g in topic.groups),
            default=part.base,
        )
        drop = floor - part.base
        if drop >= _TRIM_EVERY:
            del part.records[:drop]
            part.base += drop

    def dead_letter(self, raw, *, reason: str, detail: str, group: str) -> None:
        dead_letters.labels(raw.topic, reason).inc()
        value = raw.value
        headers = dead_letter_headers(
            reason=reason,
            detail=detail,
            source_topic=raw.topic,
            partition=raw.partition,
            offset=raw.offset,
            group=group,
            original_size=len(value),
        )
        self.publish_raw(dlq_name(raw.topic), value[:DLQ_MAX_VALUE_BYTES], key=raw.key, headers=headers)

    # ------------------------------------------------------------ inspection (tests, embedded UI)

    def dead_letters(self, topic: str | None = None) -> list[DeadLetter]:
        with self._lock:
            if topic is not None:
                return list(self._dead.get(dlq_name(topic), ()))
            return [d for letters in self._dead.values() for d in letters]

    def end_offsets(self, topic: str) -> list[int]:
        with self._lock:
            return [p.end for p in self._topic(topic).partitions]

    def lag(self, group: str) -> int:
        """Records published but not yet committed by ``group`` (0 when it has caught up)."""
        with self._lock:
            g = self._groups.get(group)
            if g is None:
                return 0
            topics = {t for m in g.members for t in m.topics} | {t for t, _ in g.committed}
            total = 0
            for name in topics:
                for i, part in enumerate(self._topic(name).partitions):
                    total += part.end - g.committed.get((name, i), 0)
            return total


class MemorySubscription(Subscription):
    def __init__(self, bus: MemoryBus, group: _Group, topics: tuple[str, ...]) -> None:
        self._bus = bus
        self._group = group
        self.group = group.name
        self.topics = topics
        self._generation = -1
        self._positions: dict[tuple[str, int], int] = {}
        self._assigned: list[tuple[str, int]] = []
        self._parts: dict[tuple[str, int], _Partition] = {}  # assigned partitions
        self._polled: set[tuple[str, int]] = set()  # partitions read since the last commit
        self._ready: set[tuple[str, int]] = set()  # partitions that may have records past our position
        self._cursor = 0
        self.closed = False

    def _sync(self) -> None:
        group = self._group
        assigned = group.assignment.get(id(self), [])
        positions = {}
        for tp in assigned:
            if tp in self._positions:  # kept through the rebalance (cooperative): keep its position
                positions[tp] = self._positions[tp]
            else:
                part = self._bus._topic(tp[0]).partitions[tp[1]]
                positions[tp] = max(group.committed.get(tp, 0), part.base)
        self._positions = positions
        self._assigned = list(assigned)
        self._parts = {tp: self._bus._topic(tp[0]).partitions[tp[1]] for tp in assigned}
        self._polled = set(positions)  # commit checks them all once after a rebalance
        self._ready = {tp for tp, part in self._parts.items() if part.end > positions[tp]}
        self._generation = group.generation

    @property
    def assignment(self) -> list[tuple[str, int]]:
        with self._bus._lock:
            if self._generation != self._group.generation:
                self._sync()
            return list(self._assigned)

    def poll(self, max_records: int = 500, timeout: float = 0.0) -> list[Record]:
        if self.closed:
            return []
        bus = self._bus
        out: list[Record] = []
        raws = []
        with bus._lock:
            if self._generation != self._group.generation:
                self._sync()
            parts, positions, polled, ready = self._parts, self._positions, self._polled, self._ready
            # Only partitions something landed in since they were last drained (``MemoryBus._ready``),
            # in a rotating order so one busy partition cannot starve the others.
            order = sorted(ready)
            n = len(order)
            cursor = self._cursor
            for i in range(n):
                tp = order[(cursor + i) % n]
                part = parts.get(tp)
                if part is None:
                    ready.discard(tp)
                    continue
                position = positions[tp]
                records = part.records
                start = position - part.base
                chunk = records[start : start + max_records - len(out)]
                end = position + len(chunk)
                positions[tp] = end
                if end >= part.base + len(records):
                    ready.discard(tp)
                if chunk:
                    polled.add(tp)
                    out.extend(chunk)
                if len(out) >= max_records:
                    break
            self._cursor = cursor + 1 if n else 0
        if any(type(r) is _Raw for r in out):
            decoded = []
            for r in out:
                if type(r) is not _Raw:
                    decoded.append(r)
                    continue
                try:
                    event = decode(r.value)
                except EventDecodeError as exc:
                    logger.warning("dead-lettering %s[%s]@%s: %s", r.topic, r.partition, r.offset, exc)
                    bus.dead_letter(r, reason=exc.reason, detail=exc.detail, group=self.group)
                    self.decode_dead_lettered += 1
                    raws.append(r)
                    continue
                decoded.append(Record(r.topic, r.partition, r.offset, r.key, event, r.headers))
            out = decoded
        return out

    def lag(self) -> dict[str, int]:
        """Records published but not yet committed by this member's group, per topic (metrics)."""
        bus = self._bus
        with bus._lock:
            committed = self._group.committed
            out: dict[str, int] = {}
            for name in self.topics:
                topic = bus._topics.get(name)
                if topic is None:
                    continue
                out[name] = sum(p.end - committed.get((name, i), 0) for i, p in enumerate(topic.partitions))
            return out

    def commit(self) -> None:
        bus = self._bus
        with bus._lock:
            if self._generation != self._group.generation:
                self._sync()  # partitions lost in a rebalance are not committed: the new owner re-reads
            committed, positions = self._group.committed, self._positions
            parts = self._parts
            for tp in self._polled:
                position = positions.get(tp)
                if position is not None and committed.get(tp, 0) < position:
                    committed[tp] = position
                    if position - parts[tp].base >= _TRIM_EVERY:  # else nothing could be trimmed
                        bus._trim(bus._topics[tp[0]], tp[1])
            self._polled = set()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._bus._leave(self)
