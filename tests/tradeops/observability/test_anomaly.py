"""The anomaly detector flags an injected fault, with an explanation, and not a quiet day; an
anomaly becomes an operator alert through the outbox."""

from __future__ import annotations

import math
import random

import pytest

from tradeops.observability.anomaly import KEY_SERIES, AnomalyMonitor, RobustDetector, SeriesReader


def quiet_day(seed: int = 7):
    """One trading day at 1-minute samples: a session curve (quiet night, busy London and New
    York) with Poisson-like noise on rates, a lag that breathes with the flow, small backlogs."""
    rng = random.Random(seed)
    for minute in range(24 * 60):
        hour = minute / 60
        session = 0.15 + 0.85 * math.exp(-(((hour - 10) / 3.0) ** 2)) + 0.7 * math.exp(-(((hour - 15.5) / 2.5) ** 2))
        orders = max(rng.gauss(40 * session, math.sqrt(40 * session)), 0)
        yield {
            "order_rate": orders,
            "fill_rate": orders * rng.uniform(0.85, 0.95),
            "reject_ratio": min(max(rng.gauss(0.05, 0.02), 0), 1),
            "dead_letters": float(rng.random() < 0.01),
            "consumer_lag": max(rng.gauss(200 * session, 60), 0),
            "outbox_backlog": max(rng.gauss(20 * session, 8), 0),
            "relay_lag": max(rng.gauss(0.5, 0.3), 0),
            "events_in_rate": max(rng.gauss(6000 * session, 300), 0),
            "http_5xx_rate": float(rng.random() < 0.02),
        }


@pytest.mark.parametrize("seed", [7, 11, 23])
def test_a_quiet_day_raises_nothing(seed):
    detector = RobustDetector(KEY_SERIES)
    found = [a for sample in quiet_day(seed) for a in detector.observe(sample)]
    assert found == []


def test_an_injected_fault_is_flagged_once_with_an_explanation():
    detector = RobustDetector(KEY_SERIES)
    found = []
    for minute, sample in enumerate(quiet_day(7)):
        if 900 <= minute < 930:  # a stage stalls at 15:00: its lag climbs, events in collapse
            sample["consumer_lag"] = 5_000 + 2_000 * (minute - 900)
            sample["events_in_rate"] = 50.0
        if 1000 <= minute < 1010:  # a broker outage: most orders refused
            sample["reject_ratio"] = 0.8
        found += [(minute, a) for a in detector.observe(sample)]
    by_series = {}
    for minute, anomaly in found:
        by_series.setdefault(anomaly.series, []).append(minute)
    assert set(by_series) == {"consumer_lag", "events_in_rate", "reject_ratio"}
    assert by_series["consumer_lag"] == [901]  # confirmed on the second sample, then one per episode
    assert by_series["reject_ratio"] == [1001]
    lag = next(a for _, a in found if a.series == "consumer_lag")
    assert lag.z > 6 and lag.value == 7_000
    assert "The largest consumer lag rose to 7,000 records against a median of" in lag.explanation
    assert "robust z +" in lag.explanation and lag.evidence()["window_samples"] == 120
    collapse = next(a for _, a in found if a.series == "events_in_rate")
    assert collapse.z < -6 and "fell to 50" in collapse.explanation


def test_series_are_rates_from_counter_scrapes():
    reader = SeriesReader()

    def scrape(orders, rejected, lag):
        return {
            "tradeops_orders_total": [
                ({"outcome": "filled", "reason": "none"}, orders - rejected),
                ({"outcome": "rejected", "reason": "x"}, rejected),
            ],
            "tradeops_consumer_lag": [({"topic": "a", "group": "g"}, lag), ({"topic": "b", "group": "g"}, 3)],
        }

    assert reader.read(scrape(100, 10, 5), at=0) == {"consumer_lag": 5}
    values = reader.read(scrape(160, 40, 9), at=120)
    assert values == {"order_rate": 30.0, "reject_ratio": 0.5, "consumer_lag": 9}


@pytest.mark.django_db
def test_an_anomaly_is_raised_as_an_alert_through_the_outbox():
    from tradeops.events import decode
    from tradeops.outbox.models import Outbox

    samples = iter(quiet_day(7))
    lag = {"v": 0}

    def scrape():
        sample = next(samples)
        return {"tradeops_consumer_lag": [({"topic": "t", "group": "g"}, lag["v"] or sample["consumer_lag"])]}

    from prometheus_client import REGISTRY

    raised = REGISTRY.get_sample_value("tradeops_anomalies_total", {"series": "consumer_lag"}) or 0
    monitor = AnomalyMonitor(scrape=scrape)
    for minute in range(60):
        monitor.step(at=minute * 60.0)
    assert Outbox.objects.count() == 0
    lag["v"] = 80_000
    monitor.step(at=3600)
    monitor.step(at=3660)
    row = Outbox.objects.get()
    event = decode(bytes(row.message))
    assert event.type == "alert.raised" and event.payload.alert_type == "anomaly.consumer_lag"
    assert event.payload.severity == "high" and event.payload.evidence["value"] == 80_000
    assert "rose to 80,000 records" in event.payload.evidence["explanation"]
    assert REGISTRY.get_sample_value("tradeops_anomalies_total", {"series": "consumer_lag"}) - raised == 1
