"""A stage runner's metrics: events in and out per stage and topic, duplicates, batch time, consumer
lag per topic and group, and the heartbeat.

In the embedded run's lock-step a batch is one event, so whatever a batch costs, an event costs.
So the hot loop pays almost nothing:

- events in, duplicates and batches are the runner's own ``StageStats`` counters (kept anyway),
  read when Prometheus scrapes (``StageCollector``); a stage that consumes several topics counts
  its records per topic in a plain dict, one that consumes one topic does not look at them;
- events out are counted per topic in a plain dict as they are published; the events a handler
  writes to the transactional outbox instead of returning them (the surveillance stage when it
  records) are its own count per topic (``StageStats.outboxed``), exported apart as
  ``tradeops_events_outboxed_total``: the relay publishes them (``tradeops_outbox_published_total``),
  and they are not the stage's events out;
- one batch in ``TIME_EVERY`` is timed for ``tradeops_stage_batch_seconds`` (a sample of the
  batches, not all: its quantiles estimate all batches', its ``_count`` is the sample's, so count
  batches with ``rate(tradeops_events_in_total)`` instead), and once that batch is committed the
  consumer lag is refreshed (at most every ``METRICS_LAG_SECONDS``), as it is on an empty poll;
- in the embedded dispatcher's loop (``embedded_metering``) an event costs the meters nothing
  but the integers the dispatcher keeps anyway: each runner's ``StageStats`` and one count per
  topic (read when scraped for a stage that consumes several topics); whether to time is asked
  once per pump, not per event: one pump in ``TIME_EVERY_PUMP`` goes through runners wrapped to
  time each event they handle (``TimedRunner``), the others through the runners themselves;
- the heartbeat (``process="stage-<name>"``, whichever process runs the stage: ``run_stage``,
  the execution worker, the one-process pipeline) is a function gauge: when scraped it is the
  time the runner was last seen to have moved (a batch or an empty poll since the previous scrape).

With ``METRICS_ENABLED`` off the runner has no meter and does none of this. Totals are per stage
name and live as long as the process (a runner that is rebuilt keeps adding to the same counters).
"""

from __future__ import annotations

import itertools
import threading
import time
from bisect import bisect_left
from collections.abc import Iterator

from tradeops.observability import metrics

BATCH_BUCKETS = metrics.LATENCY_BUCKETS
TIME_EVERY = 16  # polled batches per timed batch (a runner on a bus)
# Pumps per timed pump in the embedded dispatcher (lock-step: a pump is one source event and what
# it caused, thousands a second): every event of a timed pump pays two clock reads and a bucket
# update, the others nothing, so few are timed.
TIME_EVERY_PUMP = 64


def _ticks(every: int):
    """A C-level callable that answers True once in ``every`` calls (the first call included),
    False otherwise: the per-event "is this one timed?" costs no Python frame."""
    return itertools.cycle((True,) + (False,) * (every - 1)).__next__


class StageTotals:
    """Everything the runners of one stage have counted in this process."""

    def __init__(self, stage: str, *, single_topic: str | None) -> None:
        self.stage = stage
        self.single_topic = single_topic
        self.runs: list = []  # every runner's StageStats (consumed, duplicates, batches)
        self.events_in: dict[str, int] = {}  # per topic, for a stage that consumes several
        # An embedded dispatcher's runners of such a stage: (topics, the dispatcher's count per
        # topic): every event it dispatches on a topic goes to each of the topic's consumers.
        self.embedded: list[tuple[tuple[str, ...], dict[str, int]]] = []
        self.events_out: dict[str, int] = {}  # per topic
        self.buckets = [0] * (len(BATCH_BUCKETS) + 1)  # the last one is +Inf
        self.seconds = 0.0
        self.idle_polls = 0
        self._seen_activity = -1
        self._active_at = time.time()

    def consumed(self) -> dict[str, int]:
        if self.single_topic is not None:
            return {self.single_topic: sum(s.consumed for s in self.runs)}
        consumed = dict(self.events_in)
        for topics, counts in list(self.embedded):
            for topic in topics:
                consumed[topic] = consumed.get(topic, 0) + counts.get(topic, 0)
        return consumed

    def outboxed(self) -> dict[str, int]:
        """Per topic, the events the stage's handlers wrote to the outbox (``StageStats.outboxed``)."""
        out: dict[str, int] = {}
        for stats in list(self.runs):
            for topic, n in list(stats.outboxed.items()):
                out[topic] = out.get(topic, 0) + n
        return out

    def heartbeat(self) -> float:
        """Unix time the stage was last seen to move (read when scraped)."""
        activity = sum(s.batches for s in self.runs) + self.idle_polls
        if activity != self._seen_activity:
            self._seen_activity = activity
            self._active_at = time.time()
        return self._active_at


_totals: dict[str, StageTotals] = {}
_totals_lock = threading.Lock()


def stage_totals(stage) -> StageTotals:
    """The totals of ``stage`` (a ``tradeops.stages.Stage``), created on first use."""
    totals = _totals.get(stage.name)
    if totals is None:
        with _totals_lock:
            totals = _totals.get(stage.name)
            if totals is None:
                single = stage.consumes[0] if len(stage.consumes) == 1 else None
                totals = _totals[stage.name] = StageTotals(stage.name, single_topic=single)
                metrics.heartbeat.labels(f"stage-{stage.name}").set_function(totals.heartbeat)
    return totals


class StageMeter:
    """What one runner adds to its stage's totals. The runner counts into ``topics_in`` (None for
    a stage that consumes one topic) and ``topics_out`` itself, asks ``timer()`` at the start of
    a batch, hands a non-zero start back to ``timed`` and calls ``committed`` once the batch is
    committed (the lag is measured then, after a timed batch, so it does not count the batch in
    hand)."""

    __slots__ = (
        "stage",
        "subscription",
        "group",
        "totals",
        "topics_in",
        "topics_out",
        "_tick",
        "_lag_due",
        "_lag",
        "lag_every",
        "_lag_at",
    )

    def __init__(self, stage, subscription, stats, *, lag_every: float | None = None) -> None:
        self.stage = stage.name
        self.subscription = subscription
        self.group = getattr(subscription, "group", stage.name)
        self.totals = totals = stage_totals(stage)
        totals.runs.append(stats)
        self.topics_in: dict[str, int] | None = None if totals.single_topic is not None else totals.events_in
        self.topics_out: dict[str, int] = totals.events_out
        self._tick = _ticks(TIME_EVERY)  # the first batch is timed
        self._lag_due = False
        self._lag: dict[str, object] = {}
        if lag_every is None:
            try:
                from django.conf import settings

                lag_every = settings.METRICS_LAG_SECONDS
            except Exception:
                lag_every = 5.0
        self.lag_every = lag_every
        self._lag_at = float("-inf")

    def timer(self) -> float:
        """perf_counter() for the batch to time (one in ``TIME_EVERY``), else 0.0."""
        return time.perf_counter() if self._tick() else 0.0

    def timed(self, started: float) -> None:
        """The timed batch ended: its duration; the lag is looked at once it is committed."""
        seconds = time.perf_counter() - started
        totals = self.totals
        totals.buckets[bisect_left(BATCH_BUCKETS, seconds)] += 1
        totals.seconds += seconds
        self._lag_due = True

    def committed(self) -> None:
        """The batch is committed: after a timed batch, the lag when due."""
        if self._lag_due:
            self._lag_due = False
            self._lag_maybe()

    def idle(self) -> None:
        """An empty poll: the loop is alive; the lag when due."""
        self.totals.idle_polls += 1
        self._lag_maybe()

    def _lag_maybe(self) -> None:
        now = time.monotonic()
        if now - self._lag_at < self.lag_every:
            return
        self._lag_at = now
        lag = getattr(self.subscription, "lag", None)
        if lag is None:
            return
        try:
            by_topic = lag()
        except Exception:  # a broker that cannot answer now: the gauge keeps its last value
            return
        for topic, value in by_topic.items():
            child = self._lag.get(topic)
            if child is None:
                child = self._lag[topic] = metrics.consumer_lag.labels(topic, self.group)
            child.set(value)


class TimedRunner:
    """A metered ``StageRunner`` as a timed pump of the embedded dispatcher sees it: the same
    stats, and ``handle_one`` timed into the stage's ``tradeops_stage_batch_seconds`` (in the
    dispatcher an event is a batch)."""

    __slots__ = ("stats", "declined", "_handle_one", "_timed")

    def __init__(self, runner) -> None:
        self.stats = runner.stats
        self.declined = runner.declined  # the same map: what the runner learns, the wrapper declines
        self._handle_one = runner.handle_one
        self._timed = runner.meter.timed

    def handle_one(self, event, topic: str, partition: int = 0, offset: int = -1) -> list:
        started = time.perf_counter()
        outputs = self._handle_one(event, topic, partition, offset)
        self._timed(started)
        return outputs


def _never() -> bool:
    return False


def embedded_metering(consumers: dict, topic_counts: dict[str, int]):
    """The embedded dispatcher's metering, set up once: ``consumers`` is its topic -> (runners
    handed events one at a time, sinks' lists), ``topic_counts`` the count per topic it keeps.

    Returns ``(timed_consumers, time_pump)``: the same map with each metered runner wrapped in a
    ``TimedRunner``, and a C-level callable that answers, once per pump, whether this pump goes
    through them (one in ``TIME_EVERY_PUMP``). With no metered runner (``METRICS_ENABLED`` off):
    ``(consumers, a callable that answers False)``. A metered runner of a stage that consumes
    several topics has its events in per topic read from ``topic_counts`` when scraped."""
    metered: dict[int, object] = {}
    for direct, _ in consumers.values():
        for runner in direct:
            if runner.meter is not None and id(runner) not in metered:
                metered[id(runner)] = runner
    if not metered:
        return consumers, _never
    wrapped = {}
    for key, runner in metered.items():
        wrapped[key] = TimedRunner(runner)
        if runner.meter.topics_in is not None:
            runner.meter.totals.embedded.append((tuple(runner.stage.consumes), topic_counts))
    timed = {
        topic: ([wrapped.get(id(r), r) for r in direct], gathered) for topic, (direct, gathered) in consumers.items()
    }
    return timed, _ticks(TIME_EVERY_PUMP)


def stage_meter(stage, subscription, stats) -> StageMeter | None:
    """The runner's meter for ``stage`` (a ``tradeops.stages.Stage``); None when
    ``METRICS_ENABLED`` is off."""
    try:
        from django.conf import settings

        enabled = settings.METRICS_ENABLED
    except Exception:  # outside Django: on
        enabled = True
    return StageMeter(stage, subscription, stats) if enabled else None


class StageCollector:
    """The stage totals as Prometheus metrics, read when scraped."""

    def collect(self) -> Iterator:
        from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

        names = metrics.COLLECTED
        events_in = CounterMetricFamily(
            "tradeops_events_in", names["tradeops_events_in_total"], labels=["stage", "topic"]
        )
        events_out = CounterMetricFamily(
            "tradeops_events_out", names["tradeops_events_out_total"], labels=["stage", "topic"]
        )
        outboxed = CounterMetricFamily(
            "tradeops_events_outboxed", names["tradeops_events_outboxed_total"], labels=["stage", "topic"]
        )
        duplicates = CounterMetricFamily(
            "tradeops_event_duplicates", names["tradeops_event_duplicates_total"], labels=["stage"]
        )
        batch = HistogramMetricFamily(
            "tradeops_stage_batch_seconds", names["tradeops_stage_batch_seconds"], labels=["stage"]
        )
        for totals in list(_totals.values()):
            stage = totals.stage
            for topic, n in totals.consumed().items():
                events_in.add_metric([stage, topic], n)
            for topic, n in list(totals.events_out.items()):
                events_out.add_metric([stage, topic], n)
            for topic, n in totals.outboxed().items():
                outboxed.add_metric([stage, topic], n)
            duplicates.add_metric([stage], sum(s.duplicates for s in totals.runs))
            cumulative, buckets = 0, []
            for bound, n in zip((*BATCH_BUCKETS, float("inf")), list(totals.buckets), strict=True):
                cumulative += n
                buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
            batch.add_metric([stage], buckets, totals.seconds)
        yield from (events_in, events_out, outboxed, duplicates, batch)

    def describe(self) -> Iterator:
        return iter(())


def stage_collector_register(registry=None) -> None:
    """Register the collector once per registry (the default one unless given)."""
    from prometheus_client import REGISTRY

    registry = registry or REGISTRY
    if getattr(registry, "_tradeops_stage_collector", False):
        return
    registry.register(StageCollector())
    registry._tradeops_stage_collector = True
