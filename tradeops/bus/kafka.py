"""The Kafka bus (confluent-kafka / librdkafka).

Producer: idempotent (``enable.idempotence``: no duplicates or reordering from retries),
``acks=all``, keyed with the murmur2 partitioner that Java clients use, so a key (symbol or
account) maps to the same partition from any client and per-key order holds.

Consumer: a consumer-group member with auto-commit off. Offsets are committed only when the
application calls ``commit()``, after the batch's effects are durable (the commit itself is
asynchronous: see ``KafkaSubscription.commit``). Rebalances use the cooperative-sticky assignor;
when partitions are revoked or lost, their uncommitted progress is dropped rather than committed,
so the new owner re-reads from the last commit (at-least-once, consumers dedupe by ``event_id``);
a late commit from the old owner carries a stale generation and is refused by the coordinator.
A record that fails to decode is published to the dead-letter topic (flushed) before the
offset that skips it can be committed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from tradeops.bus.base import (
    DLQ_MAX_VALUE_BYTES,
    Bus,
    BusError,
    DeliveryCallback,
    Record,
    Subscription,
    check_size,
    dead_letter_headers,
)
from tradeops.events import EventDecodeError, decode, encode
from tradeops.observability.metrics import dead_letters
from tradeops.topics import dlq_name

logger = logging.getLogger(__name__)


class _Throttle(logging.Filter):
    """Pass one record per message prefix per ``every`` seconds: a broker outage makes librdkafka
    report the same connection failure many times a second, which would bury everything else."""

    def __init__(self, every: float = 30.0) -> None:
        super().__init__()
        self.every = every
        self._last: dict[tuple[int, str], float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.levelno, record.getMessage()[:100])
        now = time.monotonic()
        if now - self._last.get(key, -self.every) < self.every:
            return False
        if len(self._last) > 1000:
            self._last.clear()
        self._last[key] = now
        return True


# librdkafka's own log lines go through Python logging (LOG_LEVEL applies), throttled.
rdkafka_logger = logging.getLogger("tradeops.bus.librdkafka")
rdkafka_logger.addFilter(_Throttle())
_error_logger = logging.getLogger("tradeops.bus.kafka.errors")
_error_logger.addFilter(_Throttle())

PRODUCER_DEFAULTS = {
    "enable.idempotence": True,
    "acks": "all",
    "partitioner": "murmur2_random",  # the Java client's partitioner: same key, same partition
    "linger.ms": 5,  # measured: 5 ms batches lift throughput ~5x over 0 with no visible latency cost
    "batch.num.messages": 10_000,
    "compression.type": "lz4",
    "queue.buffering.max.messages": 500_000,
    "queue.buffering.max.kbytes": 1_048_576,
    "message.timeout.ms": 120_000,
}

CONSUMER_DEFAULTS = {
    "enable.auto.commit": False,
    "enable.auto.offset.store": False,
    "auto.offset.reset": "earliest",
    "partition.assignment.strategy": "cooperative-sticky",
    "session.timeout.ms": 10_000,
    "heartbeat.interval.ms": 1_000,
    "max.poll.interval.ms": 300_000,
    "fetch.min.bytes": 1,
    "fetch.wait.max.ms": 100,
    "queued.max.messages.kbytes": 65_536,
}

# Commit errors that mean "the group moved on": the records will be redelivered, which the
# idempotent consumer tolerates; anything else is raised.
_REBALANCE_COMMIT_ERRORS = {
    KafkaError.REBALANCE_IN_PROGRESS,
    KafkaError.ILLEGAL_GENERATION,
    KafkaError.UNKNOWN_MEMBER_ID,
    KafkaError._NO_OFFSET,
    KafkaError._ASSIGNMENT_LOST,
    KafkaError._STATE,
}

# Commit errors that mean "the group's coordinator moved or is still loading": a broker killed or
# restarted moves the leadership of __consumer_offsets' partitions, and librdkafka's own retries
# may all meet the old coordinator. The member still owns its partitions, and nothing else will
# commit these offsets if no more records come (the lag would never reach zero), so they are
# committed again with back-off (``KafkaSubscription.commit_retry``).
COORDINATOR_COMMIT_ERRORS = {
    KafkaError.NOT_COORDINATOR,
    KafkaError.COORDINATOR_NOT_AVAILABLE,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    KafkaError.REQUEST_TIMED_OUT,
    KafkaError._TRANSPORT,
    KafkaError._TIMED_OUT,
    KafkaError._WAIT_COORD,
}
COMMIT_RETRY_FIRST = 0.2  # seconds; doubled per refusal in a row
COMMIT_RETRY_MAX = 5.0
# How long a consumer's close may take. Closing leaves the group (revoking the member's
# partitions and serving their callbacks) and takes milliseconds, but librdkafka waits in it while
# a rebalance it is part of completes, and that needs the other members to poll: with them idle
# (several members of one process closed in turn) it once waited more than 13 minutes (CI,
# 2026-12-05, during a cooperative rebalance). Past this deadline the close is abandoned and
# logged: the coordinator drops the member after ``session.timeout.ms``, and the new owners re-read
# its partitions from the last commit, as after any crash (at-least-once).
CONSUMER_CLOSE_TIMEOUT = 30.0


def _headers_out(headers: dict[str, str] | None, traceparent: str = "") -> list[tuple[str, bytes]] | None:
    if not headers and not traceparent:
        return None
    out = [(k, v.encode()) for k, v in (headers or {}).items()]
    if traceparent and not (headers and "traceparent" in headers):
        out.append(("traceparent", traceparent.encode()))
    return out


def _headers_in(raw) -> dict[str, str] | None:
    if not raw:
        return None
    return {k: (v.decode(errors="replace") if v is not None else "") for k, v in raw}


def _describe(partitions) -> str:
    by_topic: dict[str, list[int]] = {}
    for p in partitions:
        by_topic.setdefault(p.topic, []).append(p.partition)
    return "; ".join(f"{t} {sorted(ps)}" for t, ps in by_topic.items()) or "nothing"


class KafkaBus(Bus):
    name = "kafka"

    def __init__(
        self,
        *,
        bootstrap_servers: str,
        topic_prefix: str = "",
        client_id: str = "tradeops",
        producer_config: dict | None = None,
        consumer_config: dict | None = None,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.prefix = topic_prefix
        self.client_id = client_id
        self._producer_config = {
            "bootstrap.servers": bootstrap_servers,
            "client.id": client_id,
            **PRODUCER_DEFAULTS,
            **(producer_config or {}),
        }
        self._consumer_config = consumer_config or {}
        self._producer: Producer | None = None
        self._errors: list[str] = []

    # ------------------------------------------------------------ names

    def physical(self, topic: str) -> str:
        return self.prefix + topic

    def logical(self, topic: str) -> str:
        return topic[len(self.prefix) :] if self.prefix and topic.startswith(self.prefix) else topic

    # ------------------------------------------------------------ producer side

    @property
    def producer(self) -> Producer:
        if self._producer is None:
            self._producer = Producer({**self._producer_config, "error_cb": self._on_error, "logger": rdkafka_logger})
        return self._producer

    def _on_error(self, err: KafkaError) -> None:
        # Transport errors (broker down) are retried by librdkafka; a fatal one (idempotence
        # broken) means this producer must be replaced.
        _error_logger.warning("kafka producer: %s", err)
        if err.fatal():
            self._errors.append(str(err))

    def _produce(self, topic: str, value: bytes, key, headers, on_delivery) -> None:
        if self._errors:
            raise BusError(f"kafka producer failed fatally: {self._errors[-1]}", code="bus_fatal")
        callback = None
        if on_delivery is not None:

            def callback(err, msg, _cb=on_delivery):
                _cb(None if err is None else KafkaException(err))

        producer = self.producer
        while True:
            try:
                producer.produce(topic, value, key, headers=headers, on_delivery=callback)
                return
            except BufferError:
                # Local queue full: serve delivery reports until there is room (back-pressure).
                producer.poll(0.05)

    def publish(self, event, *, on_delivery: DeliveryCallback | None = None) -> None:
        value = encode(event)
        check_size(value, event=event)
        headers = [("traceparent", event.traceparent.encode())] if event.traceparent else None
        self._produce(self.prefix + event.topic, value, event.key, headers, on_delivery)

    def publish_many(self, events) -> None:
        """Publish a sequence; the loop is inlined because at 100k events/s call overhead shows."""
        producer = self.producer
        prefix = self.prefix
        produce = producer.produce
        for event in events:
            value = encode(event)
            if len(value) > 1_000_000:
                check_size(value, event=event)
            headers = [("traceparent", event.traceparent.encode())] if event.traceparent else None
            try:
                produce(prefix + event.topic, value, event.key, headers=headers)
            except BufferError:
                producer.poll(0.05)
                self._produce(prefix + event.topic, value, event.key, headers, None)
        producer.poll(0)

    def publish_raw(self, topic, value, *, key=None, headers=None, on_delivery=None) -> None:
        self._produce(self.prefix + topic, value, key, _headers_out(headers), on_delivery)

    def poll(self, timeout: float = 0.0) -> int:
        """Serve delivery callbacks."""
        return self.producer.poll(timeout) if self._producer is not None else 0

    def flush(self, timeout: float | None = None) -> int:
        if self._producer is None:
            return 0
        return self._producer.flush(-1 if timeout is None else timeout)

    def close(self, timeout: float = 10.0) -> None:
        if self._producer is not None:
            self._producer.flush(timeout)
            self._producer = None

    # ------------------------------------------------------------ consumer side

    def subscribe(self, topics: Sequence[str], group: str, **options) -> KafkaSubscription:
        config = {
            "bootstrap.servers": self.bootstrap_servers,
            "client.id": options.pop("client_id", self.client_id),
            "group.id": self.prefix + group,
            **CONSUMER_DEFAULTS,
            **self._consumer_config,
            **options.pop("config", {}),
        }
        return KafkaSubscription(self, config, tuple(topics), group)

    def dead_letter(self, msg, *, reason: str, detail: str, group: str, on_delivery=None) -> None:
        value = msg.value() or b""
        headers = _headers_in(msg.headers()) or {}
        source = self.logical(msg.topic())
        dead_letters.labels(source, reason).inc()
        dlq_headers = dead_letter_headers(
            reason=reason,
            detail=detail,
            source_topic=source,
            partition=msg.partition(),
            offset=msg.offset(),
            group=group,
            original_size=len(value),
            traceparent=headers.get("traceparent", ""),
        )
        key = msg.key()
        self.publish_raw(
            dlq_name(source),
            value[:DLQ_MAX_VALUE_BYTES] if len(value) > DLQ_MAX_VALUE_BYTES else value,
            key=key,
            headers=dlq_headers,
            on_delivery=on_delivery,
        )


class KafkaSubscription(Subscription):
    def __init__(self, bus: KafkaBus, config: dict, topics: tuple[str, ...], group: str) -> None:
        self._bus = bus
        self.group = group
        self.topics = topics
        self._pending: dict[tuple[str, int], int] = {}  # (physical topic, partition) -> next offset
        self._dead_lettered = False
        self._dead_letter_errors: list[Exception] = []
        self._broken: BusError | None = None
        self.closed = False
        self.revoked = 0  # partitions revoked or lost so far (observability, tests)
        self.commit_failures = 0
        self.close_abandoned = False  # the close outlived its deadline (see ``close``)
        self.commit_retries = 0  # commits issued again after a coordinator refused them
        # Offsets a coordinator refused (NOT_COORDINATOR and the like), to commit again at
        # _retry_at; and the highest offset issued in a commit per partition: a refused commit is
        # retried only if no later one was issued for its partition, so a retry never moves a
        # partition's committed offset backwards past a newer commit (which, if refused, is
        # retried itself).
        self._retry: dict[tuple[str, int], int] = {}
        self._retry_at = 0.0
        self._retry_delay = COMMIT_RETRY_FIRST
        self._issued: dict[tuple[str, int], int] = {}
        self._logical_names: dict[str, str] = {}
        self._consumer = Consumer(
            {**config, "error_cb": self._on_error, "on_commit": self._on_commit, "logger": rdkafka_logger}
        )
        self._consumer.subscribe(
            [bus.physical(t) for t in topics],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )

    def _on_error(self, err: KafkaError) -> None:
        _error_logger.warning("kafka consumer %s: %s", self.group, err)

    def _on_assign(self, consumer, partitions) -> None:
        logger.info("%s: assigned %s", self.group, _describe(partitions))

    def _forget(self, partitions) -> None:
        for p in partitions:
            self._pending.pop((p.topic, p.partition), None)
            # no longer ours: the new owner re-reads from the last commit
            self._retry.pop((p.topic, p.partition), None)
            self._issued.pop((p.topic, p.partition), None)
        self.revoked += len(partitions)

    def _on_revoke(self, consumer, partitions) -> None:
        # Uncommitted progress on these partitions is dropped: the new owner re-reads from the
        # last commit. Committing here would claim effects that may not be durable yet.
        logger.info("%s: revoked %s", self.group, _describe(partitions))
        self._forget(partitions)

    def _on_lost(self, consumer, partitions) -> None:
        logger.warning("%s: lost %s", self.group, _describe(partitions))
        self._forget(partitions)

    @property
    def assignment(self) -> list[tuple[str, int]]:
        return [(self._bus.logical(p.topic), p.partition) for p in self._consumer.assignment()]

    def lag(self) -> dict[str, int]:
        """Records behind the partitions' ends, per topic, for the partitions this member owns:
        the high watermarks the consumer last fetched (no broker round trip) minus its position."""
        out: dict[str, int] = {}
        assigned = self._consumer.assignment()
        if not assigned:
            return out
        for tp in self._consumer.position(assigned):
            low, high = self._consumer.get_watermark_offsets(tp, cached=True)
            position = tp.offset if tp.offset >= 0 else low
            if high < 0:
                continue
            name = self._bus.logical(tp.topic)
            out[name] = out.get(name, 0) + max(high - position, 0)
        return out

    def poll(self, max_records: int = 500, timeout: float = 1.0) -> list[Record]:
        if self.closed:
            return []
        if self._broken is not None:
            raise self._broken
        if self._retry and time.monotonic() >= self._retry_at:
            self.commit_retry()
        messages = self._fetch(max_records, timeout)
        if not messages:
            return []
        out: list[Record] = []
        append = out.append
        pending = self._pending
        names = self._logical_names
        for msg in messages:
            if msg.error() is not None:
                self._poll_error(msg.error())
                continue
            topic = msg.topic()
            partition = msg.partition()
            offset = msg.offset()
            pending[(topic, partition)] = offset + 1
            try:
                event = decode(msg.value() or b"")
            except EventDecodeError as exc:
                logger.warning("dead-lettering %s[%s]@%s: %s", topic, partition, offset, exc)
                self._bus.dead_letter(
                    msg, reason=exc.reason, detail=exc.detail, group=self.group, on_delivery=self._on_dead_letter
                )
                self._dead_lettered = True
                self.decode_dead_lettered += 1
                continue
            name = names.get(topic)
            if name is None:
                name = names[topic] = self._bus.logical(topic)
            key = msg.key()
            headers = msg.headers()
            append(
                Record(
                    name,
                    partition,
                    offset,
                    key.decode(errors="replace") if key is not None else None,
                    event,
                    _headers_in(headers) if headers else None,
                )
            )
        return out

    def _fetch(self, max_records: int, timeout: float) -> list:
        """Wait (up to ``timeout``) for the first message only, then take what has already been
        fetched: ``consume(n, timeout)`` waits the whole timeout unless n messages come, so on a
        sparse stream every stage held each event for up to the full poll timeout (p50 1 s; three
        such hops, ml-features, ml-predict, the execution worker, between a bar and its order). Under load librdkafka's
        prefetch keeps the batches full (``bench/bus_poll_latency.py``)."""
        first = self._consumer.poll(timeout)
        if first is None:
            return []
        if max_records <= 1:
            return [first]
        return [first, *self._consumer.consume(num_messages=max_records - 1, timeout=0)]

    def _poll_error(self, err: KafkaError) -> None:
        if err.code() == KafkaError._PARTITION_EOF:
            return
        if err.fatal():
            raise BusError(f"kafka consumer {self.group}: {err}", code="bus_fatal")
        _error_logger.warning("kafka consumer %s: %s", self.group, err)

    def commit(self) -> None:
        if self._dead_lettered:
            # The dead letters must be durable before the offsets that skip them are committed. If
            # one failed (no dead-letter topic, broker refused it) nothing more is committed by
            # this member: it is broken and must be closed, and the group redelivers from the
            # last commit, so the bad message is dead-lettered again rather than skipped.
            remaining = self._bus.flush(30)
            failed = self._dead_letter_errors
            if remaining or failed:
                problem = f"{remaining} unacknowledged" if remaining else f"failed: {failed[0]}"
                self._broken = BusError(f"dead letter {problem}; not committing", code="dlq_unavailable")
            self._dead_lettered = False
        if self._broken is not None:
            raise self._broken
        if not self._pending:
            return
        # A refused commit still waiting for its retry goes with this one (this batch's offsets
        # are newer where both name a partition).
        wanted = {**{tp: o for tp, o in self._retry.items() if o >= self._issued.get(tp, -1)}, **self._pending}
        self._pending.clear()
        self._retry.clear()
        self._commit_async(wanted)

    def commit_retry(self) -> None:
        """Commit again the offsets a coordinator refused (called by ``poll`` when their back-off
        is over, so they are retried even when no more records come), except where a later
        commit of the same partition was issued meanwhile."""
        wanted = {tp: o for tp, o in self._retry.items() if o >= self._issued.get(tp, -1)}
        self._retry.clear()
        if wanted:
            self.commit_retries += 1
            self._commit_async(wanted)

    def _commit_async(self, wanted: dict[tuple[str, int], int]) -> None:
        offsets = [TopicPartition(t, p, o) for (t, p), o in wanted.items()]
        issued = self._issued
        for tp, o in wanted.items():
            if o > issued.get(tp, -1):
                issued[tp] = o
        # Asynchronous on purpose: a synchronous commit issued while a rebalance waits for this
        # member's callbacks (served only by poll) blocks until it times out. The effects are
        # already durable, so a commit the group refuses (reported in _on_commit) only means the
        # batch is delivered again, which the idempotent consumer tolerates; one a coordinator
        # refuses is committed again; close() waits for outstanding commits.
        try:
            self._consumer.commit(offsets=offsets, asynchronous=True)
        except KafkaException as exc:
            err = exc.args[0]
            if err.code() in COORDINATOR_COMMIT_ERRORS:
                self._retry_later(wanted, err)
            elif err.code() in _REBALANCE_COMMIT_ERRORS:
                logger.warning("commit by %s refused (%s): the batch will be delivered again", self.group, err)
            else:
                raise

    def _retry_later(self, wanted: dict[tuple[str, int], int], err) -> None:
        """Keep refused offsets for a retry after the back-off (newer offsets already waiting win)."""
        for tp, offset in wanted.items():
            if offset >= self._issued.get(tp, -1) and offset > self._retry.get(tp, -1):
                self._retry[tp] = offset
        delay = self._retry_delay
        self._retry_at = time.monotonic() + delay
        self._retry_delay = min(delay * 2, COMMIT_RETRY_MAX)
        logger.warning(
            "commit by %s refused by the coordinator (%s): committing %s again in %.1f s",
            self.group,
            err,
            _describe(TopicPartition(t, p) for t, p in wanted),
            delay,
        )

    def _on_dead_letter(self, err) -> None:
        if err is not None:
            self._dead_letter_errors.append(err)

    def _on_commit(self, err, partitions) -> None:
        """The coordinator's answer to a commit (served by poll). Partitions refused because the
        coordinator moved or is loading are committed again after a back-off, if still assigned;
        any other refusal means the batch is delivered again (a rebalance: the new owner re-reads
        from the last commit)."""
        if err is None:
            self._retry_delay = COMMIT_RETRY_FIRST
            return
        try:
            owned = {(p.topic, p.partition) for p in self._consumer.assignment()}
        except (KafkaException, RuntimeError):  # answered while closing: nothing is retried
            owned = set()
        refused: dict[tuple[str, int], int] = {}
        partitions = partitions or []
        # Per-partition errors when the coordinator answered; otherwise (transport, timeout) the
        # request's error is every partition's.
        per_partition = any(p.error is not None for p in partitions)
        for p in partitions:
            tp = (p.topic, p.partition)
            failure = p.error if per_partition else err
            if failure is not None and failure.code() in COORDINATOR_COMMIT_ERRORS and tp in owned and p.offset >= 0:
                refused[tp] = p.offset
        self.commit_failures += 1
        if refused:
            self._retry_later(refused, err)
        else:
            logger.warning("commit by %s failed (%s): those records will be delivered again", self.group, err)

    def close(self, timeout: float = CONSUMER_CLOSE_TIMEOUT) -> None:
        """Leave the group, waiting at most ``timeout`` seconds (``CONSUMER_CLOSE_TIMEOUT``)."""
        if not self.closed:
            self.closed = True
            if self._retry:
                logger.warning(
                    "closing consumer %s with refused commits not retried (%s): the next owner re-reads them",
                    self.group,
                    _describe(TopicPartition(t, p) for t, p in self._retry),
                )
            closer = threading.Thread(target=self._close_consumer, name=f"kafka-close-{self.group}", daemon=True)
            closer.start()
            closer.join(timeout)
            if closer.is_alive():
                # A thread stuck in librdkafka cannot be stopped; it keeps the consumer (and its
                # sockets) until the call returns or the process exits.
                self.close_abandoned = True
                logger.error(
                    "consumer %s did not close within %g s (waiting on a group rebalance): abandoned;"
                    " the coordinator drops the member after session.timeout.ms and its partitions are"
                    " re-read from the last commit",
                    self.group,
                    timeout,
                )

    def _close_consumer(self) -> None:
        try:
            self._consumer.close()
        except (KafkaException, RuntimeError) as exc:
            logger.warning("closing consumer %s: %s", self.group, exc)
