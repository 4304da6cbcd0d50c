"""The two ML stages as Kafka consumer-group members (the distributed deployment)."""

from __future__ import annotations

import time
from itertools import islice

import pytest

from mlmodels.handlers import FeatureHandler, PredictionHandler, ValidatorSettings
from mlmodels.serving import artifact_load
from mlmodels.training import MODEL_NAMES, artifact_bytes, artifact_write
from tradeops.bus.runner import stage_run
from tradeops.events import Prediction, Signal, Topic, make_event
from tradeops.stages import stage_get
from trading.marketdata.sources import backtesting_bars


@pytest.mark.kafka
@pytest.mark.slow
def test_ml_stages_on_kafka_turn_bars_into_attributed_predictions(kafka_bus, trained, tmp_path):
    models = {}
    for name in MODEL_NAMES:
        path, sha = artifact_write(
            directory=tmp_path,
            name=name,
            version=f"{name}-k1",
            data=artifact_bytes(name=name, version=f"{name}-k1", result=trained),
        )
        models[name] = artifact_load(path=path, sha256=sha, name=name, version=f"{name}-k1")
    predictor = PredictionHandler()
    predictor.install(models=models, settings=ValidatorSettings(min_confidence=0.5))

    bars = [make_event(bar, source="replay", key=bar.symbol) for bar in islice(backtesting_bars("EURUSD"), 120)]
    kafka_bus.publish_many(bars)
    assert kafka_bus.flush(30) == 0
    stats = stage_run(
        stage_get("ml-features"),
        bus=kafka_bus,
        handler=FeatureHandler(),
        max_events=120,
        idle_exit=20,
        poll_timeout=0.5,
    )
    assert (stats.consumed, stats.produced) == (120, 120 - 49)
    stats = stage_run(
        stage_get("ml-predict"), bus=kafka_bus, handler=predictor, max_events=71, idle_exit=20, poll_timeout=0.5
    )
    assert stats.consumed == 71 and stats.dead_lettered == 0

    out = []
    deadline = time.monotonic() + 30
    with kafka_bus.subscribe([Topic.PREDICTIONS], "ml-check") as sub:
        while time.monotonic() < deadline and len(out) < stats.produced:
            out += [r.event for r in sub.poll(1000, timeout=0.5)]
    predictions = [e.payload for e in out if isinstance(e.payload, Prediction)]
    signals = [e.payload for e in out if isinstance(e.payload, Signal)]
    assert len(predictions) == 2 * 71
    assert {p.model_version for p in predictions} == {"supervised-k1", "deep-k1"}
    assert signals and all(s.model_versions == {"supervised": "supervised-k1", "deep": "deep-k1"} for s in signals)
    assert [p.ts for p in predictions] == sorted(p.ts for p in predictions)  # one key, one partition: in order
