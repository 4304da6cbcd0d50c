"""A stage runner's metrics: events in and out per topic, duplicates, batch time, consumer lag per
topic and group, and the heartbeat. One ``StageMeter`` per runner; the runner reports once per
batch (not per event), so metrics cost the hot loop a dict count per event and nothing more."""

from __future__ import annotations

import time

from tradeops.observability import metrics


class StageMeter:
    def __init__(self, stage: str, subscription, *, lag_every: float | None = None) -> None:
        self.stage = stage
        self.subscription = subscription
        self.group = getattr(subscription, "group", stage)
        self._in: dict[str, object] = {}
        self._out: dict[str, object] = {}
        self._duplicates = metrics.event_duplicates.labels(stage)
        self._batch_seconds = metrics.stage_batch_seconds.labels(stage)
        self._heartbeat = metrics.heartbeat.labels(stage)
        self._lag: dict[str, object] = {}
        if lag_every is None:
            try:
                from django.conf import settings

                lag_every = settings.METRICS_LAG_SECONDS
            except Exception:
                lag_every = 5.0
        self.lag_every = lag_every
        self._lag_at = float("-inf")
        self._heartbeat.set(time.time())

    def batch(self, topics_in: dict[str, int], topics_out: dict[str, int], duplicates: int, seconds: float) -> None:
        for topic, n in topics_in.items():
            child = self._in.get(topic)
            if child is None:
                child = self._in[topic] = metrics.events_in.labels(self.stage, topic)
            child.inc(n)
        for topic, n in topics_out.items():
            child = self._out.get(topic)
            if child is None:
                child = self._out[topic] = metrics.events_out.labels(self.stage, topic)
            child.inc(n)
        if duplicates:
            self._duplicates.inc(duplicates)
        self._batch_seconds.observe(seconds)

    def idle(self) -> None:
        self._heartbeat.set(time.time())
        self._measure_lag()

    def committed(self) -> None:
        self._heartbeat.set(time.time())
        self._measure_lag()

    def _measure_lag(self) -> None:
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
