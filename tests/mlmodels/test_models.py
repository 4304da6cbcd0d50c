"""Both models on the shipped real EURUSD bars: honest out-of-sample accuracy beside the naive
baselines, a leak detector that would catch look-ahead, serving from verified artifacts."""

from __future__ import annotations

import hashlib
import io
from decimal import Decimal

import joblib
import numpy as np
import pytest

from mlmodels.fastpath import compile_row_predictor
from mlmodels.features import FEATURE_NAMES, FEATURE_SET, batch_features
from mlmodels.handlers import PredictionHandler, ValidatorSettings
from mlmodels.serving import ModelArtifactError, ModelFeatureMismatch, artifact_load
from mlmodels.training import (
    MODEL_NAMES,
    artifact_bytes,
    artifact_write,
    estimator_build,
    models_train,
    training_set_build,
    walk_forward_splits,
)
from tests.mlmodels.conftest import FAST
from tradeops.events import Features, Prediction, make_event


def test_out_of_sample_accuracy_is_reported_beside_the_baselines(trained):
    """No profitability claim: hourly EURUSD direction is close to a coin toss, and the report
    says so. What must hold: every fold is strictly out of sample, the metrics carry both
    baselines, and nothing scores like a model that saw the future."""
    wf = trained.metrics["walk_forward"]
    accuracy = wf["accuracy"]
    print(
        "\nout-of-sample accuracy over {rows} bars: supervised {supervised:.2%}, deep {deep:.2%}; "
        "baselines always-up {always_up:.2%}, previous-sign {previous_sign:.2%}".format(
            rows=wf["out_of_sample_rows"], **accuracy
        )
    )
    assert set(accuracy) == {*MODEL_NAMES, "always_up", "previous_sign"}
    assert wf["out_of_sample_rows"] > 2500
    for fold in wf["folds"]:
        assert fold["train_rows"] > 0 and fold["test_rows"] > 0
    # Honest bounds: a model on past-only features of hourly FX lands near 50%; far above means leakage.
    for name in MODEL_NAMES:
        assert 0.4 < accuracy[name] < 0.6, f"{name}: {accuracy[name]:.2%} is not credible for next-hour direction"


def test_the_leak_bound_catches_a_model_that_sees_the_future(real_bars):
    """The 60% bound above is not decorative: give a model the next bar's return and it trips."""
    data = training_set_build(real_bars.iloc[:1500])
    leaked = np.column_stack([data.X, np.where(data.y == 1, 1.0, -1.0) * 1e-4])
    train, test = next(walk_forward_splits(len(data.y), n_folds=1, gap=1))
    model = estimator_build("supervised", FAST).fit(leaked[train], data.y[train])
    assert np.mean(model.predict(leaked[test]) == data.y[test]) > 0.6


@pytest.fixture
def artifacts(trained, tmp_path):
    out = {}
    for name in MODEL_NAMES:
        path, sha = artifact_write(
            directory=tmp_path,
            name=name,
            version=f"{name}-t1",
            data=artifact_bytes(name=name, version=f"{name}-t1", result=trained),
        )
        out[name] = (path, sha)
    return out


def test_served_models_predict_with_their_versions(artifacts, real_bars):
    models = {n: artifact_load(path=p, sha256=s, name=n, version=f"{n}-t1") for n, (p, s) in artifacts.items()}
    handler = PredictionHandler()
    handler.install(models=models, settings=ValidatorSettings(min_confidence=0.5))
    feats = batch_features(real_bars.iloc[-300:])
    produced = []
    for ts, row in feats.iterrows():
        features = Features(
            symbol="EURUSD", ts=ts.to_pydatetime(), values=row.to_dict(), price=Decimal("1.2"), feature_set=FEATURE_SET
        )
        produced += handler.handle(make_event(features, source="test", key="EURUSD"))
    predictions = [e.payload for e in produced if isinstance(e.payload, Prediction)]
    assert len(predictions) == 2 * len(feats)
    assert {(p.model, p.model_version) for p in predictions} == {("supervised", "supervised-t1"), ("deep", "deep-t1")}
    assert all(0.5 <= p.probability <= 1 and p.direction in (1, -1) for p in predictions)
    assert all(m.row_predictor is not None for m in models.values())  # served through the fast path
    # Served probabilities equal the estimator's batch output on the same rows (one at a time == batched).
    batch = models["deep"].predict_up(feats.to_numpy())
    served = [p.probability if p.direction > 0 else 1 - p.probability for p in predictions if p.model == "deep"]
    np.testing.assert_allclose(served, batch, rtol=1e-12)
    other = Features(
        symbol="GBPJPY", ts=feats.index[0].to_pydatetime(), values=feats.iloc[0].to_dict(), price=Decimal(1)
    )
    assert handler.handle(make_event(other, source="test", key="GBPJPY")) == []  # not trained for it


def test_missing_artifact_is_a_clear_error(tmp_path):
    with pytest.raises(ModelArtifactError, match="artifact file is missing") as info:
        artifact_load(path=tmp_path / "nope.joblib", sha256="0" * 64, name="deep", version="deep-x")
    assert info.value.code == "model_artifact_missing"


def test_corrupt_artifact_is_refused_before_unpickling(artifacts):
    path, sha = artifacts["deep"]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelArtifactError, match="differs from the registry") as info:
        artifact_load(path=path, sha256=sha, name="deep", version="deep-t1")
    assert info.value.code == "model_artifact_corrupt"
    # Bytes that hash right but are not a model (a registry row pointing at garbage) are refused too.
    path.write_bytes(b"not a pickle")
    with pytest.raises(ModelArtifactError, match="cannot unpickle") as info:
        artifact_load(path=path, sha256=hashlib.sha256(b"not a pickle").hexdigest(), name="deep", version="deep-t1")
    assert info.value.code == "model_artifact_corrupt"


def test_feature_list_mismatch_is_refused(artifacts, tmp_path):
    path, _ = artifacts["supervised"]
    bundle = joblib.load(path)
    bundle["feature_names"] = [n for n in FEATURE_NAMES if n != "rsi_14"] + ["rsi_21"]
    buffer = io.BytesIO()
    joblib.dump(bundle, buffer)
    other = tmp_path / "mismatch.joblib"
    other.write_bytes(buffer.getvalue())
    with pytest.raises(ModelFeatureMismatch, match=r"missing \['rsi_14'\], unexpected \['rsi_21'\]") as info:
        artifact_load(path=other, sha256=hashlib.sha256(buffer.getvalue()).hexdigest(), name="supervised", version="s")
    assert info.value.code == "model_feature_mismatch"


@pytest.mark.parametrize("supervised", ["gbm", "logreg"])
def test_single_row_fast_path_reproduces_scikit_learn_on_every_real_row(real_bars, supervised):
    from dataclasses import replace

    result = models_train(real_bars.iloc[:1500], config=replace(FAST, n_folds=1, supervised=supervised))
    X = batch_features(real_bars).to_numpy()
    for name in MODEL_NAMES:
        row_predictor = compile_row_predictor(result.estimators[name], result.probe)
        assert row_predictor is not None, f"{name}: no fast path compiled"
        fast = np.array([row_predictor(x) for x in X])
        np.testing.assert_allclose(fast, result.estimators[name].predict_proba(X)[:, 1], rtol=0, atol=1e-12)


def test_unknown_estimators_fall_back_to_scikit_learn(trained):
    from sklearn.ensemble import RandomForestClassifier

    forest = RandomForestClassifier(n_estimators=3, random_state=0).fit(trained.probe, np.arange(64) % 2)
    assert compile_row_predictor(forest, trained.probe) is None


@pytest.mark.parametrize("depth", [1, 2, 3, 5])
def test_complete_tree_walk_gives_the_same_float_as_walking_each_tree(real_bars, depth):
    """The compiled GBM pads trees to complete ones (``fastpath._complete_trees``); its sum must
    be the very float the node-by-node walk gives (same leaves, summed in tree order)."""
    from sklearn.ensemble import GradientBoostingClassifier

    from mlmodels.fastpath import _complete_trees

    X = batch_features(real_bars).to_numpy()[:1200]
    y = (np.diff(X[:, 0], prepend=X[0, 0]) > 0).astype(int)  # any labels: the trees' shape is what is tested
    gbm = GradientBoostingClassifier(n_estimators=40, max_depth=depth, random_state=0).fit(X[:800], y[:800])
    trees = [t.tree_ for t in gbm.estimators_[:, 0]]
    raw_sum = _complete_trees(trees, max(t.max_depth for t in trees), gbm.learning_rate)
    for x in X[800:]:
        x32 = x.astype(np.float32).astype(np.float64)
        leaves = []
        for t in trees:
            node = 0
            while t.children_left[node] != -1:
                node = t.children_left[node] if x32[t.feature[node]] <= t.threshold[node] else t.children_right[node]
            leaves.append(t.value[node, 0, 0])
        assert raw_sum(x) == gbm.learning_rate * float(np.array(leaves).sum())


def test_a_reinstall_is_served_as_installed(artifacts, real_bars):
    """The handler reads what it needs of each model once per install: a re-install with other
    versions, without a fast path (scikit-learn then) or for other symbols is what it serves next."""
    from dataclasses import replace

    models = {n: artifact_load(path=p, sha256=s, name=n, version=f"{n}-t1") for n, (p, s) in artifacts.items()}
    handler = PredictionHandler()
    handler.install(models=models, settings=ValidatorSettings())
    feats = batch_features(real_bars.iloc[-120:])

    def served(symbol="EURUSD"):
        out = []
        for ts, row in feats.iterrows():
            features = Features(
                symbol=symbol,
                ts=ts.to_pydatetime(),
                values=row.to_dict(),
                price=Decimal("1.2"),
                feature_set=FEATURE_SET,
            )
            out += [e.payload for e in handler.handle(make_event(features, source="test", key=symbol))]
        return [p for p in out if isinstance(p, Prediction)]

    fast = served()
    slow_models = {n: replace(m, version=f"{n}-t2", row_predictor=None) for n, m in models.items()}
    handler.install(models=slow_models, settings=ValidatorSettings())
    slow = served()
    assert {p.model_version for p in slow} == {"supervised-t2", "deep-t2"}
    assert [(p.model, p.direction) for p in slow] == [(p.model, p.direction) for p in fast]
    np.testing.assert_allclose([p.probability for p in slow], [p.probability for p in fast], rtol=0, atol=1e-12)
    for name in MODEL_NAMES:  # scikit-learn's own answer, one row at a time
        up = [float(slow_models[name].predict_up(x[None, :])[0]) for x in feats.to_numpy()]
        expected = [(1, u) if u >= 0.5 else (-1, 1.0 - u) for u in up]
        assert [(p.direction, p.probability) for p in slow if p.model == name] == expected
    assert served("GBPJPY") == []  # not trained for it
    handler.install(
        models={n: replace(m, symbols=frozenset({"GBPJPY"})) for n, m in models.items()}, settings=ValidatorSettings()
    )
    assert len(served("GBPJPY")) == 2 * len(feats) and served("EURUSD") == []


def test_float32_bounds_decide_every_split_as_the_float32_cast_does():
    """The coded trees compare the float64 row with per-split bounds instead of casting it to
    float32 and back (``fastpath._float32_bounds``): on each side of every bound, at the
    threshold, at float32 neighbours, ties and the extremes, both must decide alike."""
    from math import inf, nan, nextafter

    from mlmodels.fastpath import _float32_bounds

    rng = np.random.default_rng(5)
    f32 = rng.normal(0, 1, 200).astype(np.float32) * np.float32(10.0) ** rng.integers(-20, 20, 200).astype(np.float32)
    upper = np.nextafter(f32, np.float32(inf))
    big = float(np.finfo(np.float32).max)
    thresholds = [
        *(rng.normal(0, 1, 300) * 10.0 ** rng.integers(-40, 39, 300)).tolist(),  # anywhere
        *f32.astype(float).tolist(),  # exactly a float32
        *((f32.astype(float) + upper.astype(float)) / 2).tolist(),  # ties between two float32s
        0.0,
        -0.0,
        big,
        -big,
        3.5e38,
        1e-45,
        -1e-45,
        inf,
    ]
    bounds = _float32_bounds(np.array([thresholds]))
    assert bounds is not None
    with np.errstate(over="ignore"):
        for t, b in zip(thresholds, bounds[0].tolist(), strict=True):
            near = float(np.float32(t))
            xs = [b, nextafter(b, inf), nextafter(b, -inf), t, nextafter(t, inf), nextafter(t, -inf), near]
            xs += [float(np.nextafter(np.float32(near), np.float32(s))) for s in (inf, -inf)]
            for x in [*xs, inf, -inf, nan]:
                assert (x <= b) == (float(np.float32(x)) <= t), (t, b, x)
