"""Anomaly detector over the key series, raising operator alerts through the alert path.

- ``RobustDetector`` (pure: values in, findings out): per series, the median and the median
  absolute deviation (MAD) of a rolling window of recent samples; a sample whose robust z-score
  ``(x - median) / (1.4826 MAD + floor)`` passes ``threshold`` on ``confirm`` consecutive samples
  is an anomaly, explained by what deviated, from what, by how much. Robust statistics because a
  mean and a standard deviation are dragged by the very outliers they should catch; the window
  (two hours at the default 1-minute sampling) follows slow changes such as the trading day's
  session pattern. ``floor`` (a fraction of the median, and an absolute minimum per series) keeps
  a flat series (a lag that is always 0) from flagging a change of one. While a series is
  anomalous its samples stay out of the window, and one alert is raised per episode.
- ``KEY_SERIES``: what is watched, each computed from a scrape of the metrics: order and fill
  rates, the refusal ratio, dead letters, consumer lag, outbox backlog and relay lag, events in,
  HTTP server errors, prediction latency.
- ``AnomalyMonitor`` (runner): scrapes (this process's registry, or ``ANOMALY_SCRAPE_URLS``),
  feeds the detector, and raises each anomaly as an ``alert.raised`` event (``anomaly.<series>``,
  severity high, the explanation and the figures in the evidence) through the outbox, like every
  other operator alert: the audit trail records it and the live screens show it.
"""

from __future__ import annotations

import logging
import math
import statistics
import time
import urllib.request
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)

MAD_SCALE = 1.4826  # MAD x this estimates the standard deviation of normal data


@dataclass(frozen=True)
class SeriesSpec:
    name: str
    description: str
    unit: str
    abs_floor: float  # the smallest deviation worth an alert, in the series' unit
    rel_floor: float = 0.25  # ... or this fraction of the median, whichever is larger


@dataclass(frozen=True)
class Anomaly:
    series: str
    value: float
    median: float
    mad: float
    z: float
    samples: int
    explanation: str

    def evidence(self) -> dict:
        return {
            "series": self.series,
            "value": round(self.value, 6),
            "median": round(self.median, 6),
            "mad": round(self.mad, 6),
            "robust_z": round(self.z, 2),
            "window_samples": self.samples,
            "explanation": self.explanation,
        }


@dataclass
class _State:
    window: deque = field(default_factory=deque)
    streak: int = 0
    active: bool = False
    calm: int = 0


class RobustDetector:
    def __init__(
        self,
        specs: Iterable[SeriesSpec],
        *,
        window: int = 120,
        warmup: int = 30,
        threshold: float = 6.0,
        confirm: int = 2,
        clear: int = 5,
    ) -> None:
        self.specs = {s.name: s for s in specs}
        self.window = window
        self.warmup = warmup
        self.threshold = threshold
        self.confirm = confirm
        self.clear = clear
        self._states: dict[str, _State] = {name: _State(deque(maxlen=window)) for name in self.specs}

    def observe(self, values: Mapping[str, float]) -> list[Anomaly]:
        """One sample of every series (missing or non-finite values are skipped)."""
        found = []
        for name, value in values.items():
            spec = self.specs.get(name)
            if spec is None or value is None or not math.isfinite(value):
                continue
            anomaly = self._observe(spec, self._states[name], float(value))
            if anomaly is not None:
                found.append(anomaly)
        return found

    def _observe(self, spec: SeriesSpec, state: _State, value: float) -> Anomaly | None:
        window = state.window
        if len(window) < self.warmup:
            window.append(value)
            return None
        median = statistics.median(window)
        mad = statistics.median(abs(v - median) for v in window)
        scale = MAD_SCALE * mad + max(spec.abs_floor, spec.rel_floor * abs(median)) / self.threshold
        z = (value - median) / scale
        if abs(z) <= self.threshold:
            state.streak = 0
            if state.active:
                state.calm += 1
                if state.calm >= self.clear:
                    state.active = False
            window.append(value)
            return None
        state.calm = 0
        state.streak += 1  # an outlier: kept out of the window so it cannot mask the next one
        if state.active or state.streak < self.confirm:
            return None
        state.active = True
        direction = "rose" if z > 0 else "fell"
        explanation = (
            f"{spec.description} {direction} to {_fmt(value)} {spec.unit} against a median of {_fmt(median)} "
            f"over the last {len(window)} samples (MAD {_fmt(mad)}): robust z {z:+.1f}, "
            f"threshold ±{self.threshold:g}, for {state.streak} samples in a row"
        )
        return Anomaly(spec.name, value, median, mad, z, len(window), explanation)


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


KEY_SERIES: tuple[SeriesSpec, ...] = (
    SeriesSpec("order_rate", "Orders reaching a final state", "per minute", abs_floor=5),
    SeriesSpec("reject_ratio", "The share of orders refused", "(ratio)", abs_floor=0.15, rel_floor=0.5),
    SeriesSpec("fill_rate", "Fills", "per minute", abs_floor=5),
    SeriesSpec("dead_letters", "Dead-lettered events", "per minute", abs_floor=3),
    SeriesSpec("consumer_lag", "The largest consumer lag", "records", abs_floor=1000),
    SeriesSpec("outbox_backlog", "The outbox backlog", "rows", abs_floor=500),
    SeriesSpec("relay_lag", "The relay lag", "seconds", abs_floor=10),
    SeriesSpec("events_in_rate", "Events consumed by the stages", "per minute", abs_floor=100),
    SeriesSpec("http_5xx_rate", "HTTP server errors", "per minute", abs_floor=3),
)


# ---------------------------------------------------------------- from scrapes to series values

Samples = dict[str, list[tuple[dict[str, str], float]]]  # sample name -> [(labels, value)]


def samples_from_registry(registry=None) -> Samples:
    from prometheus_client import REGISTRY

    out: Samples = {}
    for family in (registry or REGISTRY).collect():
        for sample in family.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return out


def samples_from_text(text: str, into: Samples | None = None) -> Samples:
    from prometheus_client.parser import text_string_to_metric_families

    out: Samples = into if into is not None else {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return out


def _sum(samples: Samples, name: str, where: Callable[[dict], bool] = lambda labels: True) -> float | None:
    rows = samples.get(name)
    if rows is None:
        return None
    return sum(v for labels, v in rows if where(labels))


def _max(samples: Samples, name: str) -> float | None:
    rows = samples.get(name)
    return max((v for _, v in rows), default=0.0) if rows is not None else None


class SeriesReader:
    """Turns successive scrapes into the key series: counters become per-minute rates (their
    change since the previous scrape), gauges are taken as they are."""

    def __init__(self) -> None:
        self._previous: dict[str, float] = {}
        self._at: float | None = None

    def read(self, samples: Samples, *, at: float) -> dict[str, float]:
        counters = {
            "orders": _sum(samples, "tradeops_orders_total"),
            "rejected": _sum(samples, "tradeops_orders_total", lambda lb: lb.get("outcome") == "rejected"),
            "fills": _sum(samples, "tradeops_fills_total"),
            "dead_letters": _sum(samples, "tradeops_dead_letters_total"),
            "events_in": _sum(samples, "tradeops_events_in_total"),
            "http_5xx": _sum(
                samples, "django_http_responses_total_by_status_total", lambda lb: lb.get("status", "").startswith("5")
            ),
        }
        values: dict[str, float] = {}
        minutes = (at - self._at) / 60.0 if self._at is not None else 0.0
        deltas = {}
        for key, value in counters.items():
            before = self._previous.get(key)
            if value is not None and before is not None and minutes > 0 and value >= before:
                deltas[key] = value - before
            if value is not None:
                self._previous[key] = value
        self._at = at
        if minutes > 0:
            for series, key in (
                ("order_rate", "orders"),
                ("fill_rate", "fills"),
                ("dead_letters", "dead_letters"),
                ("events_in_rate", "events_in"),
                ("http_5xx_rate", "http_5xx"),
            ):
                if key in deltas:
                    values[series] = deltas[key] / minutes
            if deltas.get("orders"):
                values["reject_ratio"] = deltas.get("rejected", 0.0) / deltas["orders"]
        for series, name in (
            ("consumer_lag", "tradeops_consumer_lag"),
            ("outbox_backlog", "tradeops_outbox_backlog"),
            ("relay_lag", "tradeops_outbox_lag_seconds"),
        ):
            value = _max(samples, name)
            if value is not None:
                values[series] = value
        return values


# ---------------------------------------------------------------- the runner


def alert_raise(anomaly: Anomaly, *, at) -> None:
    """Raise ``anomaly`` as an operator alert: an ``alert.raised`` event through the outbox (the
    audit trail records it, the live screens show it). Precondition: Django is set up."""
    from django.db import transaction

    from tradeops.events import Alert, make_event
    from tradeops.observability import metrics
    from tradeops.outbox.services import outbox_append

    with transaction.atomic():
        outbox_append(
            event=make_event(
                Alert(
                    alert_type=f"anomaly.{anomaly.series}",
                    severity="high",
                    owner="operations",
                    score=min(abs(anomaly.z) / 20.0, 1.0),
                    end=at,
                    evidence=anomaly.evidence(),
                    ts=at,
                ),
                source="anomaly-detector",
                key=f"anomaly.{anomaly.series}",
            )
        )
    metrics.anomalies.labels(anomaly.series).inc()
    logger.warning("anomaly: %s", anomaly.explanation, extra={"series": anomaly.series, "robust_z": anomaly.z})


class AnomalyMonitor:
    """Scrape, read the series, detect, raise. ``step`` is one round; ``run`` loops until stopped."""

    def __init__(
        self,
        *,
        detector: RobustDetector | None = None,
        urls: Iterable[str] = (),
        token: str = "",
        scrape: Callable[[], Samples] | None = None,
        raise_alert: Callable[..., None] = alert_raise,
    ) -> None:
        self.detector = detector or RobustDetector(KEY_SERIES)
        self.urls = list(urls)
        self.token = token
        self._scrape = scrape or (self._scrape_urls if self.urls else samples_from_registry)
        self.reader = SeriesReader()
        self.raise_alert = raise_alert
        self.raised: list[Anomaly] = []

    def _scrape_urls(self) -> Samples:
        samples: Samples = {}
        for url in self.urls:
            request = urllib.request.Request(
                url, headers={"Authorization": f"Bearer {self.token}"} if self.token else {}
            )
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    samples_from_text(response.read().decode(), into=samples)
            except OSError as exc:
                logger.warning("anomaly detector: cannot scrape %s: %s", url, exc)
        return samples

    def step(self, *, at: float | None = None) -> list[Anomaly]:
        from tradeops.core.clock import utcnow

        values = self.reader.read(self._scrape(), at=at if at is not None else time.time())
        found = self.detector.observe(values)
        for anomaly in found:
            self.raise_alert(anomaly, at=utcnow())
        self.raised.extend(found)
        return found

    def run(self, *, interval: float, should_stop: Callable[[], bool]) -> None:
        from tradeops.observability.metrics import heartbeat

        beat = heartbeat.labels("anomaly-detector")
        while not should_stop():
            beat.set(time.time())
            try:
                self.step()
            except Exception:
                logger.exception("anomaly detector: round failed; next round in %.0f s", interval)
            deadline = time.monotonic() + interval
            while not should_stop() and time.monotonic() < deadline:
                time.sleep(min(0.5, interval))
