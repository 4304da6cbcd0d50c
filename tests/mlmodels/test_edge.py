"""Models without an edge say so: the out-of-sample edge over the naive baselines is measured,
stored and shown; activating a model that does not beat them needs an explicit, audited override."""

from __future__ import annotations

from datetime import UTC, datetime
from io import StringIO

import numpy as np
import pandas as pd
import pytest
from django.core.management import CommandError, call_command

from mlmodels.models import ModelActivation, ModelVersion
from mlmodels.services import ModelRegistryError, model_version_activate, model_versions_register
from mlmodels.training import BASELINE_NAMES, MODEL_NAMES, artifact_bytes, artifact_write, edge_measure, models_train
from tests.mlmodels.conftest import FAST, NO_EDGE
from tradeops.audit.models import AuditRecord

# ---------------------------------------------------------------- the measure


def _correct(n: int, right: list[int]) -> np.ndarray:
    out = np.zeros(n, dtype=bool)
    out[right] = True
    return out


def test_edge_is_accuracy_minus_the_best_baseline_with_an_exact_sign_test():
    n = 200
    shared = list(range(100))  # rows every predictor gets right
    correct = {
        "deep": _correct(n, shared + list(range(100, 110))),  # ten more rows right than always-up
        "always_up": _correct(n, shared),
        "previous_sign": _correct(n, shared[:90]),
    }
    edge = edge_measure(model="deep", correct=correct)
    assert edge["baseline"] == "always_up" and edge["rows"] == n
    assert edge["accuracy"] == 0.55 and edge["baseline_accuracy"] == 0.5
    assert edge["edge"] == pytest.approx(0.05)
    assert (edge["wins"], edge["losses"]) == (10, 0)
    assert edge["p_value"] == pytest.approx(0.5**10)  # ten wins out of ten disagreements by chance
    assert edge["beats_baselines"] is True


def test_a_lead_that_chance_explains_is_no_edge():
    n = 200
    shared = list(range(96))
    correct = {
        "deep": _correct(n, shared + list(range(100, 106))),  # 6 rows only it gets right...
        "always_up": _correct(n, shared + list(range(150, 154))),  # ...and 4 only the baseline does
        "previous_sign": _correct(n, []),
    }
    edge = edge_measure(model="deep", correct=correct)
    assert edge["edge"] == pytest.approx(0.01) and (edge["wins"], edge["losses"]) == (6, 4)
    assert edge["p_value"] == pytest.approx(386 / 1024)  # P(X >= 6), X ~ Binomial(10, 1/2)
    assert edge["beats_baselines"] is False


def test_the_best_baseline_is_the_one_to_beat():
    n = 100
    correct = {
        "supervised": _correct(n, list(range(60))),
        "always_up": _correct(n, list(range(50))),
        "previous_sign": _correct(n, list(range(65))),
    }
    edge = edge_measure(model="supervised", correct=correct)
    assert edge["baseline"] == "previous_sign" and edge["edge"] == pytest.approx(-0.05)
    assert edge["beats_baselines"] is False


def test_training_stores_each_models_edge_over_every_out_of_sample_row(trained):
    walk_forward = trained.metrics["walk_forward"]
    accuracy = walk_forward["accuracy"]
    for name in MODEL_NAMES:
        edge = trained.metrics["edge"][name]
        best = max(BASELINE_NAMES, key=accuracy.get)
        assert edge["baseline"] == best and edge["rows"] == walk_forward["out_of_sample_rows"]
        assert edge["edge"] == pytest.approx(accuracy[name] - accuracy[best])
        assert edge["wins"] - edge["losses"] == round(edge["edge"] * edge["rows"])
        assert 0 <= edge["p_value"] <= 1


def zigzag_bars(n: int = 900) -> pd.DataFrame:
    """Hourly bars whose returns alternate in sign: the next bar's direction IS predictable from
    the last one (a model learns it; always-up stays at a coin toss)."""
    rng = np.random.default_rng(11)
    returns = np.where(np.arange(n) % 2 == 0, 0.0012, -0.001) + rng.normal(0, 0.0002, n)
    close = 1.1 * np.exp(np.cumsum(returns))
    open_ = np.concatenate([[1.1], close[:-1]])
    index = pd.date_range("2017-04-19", periods=n, freq="h", tz=UTC, name="open_time")
    return pd.DataFrame(
        {
            "Open": open_,
            "High": np.maximum(open_, close) + 0.0002,
            "Low": np.minimum(open_, close) - 0.0002,
            "Close": close,
            "Volume": rng.integers(100, 1000, n),
        },
        index=index,
    )


@pytest.fixture(scope="module")
def trained_with_edge():
    return models_train(zigzag_bars(), config=FAST)


def test_a_predictable_market_gives_a_significant_edge(trained_with_edge):
    for name in MODEL_NAMES:
        edge = trained_with_edge.metrics["edge"][name]
        assert edge["edge"] > 0.2 and edge["p_value"] < 1e-6 and edge["beats_baselines"], edge


# ---------------------------------------------------------------- registry and activation


@pytest.fixture
def model_dir(settings, tmp_path):
    settings.ML_MODEL_DIR = str(tmp_path / "models")
    return tmp_path / "models"


def _register(result, tag, model_dir) -> dict[str, ModelVersion]:
    artifacts = []
    for name in MODEL_NAMES:
        version = f"{name}-{tag}"
        path, sha = artifact_write(
            directory=model_dir,
            name=name,
            version=version,
            data=artifact_bytes(name=name, version=version, result=result),
        )
        artifacts.append((name, version, path, sha))
    rows = model_versions_register(
        actor="service:test", result=result, artifacts=artifacts, at=datetime(2026, 1, 1, tzinfo=UTC)
    )
    return {r.name: r for r in rows}


def test_activation_without_an_edge_is_refused_then_allowed_and_audited_with_the_override(trained, model_dir, db):
    deep = _register(trained, "v1", model_dir)["deep"]
    assert deep.has_edge is False and deep.edge == trained.metrics["edge"]["deep"]["edge"]
    assert deep.edge_rows > 0 and deep.edge_baseline in BASELINE_NAMES and deep.edge_p_value is not None
    registered = AuditRecord.objects.get(action="model.registered", object_id=str(deep.pk))
    assert registered.payload_data["edge"]["beats_baselines"] is False

    with pytest.raises(ModelRegistryError) as refused:
        model_version_activate(version=deep, actor="user:risk", reason="looks fine")
    assert refused.value.code == "model_no_edge" and "does not beat the baselines" in str(refused.value)
    with pytest.raises(ModelRegistryError) as no_reason:
        model_version_activate(version=deep, actor="user:risk", allow_no_edge=True, reason="  ")
    assert no_reason.value.code == "model_no_edge_reason_required"
    assert not ModelVersion.objects.filter(is_active=True).exists() and not ModelActivation.objects.exists()
    assert not AuditRecord.objects.filter(action="model.activated").exists()

    model_version_activate(version=deep, actor="user:risk", allow_no_edge=True, reason="demo of the pipeline")
    activation = ModelActivation.objects.get()
    assert activation.no_edge_override and activation.reason == "demo of the pipeline"
    record = AuditRecord.objects.get(action="model.activated")
    assert record.actor_id == "risk" and record.payload_data["reason"] == "demo of the pipeline"
    assert record.payload_data["no_edge_override"] is True
    assert record.payload_data["edge"]["has_edge"] is False and record.payload_data["edge"]["edge"] == deep.edge


def test_a_model_with_an_edge_activates_without_any_override(trained_with_edge, model_dir, db):
    deep = _register(trained_with_edge, "edge", model_dir)["deep"]
    assert deep.has_edge and deep.edge_p_value < 0.05
    model_version_activate(version=deep, actor="user:risk")
    assert ModelActivation.objects.get().no_edge_override is False
    assert AuditRecord.objects.get(action="model.activated").payload_data["no_edge_override"] is False


# ---------------------------------------------------------------- train_models


@pytest.mark.slow
def test_train_models_prints_the_edge_and_refuses_to_activate_without_it(model_dir, db):
    out = StringIO()
    with pytest.raises(CommandError) as refused:
        call_command("train_models", "--activate", "--folds", "2", "--estimators", "20", stdout=out)
    text = out.getvalue()
    assert "edge out of sample" in text and "NO EDGE" in text and "pts vs " in text and "p=" in text
    assert "No model beats the naive baselines" in text
    assert (
        "[model_no_edge]" in str(refused.value)
        or "model_no_edge" in str(refused.value)
        or "does not beat" in str(refused.value)
    )
    assert "--allow-no-edge" in str(refused.value)
    assert ModelVersion.objects.count() == 2 and not ModelVersion.objects.filter(is_active=True).exists()
    with pytest.raises(CommandError, match="needs --reason"):
        call_command("train_models", "--activate", "--allow-no-edge", stdout=StringIO())


@pytest.mark.slow
def test_train_models_task_reports_a_refused_activation(model_dir, db):
    from mlmodels.tasks import models_train_task

    result = models_train_task.apply(kwargs={"activate": True, "n_folds": 2, "gbm_estimators": 20, "mlp_max_iter": 50})
    assert result.successful(), result.traceback
    assert result.result["activated"] is False and result.result["activation_refused"]["code"] == "model_no_edge"
    assert set(result.result["edge"]) == set(MODEL_NAMES)
    assert not ModelVersion.objects.filter(is_active=True).exists()


# ---------------------------------------------------------------- admin and dashboard


def test_admin_refuses_a_model_without_an_edge_and_audits_the_override_with_its_reason(
    trained, model_dir, admin_client
):
    deep = _register(trained, "v1", model_dir)["deep"]
    url = "/admin/mlmodels/modelversion/"
    response = admin_client.post(url, {"action": "activate_selected", "_selected_action": [deep.pk]}, follow=True)
    assert "[model_no_edge]" in response.content.decode()
    assert not ModelVersion.objects.filter(is_active=True).exists()

    override = {"action": "activate_selected_without_edge", "_selected_action": [deep.pk]}
    page = admin_client.post(url, override).content.decode()  # the intermediate page asks why
    assert "Activate without an edge" in page and deep.edge_summary in page and 'name="reason"' in page
    page = admin_client.post(url, {**override, "apply": "1", "reason": " "}).content.decode()
    assert "This field is required" in page or "say why" in page
    assert not ModelVersion.objects.filter(is_active=True).exists()

    response = admin_client.post(url, {**override, "apply": "1", "reason": "demo: no money at stake"}, follow=True)
    assert "is now the active deep model WITHOUT an edge" in response.content.decode()
    activation = ModelActivation.objects.get()
    assert activation.no_edge_override and activation.actor == "user:admin"
    record = AuditRecord.objects.get(action="model.activated")
    assert record.actor_type == "user" and record.actor_id == "admin"
    assert record.payload_data["reason"] == "demo: no money at stake" and record.payload_data["no_edge_override"]
    listing = admin_client.get(url).content.decode()
    assert "edge vs best baseline" in listing.lower() and "pts vs" in listing


def test_the_console_shows_each_active_models_edge_and_the_override(
    trained, trained_with_edge, model_dir, admin_client
):
    without = _register(trained, "plain", model_dir)["supervised"]
    model_version_activate(version=without, actor="user:risk", allow_no_edge=True, reason=NO_EDGE)
    page = admin_client.get("/console/").content.decode()
    assert 'id="models"' in page and "NO EDGE" in page and "supervised-plain" in page
    assert f"{without.edge * 100:+.2f} pts" in page and f"{without.edge_p_value:.3f}" in page
    assert "activated without an edge by user:risk" in page and NO_EDGE in page
    assert "No active model beats the naive baselines" in page

    with_edge = _register(trained_with_edge, "edge", model_dir)["deep"]
    model_version_activate(version=with_edge, actor="user:risk")
    page = admin_client.get("/console/").content.decode()
    assert "deep-edge" in page and ">EDGE<" in page
    assert "No active model beats the naive baselines" not in page  # one of them does
