"""Readers of the model registry and the validator configuration."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.files.storage import FileSystemStorage, Storage, storages

from mlmodels.handlers import ValidatorSettings
from mlmodels.models import ModelActivation, ModelVersion, ValidatorConfig
from tradeops.core.db_router import read_only
from tradeops.observability.cache import cached


def model_dir() -> Path:
    return Path(settings.ML_MODEL_DIR)


def model_storage() -> Storage:
    """Where model artifacts live, through Django's storage API: ``STORAGES["models"]`` when a
    deployment configures it (an object store, say), else a folder at ``ML_MODEL_DIR`` (read at
    each call, so a changed setting takes effect)."""
    if "models" in settings.STORAGES:
        return storages["models"]
    return FileSystemStorage(location=settings.ML_MODEL_DIR)


def model_artifact_read(version: ModelVersion) -> bytes:
    """The artifact's bytes from the model storage (an absolute ``artifact_path``, as versions
    registered before the storage API have, is read from that file). Raises
    ``ModelArtifactError`` (``model_artifact_missing``) when it is not there."""
    from mlmodels.serving import ModelArtifactError

    label = f"{version.name} {version.version} ({version.artifact_path})"
    try:
        if Path(version.artifact_path).is_absolute():
            return Path(version.artifact_path).read_bytes()
        with model_storage().open(version.artifact_path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        raise ModelArtifactError(f"{label}: artifact file is missing", code="model_artifact_missing") from None
    except OSError as exc:
        raise ModelArtifactError(f"{label}: cannot read artifact: {exc}", code="model_artifact_missing") from None


def model_artifact_path(version: ModelVersion) -> Path:
    """The artifact's absolute path (relative paths are under ``ML_MODEL_DIR``)."""
    path = Path(version.artifact_path)
    return path if path.is_absolute() else model_dir() / path


def model_artifacts_missing() -> list[str]:
    """The active versions whose artifact cannot be read from the model storage (each as
    ``name version (path): why``), none when every active model can serve. A database whose
    active models were trained by another checkout (its own ``var/models``) names them all: the
    prediction stage then serves nothing and the pipeline makes no signal
    (``scripts/cluster.sh setup`` trains again; 2026-12-06, wip/walk50)."""
    missing = []
    for version in ModelVersion.objects.filter(is_active=True).order_by("name"):
        path = Path(version.artifact_path)
        readable = path.is_file() if path.is_absolute() else model_storage().exists(version.artifact_path)
        if not readable:
            missing.append(f"{version.name} {version.version} ({version.artifact_path}): artifact file is missing")
    return missing


def model_versions_active() -> dict[str, ModelVersion]:
    """Active version per model name."""
    return {v.name: v for v in ModelVersion.objects.filter(is_active=True)}


def validator_config_get() -> ValidatorConfig:
    """The configuration row, or an unsaved one with the defaults when none was saved yet."""
    return ValidatorConfig.objects.filter(pk=1).first() or ValidatorConfig(pk=1)


def validator_settings_get() -> ValidatorSettings:
    """The validator's thresholds (model configuration: cached, strict)."""
    return cached("models", "validator-settings", _validator_settings_load)


def _validator_settings_load() -> ValidatorSettings:
    config = validator_config_get()
    return ValidatorSettings(
        min_confidence=config.min_confidence,
        psi_limit=config.psi_limit,
        drift_window=config.drift_window,
        algo_id=config.algo_id,
        enabled=config.enabled,
    )


def serving_stamp() -> tuple:
    """Cheap fingerprint of what serving should run: the active versions and the validator
    configuration. Serving reloads when it changes. Cached (strict): an activation, a rollback or
    a threshold change anywhere is seen by the next check."""
    return cached("models", "serving-stamp", _serving_stamp_load)


def _serving_stamp_load() -> tuple:
    active = tuple(ModelVersion.objects.filter(is_active=True).order_by("name").values_list("name", "artifact_sha256"))
    config = ValidatorConfig.objects.filter(pk=1).values_list("updated_at", "pk").first()
    return active, config


@read_only
def model_activation_history(*, name: str, limit: int = 20) -> list[ModelActivation]:
    return list(ModelActivation.objects.filter(name=name).select_related("version", "previous")[:limit])


def model_edges_active() -> list[tuple[ModelVersion, ModelActivation | None]]:
    """Each active version (by name) with the activation that made it active: what the
    dashboard shows about the models trading now, their edge and any no-edge override."""
    rows = []
    for version in ModelVersion.objects.filter(is_active=True).order_by("name"):
        activation = ModelActivation.objects.filter(version=version).first()  # newest first
        rows.append((version, activation))
    return rows


def algo_ids_configured() -> list[str]:
    """The algorithm id the pattern validator stamps on its signals (``ValidatorConfig.algo_id``):
    an algorithm the platform knows before its first order (the kill switch's
    ``KILL_SWITCH_ALGO_SOURCES``)."""
    return [validator_config_get().algo_id]
