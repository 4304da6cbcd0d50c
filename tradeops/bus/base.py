"""The bus interface: one contract, two backends (``memory`` and ``kafka``).

Producers call ``publish(event)`` and, when the events must be durable, ``flush()``. Consumers
``subscribe(topics, group)`` and iterate batches; they call ``commit()`` only after the effects
of the batch are durable (a DB commit, a flushed publish). Until then a crash or a rebalance
hands the same records to the next member of the group again (at-least-once), so consumers are
idempotent by ``event_id``.

Topic names here are the logical names of ``tradeops.events.Topic`` (and their dead-letter
twins from ``tradeops.topics``); a backend adds ``KAFKA_TOPIC_PREFIX`` on the wire.

Decoding happens inside the subscription: a record that cannot be decoded (malformed bytes,
unknown type or version, a missing field or wrong type, oversized) never reaches the consumer
loop. It is published to the topic's dead-letter topic with the reason in headers
(``dlq.reason``, ``dlq.detail``, source topic/partition/offset, group) and the batch goes on.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence

import msgspec

from tradeops.core.errors import ApplicationError
from tradeops.events import MAX_EVENT_BYTES, Envelope

logger = logging.getLogger(__name__)

# How much of a dead message is kept in the dead-letter topic when it is itself too big to
# publish (an oversized message); the original size goes in a header.
DLQ_MAX_VALUE_BYTES = 64 * 1024

DeliveryCallback = Callable[[Exception | None], None]


class BusError(ApplicationError):
    code = "bus_error"


class EventTooLarge(BusError):
    code = "event_too_large"


class Record(msgspec.Struct, frozen=True):
    """One delivered event and where it came from (for dead-lettering and commits)."""

    topic: str  # logical topic name (no prefix)
    partition: int
    offset: int
    key: str | None
    event: Envelope
    headers: dict[str, str] | None = None


class DeadLetter(msgspec.Struct, frozen=True):
    """A message refused by a consumer, as stored in a dead-letter topic."""

    topic: str  # the dead-letter topic (logical)
    key: str | None
    value: bytes
    headers: dict[str, str]

    @property
    def reason(self) -> str:
        return self.headers.get("dlq.reason", "")

    @property
    def detail(self) -> str:
        return self.headers.get("dlq.detail", "")


def dead_letter_headers(
    *,
    reason: str,
    detail: str,
    source_topic: str,
    partition: int,
    offset: int,
    group: str,
    original_size: int,
    traceparent: str = "",
) -> dict[str, str]:
    headers = {
        "dlq.reason": reason,
        "dlq.detail": detail[:2000],
        "dlq.source.topic": source_topic,
        "dlq.source.partition": str(partition),
        "dlq.source.offset": str(offset),
        "dlq.group": group,
        "dlq.original_size": str(original_size),
    }
    if original_size > DLQ_MAX_VALUE_BYTES and reason == "oversized":
        headers["dlq.truncated"] = "true"
    if traceparent:
        headers["traceparent"] = traceparent
    return headers


def check_size(value: bytes, *, event: Envelope) -> None:
    if len(value) > MAX_EVENT_BYTES:
        raise EventTooLarge(
            f"{event.type} {event.event_id}: {len(value)} bytes exceeds the limit of {MAX_EVENT_BYTES}",
            extra={"event_id": str(event.event_id), "size": len(value)},
        )


class Subscription(ABC):
    """A member of a consumer group. Not thread-safe: one loop drives it."""

    group: str
    topics: tuple[str, ...]
    decode_dead_lettered: int = 0  # records this member dead-lettered because they did not decode

    @abstractmethod
    def poll(self, max_records: int = 500, timeout: float = 1.0) -> list[Record]:
        """Return up to ``max_records`` decoded records (possibly none after ``timeout`` seconds).

        Records that fail to decode have already been dead-lettered and are not returned; their
        offsets still advance, so they are committed with the batch."""

    @abstractmethod
    def commit(self) -> None:
        """Commit the position after every record handed out so far (for partitions still owned).

        Call only after the batch's effects are durable."""

    @abstractmethod
    def close(self) -> None:
        """Leave the group. Uncommitted records will be delivered to the group again."""

    def batches(self, max_records: int = 500, timeout: float = 1.0) -> Iterator[list[Record]]:
        """Yield non-empty batches forever (until ``close``); the caller commits each."""
        while not self.closed:
            batch = self.poll(max_records=max_records, timeout=timeout)
            if batch:
                yield batch

    closed: bool = False

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Bus(ABC):
    name: str

    @abstractmethod
    def publish(self, event: Envelope, *, on_delivery: DeliveryCallback | None = None) -> None:
        """Publish to ``event.topic`` with ``event.key`` as the partition key (per-key order).

        Asynchronous on Kafka: durable only after ``flush`` (or when ``on_delivery`` is called
        with ``None``). Raises EventTooLarge past ``MAX_EVENT_BYTES``."""

    @abstractmethod
    def publish_raw(
        self,
        topic: str,
        value: bytes,
        *,
        key: str | None = None,
        headers: dict[str, str] | None = None,
        on_delivery: DeliveryCallback | None = None,
    ) -> None:
        """Publish bytes as they are (already-encoded events from the outbox, dead letters)."""

    @abstractmethod
    def flush(self, timeout: float | None = None) -> int:
        """Wait until everything published is acknowledged; return how many are still pending."""

    @abstractmethod
    def subscribe(self, topics: Sequence[str], group: str, **options) -> Subscription:
        """Join consumer group ``group`` for ``topics``; start from the committed position, or the
        beginning when the group has none."""

    def close(self, timeout: float = 10.0) -> None:  # noqa: B027 - optional hook
        """Release connections (flushes first, up to ``timeout`` seconds)."""
