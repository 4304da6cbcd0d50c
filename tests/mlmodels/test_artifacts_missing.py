"""``model_artifacts_missing``: the active versions whose artifact the model storage lacks, which
``scripts/cluster.sh setup`` trains again (2026-12-06, wip/walk50: a cluster database whose models
another checkout had trained into its own ``var/models`` served nothing, and no replay made a signal)."""

from __future__ import annotations

import pytest

from mlmodels.models import ModelVersion
from mlmodels.selectors import model_artifacts_missing

pytestmark = pytest.mark.django_db


def _version(name, path, *, active=True):
    return ModelVersion.objects.create(
        name=name,
        version=f"{name}-{path}",
        algorithm="test",
        artifact_path=path,
        artifact_sha256="0" * 64,
        feature_names=[],
        feature_set="test",
        symbol="EURUSD",
        timeframe="H1",
        horizon=1,
        train_start="2017-01-01T00:00:00Z",
        train_end="2017-02-01T00:00:00Z",
        n_samples=1,
        created_at="2017-02-02T00:00:00Z",
        is_active=active,
    )


def test_names_each_active_version_whose_artifact_is_missing(tmp_path, settings):
    settings.ML_MODEL_DIR = str(tmp_path)
    (tmp_path / "deep").mkdir()
    (tmp_path / "deep" / "deep-1.joblib").write_bytes(b"x")
    _version("deep", "deep/deep-1.joblib")
    _version("supervised", "supervised/supervised-1.joblib")
    _version("deep", "deep/deep-0.joblib", active=False)  # not serving: not asked for
    assert model_artifacts_missing() == [
        "supervised supervised-supervised/supervised-1.joblib (supervised/supervised-1.joblib): "
        "artifact file is missing"
    ]


def test_an_absolute_path_is_read_as_it_stands(tmp_path, settings):
    settings.ML_MODEL_DIR = str(tmp_path / "elsewhere")
    artifact = tmp_path / "a.joblib"
    artifact.write_bytes(b"x")
    _version("deep", str(artifact))
    assert model_artifacts_missing() == []
    artifact.unlink()
    assert model_artifacts_missing() == [f"deep deep-{artifact} ({artifact}): artifact file is missing"]
