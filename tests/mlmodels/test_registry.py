"""The model registry: training command and task, audited activation and rollback, refusal of
broken artifacts, hot reload in serving, thresholds from the database."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command

from mlmodels.features import FEATURE_SET, batch_features
from mlmodels.models import ModelActivation, ModelVersion
from mlmodels.runtime import ServingRuntime
from mlmodels.services import (
    ModelRegistryError,
    model_version_activate,
    model_version_rollback,
    model_versions_register,
    validator_config_update,
)
from mlmodels.serving import ModelArtifactError
from mlmodels.training import MODEL_NAMES, artifact_bytes, artifact_write
from tests.mlmodels.conftest import NO_EDGE
from tradeops.audit.models import AuditRecord
from tradeops.core.errors import NotFound
from tradeops.events import Features, Prediction, Signal, make_event


@pytest.fixture
def model_dir(settings, tmp_path):
    settings.ML_MODEL_DIR = str(tmp_path / "models")
    return tmp_path / "models"


@pytest.fixture
def register(trained, model_dir, db):
    """register("v1") -> {name: ModelVersion}, artifacts written under ML_MODEL_DIR."""

    def _register(tag: str) -> dict[str, ModelVersion]:
        artifacts = []
        for name in MODEL_NAMES:
            version = f"{name}-{tag}"
            data = artifact_bytes(name=name, version=version, result=trained)
            path, sha = artifact_write(directory=model_dir, name=name, version=version, data=data)
            artifacts.append((name, version, path, sha))
        rows = model_versions_register(
            actor="service:test", result=trained, artifacts=artifacts, at=datetime(2026, 1, 1, tzinfo=UTC)
        )
        return {r.name: r for r in rows}

    return _register


def active_versions() -> dict[str, str]:
    return dict(ModelVersion.objects.filter(is_active=True).values_list("name", "version"))


def audit_actions() -> list[str]:
    return list(AuditRecord.objects.filter(action__startswith="model.").values_list("action", flat=True))


@pytest.fixture(scope="module")
def feature_events(real_bars):
    feats = batch_features(real_bars.iloc[-120:])
    return [
        make_event(
            Features(
                symbol="EURUSD",
                ts=ts.to_pydatetime(),
                values=row.to_dict(),
                price=Decimal("1.23"),
                feature_set=FEATURE_SET,
            ),
            source="test",
            key="EURUSD",
        )
        for ts, row in feats.iterrows()
    ]


def served_versions(runtime: ServingRuntime, event) -> set[str]:
    return {e.payload.model_version for e in runtime.handle(event) if isinstance(e.payload, Prediction)}


def test_activate_then_rollback_is_audited_and_logged(register):
    v1, v2 = register("v1"), register("v2")
    for row in v1.values():
        model_version_activate(version=row, actor="user:risk", reason="validated", allow_no_edge=True)
    assert active_versions() == {"supervised": "supervised-v1", "deep": "deep-v1"}
    model_version_activate(version=v2["deep"], actor="user:risk", reason="better fold 3", allow_no_edge=True)
    assert active_versions()["deep"] == "deep-v2"
    with pytest.raises(ModelRegistryError) as info:
        model_version_activate(version=v2["deep"], actor="user:risk", reason=NO_EDGE, allow_no_edge=True)
    assert info.value.code == "already_active"

    back = model_version_rollback(name="deep", actor="user:compliance", reason="drift seen in production")
    assert back.version == "deep-v1" and back.activated_by_label == "user:compliance"
    assert active_versions() == {"supervised": "supervised-v1", "deep": "deep-v1"}
    last = ModelActivation.objects.filter(name="deep").first()
    assert (last.action, last.version.version, last.previous.version) == ("rollback", "deep-v1", "deep-v2")
    with pytest.raises(NotFound):
        model_version_rollback(name="supervised", actor="user:risk")  # nothing before v1
    with pytest.raises(NotFound):
        model_version_rollback(name="deep", actor="user:risk")  # rolling back steps back, never forward to v2
    actions = audit_actions()
    assert actions.count("model.registered") == 4
    assert actions.count("model.activated") == 3 and actions.count("model.rolled_back") == 1
    record = AuditRecord.objects.filter(action="model.rolled_back").get()
    assert record.actor_id == "compliance" and record.payload_data["previous_version"] == "deep-v2"
    assert record.category == "system"


@pytest.mark.parametrize("damage", ["missing", "corrupt", "feature_mismatch"])
def test_broken_artifact_is_refused_and_the_active_model_stays(register, model_dir, damage):
    v1, v2 = register("v1"), register("v2")
    model_version_activate(version=v1["supervised"], actor="user:risk", reason=NO_EDGE, allow_no_edge=True)
    path = model_dir / v2["supervised"].artifact_path
    if damage == "missing":
        path.unlink()
    elif damage == "corrupt":
        path.write_bytes(path.read_bytes()[:-100])
    else:
        ModelVersion.objects.filter(pk=v2["supervised"].pk).update(feature_names=["ret_1"])  # registry only
        v2["supervised"].refresh_from_db()
        _rewrite_with_features(path, v2["supervised"])
    with pytest.raises(ModelArtifactError) as info:
        model_version_activate(version=v2["supervised"], actor="user:risk", reason=NO_EDGE, allow_no_edge=True)
    expected = {"missing": "model_artifact_missing", "corrupt": "model_artifact_corrupt"}
    assert info.value.code == expected.get(damage, "model_feature_mismatch")
    assert active_versions()["supervised"] == "supervised-v1"
    assert audit_actions().count("model.activated") == 1


def _rewrite_with_features(path, row):
    import hashlib
    import io

    import joblib

    bundle = joblib.load(path)
    bundle["feature_names"] = ["ret_1", "ret_4"]
    buffer = io.BytesIO()
    joblib.dump(bundle, buffer)
    path.write_bytes(buffer.getvalue())
    ModelVersion.objects.filter(pk=row.pk).update(artifact_sha256=hashlib.sha256(buffer.getvalue()).hexdigest())
    row.refresh_from_db()


def test_serving_reloads_on_activation_and_keeps_serving_through_a_broken_artifact(register, model_dir, feature_events):
    v1, v2, v3 = register("v1"), register("v2"), register("v3")
    runtime = ServingRuntime(check_events=1, check_seconds=3600)
    assert served_versions(runtime, feature_events[0]) == set()  # nothing active yet: silent
    for row in v1.values():
        model_version_activate(version=row, actor="user:risk", reason=NO_EDGE, allow_no_edge=True)
    assert served_versions(runtime, feature_events[1]) == {"supervised-v1", "deep-v1"}

    model_version_activate(version=v2["deep"], actor="user:risk", reason=NO_EDGE, allow_no_edge=True)  # no restart
    assert served_versions(runtime, feature_events[2]) == {"supervised-v1", "deep-v2"}

    model_version_activate(version=v3["deep"], actor="user:risk", reason=NO_EDGE, allow_no_edge=True)
    path = model_dir / v3["deep"].artifact_path
    good = path.read_bytes()
    path.write_bytes(b"\x00" * 64)  # the file is damaged after activation (disk, another host...)
    assert served_versions(runtime, feature_events[3]) == {"supervised-v1", "deep-v2"}
    assert runtime.last_error.startswith("model_artifact_corrupt")
    path.write_bytes(good)  # restored: the next check picks it up
    assert served_versions(runtime, feature_events[4]) == {"supervised-v1", "deep-v3"}
    assert runtime.last_error == ""


def test_validator_thresholds_come_from_the_database(register, feature_events):
    for row in register("v1").values():
        model_version_activate(version=row, actor="user:risk", reason=NO_EDGE, allow_no_edge=True)
    runtime = ServingRuntime(check_events=1, check_seconds=3600)
    validator_config_update(actor="user:risk", min_confidence=0.5, drift_window=10_000)
    signals = sum(isinstance(e.payload, Signal) for ev in feature_events[:60] for e in runtime.handle(ev))
    assert signals > 0
    signal = next(e.payload for ev in feature_events[60:] for e in runtime.handle(ev) if isinstance(e.payload, Signal))
    assert signal.model_versions == {"supervised": "supervised-v1", "deep": "deep-v1"}
    validator_config_update(actor="user:risk", enabled=False)
    assert not any(isinstance(e.payload, Signal) for ev in feature_events for e in runtime.handle(ev))
    record = AuditRecord.objects.filter(action="model.validator_config_changed").last()
    assert record.payload_data["before"]["enabled"] is True and record.payload_data["after"]["enabled"] is False
    with pytest.raises(ModelRegistryError) as info:
        validator_config_update(actor="user:risk", min_confidence=0.3)
    assert info.value.code == "invalid_validator_config"


@pytest.mark.slow
def test_train_models_command_shows_progress_registers_and_activates(model_dir, db):
    out = StringIO()
    call_command(
        "train_models",
        "--activate",
        "--allow-no-edge",
        "--reason",
        NO_EDGE,
        "--folds",
        "2",
        "--estimators",
        "20",
        stdout=out,
    )
    text = out.getvalue()
    assert "[" in text and "fold 1/2" in text and "100% done" in text
    assert "always-up" in text and "previous-sign" in text and "edge out of sample" in text
    assert set(active_versions()) == {"supervised", "deep"}
    for row in ModelVersion.objects.all():
        assert (model_dir / row.artifact_path).exists() and len(row.artifact_sha256) == 64
        assert row.train_start.year == 2017 and row.train_end.year == 2018
        assert row.metrics["walk_forward"]["accuracy"]["always_up"] > 0
        assert row.edge == row.metrics["edge"][row.name]["edge"] and row.edge_rows > 0
    assert audit_actions().count("model.activated") == 2
    for record in AuditRecord.objects.filter(action="model.activated"):
        assert record.payload_data["reason"] == NO_EDGE and record.actor_id == "train_models"


@pytest.mark.slow
def test_training_task_runs_on_the_ml_queue(model_dir, db, settings):
    from mlmodels.tasks import models_train_task

    assert settings.CELERY_TASK_ROUTES["mlmodels.tasks.*"] == {"queue": "ml"}
    result = models_train_task.apply(kwargs={"n_folds": 2, "gbm_estimators": 20, "mlp_max_iter": 50})
    assert result.successful(), result.traceback
    assert len(result.result["versions"]) == 2 and not result.result["activated"]
    assert ModelVersion.objects.filter(is_active=False).count() == 2


def test_admin_activates_through_the_audited_service(register, admin_client):
    v1 = register("v1")
    response = admin_client.post(  # the test models have no edge: the override, with its reason (test_edge.py)
        "/admin/mlmodels/modelversion/",
        {
            "action": "activate_selected_without_edge",
            "_selected_action": [v1["deep"].pk],
            "apply": 1,
            "reason": NO_EDGE,
        },
        follow=True,
    )
    assert response.status_code == 200
    assert "is now the active deep model" in response.content.decode()
    assert active_versions() == {"deep": "deep-v1"}
    record = AuditRecord.objects.get(action="model.activated")
    assert record.actor_type == "user" and record.actor_id == "admin"
    listing = admin_client.get("/admin/mlmodels/modelversion/").content.decode()
    assert "baseline: always up" in listing.lower() and "deep-v1" in listing


def test_admin_edits_validator_thresholds_through_the_audited_service(admin_client, db):
    url = "/admin/mlmodels/validatorconfig/add/"
    form = {"min_confidence": "0.6", "psi_limit": "0.3", "drift_window": "300", "algo_id": "ml-x", "enabled": "on"}
    response = admin_client.post(url, {**form, "min_confidence": "0.2"})
    assert response.status_code == 200 and "min_confidence must be within [0.5, 1]" in response.content.decode()
    response = admin_client.post(url, form)
    assert response.status_code == 302
    from mlmodels.selectors import validator_settings_get

    settings = validator_settings_get()
    assert (settings.min_confidence, settings.psi_limit, settings.drift_window) == (0.6, 0.3, 300)
    record = AuditRecord.objects.get(action="model.validator_config_changed")
    assert record.actor_id == "admin" and record.payload_data["after"]["algo_id"] == "ml-x"


def test_repeated_rollbacks_step_back_through_the_history(register):
    versions = [register(tag)["supervised"] for tag in ("v1", "v2", "v3")]
    for row in versions:
        model_version_activate(version=row, actor="user:risk", reason=NO_EDGE, allow_no_edge=True)
    assert model_version_rollback(name="supervised", actor="user:risk").version == "supervised-v2"
    assert model_version_rollback(name="supervised", actor="user:risk").version == "supervised-v1"
    with pytest.raises(NotFound):
        model_version_rollback(name="supervised", actor="user:risk")
    assert active_versions() == {"supervised": "supervised-v1"}
