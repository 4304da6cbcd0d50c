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

from mlmodels.handlers import FeatureHandler, warm_gap_limit
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


def _features(handler, bars) -> dict:
    out = {}
    for bar in bars:
        for event in handler.handle(make_event(bar, source="replay", key=bar.symbol)):
            out[event.payload.ts] = event.payload.values
    return out


def test_a_warm_up_is_carried_across_a_weekend_into_the_next_bar():
    """The bars' ordinary closures (a weekend, 49 h between two H1 opens) are not a gap: the
    restarted stage's first features are an uninterrupted run's."""
    bars = list(backtesting_bars("EURUSD"))[:400]
    monday = next(i for i in range(HANDLED, len(bars)) if bars[i].ts - bars[i - 1].ts >= timedelta(hours=49))
    handler = FeatureHandler()
    handler.warm(bars[:monday], max_gap=warm_gap_limit("H1"))
    (first,) = handler.handle(make_event(bars[monday], source="replay", key="EURUSD"))
    assert first.payload.values == _uninterrupted(bars)[first.payload.ts]
    assert handler.warm_dropped == []


def test_a_warm_up_weeks_older_than_the_first_bar_is_dropped_and_the_stage_starts_cold():
    """A live restart on a database that once replayed: the first bar consumed opens weeks after
    the last bar warmed on. The warm-up is dropped at that bar (the operator is told why), the
    symbol's windows fill afresh as a first start's would, and a bar it handled before the restart
    is still not emitted again."""
    bars = list(backtesting_bars("EURUSD"))[: HANDLED + 700]
    later = bars[HANDLED + 600 :]  # ~5 weeks on
    told = []
    handler = FeatureHandler()
    assert handler.warm(bars[:HANDLED], max_gap=warm_gap_limit("H1"), on_dropped=told.append) == HANDLED
    got = _features(handler, later)
    assert got == _features(FeatureHandler(), later)  # a cold start's features, none across the gap
    (dropped,) = told
    assert handler.warm_dropped == told
    assert (dropped.symbol, dropped.warmed_to, dropped.first_bar, dropped.bars) == (
        "EURUSD",
        bars[HANDLED - 1].ts,
        later[0].ts,
        HANDLED,
    )
    assert dropped.gap > dropped.limit == timedelta(days=4, hours=1)
    assert handler.handle(make_event(bars[HANDLED - 1], source="replay", key="EURUSD")) == []  # handled before


def test_a_warmed_symbol_whose_live_feed_sends_ticks_has_them_aggregated():
    """The warm-up folds replayed bars; a live feed of ticks for the symbol is not ignored as if it
    sent bars (until 2026-12-07 the warm-up marked it bar-fed, so its ticks gave nothing)."""
    from decimal import Decimal

    from tradeops.events import Tick

    bars = list(backtesting_bars("EURUSD"))[:HANDLED]
    handler = FeatureHandler()
    handler.warm(bars, max_gap=warm_gap_limit("H1"))
    start = bars[-1].ts + timedelta(hours=1)
    out = []
    for minute in range(0, 3 * 60, 10):  # three hours of ticks: two closed bars, right after the warm-up
        tick = Tick(
            symbol="EURUSD", bid=Decimal("1.10000"), ask=Decimal("1.10010"), ts=start + timedelta(minutes=minute)
        )
        out += handler.handle(make_event(tick, source="mt5", key="EURUSD"))
    assert len(out) == 2 and handler.warm_dropped == []


@pytest.mark.kafka
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_live_restart_weeks_after_the_replay_starts_cold_and_says_why(kafka_bus, kafka_prefix, settings, caplog):
    """``run_stage ml-features`` on a database whose replay stopped weeks before the bars it now
    consumes: warmed from the records, then dropped at the first bar with a warning; the features
    it publishes are a cold start's (none across the gap)."""
    bars = list(backtesting_bars("EURUSD"))[: HANDLED + 700]
    _checkpoint(bars)
    later = bars[HANDLED + 600 :]
    kafka_bus.publish_many([make_event(bar, source="replay", key=bar.symbol) for bar in later])
    assert kafka_bus.flush(30) == 0

    settings.KAFKA_TOPIC_PREFIX = kafka_prefix
    out = io.StringIO()
    with caplog.at_level("WARNING", logger="workers.replay_checkpoint"):
        call_command(
            "run_stage",
            "ml-features",
            "--bus",
            "kafka",
            "--max-events",
            str(len(later)),
            "--idle-exit",
            "20",
            stdout=out,
        )
    assert f"stage ml-features: EURUSD H1 warmed on {HANDLED} bars" in out.getvalue()
    assert "kept if the first bar consumed opens within 97 h of it" in out.getvalue()
    (warning,) = [r.getMessage() for r in caplog.records if "warm-up dropped" in r.getMessage()]
    assert "EURUSD H1 warm-up dropped, starting cold" in warning and f"{later[0].ts:%Y-%m-%d %H:%M} UTC" in warning
    cold = _features(FeatureHandler(), later)
    assert f"consumed {len(later)}, produced {len(cold)}," in out.getvalue()

    vectors = []
    deadline = time.monotonic() + 30
    with kafka_bus.subscribe([Topic.FEATURES], "features-check") as sub:
        while time.monotonic() < deadline and len(vectors) < len(cold):
            vectors += [r.event.payload for r in sub.poll(1000, timeout=0.5) if isinstance(r.event.payload, Features)]
    assert {v.ts: v.values for v in vectors} == cold
