"""Fixtures for the ML pipeline: the shipped real EURUSD bars and one small, fast training run."""

from __future__ import annotations

import numpy as np
import pytest

from mlmodels.training import TrainingConfig, load_shipped_bars, models_train

# Small on purpose: the whole ML test module trains in a couple of seconds.
FAST = TrainingConfig(n_folds=3, gbm_estimators=40, mlp_hidden=(16,), mlp_max_iter=60)
# The reason tests give when they activate such models: they have no edge, and need not have one.
NO_EDGE = "test models trained in seconds to exercise the registry; no edge claimed"


@pytest.fixture(scope="session")
def real_bars():
    return load_shipped_bars()


@pytest.fixture(scope="session")
def real_bars_with_spread(real_bars):
    """The real bars plus a spread column (the CSV has none) so the spread features vary."""
    bars = real_bars.copy()
    bars["Spread"] = np.random.default_rng(3).uniform(0.00004, 0.00025, len(bars))
    return bars


@pytest.fixture(scope="session")
def trained(real_bars):
    return models_train(real_bars, config=FAST)


# The event backbone's Kafka fixtures (unique topic prefix per test, provisioned and deleted).
try:
    from tests.tradeops.conftest import kafka, kafka_bootstrap_session, kafka_bus, kafka_prefix  # noqa: F401
except ImportError:  # renamed upstream: skip the Kafka test rather than break the whole directory

    @pytest.fixture
    def kafka_bus():
        pytest.skip("the Kafka fixtures of tests/tradeops/conftest.py are not importable")
