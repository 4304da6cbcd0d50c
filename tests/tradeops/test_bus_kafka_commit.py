"""KafkaSubscription's commits when the group's coordinator moves (a broker killed or restarted
moves the leadership of __consumer_offsets): a commit refused with NOT_COORDINATOR and the like
is committed again with back-off, even when no more records come (otherwise the stage's lag never
reaches zero and a settling replay waits forever); never backwards past a later commit; never
for a partition no longer owned; a rebalance's refusal is still left to redelivery. A fake
consumer stands in for librdkafka, so the test needs no broker."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

import tradeops.bus.kafka as kafka_bus
from tradeops.bus.kafka import COMMIT_RETRY_FIRST, COMMIT_RETRY_MAX, KafkaBus

TOPIC = "px-market-data"


class FakeConsumer:
    def __init__(self, config):
        self.config = config
        self.commits: list[dict[tuple[str, int], int]] = []
        self.owned = {(TOPIC, 0), (TOPIC, 1)}
        self.raise_on_commit: KafkaError | None = None

    def subscribe(self, topics, **callbacks):
        self.callbacks = callbacks

    def commit(self, *, offsets, asynchronous):
        assert asynchronous
        if self.raise_on_commit is not None:
            raise KafkaException(self.raise_on_commit)
        self.commits.append({(tp.topic, tp.partition): tp.offset for tp in offsets})

    def assignment(self):
        return [TopicPartition(t, p) for t, p in sorted(self.owned)]

    def poll(self, timeout):
        return None

    def close(self):
        pass


class Clock:
    def __init__(self):
        self.now = 1000.0

    def monotonic(self):
        return self.now


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(kafka_bus, "Consumer", FakeConsumer)
    monkeypatch.setattr(kafka_bus.time, "monotonic", clock.monotonic)
    return clock


@pytest.fixture
def sub(clock):
    bus = KafkaBus(bootstrap_servers="127.0.0.1:1", topic_prefix="px-")
    return bus.subscribe(["market-data"], "ml-features")


def _handled(sub, **offsets):
    """As if poll had handed out records up to these next offsets (partition -> next offset)."""
    for partition, offset in offsets.items():
        sub._pending[(TOPIC, int(partition[1:]))] = offset


def _answer(sub, code, **offsets):
    err = None if code is None else KafkaError(code)
    sub._on_commit(err, [TopicPartition(TOPIC, int(p[1:]), o) for p, o in offsets.items()])


@pytest.mark.parametrize(
    "code",
    [KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_NOT_AVAILABLE, KafkaError.COORDINATOR_LOAD_IN_PROGRESS],
)
def test_a_commit_the_coordinator_refuses_is_committed_again_after_a_back_off_without_new_records(sub, clock, code):
    _handled(sub, p0=10, p1=7)
    sub.commit()
    assert sub._consumer.commits == [{(TOPIC, 0): 10, (TOPIC, 1): 7}]
    _answer(sub, code, p0=10, p1=7)
    sub.poll(timeout=0)  # too early: nothing
    assert len(sub._consumer.commits) == 1
    clock.now += COMMIT_RETRY_FIRST
    sub.poll(timeout=0)  # no records came, the retry goes anyway
    assert sub._consumer.commits[-1] == {(TOPIC, 0): 10, (TOPIC, 1): 7}
    assert sub.commit_retries == 1 and sub.commit_failures == 1
    # refused again: the back-off doubles, up to its ceiling
    _answer(sub, code, p0=10, p1=7)
    clock.now += COMMIT_RETRY_FIRST
    sub.poll(timeout=0)
    assert len(sub._consumer.commits) == 2
    clock.now += COMMIT_RETRY_FIRST
    sub.poll(timeout=0)
    assert len(sub._consumer.commits) == 3
    for _ in range(10):
        _answer(sub, code, p0=10, p1=7)
        clock.now += COMMIT_RETRY_MAX
        sub.poll(timeout=0)
    assert len(sub._consumer.commits) == 13
    # accepted: the next refusal starts from the first back-off again
    _answer(sub, None, p0=10, p1=7)
    assert sub._retry_delay == COMMIT_RETRY_FIRST and not sub._retry


def test_a_waiting_retry_goes_with_the_next_batch_and_the_newer_offset_wins(sub, clock):
    _handled(sub, p0=10, p1=7)
    sub.commit()
    _answer(sub, KafkaError.NOT_COORDINATOR, p0=10, p1=7)
    _handled(sub, p0=15)
    sub.commit()
    assert sub._consumer.commits[-1] == {(TOPIC, 0): 15, (TOPIC, 1): 7}
    clock.now += 60
    sub.poll(timeout=0)
    assert len(sub._consumer.commits) == 2  # nothing left to retry


def test_a_refused_commit_is_not_retried_past_a_later_one(sub, clock):
    """Commits are asynchronous: a refusal can come back after a later commit was issued;
    retrying the older offset then could move the partition's commit backwards."""
    _handled(sub, p0=10)
    sub.commit()
    _handled(sub, p0=20)
    sub.commit()
    _answer(sub, KafkaError.NOT_COORDINATOR, p0=10)  # the first one's answer
    clock.now += 60
    sub.poll(timeout=0)
    assert sub._consumer.commits == [{(TOPIC, 0): 10}, {(TOPIC, 0): 20}]
    _answer(sub, KafkaError.NOT_COORDINATOR, p0=20)  # the later one refused too: that one is retried
    clock.now += 60
    sub.poll(timeout=0)
    assert sub._consumer.commits[-1] == {(TOPIC, 0): 20}


def test_a_partition_revoked_meanwhile_is_not_committed_again(sub, clock):
    _handled(sub, p0=10, p1=7)
    sub.commit()
    sub._on_revoke(sub._consumer, [TopicPartition(TOPIC, 1)])
    sub._consumer.owned = {(TOPIC, 0)}
    _answer(sub, KafkaError.NOT_COORDINATOR, p0=10, p1=7)
    clock.now += 60
    sub.poll(timeout=0)
    assert sub._consumer.commits[-1] == {(TOPIC, 0): 10}
    # revoked while the retry waited
    _answer(sub, KafkaError.NOT_COORDINATOR, p0=10)
    sub._on_revoke(sub._consumer, [TopicPartition(TOPIC, 0)])
    clock.now += 60
    sub.poll(timeout=0)
    assert len(sub._consumer.commits) == 2


def test_a_rebalance_refusal_is_left_to_redelivery(sub, clock):
    _handled(sub, p0=10)
    sub.commit()
    _answer(sub, KafkaError.ILLEGAL_GENERATION, p0=10)
    clock.now += 60
    sub.poll(timeout=0)
    assert len(sub._consumer.commits) == 1 and sub.commit_failures == 1 and sub.commit_retries == 0


def test_a_commit_refused_on_the_spot_for_want_of_a_coordinator_is_retried(sub, clock):
    _handled(sub, p0=10)
    sub._consumer.raise_on_commit = KafkaError(KafkaError._WAIT_COORD)
    sub.commit()
    assert sub._consumer.commits == []
    sub._consumer.raise_on_commit = None
    clock.now += COMMIT_RETRY_FIRST
    sub.poll(timeout=0)
    assert sub._consumer.commits == [{(TOPIC, 0): 10}]


def test_any_other_error_on_the_spot_is_raised(sub):
    _handled(sub, p0=10)
    sub._consumer.raise_on_commit = KafkaError(KafkaError.INVALID_COMMIT_OFFSET_SIZE)
    with pytest.raises(KafkaException):
        sub.commit()


def test_a_refusal_answered_while_closing_is_not_retried(sub, clock):
    _handled(sub, p0=10)
    sub.commit()

    def closed():
        raise RuntimeError("Consumer closed")

    sub._consumer.assignment = closed
    _answer(sub, KafkaError.NOT_COORDINATOR, p0=10)
    assert not sub._retry and sub.commit_failures == 1
