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

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from confluent_kafka import ConsumerGroupTopicPartitions, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec
from django.db import DatabaseError

from tradeops.bus.kafka import KafkaBus
from tradeops.stages import Stage

logger = logging.getLogger(__name__)


class SettleTimeout(RuntimeError):
    """The pipeline did not settle in time: names the groups still behind and by how much."""


# A group's coordinator moved or is still loading the group: ask again, through a new client.
COORDINATOR_ERRORS = frozenset(
    {KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_NOT_AVAILABLE, KafkaError.COORDINATOR_LOAD_IN_PROGRESS}
)


# A partition's leader moved (a broker restarted, leadership rebalanced back to the preferred
# replica) or a broker went away (killed: the look timed out, or its connection was refused):
# the next look, through a new client for the group look-ups, reaches the new leader or
# coordinator once the cluster has moved them. Until 2026-12-06 (wip/walk50) a settled replay
# died on the first one with a traceback (FENCED_LEADER_EPOCH from list_offsets ~5 minutes after
# a cluster's start; _TIMED_OUT from a committed-offsets look at a SIGKILLed broker).
LEADERSHIP_ERRORS = frozenset(
    {
        KafkaError.FENCED_LEADER_EPOCH,
        KafkaError.UNKNOWN_LEADER_EPOCH,
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError._TIMED_OUT,
        KafkaError._TRANSPORT,
    }
)


def leadership_error(exc: BaseException) -> bool:
    """``exc`` is a Kafka error saying a partition's leader moved or did not answer in time."""
    err = exc.args[0] if isinstance(exc, KafkaException) and exc.args else None
    return isinstance(err, KafkaError) and err.code() in LEADERSHIP_ERRORS


def coordinator_error(exc: BaseException) -> bool:
    """``exc`` is a Kafka error saying the group's coordinator moved or is loading."""
    err = exc.args[0] if isinstance(exc, KafkaException) and exc.args else None
    return isinstance(err, KafkaError) and err.code() in COORDINATOR_ERRORS


@dataclass(frozen=True)
class GroupLook:
    """What one look at a consumer group said: its members and whether each holds partitions,
    or why the look failed."""

    state: str = ""
    members: int = 0
    assigned: bool = False  # at least one member, and every member holds partitions
    error: str = ""
    coordinator_refused: bool = False  # the error was NOT_COORDINATOR or the like

    def __str__(self) -> str:
        if self.error:
            return f"describe failed: {self.error}"
        held = "every one assigned" if self.assigned else "not all assigned"
        return f"state {self.state}, {self.members} member(s)" + (f", {held}" if self.members else "")


class GroupAdmin:
    """Consumer-group look-ups (members, committed offsets) through an admin client that is
    replaced after a coordinator error.

    librdkafka (2.16) describes a group with KIP-848's ConsumerGroupDescribe first and falls back
    to the classic DescribeGroups only on GROUP_ID_NOT_FOUND or UNSUPPORTED_VERSION; a
    NOT_COORDINATOR in that answer (a broker that no longer leads the group's __consumer_offsets
    partition) becomes the group's result, not retried (hence "ConsumerGroupDescribe: " in the
    error of a classic group). Offset fetches fail the same way. On this cluster a coordinator
    move (the controller's preferred-leader election after a broker restart) gave one such
    answer per moved group, then the right one; a CI run saw NOT_COORDINATOR for 4 of 7 groups
    for 180 s (not reproduced). A new client drops whatever the old one holds (connections,
    cached coordinators and metadata) before it asks again."""

    def __init__(self, bootstrap_servers: str, *, client_id: str = "tradeops-groups", request_timeout: float = 10.0):
        self.config = {"bootstrap.servers": bootstrap_servers, "client.id": client_id}
        self.request_timeout = request_timeout
        self.renewals = 0  # clients replaced after a coordinator error
        self.admin = AdminClient(self.config)

    def renew(self) -> None:
        self.admin = AdminClient(self.config)
        self.renewals += 1

    def describe(self, groups: Iterable[str]) -> dict[str, GroupLook]:
        """One look at each group (a failed look is a ``GroupLook`` with ``error``); after a
        coordinator error the next look goes through a new client."""
        futures = self.admin.describe_consumer_groups(list(groups), request_timeout=self.request_timeout)
        looks = {}
        for group, future in futures.items():
            try:
                info = future.result()
            except Exception as exc:  # noqa: BLE001 - KafkaException, or a timeout: reported in the look
                looks[group] = GroupLook(error=str(exc), coordinator_refused=coordinator_error(exc))
                continue
            members = list(info.members)
            looks[group] = GroupLook(
                state=getattr(info.state, "name", str(info.state)),
                members=len(members),
                assigned=bool(members) and all(m.assignment.topic_partitions for m in members),
            )
        if any(look.coordinator_refused for look in looks.values()):
            self.renew()
        return looks

    def committed(self, wanted: dict[str, list[TopicPartition]], *, attempts: int = 3) -> dict[str, list]:
        """Each group's committed offsets for ``wanted`` (group -> its partitions), as
        ``TopicPartition`` lists. A coordinator error is retried through a new client, up to
        ``attempts`` looks in all; then it is raised (``KafkaException``)."""
        out: dict[str, list] = {}
        for attempt in range(attempts):
            futures = {
                group: self.admin.list_consumer_group_offsets(
                    [ConsumerGroupTopicPartitions(group, partitions)], request_timeout=self.request_timeout
                )[group]
                for group, partitions in wanted.items()
                if group not in out
            }
            refused = None
            for group, future in futures.items():
                try:
                    out[group] = future.result().topic_partitions
                except KafkaException as exc:
                    if not (coordinator_error(exc) or leadership_error(exc)):
                        raise
                    refused = exc
            if refused is None:
                return out
            self.renew()
            if attempt + 1 == attempts:
                raise refused
            time.sleep(0.1 * (attempt + 1))
        return out


def database_reconnect(exc: BaseException) -> None:
    """A look at the database failed (the primary restarting: ``cluster.sh pg-restart``): close
    this thread's connections so the next look opens a new one. Until 2026-12-06 (wip/walk50) the
    settled replay died with a traceback on the dead connection while every stage, which stops and
    is started again on such a failure, came back."""
    from django.db import connections

    logger.warning("settle: the database look failed (%s); asking again on a new connection", exc)
    connections.close_all()


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
        self.groups_admin = GroupAdmin(
            bus.bootstrap_servers, client_id="tradeops-settle", request_timeout=request_timeout
        )
        topics = sorted({bus.physical(t) for s in self.stages for t in s.consumes})
        metadata = self.admin.list_topics(timeout=request_timeout)
        missing = [t for t in topics if t not in metadata.topics or metadata.topics[t].error is not None]
        if missing:
            raise SettleTimeout(f"topics not on the cluster: {', '.join(missing)} (manage.py provision_topics)")
        self.partitions = {t: sorted(metadata.topics[t].partitions) for t in topics}
        self.groups = {bus.physical(s.group): [bus.physical(t) for t in s.consumes] for s in self.stages}
        self.waits = 0
        self.seconds = 0.0
        self.coordinator_refusal = ""  # the last coordinator or leadership error a look met (for the timeout's message)

    # ------------------------------------------------------------ what the cluster says

    def _end_offsets(self) -> dict[tuple[str, int], int]:
        wanted = {TopicPartition(t, p): OffsetSpec.latest() for t, ps in self.partitions.items() for p in ps}
        futures = self.admin.list_offsets(wanted, request_timeout=self.request_timeout)
        return {(tp.topic, tp.partition): f.result().offset for tp, f in futures.items()}

    def _committed(self) -> dict[str, dict[tuple[str, int], int]]:
        wanted = {
            group: [TopicPartition(t, p) for t in topics for p in self.partitions[t]]
            for group, topics in self.groups.items()
        }
        return {
            group: {(tp.topic, tp.partition): tp.offset for tp in partitions}
            for group, partitions in self.groups_admin.committed(wanted).items()
        }

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
        meet a backlog instead of one event. A coordinator that refuses (moved, loading) is
        asked again through a new client (``GroupAdmin``); the timeout names what each group's
        last look said."""
        deadline = time.monotonic() + self.timeout
        pending = list(self.groups)
        last: dict[str, GroupLook] = {}
        while True:
            looks = self.groups_admin.describe(pending)
            last.update(looks)
            pending = [group for group in pending if not looks[group].assigned]
            if not pending:
                return
            if time.monotonic() > deadline:
                said = "; ".join(f"{group}: {last[group]}" for group in pending)
                raise SettleTimeout(
                    f"no running, assigned member in consumer group(s) after {self.timeout:.0f} s: {said}"
                )
            time.sleep(0.2)

    # ------------------------------------------------------------ the wait

    def settled(self) -> bool:
        """One look: caught up, outbox drained, and nothing published meanwhile. A coordinator
        still refusing after ``GroupAdmin``'s fresh clients, or a partition's leader that moved,
        counts as not settled yet (the next look asks again)."""
        try:
            ends = self._end_offsets()
        except KafkaException as exc:
            if not leadership_error(exc):
                raise
            self.coordinator_refusal = str(exc)
            return False
        try:
            if any(self.lag(ends).values()):
                return False
        except KafkaException as exc:
            if not (coordinator_error(exc) or leadership_error(exc)):
                raise
            self.coordinator_refusal = str(exc)
            return False
        try:
            if self.pending():
                return False
        except DatabaseError as exc:
            database_reconnect(exc)
            self.coordinator_refusal = f"database: {exc}"
            return False
        try:
            return self._end_offsets() == ends
        except KafkaException as exc:
            if not leadership_error(exc):
                raise
            self.coordinator_refusal = str(exc)
            return False

    def wait(self) -> float:
        """Block until ``settled()``; returns the seconds waited. Raises ``SettleTimeout``
        naming the groups behind after ``timeout`` seconds."""
        started = time.monotonic()
        deadline = started + self.timeout
        delay = self.interval
        while not self.settled():
            if time.monotonic() > deadline:
                try:
                    behind = {g: n for g, n in self.lag().items() if n} or "nothing"
                except KafkaException as exc:
                    behind = f"unknown ({exc})"
                refused = f"; last Kafka refusal: {self.coordinator_refusal}" if self.coordinator_refusal else ""
                try:
                    unsent = f"{self.pending()} outbox rows unsent"
                except DatabaseError as exc:
                    database_reconnect(exc)
                    unsent = f"outbox unknown ({exc})"
                raise SettleTimeout(
                    f"the pipeline did not settle in {self.timeout:.0f} s: behind {behind}, {unsent}{refused}"
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        waited = time.monotonic() - started
        self.waits += 1
        self.seconds += waited
        return waited
