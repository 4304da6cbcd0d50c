"""Stage runners: the shells that attach a pure handler to a bus. No business rule lives here.

- ``StageRunner`` drives one stage: poll a batch, hand each event to the handler, publish what
  it returns, flush (outputs durable), then commit the input offsets. A crash anywhere before the
  commit re-delivers the batch (at-least-once), so the runner makes re-delivery harmless:
  * inputs are deduplicated by ``event_id`` (in-process, bounded), so a handler's state is not
    advanced twice by a redelivered event;
  * outputs get deterministic ids (UUIDv5 of the input id, the stage name and the output's
    index), so a batch handled twice by two processes publishes the same event ids and the
    next stage's dedupe drops the second copy;
  * outputs without a traceparent become children of the input's trace (W3C).
  A handler that raises on an event dead-letters that event (reason ``handler_error``) and the
  loop goes on; it never takes the consumer down. The exception is an infrastructure failure
  (``INFRASTRUCTURE_ERRORS``: the database unreachable, a connection lost): the event is good,
  so it is not dead-lettered; the error propagates before the commit (an audit record is never
  lost to a DB outage), and ``stage_run`` rides the outage out (below).
- ``stage_run`` is ``manage.py run_stage NAME``: one stage as a consumer-group member on the
  configured bus. It survives outages of what the stage stands on: on an infrastructure failure
  it logs it, drops the process's database connections (a dead persistent connection is never
  used again), leaves the consumer group and, after a back-off (0.5 s doubling to 30 s), joins
  it again, so the uncommitted batch is delivered again from the last committed offset: the
  events handled before the failure are skipped by the runner's dedupe (their effects are
  durable), the rest are handled. Nothing is skipped, nothing applied twice. A Kafka outage needs
  none of that: the consumer waits for the broker, and outputs wait to be acknowledged before
  any commit. ``STOP_ERRORS`` (an account lock lost to another worker) end the stage instead.
- ``pipeline_run`` is ``manage.py run_pipeline`` and the core of the embedded run: every stage
  in one process, fed by any iterable of envelopes (replay file, synthetic source, MT5
  collector), each event handed straight to the next stages' runners in event order
  (``EmbeddedDispatcher``), optionally relaying the outbox into the same process.
"""

from __future__ import annotations

import gc
import hashlib
import logging
import signal
import time
import uuid
from collections import OrderedDict, defaultdict, deque
from collections.abc import Callable, Container, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypeVar

import msgspec

from tradeops.bus.base import Bus, Record, Subscription, dead_letter_headers
from tradeops.core.frozen import uuid5_of_digest
from tradeops.events import TOPICS_BY_TYPE, Envelope, Topic, encode
from tradeops.observability import cache, metrics, tracing
from tradeops.observability.stage import embedded_metering, stage_meter
from tradeops.stages import Handler, Stage, stages_wired
from tradeops.topics import dlq_name

logger = logging.getLogger(__name__)
T = TypeVar("T")


def _infrastructure_errors() -> tuple[type[BaseException], ...]:
    from django.db import InterfaceError, OperationalError

    return (OperationalError, InterfaceError, ConnectionError, TimeoutError)


# Failures of what a handler stands on, not of the event: never dead-lettered (see module doc).
INFRASTRUCTURE_ERRORS = _infrastructure_errors()


def _stop_errors() -> tuple[type[BaseException], ...]:
    from tradeops.core.locks import LockLost

    return (LockLost,)


# Failures after which the stage must not go on (not the event's fault, not passing): they end it.
STOP_ERRORS = _stop_errors()


@dataclass
class Backoff:
    """Exponential back-off between attempts: ``initial`` seconds, times ``factor`` each time, at
    most ``maximum``; ``reset`` after a success."""

    initial: float = 0.5
    maximum: float = 30.0
    factor: float = 2.0
    attempt: int = 0

    def next(self) -> float:
        delay = min(self.maximum, self.initial * self.factor**self.attempt)
        self.attempt += 1
        return delay

    def reset(self) -> None:
        self.attempt = 0


def databases_reset() -> None:
    """Drop every database connection of this thread: after a failure they may be dead (a
    PostgreSQL restart kills them; Django re-checks a persistent connection only between
    requests, never in a long-running loop), and the next query opens a fresh one."""
    from django.db import connections

    for conn in connections.all(initialized_only=True):
        try:
            conn.close()
        except Exception:  # noqa: BLE001 - broken already: closing it is all we wanted
            conn.connection = None


def _sleep_unless_stopped(seconds: float, should_stop: Callable[[], bool]) -> bool:
    """Sleep ``seconds`` in short steps; True if ``should_stop()`` turned true meanwhile."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if should_stop():
            return True
        time.sleep(min(left, 0.2))
    return should_stop()


def infrastructure_retry(
    fn: Callable[[], T],
    *,
    what: str,
    should_stop: Callable[[], bool] = lambda: False,
    backoff: Backoff | None = None,
) -> T | None:
    """Call ``fn`` until it returns without an infrastructure failure (a runner's start-up that
    needs the database: loading hot state, reconciling), with back-off and a log line per
    attempt. None if stopped meanwhile."""
    backoff = backoff or Backoff()
    first = None
    while not should_stop():
        try:
            result = fn()
        except INFRASTRUCTURE_ERRORS as exc:
            first = first or time.monotonic()
            delay = backoff.next()
            logger.error(
                "%s: %s: %s; retrying in %.1f s (attempt %d, failing for %.0f s)",
                what,
                type(exc).__name__,
                str(exc).strip().splitlines()[0] if str(exc).strip() else "",
                delay,
                backoff.attempt,
                time.monotonic() - first,
            )
            databases_reset()
            if _sleep_unless_stopped(delay, should_stop):
                return None
            continue
        if first is not None:
            logger.warning("%s: succeeded after %.0f s of failures", what, time.monotonic() - first)
        return result
    return None


# How long the embedded run's sinks (audit trail, live push) gather events across source events
# before their batch (``EmbeddedDispatcher``): one audit append per 0.5 s of a flat-out replay
# instead of one per source event. A live feed is not held back: its source says when it has
# nothing new, and the sinks get their batch then.
EMBEDDED_SINK_SECONDS = 0.5
OUTPUT_ID_NAMESPACE = uuid.UUID("5d0f3f7e-8a43-4c1e-9a8e-2f6b1c9f0b11")
ALL_TOPICS = (Topic.MARKET_DATA, Topic.FEATURES, Topic.PREDICTIONS, Topic.TRADING, Topic.COMPLIANCE)


class RecentIds:
    """A bounded set of recently seen event ids (oldest forgotten first).

    The window only has to cover redelivery: an uncommitted batch plus what a rebalance replays.
    Ids are kept as their 128-bit integers: a ``UUID`` is an object the garbage collector tracks
    and a full collection walks every one of up to a million of them (tens of milliseconds in the
    middle of whatever the process is doing); an int is not tracked, and is half the memory."""

    def __init__(self, capacity: int = 1_000_000) -> None:
        self.capacity = capacity
        self._ids: OrderedDict[int, None] = OrderedDict()  # event_id.int

    def __contains__(self, event_id: uuid.UUID) -> bool:
        return event_id.int in self._ids

    def add(self, event_id: uuid.UUID) -> None:
        self._ids[event_id.int] = None
        if len(self._ids) > self.capacity:
            self._ids.popitem(last=False)

    def trim(self) -> None:
        """Forget the oldest ids beyond capacity (runners add a batch, then trim once)."""
        ids = self._ids
        while len(ids) > self.capacity:
            ids.popitem(last=False)

    def __len__(self) -> int:
        return len(self._ids)


def settle_heap() -> int:
    """Collect once, then move every object alive now (Django, the models, the handlers' hot
    state: what lives as long as the process) out of the garbage collector's generations, so that
    a full collection later walks only what was allocated since, not the hundreds of thousands of
    startup objects (a ~150 ms pause in the middle of an order, ``bench/order_path.py``; a third
    of the embedded pipeline's CPU, ``bench/pipeline_replay.py``). Call it once a long-running
    runner has built its handlers. Returns the number of objects frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


@contextmanager
def stop_on_signals():
    """Yield a ``should_stop()`` that turns true on SIGTERM or SIGINT (finish the batch, commit,
    leave the group); the previous handlers come back on exit (commands run in-process in tests).
    Outside the main thread signals cannot be caught and ``should_stop`` stays false."""
    requested = []
    previous = {}
    try:
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, lambda signum, frame: requested.append(signum))
    except ValueError:
        pass
    try:
        yield lambda: bool(requested)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def handler_load(stage: Stage) -> Handler:
    """Build the stage's handler from its dotted factory path."""
    from django.utils.module_loading import import_string

    return import_string(stage.factory)()


@dataclass
class StageStats:
    consumed: int = 0
    produced: int = 0  # events the handler returned and the runner published
    # Events the handler wrote to the transactional outbox itself, per topic (its ``outboxed``,
    # the same live dict; empty for a handler that writes none): the outbox relay publishes them
    # and counts them as its own (tradeops_outbox_published_total), so they are not ``produced``.
    outboxed: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    dead_lettered: int = 0  # by the handler (it raised); plus those that did not decode:
    dead_lettered_on_decode: int = 0
    batches: int = 0
    outages: int = 0  # infrastructure outages ridden out (stage_run)

    def outboxed_total(self) -> int:
        """Events the handler wrote to the outbox, all topics."""
        return sum(list(self.outboxed.values()))


_OUTPUT_ID_PREFIX = OUTPUT_ID_NAMESPACE.bytes


def output_event_id(*, stage: str, input_id: uuid.UUID, index: int | str) -> uuid.UUID:
    """``uuid5(OUTPUT_ID_NAMESPACE, "stage:input_id:index")``: the same on every delivery, so a
    redelivered input's outputs are recognised downstream. Computed as ``uuid.uuid5`` does (SHA-1
    of the namespace and the name, version and variant bits set), without its extra copies: it
    runs once per output on the embedded run's hot path."""
    return uuid5_of_bytes(_OUTPUT_ID_PREFIX + f"{stage}:{input_id}:{index}".encode())


def output_id_prefix(*, stage: str, input_id: uuid.UUID) -> bytes:
    """What ``output_event_id`` hashes before the index: for a caller that derives many ids from
    one (stage, input) pair, ``uuid5_of_bytes(prefix + str(index).encode())`` is the same id."""
    return _OUTPUT_ID_PREFIX + f"{stage}:{input_id}:".encode()


def uuid5_of_bytes(data: bytes) -> uuid.UUID:
    """``uuid.uuid5`` of the namespace and name already joined in ``data`` (namespace bytes +
    UTF-8 name): SHA-1, the first 16 bytes, version 5 and the RFC 4122 variant."""
    return uuid5_of_digest(hashlib.sha1(data, usedforsecurity=False).digest())


class StageRunner:
    """One stage's shell: dedupe, the handler call, dead-lettering and the outputs' ids and
    traceparents (``handle_one``), on a subscription (``run_once``: poll, ``process``, flush,
    commit) or handed events directly by the embedded dispatcher (``subscription`` None)."""

    def __init__(
        self,
        *,
        stage: Stage,
        handler: Handler,
        bus: Bus,
        subscription: Subscription | None,
        dedupe: RecentIds | None = None,
        deterministic_ids: bool = True,
    ) -> None:
        self.stage = stage
        self.handler = handler
        self.bus = bus
        self.subscription = subscription
        self.group = subscription.group if subscription is not None else stage.group
        self.dedupe = dedupe if dedupe is not None else RecentIds()
        self.deterministic_ids = deterministic_ids
        self.stats = StageStats()
        outboxed = getattr(handler, "outboxed", None)  # a handler that writes to the outbox (``Handler``)
        if isinstance(outboxed, dict):
            self.stats.outboxed = outboxed
        self.meter = stage_meter(stage, subscription, self.stats)  # None with METRICS_ENABLED off
        self.trace_scope = tracing.StageScope(stage.name)
        self._handle = handler.handle
        self._seen = self.dedupe._ids  # an OrderedDict of event_id.int used as a set: C-level lookups
        # Per payload class, the event keys the handler said it has nothing to do with
        # (``handler_declines``): ``EVERY_KEY`` for a whole class, or the handler's own live
        # collection of keys. The embedded dispatcher counts those events consumed and does not
        # hand them over.
        self.declined: dict[type, Container[str]] = {}

    def learn(self, kind: type) -> None:
        """Ask the handler, once per payload class, what of ``kind`` it has nothing to do with
        (``handler_declines``); remember the answer in ``declined``."""
        declined = handler_declines(self.handler, kind)
        if declined is not None:
            self.declined[kind] = declined

    def handle_one(self, event: Envelope, topic: str, partition: int = 0, offset: int = -1) -> list[Envelope]:
        """Handle one event and return its outputs, each with its deterministic id and its
        traceparent, ready to publish; ``[]`` when it produced none, was a duplicate (already
        handled: skipped) or was dead-lettered (the handler raised: logged, sent to the topic's
        dead-letter topic). An infrastructure failure propagates (see the module doc). The caller
        counts ``consumed`` and ``produced`` and trims the dedupe window.

        The event is handled in its trace (``tradeops.observability.tracing.StageScope``): in a
        sampled trace, as this stage's span (when tracing is on), its outputs naming that span as
        parent; otherwise with the event's own traceparent in the context, which its outputs keep.
        Events the handler writes through the outbox continue the same trace."""
        key = event.event_id.int
        seen = self._seen
        if key in seen:
            self.stats.duplicates += 1
            return []
        if event.type in cache.INVALIDATING_EVENTS:  # a rule approved, a limit changed: drop this process's L1
            cache.on_event(event)
        scope = self.trace_scope
        # tracing on here and the event's trace sampled (the module's tracer read first: with
        # tracing off, the usual case, no call per event and stage)
        span = tracing._tracer is not None and scope.traced(event)
        try:
            if span:
                stage_tp = scope.traceparent(event)
                with scope.span(event, stage_tp):
                    outputs = self._handle(event)
            else:
                current = tracing.current_traceparent_var
                tp = event.traceparent
                if current.get() == tp:
                    # Already in force (a source event carries none, and none is set between two
                    # handler calls): nothing to set; restored only if the handler changed it.
                    try:
                        outputs = self._handle(event)
                    finally:
                        if current.get() != tp:
                            current.set(tp)
                else:
                    token = current.set(tp)
                    try:
                        outputs = self._handle(event)
                    finally:
                        current.reset(token)
        except INFRASTRUCTURE_ERRORS + STOP_ERRORS:
            name = self.stage.name
            logger.exception("stage %s: infrastructure failure on %s %s; stopping", name, event.type, event.event_id)
            raise
        except Exception as exc:  # a handler bug or a poison event must not stop the stage
            logger.exception("stage %s: handler failed on %s %s", self.stage.name, event.type, event.event_id)
            self._dead_letter(Record(topic, partition, offset, event.key, event), exc)
            seen[key] = None
            return []
        seen[key] = None
        if not outputs:
            return []
        if not span:
            stage_tp = scope.outputs_traceparent(event)
        stamped = []
        topics_out = self.meter.topics_out if self.meter is not None else None  # counted in place
        # output_event_id(stage, input, index) for each index: the hashed prefix built once per input
        prefix = output_id_prefix(stage=self.stage.name, input_id=event.event_id) if self.deterministic_ids else None
        for index, out in enumerate(outputs):
            changes = {}
            if prefix is not None:
                changes["event_id"] = uuid5_of_bytes(prefix + str(index).encode())
            # A handler that copied its input's traceparent (or set none) gets this stage's.
            if not out.traceparent or out.traceparent == event.traceparent:
                changes["traceparent"] = stage_tp
            stamped.append(msgspec.structs.replace(out, **changes) if changes else out)
            if topics_out is not None:
                out_topic = TOPICS_BY_TYPE[out.type]
                topics_out[out_topic] = topics_out.get(out_topic, 0) + 1
        return stamped

    def handle_sink_batch(self, records: Sequence[Record]) -> bool:
        """A sink handler with ``handle_batch(events) -> []`` (the audit trail: one transaction for
        the batch) gets the batch's new events at once. Returns False when it has no
        ``handle_batch`` or raised (not an infrastructure failure): the caller then handles the
        batch event by event (``handle_one``), so only the poison event is dead-lettered."""
        batch = getattr(self.handler, "handle_batch", None)
        if batch is None:
            return False
        seen = self._seen
        fresh = [r for r in records if r.event.event_id.int not in seen]
        try:
            outputs = batch([r.event for r in fresh]) if fresh else []
        except INFRASTRUCTURE_ERRORS + STOP_ERRORS:
            logger.exception("stage %s: infrastructure failure on a batch; stopping", self.stage.name)
            raise
        except Exception:
            logger.exception("stage %s: batch failed; handling its events one by one", self.stage.name)
            return False
        if outputs:
            raise TypeError(f"stage {self.stage.name}: handle_batch is for sinks; it returned events")
        self.stats.duplicates += len(records) - len(fresh)
        for r in fresh:
            seen[r.event.event_id.int] = None
        return True

    def process(self, records: Sequence[Record]) -> int:
        """Handle a batch and publish the outputs (not flushed, not committed). Returns outputs.

        A sink's batch goes to its ``handle_batch`` at once (``handle_sink_batch``); other events
        go through ``handle_one`` (its trace, its outputs' ids and traceparents)."""
        meter = self.meter
        started = meter.timer() if meter is not None else 0.0  # non-zero: this batch is timed
        produced = 0
        if not (len(records) > 1 and self.handle_sink_batch(records)):
            publish = self.bus.publish
            handle_one = self.handle_one
            for record in records:
                outputs = handle_one(record.event, record.topic, record.partition, record.offset)
                if outputs:
                    for out in outputs:
                        publish(out)
                    produced += len(outputs)
        self.dedupe.trim()
        self.stats.consumed += len(records)
        self.stats.produced += produced
        self.stats.batches += 1
        if meter is not None:
            self._metered(meter, records, started)
        return produced

    @staticmethod
    def _metered(meter, records: Sequence[Record], started: float) -> None:
        """The batch's share of the stage metrics the stats do not hold: events in per topic for
        a stage that consumes several, and the batch time when this one is timed."""
        topics_in = meter.topics_in
        if topics_in is not None:
            for record in records:
                topic = record.topic
                topics_in[topic] = topics_in.get(topic, 0) + 1
        if started:
            meter.timed(started)

    def _dead_letter(self, record: Record, exc: Exception) -> None:
        self.stats.dead_lettered += 1
        metrics.dead_letters.labels(record.topic, "handler_error").inc()  # rare: no cached child
        value = encode(record.event)
        headers = dead_letter_headers(
            reason="handler_error",
            detail=f"{type(exc).__name__}: {exc}",
            source_topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            group=self.group,
            original_size=len(value),
            traceparent=record.event.traceparent,
        )
        headers["dlq.stage"] = self.stage.name
        self.bus.publish_raw(dlq_name(record.topic), value, key=record.key, headers=headers)

    def run_once(
        self, *, max_records: int = 1000, timeout: float = 1.0, should_stop: Callable[[], bool] = lambda: False
    ) -> int:
        """One poll-handle-publish-flush-commit cycle. Returns the number of records consumed.

        While the bus cannot acknowledge the outputs (broker down) it keeps waiting and does not
        commit; stopping meanwhile leaves the batch uncommitted, to be delivered again."""
        records = self.subscription.poll(max_records=max_records, timeout=timeout)
        if not records:
            if self.meter is not None:
                self.meter.idle()
            return 0
        return self.handle_polled(records, should_stop=should_stop)

    def handle_polled(self, records: Sequence[Record], *, should_stop: Callable[[], bool] = lambda: False) -> int:
        """The rest of ``run_once`` for records already polled: handle, publish, flush, commit."""
        self.process(records)
        waited = 0.0
        while remaining := self.bus.flush(5):
            waited += 5
            name = self.stage.name
            logger.warning("stage %s: %d outputs unacknowledged after %.0f s; waiting", name, remaining, waited)
            if should_stop():
                return len(records)
        if getattr(self.handler, "holding", 0):
            # The handler holds events it has not acted on yet (the execution worker's signals
            # waiting for market data): committing would skip them after a crash. The offsets
            # go with the next commit, once it holds nothing.
            return len(records)
        self.subscription.commit()
        if self.meter is not None:
            self.meter.committed()
        return len(records)


def stage_run(
    stage: Stage,
    *,
    bus: Bus,
    handler: Handler | None = None,
    group: str | None = None,
    batch_size: int = 1000,
    poll_timeout: float = 1.0,
    should_stop: Callable[[], bool] = lambda: False,
    max_events: int | None = None,
    idle_exit: float | None = None,
    subscribe_options: dict | None = None,
    backoff: Backoff | None = None,
) -> StageStats:
    """Run one stage as a member of its consumer group until stopped (``manage.py run_stage``).

    ``max_events`` and ``idle_exit`` (seconds without records) end the loop for tests and batch
    jobs. The subscription is closed on exit; an uncommitted batch is redelivered to the group.
    An infrastructure failure (database or broker unreachable) is ridden out: see the module doc
    (``backoff`` paces the attempts; the time spent in an outage does not count as idle)."""
    handler = handler or handler_load(stage)
    group = group or stage.group

    def subscribe() -> Subscription:
        return bus.subscribe(stage.consumes, group, **dict(subscribe_options or {}))

    subscription = subscribe()
    runner = StageRunner(stage=stage, handler=handler, bus=bus, subscription=subscription)
    backoff = backoff or Backoff()
    last_activity = time.monotonic()
    down_since: float | None = None
    decode_dead_lettered = 0
    try:
        while not should_stop():
            try:
                n = runner.run_once(max_records=batch_size, timeout=poll_timeout, should_stop=should_stop)
                if not n:
                    handler_idle(handler)
            except INFRASTRUCTURE_ERRORS as exc:
                now = time.monotonic()
                down_since = down_since if down_since is not None else now
                delay = backoff.next()
                runner.stats.outages += down_since == now
                detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                logger.error(
                    "stage %s: %s: %s; nothing committed; retrying in %.1f s (attempt %d, down for %.0f s), "
                    "then resuming from the last committed offset",
                    stage.name,
                    type(exc).__name__,
                    detail,
                    delay,
                    backoff.attempt,
                    now - down_since,
                )
                databases_reset()
                decode_dead_lettered += subscription.decode_dead_lettered
                subscription.close()  # leave the group: the uncommitted batch is delivered again
                stopped = _sleep_unless_stopped(delay, should_stop)
                subscription = runner.subscription = subscribe()
                last_activity = time.monotonic()
                if stopped:
                    break
                continue
            now = time.monotonic()
            if n:
                last_activity = now
                if down_since is not None:
                    logger.warning("stage %s: recovered after %.0f s; consuming again", stage.name, now - down_since)
                    down_since = None
                    backoff.reset()
            elif idle_exit is not None and now - last_activity >= idle_exit:
                break
            if max_events is not None and runner.stats.consumed >= max_events:
                break
    finally:
        runner.stats.dead_lettered_on_decode = decode_dead_lettered + subscription.decode_dead_lettered
        handler_close(handler)
        subscription.close()
        bus.flush(10)
        handler_shutdown(handler, stage.name)
    return runner.stats


def handler_wants(handler: Handler, kind: type) -> bool:
    """Whether ``handler`` has anything to do with events whose payload is a ``kind``: its
    optional ``wants(kind)`` answers (a stage that consumes a topic for some of its payloads, e.g.
    the execution worker's signals among the predictions); True without one. Asked once per
    payload class by the embedded dispatcher, which then does not hand it the others (a call per
    event and stage saved: dedupe, trace context, the handler's own type tests)."""
    wants = getattr(handler, "wants", None)
    return True if wants is None else bool(wants(kind))


class _EveryKey:
    """The keys of a payload class a handler declines altogether (``handler_wants`` said no)."""

    def __contains__(self, key: object) -> bool:
        return True

    def __repr__(self) -> str:
        return "EVERY_KEY"


EVERY_KEY = _EveryKey()


def handler_declines(handler: Handler, kind: type) -> Container[str] | None:
    """The event keys whose events of payload class ``kind`` ``handler`` has nothing to do with:
    ``EVERY_KEY`` when ``handler_wants`` says no; else what its optional ``declined_keys(kind)``
    returns, a collection the handler keeps up to date as it learns (the feature stage: the
    symbols whose ticks it ignores because they send bars), read by the dispatcher before each
    event of that class; None (nothing declined) without one. Asked once per payload class by
    the embedded dispatcher, which keeps the collection it got: the handler must change that
    object, never replace it, and keep in it only keys whose events it would ignore from then on.

    A key is an envelope's ``key`` (the symbol for market data, the account for trading
    events): a handler may only decline a key whose every event of ``kind`` it would ignore."""
    if not handler_wants(handler, kind):
        return EVERY_KEY
    declined_keys = getattr(handler, "declined_keys", None)
    return None if declined_keys is None else declined_keys(kind)


def handler_idle(handler: Handler) -> None:
    """Tell a handler its stage has nothing to do right now (``idle()``, when it has one: the
    execution worker writes the marks it still holds once they are due). Cheap when it has not."""
    idle = getattr(handler, "idle", None)
    if idle is not None:
        idle()


def handler_close(handler: Handler) -> None:
    """Tell a handler the stage is stopping (``close()``, when it has one: e.g. the execution
    worker writes the marks and risk snapshots it holds in memory). A failure is logged: the
    stage stops anyway, and what was not written is derived data a restart recomputes."""
    close = getattr(handler, "close", None)
    if close is None:
        return
    try:
        close()
    except Exception:
        logger.exception("stage handler %r failed to close", handler)


def handler_shutdown(handler: Handler, name: str) -> None:
    """Call the handler's optional ``shutdown()`` once the runner has stopped (after its last
    commit): a stateful stage saves what it holds. A failure there is logged, not raised."""
    shutdown = getattr(handler, "shutdown", None)
    if shutdown is None:
        return
    try:
        shutdown()
    except Exception:
        logger.exception("stage %s: shutdown failed", name)


# ---------------------------------------------------------------- the one-process pipeline


@dataclass
class PipelineResult:
    source_events: int = 0
    outbox_events: int = 0
    stages: dict[str, StageStats] = field(default_factory=dict)
    dead_letters: int = 0
    seconds: float = 0.0


def _chunks(events: Iterable[Envelope | None], size: int) -> Iterator[list[Envelope]]:
    """Chunks of up to ``size`` events; a ``None`` from the source (a live feed with nothing new,
    a heartbeat) ends the current chunk at once, so a slow feed is not held back by batching."""
    chunk: list[Envelope] = []
    for event in events:
        if event is None:
            if chunk:
                yield chunk
                chunk = []
            else:
                yield []
            continue
        chunk.append(event)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class EmbeddedDispatcher:
    """The embedded run's transport: every stage in this process, each event handed straight to
    the handlers of the stages that consume its topic, in event order.

    One FIFO of (topic, event): an event goes to its consumers in registry (pipeline) order
    through their ``StageRunner.handle_one`` (the same dedupe, dead-lettering, output ids and
    traceparents as on a bus), and its outputs join the end of the FIFO. So every event is seen
    by every consumer before anything it caused, and a signal is acted on before the quotes that
    follow it. What is not on a bus hop here: partitions, offsets, commits (nothing in one
    process needs them: a consumer offset in memory dies with the process just as the events
    do; what must survive is in the database, and the outbox relay's rows are marked sent only
    after the dispatcher took their events: with the sinks' next batch, ``_flush_sinks``, one
    UPDATE for every row relayed since the last; a crash before re-publishes them at the next
    start, and consumers dedupe by event id, as after a crash between publish and mark).

    A consumer whose handler says it has nothing to do with a payload class (``handler_wants``),
    or with that class's events of some keys (``handler_declines``; both asked once per class),
    is not handed those events; they still count as consumed.

    Sinks (handlers with ``handle_batch`` that return no events: the audit trail, live push)
    gather what they get during a pump and get it in one call when the FIFO runs dry, then the
    relay (when rows were committed since its last look, ``OutboxRelay.wanted``) and anyone else
    who published into ``bus`` have their turn: those events are decoded as a consumer of the
    bus would decode them and dispatched the same way. ``pump`` returns when nothing moved.

    ``sink_seconds`` (0: every pump) lets the sinks' batches span pumps: they get what gathered
    once that much wall-clock time passed since their last batch, once ``sink_max`` events wait,
    and always on ``pump(flush=True)`` (the end of a replay, a live feed with nothing new, idle).
    Nothing a stage decides depends on a sink (they produce no events), so only when the records
    are appended moves, not what: a lock-step replay (one source event per pump) appends the
    audit trail's decision inputs once per ``sink_seconds``, not once per source event."""

    # Dispatched events between two trims of the dedupe windows: a window then holds at most its
    # capacity (1,000,000 ids by default) plus the ids of this many events and of the pump that
    # reached it, instead of every window being measured after every pump (a lock-step replay
    # pumps once per source event).
    TRIM_EVERY = 1024

    def __init__(
        self,
        runners: Sequence[StageRunner],
        *,
        bus,
        relay=None,
        on_event=None,
        sink_seconds: float = 0.0,
        sink_max: int = 10_000,
    ) -> None:
        from tradeops.events import TOPICS_BY_TYPE

        self.sink_seconds = sink_seconds
        self.sink_max = sink_max
        self._sinks_flushed_at = time.monotonic()
        self._sinks_pending = 0
        self.runners = list(runners)
        # the runners' dedupe windows, each once (runners may share one): trimmed after the pump
        # that takes the count of events dispatched since the last trim to ``TRIM_EVERY``
        self._windows = list({id(r.dedupe): r.dedupe for r in self.runners}.values())
        self._trim_in = self.TRIM_EVERY
        self.bus = bus
        self.relay = relay
        self.on_event = on_event
        self.topic_of = TOPICS_BY_TYPE
        self.queue: deque[tuple[str, Envelope]] = deque()
        self.sinks = [r for r in self.runners if getattr(r.handler, "handle_batch", None) is not None]
        self.pending: dict[int, list[Record]] = {id(r): [] for r in self.sinks}
        # per topic: (runners handed events one at a time, sinks' pending lists), in registry order
        self.consumers: dict[str, tuple[list[StageRunner], list[list[Record]]]] = {}
        for topic in {t for r in self.runners for t in r.stage.consumes}:
            direct = [r for r in self.runners if topic in r.stage.consumes and id(r) not in self.pending]
            gathered = [self.pending[id(r)] for r in self.sinks if topic in r.stage.consumes]
            self.consumers[topic] = (direct, gathered)
        self.ingress = bus.subscribe(ALL_TOPICS, "pipeline-ingress")
        # Events dispatched per topic (plain integers; a multi-topic stage's events in, read when
        # scraped). With metrics on, one pump in TIME_EVERY_PUMP goes through timed runners.
        self.topic_counts: defaultdict[str, int] = defaultdict(int)
        self.timed_consumers, self._time_pump = embedded_metering(self.consumers, self.topic_counts)
        self._published = getattr(bus, "published", None)
        self._ingress_seen = -1
        self._kinds: set[type] = set()  # payload classes the runners were asked about (``StageRunner.learn``)
        self.dispatched = 0
        self.outbox_events = 0

    def publish(self, events: Iterable[Envelope]) -> None:
        """Queue events (the source's) for the next ``pump``."""
        topic_of = self.topic_of
        self.queue.extend((topic_of[e.type], e) for e in events)

    def pump(self, *, flush: bool = False) -> int:
        """Dispatch until nothing is left to do; returns the events dispatched. The sinks get
        their batches when due (``sink_seconds``) or, with ``flush``, whatever is waiting."""
        queue, consumers, topic_of, on_event = self.queue, self.consumers, self.topic_of, self.on_event
        if self._time_pump():  # metrics on, one pump in TIME_EVERY_PUMP: its events timed per stage
            consumers = self.timed_consumers
        counts = self.topic_counts
        empty: tuple = ((), ())
        kinds = self._kinds
        dispatched = 0
        while True:
            while queue:
                topic, event = queue.popleft()
                dispatched += 1
                if on_event is not None:
                    on_event(event)
                direct, gathered = consumers.get(topic, empty)
                counts[topic] += 1
                kind = type(event.payload)
                if kind not in kinds:
                    self._learn(kind)
                if gathered:
                    record = Record(topic, 0, self.dispatched + dispatched, event.key, event)
                    for pending in gathered:
                        pending.append(record)
                    self._sinks_pending += 1
                key = event.key
                for runner in direct:
                    runner.stats.consumed += 1
                    declined = runner.declined.get(kind)
                    if declined is not None and (declined is EVERY_KEY or key in declined):
                        continue  # nothing to do with it (``handler_declines``): counted, not handed
                    outputs = runner.handle_one(event, topic, 0, self.dispatched + dispatched)
                    if outputs:
                        runner.stats.produced += len(outputs)
                        queue.extend((topic_of[out.type], out) for out in outputs)
            if self._sinks_pending and (
                flush
                or not self.sink_seconds
                or self._sinks_pending >= self.sink_max
                or time.monotonic() - self._sinks_flushed_at >= self.sink_seconds
            ):
                self._flush_sinks()
            if not self._take_ingress():
                break
        if flush and self.relay is not None:
            self.relay.mark_sent()  # nothing gathered for the sinks: the relayed rows' marks still wait
        self._trim_in -= dispatched
        if self._trim_in <= 0:
            self._trim_in = self.TRIM_EVERY
            for dedupe in self._windows:
                if len(dedupe._ids) > dedupe.capacity:
                    dedupe.trim()
        self.dispatched += dispatched
        return dispatched

    def _learn(self, kind: type) -> None:
        """A payload class met for the first time: every runner handed events one at a time asks
        its handler about it (``StageRunner.learn``); a sink gets everything on its topics."""
        self._kinds.add(kind)
        for runner in self.runners:
            if id(runner) not in self.pending:
                runner.learn(kind)

    def flush_sinks(self) -> None:
        """Hand the sinks what they gathered, now (without dispatching anything else), and mark
        the outbox rows relayed so far."""
        if self._sinks_pending:
            self._flush_sinks()
        if self.relay is not None:
            self.relay.mark_sent()

    def _flush_sinks(self) -> None:
        self._sinks_pending = 0
        self._sinks_flushed_at = time.monotonic()
        for runner in self.sinks:
            records = self.pending[id(runner)]
            if not records:
                continue
            batch = records[:]
            records.clear()
            runner.stats.consumed += len(batch)
            runner.stats.batches += 1
            meter = runner.meter
            started = meter.timer() if meter is not None else 0.0
            if not runner.handle_sink_batch(batch):
                for record in batch:
                    runner.handle_one(record.event, record.topic, record.partition, record.offset)
            if meter is not None:
                runner._metered(meter, batch, started)
        if self.relay is not None:
            # The rows relayed since the last batch are marked sent once their events were
            # dispatched and the sinks had them: one UPDATE per batch instead of one per step.
            self.relay.mark_sent()

    def _take_ingress(self) -> bool:
        """The relay's turn, then events published into the bus (by the relay or anyone else):
        queued for dispatch. Returns whether anything was queued or relayed."""
        moved = 0
        relay = self.relay
        if relay is not None and relay.wanted():  # only when something committed since (no polling)
            moved = relay.step(flush_timeout=0, mark=False)  # marked with the sinks' batch (_flush_sinks)
            self.outbox_events += moved
        if self._published is not None:
            published = self.bus.published
            if published == self._ingress_seen:
                return bool(moved)
            self._ingress_seen = published
        records = self.ingress.poll(max_records=100_000, timeout=0)
        if records:
            self.queue.extend((r.topic, r.event) for r in records)
            self.ingress.commit()
        return bool(moved or records)

    def close(self) -> None:
        self.ingress.close()


def pipeline_run(
    source: Iterable[Envelope | None] = (),
    *,
    stages: Sequence[Stage] | None = None,
    handlers: dict[str, Handler] | None = None,
    bus=None,
    batch_size: int = 1000,
    relay=None,
    on_event: Callable[[Envelope], None] | None = None,
    follow: bool = False,
    should_stop: Callable[[], bool] = lambda: False,
    idle_sleep: float = 0.05,
    settle: bool = False,
    sink_seconds: float = 0.0,
) -> PipelineResult:
    """Run every stage in one process, fed by ``source``, through the ``EmbeddedDispatcher``.
    ``stages``: by default the registry's stages that are switched on (``stages_wired``).

    Each chunk of ``batch_size`` source events is queued, then dispatched until nothing is left,
    so each event's consequences settle before the next chunk (``batch_size=1`` gives strict
    lock-step replay). A live source yields ``None`` when it has nothing new: the events so far
    are dispatched at once (and the outbox relay gets a turn) instead of waiting for a full chunk.

    ``bus`` (a memory bus; the process-wide one by default) is where the ``relay`` (an
    ``OutboxRelay`` on the same bus) publishes the events born of DB writes by a stage (orders,
    fills), where anyone else in the process may publish, and where dead letters go; the stages'
    own hops do not go through it. The relay is stepped when the dispatcher runs dry and it has
    something to relay (``OutboxRelay.wanted``: rows committed since its last read). ``handlers``
    overrides factories by stage name (tests, pre-built models). ``on_event`` sees every event
    dispatched, on any topic (dashboards, sinks, tests). With ``follow`` the loop keeps
    dispatching after the source ends until ``should_stop()``; otherwise it returns once idle.
    ``settle`` freezes the startup heap out of garbage collection once the stages are built
    (``settle_heap``: the embedded run's commands ask for it). ``sink_seconds``: how long the
    sinks' (audit trail, live push) batches may gather across chunks (``EmbeddedDispatcher``);
    they are flushed whenever the source has nothing new, when it ends, and on the way out.
    """
    from tradeops.bus import memory_bus

    bus = bus if bus is not None else memory_bus()
    stages = stages_wired() if stages is None else list(stages)
    handlers = handlers or {}
    runners = [
        StageRunner(stage=s, handler=handlers.get(s.name) or handler_load(s), bus=bus, subscription=None)
        for s in stages
    ]
    if settle:  # a long run (the embedded one): the startup heap out of the collector's way
        settle_heap()
    dispatcher = EmbeddedDispatcher(runners, bus=bus, relay=relay, on_event=on_event, sink_seconds=sink_seconds)
    result = PipelineResult(stages={r.stage.name: r.stats for r in runners})
    started = time.monotonic()
    dead_before = len(bus.dead_letters()) if hasattr(bus, "dead_letters") else 0
    try:
        for chunk in _chunks(source, batch_size):
            if should_stop():
                break
            if chunk:
                dispatcher.publish(chunk)
                result.source_events += len(chunk)
            dispatcher.pump(flush=not chunk)  # nothing new from a live feed: the sinks catch up
        dispatcher.pump(flush=True)
        while follow and not should_stop():
            dispatcher.pump(flush=True)
            for runner in runners:  # a live feed paused, or the replay ended: pending writes catch up
                handler_idle(runner.handler)
            time.sleep(idle_sleep)
    finally:
        try:
            dispatcher.flush_sinks()  # what the sinks gathered before a failure
        except Exception:
            logger.exception("pipeline: the sinks' last batch failed on the way out")
        for runner in runners:
            handler_close(runner.handler)
            handler_shutdown(runner.handler, runner.stage.name)
        dispatcher.close()
        result.outbox_events = dispatcher.outbox_events
        result.seconds = time.monotonic() - started
        if hasattr(bus, "dead_letters"):
            result.dead_letters = len(bus.dead_letters()) - dead_before
    return result
