"""The pattern validator's branches: agreement, confidence threshold, drift (PSI) with its alert."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest

from mlmodels.features import FEATURE_NAMES, FEATURE_SET
from mlmodels.handlers import DriftWindow, ModelVote, PatternValidator, ValidatorSettings
from mlmodels.training import drift_reference_build
from tradeops.events import Alert, Features, Signal, decode, encode, make_event

T0 = datetime(2024, 5, 6, 9, tzinfo=UTC)


@pytest.fixture(scope="module")
def training_matrix():
    return np.random.default_rng(0).normal(0, 1, (3000, len(FEATURE_NAMES)))


@pytest.fixture
def reference(training_matrix):
    return drift_reference_build(training_matrix)


def vector(rng, i: int, shift: float = 0.0) -> Features:
    values = {
        name: float(v) + shift for name, v in zip(FEATURE_NAMES, rng.normal(0, 1, len(FEATURE_NAMES)), strict=True)
    }
    return Features(
        symbol="EURUSD", ts=T0 + timedelta(hours=i), values=values, price=Decimal("1.08500"), feature_set=FEATURE_SET
    )


def votes(d1: int, p1: float, d2: int, p2: float) -> list[ModelVote]:
    return [ModelVote("supervised", "supervised-v7", d1, p1), ModelVote("deep", "deep-v3", d2, p2)]


def test_agreeing_confident_models_make_a_signal_with_attribution(reference):
    validator = PatternValidator(ValidatorSettings(min_confidence=0.55, algo_id="ml-eurusd"), drift_reference=reference)
    features = vector(np.random.default_rng(1), 0)
    [signal] = validator.evaluate(features, votes(-1, 0.61, -1, 0.58))
    assert isinstance(signal, Signal)
    assert signal.side == "SELL" and signal.confidence == 0.58  # the weaker of the two
    assert signal.model_versions == {"supervised": "supervised-v7", "deep": "deep-v3"}
    assert signal.algo_id == "ml-eurusd" and signal.price == Decimal("1.08500") and signal.ts == features.ts
    assert signal.atr == pytest.approx(features.values["atr_14_rel"] * 1.085)
    # The same vector through the same models has the same id (replays are idempotent downstream).
    again = PatternValidator(ValidatorSettings(algo_id="ml-eurusd"), drift_reference=reference)
    assert again.evaluate(features, votes(-1, 0.61, -1, 0.58))[0].signal_id == signal.signal_id


def test_disagreement_withholds(reference):
    validator = PatternValidator(ValidatorSettings(), drift_reference=reference)
    assert validator.evaluate(vector(np.random.default_rng(2), 0), votes(1, 0.9, -1, 0.9)) == []
    assert validator.withheld["disagree"] == 1


@pytest.mark.parametrize("p2,expected", [(0.549, False), (0.55, True)])
def test_confidence_threshold_is_inclusive(reference, p2, expected):
    validator = PatternValidator(ValidatorSettings(min_confidence=0.55), drift_reference=reference)
    out = validator.evaluate(vector(np.random.default_rng(3), 0), votes(1, 0.8, 1, p2))
    assert bool(out) is expected
    assert validator.withheld["low_confidence"] == (0 if expected else 1)


def test_disabled_validator_publishes_no_signal(reference):
    validator = PatternValidator(ValidatorSettings(enabled=False), drift_reference=reference)
    assert validator.evaluate(vector(np.random.default_rng(4), 0), votes(1, 0.9, 1, 0.9)) == []


def test_drift_withholds_signals_raises_one_alert_and_clears(reference):
    rng = np.random.default_rng(5)
    settings = ValidatorSettings(psi_limit=0.25, drift_window=100)
    validator = PatternValidator(settings, drift_reference=reference)
    agree = votes(1, 0.7, 1, 0.7)
    i = 0
    signals = 0
    for _ in range(100):  # in distribution: signals flow
        out = validator.evaluate(vector(rng, i), agree)
        i += 1
        signals += sum(isinstance(e, Signal) for e in out)
        assert not any(isinstance(e, Alert) for e in out)
    assert signals == 100
    alerts, withheld_signals = [], 0
    for _ in range(60):  # the live window moves three standard deviations away
        out = validator.evaluate(vector(rng, i, shift=3.0), agree)
        i += 1
        alerts += [e for e in out if isinstance(e, Alert)]
        withheld_signals += sum(isinstance(e, Signal) for e in out)
    assert [a.alert_type for a in alerts] == ["model_drift"]  # one alert when it starts, not one per vector
    alert = alerts[0]
    event = make_event(alert, source="test", key="EURUSD")
    assert event.topic == "compliance-events" and decode(encode(event)) == event  # evidence is wire-safe
    assert alert.severity == "high" and alert.symbol == "EURUSD" and alert.score > 0.25
    assert alert.evidence["psi_limit"] == 0.25 and alert.evidence["model_versions"]["deep"] == "deep-v3"
    assert validator.withheld["drift"] > 0
    first_drift_signals = withheld_signals
    assert first_drift_signals < 60
    late = []
    for _ in range(150):  # back to the training distribution: the drift clears, signals resume
        late += validator.evaluate(vector(rng, i), agree)
        i += 1
    assert [a.alert_type for a in late if isinstance(a, Alert)] == ["model_drift_cleared"]
    assert isinstance(late[-1], Signal)


def test_psi_matches_the_textbook_formula(reference, training_matrix):
    window = DriftWindow(reference, window=400)
    live = np.random.default_rng(9).normal(0.5, 1.3, (600, len(FEATURE_NAMES)))
    for row in live:
        window.push(dict(zip(FEATURE_NAMES, row, strict=True)))
    psi = window.psi()
    recent = live[-400:]
    for j, name in enumerate(FEATURE_NAMES):
        spec = reference["features"][name]
        counts = np.bincount(
            np.searchsorted(spec["edges"], recent[:, j], side="right"), minlength=len(spec["expected"])
        )
        a = (counts + 0.5) / (400 + 0.5 * len(counts))
        e = np.maximum(np.array(spec["expected"]), 1e-4)
        assert psi[name] == pytest.approx(float(np.sum((a - e) * np.log(a / e))))
    assert min(psi.values()) > 0.1  # a real shift is visible in every feature


def _psi_as_computed(window: DriftWindow) -> list[float]:
    """Every term from the counts, as the window computed it before its table of terms."""
    n = len(window.history)
    live = (window.counts + 0.5) / (n + 0.5 * window.bins)[:, None]
    terms = np.where(window.mask, (live - window.expected) * np.log(live / window.expected), 0.0)
    return terms.sum(axis=1).tolist()


@pytest.mark.parametrize("size", [50, 500])
def test_full_window_psi_from_its_table_is_the_computed_float(reference, training_matrix, size):
    """A full window looks its terms up in a table built once; the PSI must be the very float
    computed from the counts, on the way in, in drift, back, and with a feature pinned to one bin
    (counts at 0 and at the window's length)."""
    rng = np.random.default_rng(11)
    window = DriftWindow(reference, window=size)
    rows = [
        *training_matrix[: size + 200],
        *rng.normal(0.8, 1.6, (size + 100, len(FEATURE_NAMES))),
        *training_matrix[1000 : 1000 + size + 50],
    ]
    pinned = np.array(training_matrix[: size + 10])
    pinned[:, 3] = 99.0  # one feature always in its last bin: its count reaches the window's length
    checked = 0
    for row in [*rows, *pinned]:
        window.push(dict(zip(FEATURE_NAMES, row, strict=True)))
        if window.full:
            assert window.psi_sums() == _psi_as_computed(window)
            checked += 1
        elif len(window.history) % 7 == 1:  # a window still filling computes its terms
            assert window.psi_sums() == _psi_as_computed(window)
    assert window.counts[3].max() == size
    assert checked > 2 * size
    assert list(window.psi()) == window.names
