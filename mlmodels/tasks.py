"""Celery tasks of the ML pipeline (queue ``ml``, routed by ``mlmodels.tasks.*`` in settings)."""

from __future__ import annotations

from celery import shared_task


@shared_task(bind=True, acks_late=True, name="mlmodels.tasks.models_train_task")
def models_train_task(
    self,
    *,
    actor: str = "service:celery",
    activate: bool = False,
    allow_no_edge: bool = False,
    reason: str = "",
    **config,
) -> dict:
    """Train both models on the shipped real EURUSD bars, register them with their out-of-sample
    edge and optionally activate them (a model without an edge only with ``allow_no_edge`` and a
    ``reason``). Progress is published as task state ``PROGRESS`` with ``{"message", "fraction"}``.
    A refused activation is not a failure of the task: the candidates stay registered and the
    result says why (``activation_refused``: code and message).

    Not retried automatically: a failed training run leaves no registered version (artifacts are
    registered only after both models trained), so the operator simply runs it again."""
    # imported here, not at the top: every Celery worker imports this module at start-up (task
    # discovery), and the trainer brings scikit-learn, SciPy and pandas (~1.5 s of CPU) to workers
    # of every queue, not only ``ml``'s
    from mlmodels.services import model_training_run, model_versions_activate
    from mlmodels.training import TrainingConfig
    from tradeops.core.errors import ApplicationError

    def progress(message: str, fraction: float) -> None:
        if not self.request.called_directly:
            self.update_state(state="PROGRESS", meta={"message": message, "fraction": fraction})

    if "mlp_hidden" in config:
        config["mlp_hidden"] = tuple(config["mlp_hidden"])
    versions = model_training_run(actor=actor, config=TrainingConfig(**config), progress=progress)
    refused = None
    if activate:
        try:
            model_versions_activate(
                versions=versions,
                actor=actor,
                reason=reason,
                allow_no_edge=allow_no_edge,
            )
        except ApplicationError as exc:
            refused = {"code": exc.code, "message": str(exc)}
    return {
        "versions": [v.version for v in versions],
        "accuracy": versions[0].metrics["walk_forward"]["accuracy"] if versions else {},
        "edge": {v.name: v.metrics.get("edge", {}).get(v.name, {}) for v in versions},
        "activated": activate and refused is None,
        "activation_refused": refused,
    }
