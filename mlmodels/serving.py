"""Loading a model artifact for serving, with every check done before it can serve. No Django.

An artifact is refused with a clear error (and the caller keeps the model it already serves)
when the file is missing, when its sha256 differs from the registry's (checked before the
bytes are unpickled, so a tampered file is never executed), when it does not unpickle into the
expected bundle, or when its feature list differs from the one serving computes.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np

from mlmodels.fastpath import RowPredictor, compile_row_predictor
from mlmodels.features import FEATURE_NAMES
from tradeops.core.errors import ApplicationError

# What an artifact is, as the trainer writes it (``mlmodels.training`` imports these): defined here,
# the reader's side, so serving never imports the trainer (scikit-learn's estimators, SciPy, pandas:
# ~1.5 s of a start-up that then loads only the estimators its artifacts hold).
ARTIFACT_FORMAT = 1
MODEL_NAMES = ("supervised", "deep")


class ModelArtifactError(ApplicationError):
    """The artifact cannot serve: missing, corrupt, or not the model the registry describes."""

    code = "model_artifact_invalid"


class ModelFeatureMismatch(ModelArtifactError):
    code = "model_feature_mismatch"


@dataclass(frozen=True)
class ServingModel:
    """A loaded, verified model. ``predict_up`` returns P(up) for each row of ``X``."""

    name: str
    version: str
    estimator: Any
    feature_names: tuple[str, ...]
    symbols: frozenset[str]
    timeframe: str
    horizon: int
    drift_reference: dict
    row_predictor: RowPredictor | None = None  # verified numpy fast path for one row

    def predict_up(self, X: np.ndarray) -> np.ndarray:
        """P(up) for each row of a 2-d batch (scikit-learn)."""
        return self.estimator.predict_proba(X)[:, 1]

    def predict_up_one(self, x: np.ndarray) -> float:
        """P(up) for one 1-d feature row: the compiled fast path when there is one."""
        if self.row_predictor is not None:
            return self.row_predictor(x)
        return float(self.estimator.predict_proba(x.reshape(1, -1))[0, 1])


def artifact_load(
    *,
    path: str | Path,
    sha256: str,
    name: str,
    version: str,
    expected_features: tuple[str, ...] = FEATURE_NAMES,
    data: bytes | None = None,
) -> ServingModel:
    """Read (unless ``data``, the bytes already read through the model storage, is given),
    verify and unpickle one artifact. Raises ModelArtifactError (code
    ``model_artifact_missing`` / ``model_artifact_corrupt`` / ``model_feature_mismatch``)."""
    path = Path(path)
    label = f"{name} {version} ({path})"
    try:
        data = path.read_bytes() if data is None else data
    except FileNotFoundError:
        raise ModelArtifactError(f"{label}: artifact file is missing", code="model_artifact_missing") from None
    except OSError as exc:
        raise ModelArtifactError(f"{label}: cannot read artifact: {exc}", code="model_artifact_missing") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise ModelArtifactError(
            f"{label}: sha256 {digest[:12]}... differs from the registry's {sha256[:12]}... "
            "(corrupt or replaced file; refusing to unpickle it)",
            code="model_artifact_corrupt",
        )
    try:
        bundle = joblib.load(io.BytesIO(data))
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means the same thing to the operator
        raise ModelArtifactError(f"{label}: cannot unpickle: {exc!r}", code="model_artifact_corrupt") from None
    if not isinstance(bundle, dict) or bundle.get("format") != ARTIFACT_FORMAT or "estimator" not in bundle:
        raise ModelArtifactError(f"{label}: not a tradeops model artifact (format 1)", code="model_artifact_corrupt")
    if bundle.get("model") != name:
        raise ModelArtifactError(
            f"{label}: artifact holds model {bundle.get('model')!r}, registry says {name!r}",
            code="model_artifact_corrupt",
        )
    features = tuple(bundle.get("feature_names") or ())
    if features != tuple(expected_features):
        missing = [f for f in expected_features if f not in features]
        extra = [f for f in features if f not in expected_features]
        detail = f"missing {missing}, unexpected {extra}" if missing or extra else "same names, different order"
        raise ModelFeatureMismatch(
            f"{label}: trained on a feature list serving does not compute ({detail})",
            extra={"model_features": list(features), "serving_features": list(expected_features)},
        )
    probe = bundle.get("probe")
    row_predictor = None
    if isinstance(probe, np.ndarray) and probe.ndim == 2 and probe.shape[1] == len(features) and len(probe):
        row_predictor = compile_row_predictor(bundle["estimator"], probe)
    return ServingModel(
        name=name,
        version=version,
        estimator=bundle["estimator"],
        feature_names=features,
        symbols=frozenset(bundle.get("symbols") or ()),
        timeframe=str(bundle.get("timeframe", "H1")),
        horizon=int(bundle.get("horizon", 1)),
        drift_reference=bundle.get("drift_reference") or {},
        row_predictor=row_predictor,
    )
