"""Back-pressure for a replay onto Kafka: wait until the pipeline has settled.

A replay published flat out onto Kafka races the stages: the execution worker can take a signal
before or after the tick behind it, the models fall hours of data time behind (issue 19, finding
8), and the run's orders, fills and alerts depend on the machine's speed. The embedded run does
not race: ``pipeline_run`` settles each source event's consequences before the next. A
``PipelineSettle`` gives the distributed run the same discipline across processes: after each
source event the replay waits until

- every stage's consumer group has committed everything on every topic it consumes (a stage
  commits only after its outputs are acknowledged and, for the writers, after their database
  transaction committed: committed means handled, and its consequences published or written);
- the outbox holds no unsent row (orders and fills written by the execution worker, alerts by
  surveillance, reach their topics through the relay);
- and nothing moved between the first look and the last (the topics' end offsets are the same).

Then every consequence of the event has been handled by every stage, as in the embedded run.
It costs a few admin round trips per event: meant for replays (tests, back-tests, the equality
check between the two shapes), not for a live feed, which cannot wait.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from tradeops.bus.kafka import KafkaBus
from tradeops.stages import Stage


class SettleTimeout(RuntimeError):
    """The pipeline did not settle in time: names the groups still behind and by how much."""


def outbox_unsent() -> int:
    """Outbox rows not yet relayed (the default ``pending`` of a ``PipelineSettle``)."""
    from tradeops.outbox.models import Outbox

    return Outbox.objects.filter(sent_at__isnull=True).count()


class PipelineSettle:
    """Waits until ``stages`` (their consumer groups on ``bus``) have handled everything published
    and ``pending()`` (unsent outbox rows) is zero. Build it once per replay; ``wait()`` after each
    published event (the bus flushed first)."""

    def __init__(
        self,
        bus: KafkaBus,
        stages: Iterable[Stage],
        *,
        pending: Callable[[], int] = outbox_unsent,
        timeout: float = 120.0,
        interval: float = 0.002,
        request_timeout: float = 10.0,
    ) -> None:
        self.bus = bus
        self.stages = list(stages)
        self.pending = pending
        self.timeout = timeout
        self.interval = interval
        self.request_timeout = request_timeout
        self.admin = AdminClient({"bootstrap.servers": bus.bootstrap_servers, "client.id": "tradeops-settle"})
        topics = sorted({bus.physical(t) for s in self.stages for t in s.consumes})
        metadata = self.admin.list_topics(timeout=request_timeout)
        missing = [t for t in topics if t not in metadata.topics or metadata.topics[t].error is not None]
        if missing:
            raise SettleTimeout(f"topics not on the cluster: {', '.join(missing)} (manage.py provision_topics)")
        self.partitions = {t: sorted(metadata.topics[t].partitions) for t in topics}
        self.groups = {bus.physical(s.group): [bus.physical(t) for t in s.consumes] for s in self.stages}
        self.waits = 0
        self.seconds = 0.0

    # ------------------------------------------------------------ what the cluster says

    def _end_offsets(self) -> dict[tuple[str, int], int]:
        wanted = {TopicPartition(t, p): OffsetSpec.latest() for t, ps in self.partitions.items() for p in ps}
        futures = self.admin.list_offsets(wanted, request_timeout=self.request_timeout)
        return {(tp.topic, tp.partition): f.result().offset for tp, f in futures.items()}

    def _committed(self) -> dict[str, dict[tuple[str, int], int]]:
        futures = {}
        for group, topics in self.groups.items():
            wanted = [TopicPartition(t, p) for t in topics for p in self.partitions[t]]
            futures[group] = self.admin.list_consumer_group_offsets(
                [ConsumerGroupTopicPartitions(group, wanted)], request_timeout=self.request_timeout
            )[group]
        out = {}
        for group, future in futures.items():
            result = future.result()
            out[group] = {(tp.topic, tp.partition): tp.offset for tp in result.topic_partitions}
        return out

    def lag(self, ends: dict[tuple[str, int], int] | None = None) -> dict[str, int]:
        """Records published but not yet committed, per consumer group (physical names)."""
        ends = ends if ends is not None else self._end_offsets()
        committed = self._committed()
        lag = {}
        for group, topics in self.groups.items():
            done = committed.get(group, {})
            behind = 0
            for topic in topics:
                for partition in self.partitions[topic]:
                    end = ends[(topic, partition)]
                    # Never committed: an empty partition is caught up; the topics of a replay
                    # are its own (fresh), so anything on it counts from offset 0.
                    behind += max(0, end - max(done.get((topic, partition), 0), 0))
            lag[group] = behind
        return lag

    def members_wait(self) -> None:
        """Wait until every group has a member (its stage is running and subscribed): a replay
        that starts before a stage joined would be waited for, but the stage's first poll would
        meet a backlog instead of one event."""
        deadline = time.monotonic() + self.timeout
        groups = list(self.groups)
        while True:
            futures = self.admin.describe_consumer_groups(groups, request_timeout=self.request_timeout)
            empty = []
            for group, future in futures.items():
                try:
                    description = future.result()
                except Exception:  # noqa: BLE001 - not known to the coordinator yet (KafkaException or the like)
                    empty.append(group)
                    continue
                if not description.members or any(not m.assignment.topic_partitions for m in description.members):
                    empty.append(group)
            if not empty:
                return
            if time.monotonic() > deadline:
                raise SettleTimeout(f"no running, assigned member in consumer group(s) {', '.join(empty)}")
            time.sleep(0.2)

    # ------------------------------------------------------------ the wait

    def settled(self) -> bool:
        """One look: caught up, outbox drained, and nothing published meanwhile."""
        ends = self._end_offsets()
        if any(self.lag(ends).values()):
            return False
        if self.pending():
            return False
        return self._end_offsets() == ends

    def wait(self) -> float:
        """Block until ``settled()``; returns the seconds waited. Raises ``SettleTimeout``
        naming the groups behind after ``timeout`` seconds."""
        started = time.monotonic()
        deadline = started + self.timeout
        delay = self.interval
        while not self.settled():
            if time.monotonic() > deadline:
                behind = {g: n for g, n in self.lag().items() if n}
                raise SettleTimeout(
                    f"the pipeline did not settle in {self.timeout:.0f} s: behind {behind or 'nothing'}, "
                    f"{self.pending()} outbox rows unsent"
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        waited = time.monotonic() - started
        self.waits += 1
        self.seconds += waited
        return waited
