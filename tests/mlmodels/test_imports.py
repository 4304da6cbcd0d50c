"""What the ML modules import at start-up (bench/README.md, "Start-up imports"): the features
stage and every Celery worker's task discovery load neither scikit-learn, SciPy nor pandas (the
trainer's; ~1.2-1.5 s of CPU a process). A process that loads a model still gets them: the
artifact's estimators are scikit-learn's, and scikit-learn imports SciPy and pandas itself."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("sklearn", "scipy.stats", "pandas", "mlmodels.training")


def _loaded_after(code: str) -> list[str]:
    probe = (
        "import sys, django\n"
        "django.setup()\n"
        f"{code}\n"
        f"print('LOADED', sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=120,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "tradeops.settings.local"),
        },
    )
    assert proc.returncode == 0, proc.stderr
    [line] = [x for x in proc.stdout.splitlines() if x.startswith("LOADED")]
    return eval(line.removeprefix("LOADED "))  # noqa: S307 - our own probe's printed list


@pytest.mark.parametrize(
    "code",
    [
        "from mlmodels.runtime import features_stage, predict_stage",  # the ML stages' modules
        "import mlmodels.handlers, mlmodels.serving",
        "from tradeops.celery import app; app.loader.import_default_modules(); assert 'mlmodels.tasks' in sys.modules",
    ],
)
def test_serving_and_task_discovery_leave_the_trainer_unloaded(code):
    assert _loaded_after(code) == []


def test_the_trainer_still_has_what_it_needs():
    from mlmodels.serving import ARTIFACT_FORMAT, MODEL_NAMES
    from mlmodels.training import ARTIFACT_FORMAT as written
    from mlmodels.training import MODEL_NAMES as trained

    assert (written, trained) == (ARTIFACT_FORMAT, MODEL_NAMES) == (1, ("supervised", "deep"))
