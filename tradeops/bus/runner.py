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
  in one process on the memory bus, fed by any iterable of envelopes (replay file, synthetic
  source, MT5 collector), optionally relaying the outbox into the same bus.
"""

from __future__ import annotations

import gc
import logging
import signal
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypeVar

import msgspec

from tradeops.bus.base import Bus, Record, Subscription, dead_letter_headers
from tradeops.bus.tracing import traceparent_child
from tradeops.events import Envelope, Topic, encode
from tradeops.stages import STAGES, Handler, Stage
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
        except Exception:  # broken already: closing it is all we wanted
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
    produced: int = 0
    duplicates: int = 0
    dead_lettered: int = 0  # by the handler (it raised); plus those that did not decode:
    dead_lettered_on_decode: int = 0
    batches: int = 0
    outages: int = 0  # infrastructure outages ridden out (stage_run)


def output_event_id(*, stage: str, input_id: uuid.UUID, index: int) -> uuid.UUID:
    return uuid.uuid5(OUTPUT_ID_NAMESPACE, f"{stage}:{input_id}:{index}")


class StageRunner:
    def __init__(
        self,
        *,
        stage: Stage,
        handler: Handler,
        bus: Bus,
        subscription: Subscription,
        dedupe: RecentIds | None = None,
        deterministic_ids: bool = True,
    ) -> None:
        self.stage = stage
        self.handler = handler
        self.bus = bus
        self.subscription = subscription
        self.dedupe = dedupe if dedupe is not None else RecentIds()
        self.deterministic_ids = deterministic_ids
        self.stats = StageStats()

    def process(self, records: Sequence[Record]) -> int:
        """Handle a batch and publish the outputs (not flushed, not committed). Returns outputs.

        A sink handler with ``handle_batch(events) -> []`` (the audit trail: one transaction for
        the batch) gets the batch's new events at once; if it raises (not an infrastructure
        failure) the batch is handled again event by event, so only the poison event is
        dead-lettered."""
        batch = getattr(self.handler, "handle_batch", None)
        if batch is not None and len(records) > 1:
            seen = self.dedupe._ids
            fresh = [r for r in records if r.event.event_id.int not in seen]
            self.stats.duplicates += len(records) - len(fresh)
            try:
                outputs = batch([r.event for r in fresh]) if fresh else []
            except INFRASTRUCTURE_ERRORS + STOP_ERRORS:
                raise
            except Exception:
                logger.exception("stage %s: batch failed; handling its events one by one", self.stage.name)
            else:
                if outputs:
                    raise TypeError(f"stage {self.stage.name}: handle_batch is for sinks; it returned events")
                for r in fresh:
                    seen[r.event.event_id.int] = None
                self.dedupe.trim()
                self.stats.consumed += len(records)
                self.stats.batches += 1
                return 0
            records = fresh
        handle = self.handler.handle
        publish = self.bus.publish
        seen = self.dedupe._ids  # an OrderedDict of event_id.int used as a set: C-level lookups in the hot loop
        name = self.stage.name
        produced = 0
        for record in records:
            event = record.event
            event_id = event.event_id
            key = event_id.int
            if key in seen:
                self.stats.duplicates += 1
                continue
            try:
                outputs = handle(event)
            except INFRASTRUCTURE_ERRORS + STOP_ERRORS:
                raise
            except Exception as exc:  # a handler bug or a poison event must not stop the stage
                logger.exception("stage %s: handler failed on %s %s", name, event.type, event_id)
                self._dead_letter(record, exc)
                seen[key] = None
                continue
            if outputs:
                for index, out in enumerate(outputs):
                    changes = {}
                    span_id = None
                    if self.deterministic_ids:
                        changes["event_id"] = output_id = output_event_id(stage=name, input_id=event_id, index=index)
                        span_id = output_id.hex[:16]
                    if not out.traceparent:
                        changes["traceparent"] = traceparent_child(event.traceparent, span_id=span_id)
                    publish(msgspec.structs.replace(out, **changes) if changes else out)
                    produced += 1
            seen[key] = None
        self.dedupe.trim()
        self.stats.consumed += len(records)
        self.stats.produced += produced
        self.stats.batches += 1
        return produced

    def _dead_letter(self, record: Record, exc: Exception) -> None:
        self.stats.dead_lettered += 1
        value = encode(record.event)
        headers = dead_letter_headers(
            reason="handler_error",
            detail=f"{type(exc).__name__}: {exc}",
            source_topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            group=self.subscription.group,
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
    return runner.stats


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
) -> PipelineResult:
    """Run every stage in one process on a memory bus, fed by ``source``.

    Each chunk of ``batch_size`` source events is published, then the stages are pumped in
    waves (every stage polls what waits for it, then each handles its batch, in registry order)
    until no stage has anything left, so each event's consequences settle before the next chunk
    (``batch_size=1`` gives strict lock-step replay) and an event reaches every consumer before
    the events made from it do. A live source
    yields ``None`` when it has nothing new: the events so far are pumped at once (and the
    outbox relay gets a turn) instead of waiting for a full chunk.

    ``handlers`` overrides factories by stage name (tests, pre-built models). ``relay`` (an
    ``OutboxRelay`` on the same bus) is stepped in a pump when it has something to relay
    (``OutboxRelay.wanted``: rows committed since its last read), so events born of DB writes by
    a stage (orders, fills) reach the stages that consume trading-events. ``on_event`` sees every
    event published on any topic (dashboards, sinks, tests). With ``follow`` the loop keeps
    pumping after the source ends until ``should_stop()``; otherwise it returns once idle.
    ``settle`` freezes the startup heap out of garbage collection once the stages are built
    (``settle_heap``: the embedded run's commands ask for it).
    """
    from tradeops.bus import memory_bus

    bus = bus if bus is not None else memory_bus()
    stages = list(STAGES if stages is None else stages)
    handlers = handlers or {}
    runners = [
        StageRunner(
            stage=s,
            handler=handlers.get(s.name) or handler_load(s),
            bus=bus,
            subscription=bus.subscribe(s.consumes, s.group),
        )
        for s in stages
    ]
    if settle:  # a long run (the embedded one): the startup heap out of the collector's way
        settle_heap()
    tap = bus.subscribe(ALL_TOPICS, "pipeline-tap") if on_event is not None else None
    result = PipelineResult(stages={r.stage.name: r.stats for r in runners})
    started = time.monotonic()
    dead_before = len(bus.dead_letters()) if hasattr(bus, "dead_letters") else 0
    # The source is chunked by ``batch_size`` (lock-step at 1); a stage takes whatever is waiting
    # for it. A stage is polled only when its topics got records since its last poll (the memory
    # bus counts them), not once per stage per pump.
    poll_size = max(batch_size, 1000)
    counter = getattr(bus, "published_counter", None)
    published = {id(r): counter(r.stage.consumes) for r in runners} if counter is not None else None
    seen: dict[int, int | None] = {}

    def pump() -> None:
        # In waves: every stage polls what is waiting for it, then each handles its batch, so an
        # event reaches all its consumers before anything made from it does (the execution worker
        # takes a bar before the signal the models make from that bar), as on Kafka, where the
        # bar is consumed long before the signal exists: the embedded run and the distributed
        # run (``manage.py replay --settle``) see the same order (issue 19, item 5).
        while True:
            moved = 0
            if relay is not None and relay.wanted():  # only when something committed since (no polling)
                n = relay.step(flush_timeout=0)
                result.outbox_events += n
                moved += n
            wave = []
            for runner in runners:
                if published is not None:
                    count = published[id(runner)]()
                    if seen.get(id(runner)) == count:
                        continue
                records = runner.subscription.poll(max_records=poll_size, timeout=0)
                n = len(records)
                if published is not None:
                    seen[id(runner)] = count if n < poll_size else None  # a full batch: more may wait
                if records:
                    wave.append((runner, records))
            for runner, records in wave:
                moved += runner.handle_polled(records)
            if tap is not None:
                for record in tap.poll(max_records=100_000, timeout=0):
                    on_event(record.event)
                tap.commit()
            if not moved:
                return

    try:
        for chunk in _chunks(source, batch_size):
            if should_stop():
                break
            if chunk:
                if hasattr(bus, "publish_many"):
                    bus.publish_many(chunk)
                else:
                    for event in chunk:
                        bus.publish(event)
                result.source_events += len(chunk)
            pump()
        pump()
        while follow and not should_stop():
            pump()
            for runner in runners:  # a live feed paused, or the replay ended: pending writes catch up
                handler_idle(runner.handler)
            time.sleep(idle_sleep)
    finally:
        for runner in runners:
            handler_close(runner.handler)
            runner.subscription.close()
        if tap is not None:
            tap.close()
        result.seconds = time.monotonic() - started
        if hasattr(bus, "dead_letters"):
            result.dead_letters = len(bus.dead_letters()) - dead_before
    return result
