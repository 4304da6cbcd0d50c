"""A restarted ``ml-features`` process (``manage.py run_stage ml-features``, the cluster's features
stage) warms its rolling windows from what the system of record says it handled (the replay
checkpoint) before its first event: the first new bar gives a feature vector at once, equal to
an uninterrupted run's, and bars it handled before, redelivered from an older offset, are neither
folded twice nor emitted again. On the real Kafka and PostgreSQL; no cluster."""

from __future__ import annotations

import io
import time
from datetime import timedelta

import pytest
from django.core.management import call_command

from mlmodels.handlers import FeatureHandler
from tradeops.events import Features, Topic, make_event
from trading.marketdata.sources import backtesting_bars
from trading.services import replay_checkpoint_save
from workers.replay_checkpoint import features_warm_from_records

HANDLED = 100  # bars the features process handled before it was restarted
NEW = 30  # bars after it, the restarted process's first
REDELIVERED = 10  # handled bars the consumer gets again (its committed offset was older)


def _checkpoint(bars) -> None:
    replay_checkpoint_save(
        symbol="EURUSD",
        timeframe="H1",
        source="backtesting EURUSD",
        first_bar_at=bars[0].ts,
        last_bar_at=bars[HANDLED - 1].ts,
        bars=HANDLED,
    )


def _uninterrupted(bars) -> dict:
    """Feature vectors of one process that saw every bar, by their time."""
    handler = FeatureHandler()
    out = {}
    for bar in bars:
        for event in handler.handle(make_event(bar, source="replay", key=bar.symbol)):
            out[event.payload.ts] = event.payload.values
    return out


@pytest.mark.django_db(transaction=True)
def test_the_warm_up_folds_the_handled_bars_and_skips_them_when_they_come_again():
    bars = list(backtesting_bars("EURUSD"))[: HANDLED + NEW]
    cold = FeatureHandler()
    assert features_warm_from_records(cold) == ""  # nothing replayed yet: nothing to warm from
    _checkpoint(bars)
    handler = FeatureHandler()
    said = features_warm_from_records(handler)
    assert said.startswith(f"EURUSD H1 warmed on {HANDLED} bars up to {bars[HANDLED - 1].ts:%Y-%m-%d %H:%M} UTC")
    again = bars[HANDLED - 1]
    assert handler.handle(make_event(again, source="replay", key="EURUSD")) == []  # handled before
    (first,) = handler.handle(make_event(bars[HANDLED], source="replay", key="EURUSD"))
    assert first.payload.values == _uninterrupted(bars)[first.payload.ts]
    # started cold instead, the same bar gives nothing: ~50 bars of warm-up before any signal
    assert cold.handle(make_event(bars[HANDLED], source="replay", key="EURUSD")) == []


@pytest.mark.kafka
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_restarted_features_process_emits_at_once_and_never_for_bars_it_handled(kafka_bus, kafka_prefix, settings):
    bars = list(backtesting_bars("EURUSD"))[: HANDLED + NEW]
    _checkpoint(bars)
    sent = bars[HANDLED - REDELIVERED :]
    kafka_bus.publish_many([make_event(bar, source="replay", key=bar.symbol) for bar in sent])
    assert kafka_bus.flush(30) == 0

    settings.KAFKA_TOPIC_PREFIX = kafka_prefix
    out = io.StringIO()
    call_command(
        "run_stage", "ml-features", "--bus", "kafka", "--max-events", str(len(sent)), "--idle-exit", "20", stdout=out
    )
    assert f"stage ml-features: EURUSD H1 warmed on {HANDLED} bars" in out.getvalue()
    assert f"consumed {len(sent)}, produced {NEW}," in out.getvalue()

    vectors = []
    deadline = time.monotonic() + 30
    with kafka_bus.subscribe([Topic.FEATURES], "features-check") as sub:
        while time.monotonic() < deadline and len(vectors) < NEW:
            vectors += [r.event.payload for r in sub.poll(1000, timeout=0.5) if isinstance(r.event.payload, Features)]
    expected = _uninterrupted(bars)
    new_times = [bar.ts + timedelta(hours=1) for bar in bars[HANDLED:]]
    assert [v.ts for v in vectors] == new_times  # one per new bar from the first; none for a handled bar
    assert all(v.values == expected[v.ts] for v in vectors)  # as if the process had never stopped
