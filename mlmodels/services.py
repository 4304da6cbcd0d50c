"""Writers of the model registry: training runs, activation, rollback, validator thresholds.

Activation is refused (``ModelArtifactError``) unless the artifact loads and verifies: file
present, sha256 equal to the registry's, bundle unpickles, feature list equal to what serving
computes. So a corrupt or mismatched model never becomes active and the previous one keeps
serving. Activation of a model that does not beat the naive baselines out of sample
(``ModelVersion.has_edge`` False) is refused too (``model_no_edge``) unless the caller says
``allow_no_edge`` and gives a reason; the override is kept on the ``ModelActivation`` row and in
the audit record, with who and why. Every activation, rollback and threshold change writes an
audit record in the same transaction (RTS 6 Art. 9: the firm can show which model version was
live when, how it had tested, and who decided; Art. 12: signals carry the versions).
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime

from django.core.files.base import ContentFile
from django.db import transaction

from mlmodels.features import FEATURE_SET
from mlmodels.models import VALIDATOR_FIELDS, ModelActivation, ModelVersion, ValidatorConfig
from mlmodels.selectors import model_artifact_path, model_artifact_read, model_dir, model_storage
from mlmodels.serving import artifact_load
from mlmodels.training import (
    MODEL_NAMES,
    Progress,
    TrainingConfig,
    TrainingResult,
    artifact_bytes,
    load_shipped_bars,
    models_train,
)
from tradeops.audit.actors import user_actor
from tradeops.core.clock import utcnow
from tradeops.core.errors import ApplicationError, NotFound, PermissionDenied

logger = logging.getLogger(__name__)


class ModelRegistryError(ApplicationError):
    code = "model_registry_error"


def _audit(*, action: str, actor: str, user=None, obj, payload: dict, at: datetime) -> None:
    """Append the audit record for a registry change. Called inside the writer's transaction."""
    from mlmodels import audit_hook  # late: wires the core audit trail when it is present

    audit_hook.record(action=action, actor=actor, user=user, obj=obj, payload=payload, at=at)


def _actor_label(*, actor: str, user) -> str:
    if user is not None and getattr(user, "is_authenticated", False):
        return user_actor(user)
    return actor


# ---------------------------------------------------------------- training


def model_training_run(
    *,
    actor: str,
    config: TrainingConfig | None = None,
    symbol: str = "EURUSD",
    bars=None,
    activate: bool = False,
    allow_no_edge: bool = False,
    reason: str = "",
    progress: Progress | None = None,
) -> list[ModelVersion]:
    """Train both models on ``bars`` (default: the shipped real EURUSD H1 bars), write their
    artifacts under ``ML_MODEL_DIR`` and register them as candidates with their out-of-sample
    edge; activate them too when ``activate`` (``model_versions_activate``: both or neither, and
    a model without an edge only with ``allow_no_edge`` and a ``reason``). Training runs outside
    any transaction (it takes seconds); the registration is atomic and stays when the activation
    is refused. Side effects: two artifact files, two ModelVersion rows, audit records."""
    config = config or TrainingConfig()
    bars = load_shipped_bars() if bars is None else bars
    result = models_train(bars, symbol=symbol, config=config, progress=progress or (lambda m, f: None))
    stamp = utcnow()
    written = []
    for name in MODEL_NAMES:
        version = f"{name}-{stamp:%Y%m%dT%H%M%S%fZ}"
        data = artifact_bytes(name=name, version=version, result=result)
        path, sha256 = artifact_store(name=name, version=version, data=data)
        written.append((name, version, path, sha256))
    versions = model_versions_register(actor=actor, result=result, artifacts=written, at=stamp)
    if activate:
        model_versions_activate(
            versions=versions,
            actor=actor,
            reason=reason,
            allow_no_edge=allow_no_edge,
        )
    return versions


def artifact_store(*, name: str, version: str, data: bytes) -> tuple[str, str]:
    """Save an artifact through the model storage (``mlmodels.selectors.model_storage``), never
    over an existing one; returns (storage name, sha256)."""
    storage = model_storage()
    target = f"{name}/{version}.joblib"
    if storage.exists(target):
        raise ApplicationError(f"model artifact {target} exists already", code="model_artifact_exists")
    saved = storage.save(target, ContentFile(data))
    return saved, hashlib.sha256(data).hexdigest()


@transaction.atomic
def model_versions_register(
    *, actor: str, result: TrainingResult, artifacts: list[tuple[str, str, object, str]], at: datetime
) -> list[ModelVersion]:
    """Register trained artifacts as candidate versions (inactive)."""
    rows = []
    base = model_dir()
    for name, version, path, sha256 in artifacts:
        if isinstance(path, str):  # a storage name (artifact_store)
            stored_path = path
        else:
            try:
                stored_path = str(path.relative_to(base))
            except ValueError:
                stored_path = str(path)
        estimator = result.estimators[name]
        edge = result.metrics.get("edge", {}).get(name, {})
        row = ModelVersion.objects.create(
            name=name,
            version=version,
            algorithm=" > ".join(type(step).__name__ for _, step in estimator.steps),
            artifact_path=stored_path,
            artifact_sha256=sha256,
            feature_names=list(result.feature_names),
            feature_set=FEATURE_SET,
            symbol=result.symbol,
            timeframe=result.config.timeframe,
            horizon=result.config.horizon,
            train_start=result.train_start,
            train_end=result.train_end,
            n_samples=result.n_samples,
            params=result.config.as_dict(),
            metrics=result.metrics,
            drift_reference=result.drift_reference,
            edge=edge.get("edge"),
            edge_baseline=edge.get("baseline", ""),
            edge_rows=edge.get("rows"),
            edge_p_value=edge.get("p_value"),
            has_edge=bool(edge.get("beats_baselines")),
            created_at=at,
            created_by=actor,
        )
        _audit(
            action="model.registered",
            actor=actor,
            obj=row,
            payload={
                "version": version,
                "sha256": sha256,
                "accuracy": result.metrics["walk_forward"]["accuracy"],
                "edge": edge,
            },
            at=at,
        )
        rows.append(row)
    return rows


# ---------------------------------------------------------------- activation


def model_version_verify(*, version: ModelVersion):
    """Load and verify the artifact exactly as serving will. Raises ModelArtifactError."""
    return artifact_load(
        path=model_artifact_path(version),
        sha256=version.artifact_sha256,
        name=version.name,
        version=version.version,
        data=model_artifact_read(version),
    )


def edge_figures(version: ModelVersion) -> dict:
    """The version's out-of-sample edge as recorded in the audit trail."""
    return {
        "edge": version.edge,
        "baseline": version.edge_baseline,
        "rows": version.edge_rows,
        "p_value": version.edge_p_value,
        "has_edge": version.has_edge,
    }


def check_model_edge(*, version: ModelVersion, allow_no_edge: bool, reason: str) -> bool:
    """Refuse to activate a model that does not beat the baselines out of sample (code
    ``model_no_edge``), unless ``allow_no_edge``; an override needs a reason (code
    ``model_no_edge_reason_required``). Returns True when the activation is such an override."""
    if version.has_edge:
        return False
    if not allow_no_edge:
        raise ModelRegistryError(
            f"{version.version} does not beat the baselines out of sample ({version.edge_summary}); "
            "activating it needs the explicit no-edge override with a reason",
            code="model_no_edge",
        )
    if not reason.strip():
        raise ModelRegistryError(
            f"{version.version} has no edge: say why it is activated anyway", code="model_no_edge_reason_required"
        )
    return True


def _switch(
    *, version: ModelVersion, action: str, actor: str, user, reason: str, allow_no_edge: bool = False
) -> ModelVersion:
    override = False
    if action == ModelActivation.Action.ACTIVATE:
        override = check_model_edge(version=version, allow_no_edge=allow_no_edge, reason=reason)
    model_version_verify(version=version)  # refuses before anything changes
    at = utcnow()
    # Lock every version of this name in pk order, so two concurrent activations serialise.
    rows = list(ModelVersion.objects.filter(name=version.name).order_by("pk").select_for_update())
    previous = next((r for r in rows if r.is_active), None)
    label = _actor_label(actor=actor, user=user)
    if previous is not None and previous.pk == version.pk:
        raise ModelRegistryError(f"{version.version} is already the active {version.name} model", code="already_active")
    if previous is not None:
        ModelVersion.objects.filter(pk=previous.pk).update(is_active=False)
    ModelVersion.objects.filter(pk=version.pk).update(
        is_active=True,
        activated_at=at,
        activated_by=user if user is not None and getattr(user, "pk", None) else None,
        activated_by_label=label,
    )
    version.refresh_from_db()
    ModelActivation.objects.create(
        name=version.name,
        version=version,
        previous=previous,
        action=action,
        actor=label,
        reason=reason,
        no_edge_override=override,
        at=at,
    )
    _audit(
        action=f"model.{'activated' if action == ModelActivation.Action.ACTIVATE else 'rolled_back'}",
        actor=label,
        user=user,
        obj=version,
        payload={
            "model": version.name,
            "version": version.version,
            "sha256": version.artifact_sha256,
            "previous_version": previous.version if previous else None,
            "reason": reason,
            "edge": edge_figures(version),
            "no_edge_override": override,
        },
        at=at,
    )
    logger.info("%s %s model %s (was %s)", label, action, version.version, previous.version if previous else "none")
    if override:
        logger.warning("%s activated %s WITHOUT an edge (%s): %s", label, version.version, version.edge_summary, reason)
    return version


@transaction.atomic
def model_version_activate(
    *, version: ModelVersion, actor: str, user=None, reason: str = "", allow_no_edge: bool = False
) -> ModelVersion:
    """Make ``version`` the active model of its name; the previously active one is retired.

    Raises (nothing changes) ModelRegistryError ``model_no_edge`` when the model does not beat
    the baselines out of sample and ``allow_no_edge`` is not given, ``model_no_edge_reason_required``
    when it is given without a reason, ``already_active``; ModelArtifactError when the artifact is
    missing, corrupt or has a different feature list. An override is recorded on the activation
    row and in the audit record (who, why, the edge figures)."""
    return _switch(
        version=version,
        action=ModelActivation.Action.ACTIVATE,
        actor=actor,
        user=user,
        reason=reason,
        allow_no_edge=allow_no_edge,
    )


def model_versions_activate(
    *, versions: list[ModelVersion], actor: str, user=None, reason: str = "", allow_no_edge: bool = False
) -> list[ModelVersion]:
    """Activate several versions (a training run's pair): every one is checked for its edge
    first, so either all are activated or, when one lacks an edge and no override is given,
    none is (the validator needs both models; a half-switched pair would mix training runs).
    Without a ``reason`` the activation is recorded as that of the training run; an override
    must carry the caller's own reason, no default stands in for it."""
    reason = reason.strip() or ("" if allow_no_edge else "activated with its training run")
    for version in versions:
        check_model_edge(version=version, allow_no_edge=allow_no_edge, reason=reason)
    return [
        model_version_activate(version=v, actor=actor, user=user, reason=reason, allow_no_edge=allow_no_edge)
        for v in versions
    ]


@transaction.atomic
def model_version_rollback(*, name: str, actor: str, user=None, reason: str = "") -> ModelVersion:
    """Re-activate the version that was active when the current one of model ``name`` was
    activated. Repeated rollbacks step further back (v3 -> v2 -> v1), never forward again.

    Raises NotFound when there is no earlier version to return to; ModelArtifactError when its
    artifact no longer verifies (the current version stays active)."""
    current = ModelVersion.objects.filter(name=name, is_active=True).first()
    activated = (
        ModelActivation.objects.filter(name=name, version=current, action=ModelActivation.Action.ACTIVATE)
        .select_related("previous")
        .first()
        if current
        else None
    )
    target = activated.previous if activated is not None else None
    if target is None:
        raise NotFound(f"no earlier {name} model version to roll back to", code="no_previous_version")
    return _switch(version=target, action=ModelActivation.Action.ROLLBACK, actor=actor, user=user, reason=reason)


# ---------------------------------------------------------------- validator thresholds


def check_validator_config(*, min_confidence: float, psi_limit: float, drift_window: int) -> None:
    """Refuse thresholds that would make the validator meaningless (code ``invalid_validator_config``)."""
    if not 0.5 <= min_confidence <= 1.0:
        raise ModelRegistryError("min_confidence must be within [0.5, 1]", code="invalid_validator_config")
    if psi_limit <= 0:
        raise ModelRegistryError("psi_limit must be positive", code="invalid_validator_config")
    if drift_window < 20:
        raise ModelRegistryError("drift_window must be at least 20 vectors", code="invalid_validator_config")


@transaction.atomic
def validator_config_update(*, actor: str, user=None, **changes) -> ValidatorConfig:
    """Change the validator's thresholds (only the named fields). Serving picks them up on its
    next registry check. Refuses out-of-range values with code ``invalid_validator_config``, and
    a person who may not change the thresholds (``mlmodels.change_validatorconfig``: risk managers
    and admins; RTS 6: algorithm changes are owned by risk) with ``permission_denied``; the
    admin offers them no form either. ``user=None`` is a command or a service acting for itself."""
    if user is not None and not user.has_perm("mlmodels.change_validatorconfig"):
        raise PermissionDenied(
            f"{user.get_username()} may not change the validator's thresholds: a risk manager or an admin does"
        )
    unknown = set(changes) - set(VALIDATOR_FIELDS)
    if unknown:
        raise ModelRegistryError(f"unknown validator settings: {sorted(unknown)}", code="invalid_validator_config")
    config, _ = ValidatorConfig.objects.select_for_update().get_or_create(pk=1)
    before = {f: getattr(config, f) for f in VALIDATOR_FIELDS}
    for field, value in changes.items():
        setattr(config, field, value)
    check_validator_config(
        min_confidence=config.min_confidence, psi_limit=config.psi_limit, drift_window=config.drift_window
    )
    at = utcnow()
    label = _actor_label(actor=actor, user=user)
    config.updated_at = at
    config.updated_by = label
    config.save()
    after = {f: getattr(config, f) for f in VALIDATOR_FIELDS}
    _audit(
        action="model.validator_config_changed",
        actor=label,
        user=user,
        obj=config,
        payload={"before": before, "after": after},
        at=at,
    )
    return config
