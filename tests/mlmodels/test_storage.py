"""Model artifacts through Django's storage API: a folder at ML_MODEL_DIR by default, any
backend configured as STORAGES["models"] otherwise (here Django's in-memory storage, standing in
for an object store); what serving loads is verified the same way from either."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.core.files.storage import InMemoryStorage, storages

from mlmodels.selectors import model_artifact_read, model_storage
from mlmodels.services import artifact_store, model_version_verify, model_versions_register
from mlmodels.serving import ModelArtifactError
from mlmodels.training import MODEL_NAMES, artifact_bytes
from tradeops.core.errors import ApplicationError

AT = datetime(2026, 1, 1, tzinfo=UTC)


def _register(trained, tag: str):
    written = []
    for name in MODEL_NAMES:
        version = f"{name}-{tag}"
        data = artifact_bytes(name=name, version=version, result=trained)
        written.append((name, version, *artifact_store(name=name, version=version, data=data)))
    return model_versions_register(actor="service:test", result=trained, artifacts=written, at=AT)


def test_by_default_artifacts_are_files_under_ml_model_dir(trained, settings, tmp_path, db):
    settings.ML_MODEL_DIR = str(tmp_path / "models")
    rows = _register(trained, "fs1")
    for row in rows:
        assert row.artifact_path == f"{row.name}/{row.version}.joblib"  # relative: the storage name
        assert (tmp_path / "models" / row.artifact_path).read_bytes() == model_artifact_read(row)
        assert model_version_verify(version=row).version == row.version


def test_a_configured_models_storage_holds_the_artifacts(trained, settings, tmp_path, db):
    settings.ML_MODEL_DIR = str(tmp_path / "unused")
    settings.STORAGES = {**settings.STORAGES, "models": {"BACKEND": "django.core.files.storage.InMemoryStorage"}}
    assert isinstance(model_storage(), InMemoryStorage)
    rows = _register(trained, "mem1")
    assert not (tmp_path / "unused").exists()
    for row in rows:
        assert storages["models"].exists(row.artifact_path)
        assert model_version_verify(version=row).name == row.name
    with pytest.raises(ApplicationError, match="exists already"):
        artifact_store(name=rows[0].name, version=rows[0].version, data=b"never over an artifact")
    storages["models"].delete(rows[0].artifact_path)
    with pytest.raises(ModelArtifactError, match="missing"):
        model_version_verify(version=rows[0])
