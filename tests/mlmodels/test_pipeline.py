"""The registered stages in the embedded run: real EURUSD bars from the market-data source through
ml-features and ml-predict (factories from tradeops.stages, models from the registry)."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import islice

from mlmodels.services import model_version_activate, model_versions_register, validator_config_update
from mlmodels.training import MODEL_NAMES, artifact_bytes, artifact_write
from tests.mlmodels.conftest import NO_EDGE
from tradeops.bus.memory import MemoryBus
from tradeops.bus.runner import pipeline_run
from tradeops.events import Alert, Features, Prediction, Signal, decode, encode, make_event
from tradeops.stages import stage_get
from trading.marketdata.sources import backtesting_bars


def test_embedded_run_turns_real_bars_into_attributed_predictions_and_signals(trained, settings, tmp_path, db):
    settings.ML_MODEL_DIR = str(tmp_path)
    artifacts = []
    for name in MODEL_NAMES:
        data = artifact_bytes(name=name, version=f"{name}-p1", result=trained)
        path, sha = artifact_write(directory=tmp_path, name=name, version=f"{name}-p1", data=data)
        artifacts.append((name, f"{name}-p1", path, sha))
    for row in model_versions_register(
        actor="service:test", result=trained, artifacts=artifacts, at=datetime(2026, 1, 1, tzinfo=UTC)
    ):
        model_version_activate(version=row, actor="user:risk", reason=NO_EDGE, allow_no_edge=True)
    validator_config_update(actor="user:risk", min_confidence=0.5, algo_id="ml-eurusd-h1")

    source = [make_event(bar, source="replay", key=bar.symbol) for bar in islice(backtesting_bars("EURUSD"), 400)]
    seen = []
    result = pipeline_run(
        source,
        stages=[stage_get("ml-features"), stage_get("ml-predict")],
        bus=MemoryBus(),
        on_event=seen.append,
        batch_size=50,
    )
    assert result.dead_letters == 0
    features = [e for e in seen if isinstance(e.payload, Features)]
    predictions = [e.payload for e in seen if isinstance(e.payload, Prediction)]
    signals = [e for e in seen if isinstance(e.payload, Signal)]
    assert len(features) == 400 - 49
    assert len(predictions) == 2 * len(features)
    assert {p.model_version for p in predictions} == {"supervised-p1", "deep-p1"}
    assert signals, "with a 0.5 threshold every agreeing pair is a signal"
    for event in signals:
        assert event.topic == "prediction-events" and event.key == "EURUSD"
        assert event.payload.model_versions == {"supervised": "supervised-p1", "deep": "deep-p1"}
        assert event.payload.algo_id == "ml-eurusd-h1"
        assert event.traceparent  # the runner keeps the trace from the bar to the signal
    assert not [e for e in seen if isinstance(e.payload, Alert)]  # 400 bars < the 500-vector drift window
    # Everything the stages publish survives the JSON wire format exactly (the Kafka deployment).
    for event in features[:20] + signals[:20] + [e for e in seen if isinstance(e.payload, Prediction)][:20]:
        assert decode(encode(event)) == event
