"""A stage runner's metrics: events in and out per stage and topic, duplicates, batch time, consumer
lag per topic and group, and the heartbeat.

The hot loop pays for them once per batch, in plain integers: ``StageMeter.batch`` adds to the
stage's ``StageTotals`` (no lock, no label lookup, no allocation), and the totals become
``tradeops_events_in_total``, ``tradeops_events_out_total``, ``tradeops_event_duplicates_total``
and ``tradeops_stage_batch_seconds`` only when Prometheus scrapes (``StageCollector``). In the
embedded run's lock-step a batch is one event, so what a batch costs is what an event costs.
The heartbeat and the lag are refreshed at most once a second. With ``METRICS_ENABLED`` off the
runner has no meter and does none of this.

Totals are per stage name and live as long as the process (a runner that is rebuilt keeps adding
to the same counters). One runner thread owns a stage; two runners of the same stage in two
threads could lose an increment to a race, never corrupt a value.
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from collections.abc import Iterator, Sequence

from tradeops.observability import metrics

BATCH_BUCKETS = metrics.LATENCY_BUCKETS


class StageTotals:
    __slots__ = ("stage", "events_in", "events_out", "duplicates", "buckets", "seconds", "batches")

    def __init__(self, stage: str) -> None:
        self.stage = stage
        self.events_in: dict[str, int] = {}
        self.events_out: dict[str, int] = {}
        self.duplicates = 0
        self.buckets = [0] * (len(BATCH_BUCKETS) + 1)  # the last one is +Inf
        self.seconds = 0.0
        self.batches = 0


_totals: dict[str, StageTotals] = {}
_totals_lock = threading.Lock()


def stage_totals(stage: str) -> StageTotals:
    totals = _totals.get(stage)
    if totals is None:
        with _totals_lock:
            totals = _totals.setdefault(stage, StageTotals(stage))
    return totals


class StageMeter:
    def __init__(
        self, stage: str, subscription, *, consumes: Sequence[str] = (), lag_every: float | None = None
    ) -> None:
        self.stage = stage
        self.subscription = subscription
        self.group = getattr(subscription, "group", stage)
        self.totals = stage_totals(stage)
        # One topic consumed: a batch's count is its length, no look at each record.
        self._only_topic = consumes[0] if len(consumes) == 1 else None
        if self._only_topic is not None:
            self.totals.events_in.setdefault(self._only_topic, 0)
        self._heartbeat = metrics.heartbeat.labels(stage)
        self._lag: dict[str, object] = {}
        if lag_every is None:
            try:
                from django.conf import settings

                lag_every = settings.METRICS_LAG_SECONDS
            except Exception:
                lag_every = 5.0
        self.lag_every = lag_every
        self._beat_at = 0.0
        self._lag_at = float("-inf")
        self.beat()

    def batch(self, records: Sequence, topics_out: dict[str, int], duplicates: int, seconds: float) -> None:
        """One handled batch: its records (by topic), outputs by event type, duplicates skipped
        and the seconds it took."""
        totals = self.totals
        counts = totals.events_in
        only = self._only_topic
        if only is not None:
            counts[only] += len(records)
        else:
            for record in records:
                topic = record.topic
                counts[topic] = counts.get(topic, 0) + 1
        if topics_out:
            out = totals.events_out
            for topic, n in topics_out.items():
                out[topic] = out.get(topic, 0) + n
        if duplicates:
            totals.duplicates += duplicates
        totals.buckets[bisect_left(BATCH_BUCKETS, seconds)] += 1
        totals.seconds += seconds
        totals.batches += 1

    def beat(self) -> None:
        """The loop went round (a commit, an idle poll): heartbeat and lag, at most once a second."""
        now = time.time()
        if now - self._beat_at < 1.0 and now - self._lag_at < self.lag_every:
            return
        self._beat_at = now
        self._heartbeat.set(now)
        if now - self._lag_at >= self.lag_every:
            self._lag_at = now
            self._measure_lag()

    idle = beat
    committed = beat

    def _measure_lag(self) -> None:
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


def stage_meter(stage, subscription) -> StageMeter | None:
    """The runner's meter for ``stage`` (a ``tradeops.stages.Stage``); None when
    ``METRICS_ENABLED`` is off."""
    try:
        from django.conf import settings

        enabled = settings.METRICS_ENABLED
    except Exception:  # outside Django: on
        enabled = True
    if not enabled:
        return None
    return StageMeter(stage.name, subscription, consumes=stage.consumes)


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
        duplicates = CounterMetricFamily(
            "tradeops_event_duplicates", names["tradeops_event_duplicates_total"], labels=["stage"]
        )
        batch = HistogramMetricFamily(
            "tradeops_stage_batch_seconds", names["tradeops_stage_batch_seconds"], labels=["stage"]
        )
        for totals in list(_totals.values()):
            stage = totals.stage
            for topic, n in list(totals.events_in.items()):
                events_in.add_metric([stage, topic], n)
            for topic, n in list(totals.events_out.items()):
                events_out.add_metric([stage, topic], n)
            duplicates.add_metric([stage], totals.duplicates)
            cumulative, buckets = 0, []
            for bound, n in zip((*BATCH_BUCKETS, float("inf")), list(totals.buckets), strict=True):
                cumulative += n
                buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
            batch.add_metric([stage], buckets, totals.seconds)
        yield from (events_in, events_out, duplicates, batch)

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
