"""Prepare a cluster test database (run as a process with the cluster's environment): the seed
(instruments, the demo account), and both models trained small and fast on the real EURUSD bars
and activated (they have no edge and need none: the tests exercise the pipeline, not the models).

    python -m tests.cluster.prepare
"""

from __future__ import annotations

import io
import os
from datetime import UTC, datetime

import django


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradeops.settings.local")
    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from mlmodels.services import model_version_activate, model_versions_register, validator_config_update
    from mlmodels.training import MODEL_NAMES, artifact_bytes, artifact_write, load_shipped_bars, models_train
    from tests.mlmodels.conftest import FAST, NO_EDGE

    call_command("seed", stdout=io.StringIO())
    trained = models_train(load_shipped_bars(), config=FAST)
    artifacts = []
    for name in MODEL_NAMES:
        data = artifact_bytes(name=name, version=f"{name}-cluster", result=trained)
        path, sha = artifact_write(directory=settings.ML_MODEL_DIR, name=name, version=f"{name}-cluster", data=data)
        artifacts.append((name, f"{name}-cluster", path, sha))
    at = datetime(2026, 1, 1, tzinfo=UTC)
    for row in model_versions_register(actor="service:test", result=trained, artifacts=artifacts, at=at):
        model_version_activate(version=row, actor="user:risk", allow_no_edge=True, reason=NO_EDGE)
    validator_config_update(actor="user:risk", min_confidence=0.5, algo_id="ml-eurusd-h1")
    print("prepared")


if __name__ == "__main__":
    main()
