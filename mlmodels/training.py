"""Training: data set, walk-forward evaluation, fitting and artifacts. No Django.

The training set is built by the batch feature twin (``features.batch_features``), so the
columns a model sees in training are the columns serving computes bar by bar. The label of bar
t is the direction of the log return from close(t) to close(t + horizon); bars whose future is
not known yet, and flat bars, are left out.

Walk-forward: expanding training window, test blocks in time order, and ``horizon`` bars purged
between them, so no training label overlaps a test period. Every fold reports the two models'
accuracy beside two naive baselines computed on the same test rows: always-up and
previous-sign (predict the sign of the last bar's return).

Edge (``edge_measure``): over every out-of-sample row of every fold, a model's accuracy minus
the best baseline's, with the number of rows and a one-sided exact sign test (McNemar's test)
on the rows where the model and that baseline disagree: the p-value is the chance of the model
winning at least that many of those rows if it were no better than the baseline. A model
``beats_baselines`` when its edge is positive and that p-value is below ``EDGE_ALPHA``.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from mlmodels.features import FEATURE_NAMES, FEATURE_SET, batch_features
from mlmodels.serving import ARTIFACT_FORMAT, MODEL_NAMES

BASELINE_NAMES = ("always_up", "previous_sign")
EDGE_ALPHA = 0.05  # significance a model's lead over the best baseline must reach to count as an edge
PSI_BINS = 10

Progress = Callable[[str, float], None]  # (message, fraction done 0..1)


def _no_progress(message: str, fraction: float) -> None:
    pass


# ---------------------------------------------------------------- data


def load_shipped_bars() -> pd.DataFrame:
    """The real EURUSD H1 bars (2017-04-19 .. 2018-02-07, 5,000 rows) shipped by the pinned
    ``backtesting`` package. Index: bar open time, UTC."""
    resource = importlib.resources.files("backtesting").joinpath("test/EURUSD.csv")
    with resource.open("rb") as handle:
        bars = pd.read_csv(handle, index_col=0, parse_dates=True)
    bars.index = pd.DatetimeIndex(bars.index).tz_localize(UTC)
    bars.index.name = "open_time"
    return bars


@dataclass(frozen=True)
class TrainingSet:
    X: np.ndarray  # (n, len(FEATURE_NAMES))
    y: np.ndarray  # 1 up, 0 down
    times: pd.DatetimeIndex  # bar open time of each row
    prev_sign: np.ndarray  # sign of the last bar's return at t (the previous-sign baseline)


def training_set_build(bars: pd.DataFrame, *, horizon: int = 1, timeframe: str = "H1") -> TrainingSet:
    """Features at t (bars <= t) and the direction of close(t+horizon)/close(t) as the label."""
    if horizon < 1:
        raise ValueError("horizon must be at least one bar")
    feats = batch_features(bars, timeframe=timeframe)
    close = bars["Close"].astype(float)
    future = np.log(close.shift(-horizon) / close).reindex(feats.index)
    keep = future.notna() & (future != 0) & feats.notna().all(axis=1)
    feats, future = feats[keep], future[keep]
    return TrainingSet(
        X=feats.to_numpy(dtype=float),
        y=(future > 0).astype(int).to_numpy(),
        times=pd.DatetimeIndex(feats.index),
        prev_sign=np.sign(feats["ret_1"].to_numpy()),
    )


def walk_forward_splits(
    n: int, *, n_folds: int, gap: int, min_train_fraction: float = 0.4
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Expanding-window splits in time order: train [0, s - gap), test [s, e).

    ``gap`` (>= the label horizon) purges the rows whose labels look into the test block."""
    if n_folds < 1:
        raise ValueError("n_folds must be at least 1")
    first_test = int(n * min_train_fraction)
    edges = np.linspace(first_test, n, n_folds + 1).astype(int)
    for start, end in zip(edges[:-1], edges[1:], strict=True):
        train_end = start - gap
        if train_end <= 0 or end <= start:
            continue
        yield np.arange(0, train_end), np.arange(start, end)


# ---------------------------------------------------------------- models


@dataclass(frozen=True)
class TrainingConfig:
    horizon: int = 1
    timeframe: str = "H1"
    n_folds: int = 5
    supervised: str = "gbm"  # gbm | logreg
    gbm_estimators: int = 150
    gbm_depth: int = 2
    mlp_hidden: tuple[int, ...] = (32, 16)
    mlp_max_iter: int = 300
    seed: int = 7

    def as_dict(self) -> dict[str, Any]:
        return {
            "horizon": self.horizon,
            "timeframe": self.timeframe,
            "n_folds": self.n_folds,
            "supervised": self.supervised,
            "gbm_estimators": self.gbm_estimators,
            "gbm_depth": self.gbm_depth,
            "mlp_hidden": list(self.mlp_hidden),
            "mlp_max_iter": self.mlp_max_iter,
            "seed": self.seed,
        }


def estimator_build(name: str, config: TrainingConfig) -> Pipeline:
    """A fresh, unfitted estimator for one of ``MODEL_NAMES``."""
    if name == "supervised":
        if config.supervised == "logreg":
            return make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=1000))
        if config.supervised == "gbm":
            return make_pipeline(
                GradientBoostingClassifier(
                    n_estimators=config.gbm_estimators,
                    max_depth=config.gbm_depth,
                    learning_rate=0.05,
                    subsample=0.8,
                    random_state=config.seed,
                )
            )
        raise ValueError(f"unknown supervised model {config.supervised!r} (gbm | logreg)")
    if name == "deep":
        return make_pipeline(
            StandardScaler(),
            MLPClassifier(
                hidden_layer_sizes=config.mlp_hidden,
                alpha=1e-3,
                max_iter=config.mlp_max_iter,
                early_stopping=True,
                n_iter_no_change=15,
                random_state=config.seed,
            ),
        )
    raise ValueError(f"unknown model name {name!r}; known: {', '.join(MODEL_NAMES)}")


def drift_reference_build(X: np.ndarray) -> dict[str, Any]:
    """Per feature: decile bin edges of the training distribution and the share in each bin.

    The pattern validator compares the live window against this (population stability index).
    A feature with fewer distinct values than bins gets fewer bins (constant features: one)."""
    reference: dict[str, Any] = {"bins": PSI_BINS, "features": {}}
    for j, name in enumerate(FEATURE_NAMES):
        column = X[:, j]
        inner = np.unique(np.quantile(column, np.linspace(0, 1, PSI_BINS + 1)[1:-1]))
        counts = np.bincount(np.searchsorted(inner, column, side="right"), minlength=len(inner) + 1)
        reference["features"][name] = {
            "edges": [float(e) for e in inner],
            "expected": [float(c) / len(column) for c in counts],
        }
    return reference


@dataclass
class FoldResult:
    fold: int
    train_rows: int
    test_rows: int
    test_start: str
    test_end: str
    accuracy: dict[str, float]  # model or baseline name -> accuracy


@dataclass
class TrainingResult:
    config: TrainingConfig
    symbol: str
    feature_names: tuple[str, ...]
    train_start: datetime
    train_end: datetime
    n_samples: int
    folds: list[FoldResult]
    estimators: dict[str, Pipeline]
    drift_reference: dict[str, Any]
    metrics: dict[str, Any] = field(default_factory=dict)
    probe: np.ndarray | None = None  # a few training rows: serving checks its fast path on them


def _accuracy(pred: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(pred == y)) if len(y) else float("nan")


def edge_measure(*, model: str, correct: dict[str, np.ndarray]) -> dict[str, Any]:
    """The out-of-sample edge of ``model`` over the best baseline, on the same rows.

    ``correct`` maps the model and every baseline of ``BASELINE_NAMES`` to a boolean array, one
    entry per out-of-sample row (True where that predictor got the direction right). Returns
    accuracy, the best baseline and its accuracy, ``edge`` (the difference, a fraction), ``rows``,
    ``wins``/``losses`` (rows only the model / only the baseline got right), ``p_value`` (exact
    one-sided sign test on those rows) and ``beats_baselines`` (edge > 0 and p < ``EDGE_ALPHA``).
    The best baseline is picked on the same rows, so the comparison is a little in the
    baseline's favour: a model that still beats it has earned it."""
    ours = np.asarray(correct[model], dtype=bool)
    rows = len(ours)
    if rows == 0:
        raise ValueError("no out-of-sample rows to measure an edge on")
    accuracy = {name: float(np.mean(correct[name])) for name in (model, *BASELINE_NAMES)}
    best = max(BASELINE_NAMES, key=lambda name: accuracy[name])
    theirs = np.asarray(correct[best], dtype=bool)
    wins = int(np.sum(ours & ~theirs))
    losses = int(np.sum(~ours & theirs))
    from scipy.stats import binomtest  # ~0.9 s to import, and only the edge measure needs it

    p_value = float(binomtest(wins, wins + losses, 0.5, alternative="greater").pvalue) if wins + losses else 1.0
    edge = accuracy[model] - accuracy[best]
    return {
        "model": model,
        "accuracy": accuracy[model],
        "baseline": best,
        "baseline_accuracy": accuracy[best],
        "edge": edge,
        "rows": rows,
        "wins": wins,
        "losses": losses,
        "p_value": p_value,
        "alpha": EDGE_ALPHA,
        "test": "one-sided exact sign test (McNemar) on the rows where model and baseline disagree",
        "beats_baselines": bool(edge > 0 and p_value < EDGE_ALPHA),
    }


def models_train(
    bars: pd.DataFrame,
    *,
    symbol: str = "EURUSD",
    config: TrainingConfig | None = None,
    progress: Progress = _no_progress,
) -> TrainingResult:
    """Walk-forward evaluation of both models, then a final fit on every labelled row.

    Returns fitted estimators plus metrics; writes nothing (``artifact_write`` does)."""
    config = config or TrainingConfig()
    data = training_set_build(bars, horizon=config.horizon, timeframe=config.timeframe)
    n = len(data.y)
    if n < 200:
        raise ValueError(f"only {n} labelled rows; need at least 200 bars after the {config.timeframe} warm-up")
    splits = list(walk_forward_splits(n, n_folds=config.n_folds, gap=config.horizon))
    steps = len(splits) * len(MODEL_NAMES) + len(MODEL_NAMES)
    done = 0
    folds: list[FoldResult] = []
    hits: dict[str, list[np.ndarray]] = {name: [] for name in (*MODEL_NAMES, *BASELINE_NAMES)}
    for k, (train_idx, test_idx) in enumerate(splits, start=1):
        y_test = data.y[test_idx]
        predictions = {
            "always_up": np.ones_like(y_test),
            "previous_sign": (data.prev_sign[test_idx] > 0).astype(int),
        }
        for name in MODEL_NAMES:
            progress(f"fold {k}/{len(splits)}: fitting {name} on {len(train_idx)} rows", done / steps)
            model = estimator_build(name, config).fit(data.X[train_idx], data.y[train_idx])
            predictions[name] = model.predict(data.X[test_idx])
            done += 1
        accuracy = {}
        for name, predicted in predictions.items():
            accuracy[name] = _accuracy(predicted, y_test)
            hits[name].append(predicted == y_test)
        folds.append(
            FoldResult(
                fold=k,
                train_rows=len(train_idx),
                test_rows=len(test_idx),
                test_start=data.times[test_idx[0]].isoformat(),
                test_end=data.times[test_idx[-1]].isoformat(),
                accuracy=accuracy,
            )
        )
    estimators = {}
    for name in MODEL_NAMES:
        progress(f"final fit: {name} on {n} rows", done / steps)
        estimators[name] = estimator_build(name, config).fit(data.X, data.y)
        done += 1
    progress("done", 1.0)

    names = [*MODEL_NAMES, "always_up", "previous_sign"]
    test_rows = sum(f.test_rows for f in folds)
    pooled = {m: sum(f.accuracy[m] * f.test_rows for f in folds) / test_rows for m in names} if test_rows else {}
    correct = {name: np.concatenate(parts) for name, parts in hits.items()} if folds else {}
    metrics = {
        "walk_forward": {
            "folds": [f.__dict__ for f in folds],
            "out_of_sample_rows": test_rows,
            "accuracy": pooled,  # pooled over every test row of every fold
        },
        "edge": {name: edge_measure(model=name, correct=correct) for name in MODEL_NAMES} if folds else {},
        "label": f"direction of the {config.horizon}-bar log return (1 up, 0 down); flat bars dropped",
    }
    return TrainingResult(
        config=config,
        symbol=symbol,
        feature_names=FEATURE_NAMES,
        train_start=data.times[0].to_pydatetime(),
        train_end=data.times[-1].to_pydatetime(),
        n_samples=n,
        folds=folds,
        estimators=estimators,
        drift_reference=drift_reference_build(data.X),
        metrics=metrics,
        probe=data.X[:: max(1, n // 64)][:64].copy(),
    )


# ---------------------------------------------------------------- artifacts


def artifact_bytes(*, name: str, version: str, result: TrainingResult) -> bytes:
    """The joblib artifact of one model: the estimator plus what serving must check."""
    bundle = {
        "format": ARTIFACT_FORMAT,
        "model": name,
        "version": version,
        "estimator": result.estimators[name],
        "feature_names": list(result.feature_names),
        "feature_set": FEATURE_SET,
        "symbols": [result.symbol],
        "timeframe": result.config.timeframe,
        "horizon": result.config.horizon,
        "drift_reference": result.drift_reference,
        "probe": result.probe,
    }
    buffer = io.BytesIO()
    joblib.dump(bundle, buffer, compress=3)
    return buffer.getvalue()


def artifact_write(*, directory: Path, name: str, version: str, data: bytes) -> tuple[Path, str]:
    """Write the artifact (never overwriting one) and return (path, sha256)."""
    directory = Path(directory) / name
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{version}.joblib"
    with open(path, "xb") as handle:
        handle.write(data)
    return path, hashlib.sha256(data).hexdigest()
