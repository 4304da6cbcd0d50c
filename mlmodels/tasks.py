"""Celery tasks of the ML pipeline (queue ``ml``, routed by ``mlmodels.tasks.*`` in settings)."""

from __future__ import annotations

from celery import shared_task

from mlmodels.training import TrainingConfig


@shared_task(bind=True, acks_late=True, name="mlmodels.tasks.models_train_task")
def models_train_task(self, *, actor: str = "service:celery", activate: bool = False, **config) -> dict:
    """Train both models on the shipped real EURUSD bars, register (and optionally activate)
    them. Progress is published as task state ``PROGRESS`` with ``{"message", "fraction"}``.

    Not retried automatically: a failed training run leaves no registered version (artifacts are
    registered only after both models trained), so the operator simply runs it again."""
    from mlmodels.services import model_training_run

    def progress(message: str, fraction: float) -> None:
        if not self.request.called_directly:
            self.update_state(state="PROGRESS", meta={"message": message, "fraction": fraction})

    if "mlp_hidden" in config:
        config["mlp_hidden"] = tuple(config["mlp_hidden"])
    versions = model_training_run(actor=actor, config=TrainingConfig(**config), activate=activate, progress=progress)
    return {
        "versions": [v.version for v in versions],
        "accuracy": versions[0].metrics["walk_forward"]["accuracy"] if versions else {},
        "activated": activate,
    }
