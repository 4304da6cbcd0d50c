"""The serving metrics' cheaper observe and set paths expose exactly what prometheus_client's own
``observe`` and ``set`` would: the same bucket counts, the same sum (bit for bit), the same gauge."""

from __future__ import annotations

import math

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest

from mlmodels.runtime import gauge_setter, histogram_observer

BOUNDS = (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.0)


def amounts() -> list[float]:
    rng = np.random.default_rng(7)
    values = rng.uniform(0.45, 1.05, 3000).tolist()
    # every bound exactly, the floats either side of it, the extremes and NaN
    for bound in BOUNDS:
        values += [bound, math.nextafter(bound, -math.inf), math.nextafter(bound, math.inf)]
    values += [-math.inf, math.inf, -0.0, 0.0, 1e300, -1e300, math.nan, 0.7, math.nan]
    return values


def exposition(registry: CollectorRegistry) -> list[str]:
    # the created timestamps are wall times: not part of what is compared
    return [line for line in generate_latest(registry).decode().splitlines() if "_created" not in line]


def pair(kind, **kwargs):
    registries = CollectorRegistry(), CollectorRegistry()
    return registries, [kind(registry=r, **kwargs) for r in registries]


def test_histogram_observer_exposes_what_observe_exposes():
    (own, fast), (reference, metric) = pair(Histogram, name="serving_confidence", documentation="d", buckets=BOUNDS)
    observe = histogram_observer(metric)
    assert observe != metric.observe  # the cheaper path is the one under test
    for amount in amounts():
        reference.observe(amount)
        observe(amount)
    assert exposition(own) == exposition(fast)
    assert metric._sum.get() == reference._sum.get() or math.isnan(reference._sum.get())


def test_histogram_observer_on_a_labelled_child_and_a_finite_sum():
    (own, fast), (reference, metric) = pair(
        Histogram, name="serving_confidence", documentation="d", labelnames=["model"], buckets=BOUNDS
    )
    observe = histogram_observer(metric.labels("deep"))
    values = [a for a in amounts() if math.isfinite(a)]
    for amount in values:
        reference.labels("deep").observe(amount)
        observe(amount)
    assert exposition(own) == exposition(fast)
    assert metric.labels("deep")._sum.get().hex() == reference.labels("deep")._sum.get().hex()


def test_histogram_observer_refuses_a_labelled_parent_as_observe_does():
    metric = Histogram("serving_parent", "d", ["model"], registry=CollectorRegistry())
    with pytest.raises(ValueError):
        metric.observe(0.5)
    with pytest.raises(ValueError):
        histogram_observer(metric)(0.5)


def test_an_unknown_histogram_gets_its_own_observe():
    class Other:
        def observe(self, amount):
            pass

    other = Other()
    assert histogram_observer(other) == other.observe


def test_gauge_setter_sets_what_set_sets():
    (own, fast), (reference, metric) = pair(Gauge, name="serving_drift", documentation="d", labelnames=["symbol"])
    set_score = gauge_setter(metric.labels("EURUSD"))
    for value in (0.07, 0.31, 1, math.inf, 0.0):
        reference.labels("EURUSD").set(value)
        set_score(value)
        assert exposition(own) == exposition(fast)
