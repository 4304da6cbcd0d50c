"""Train the supervised and the neural model on the shipped real EURUSD H1 bars, with progress,
and say plainly whether each one beats the naive baselines out of sample."""

import time

from django.core.management.base import BaseCommand, CommandError

from mlmodels.training import EDGE_ALPHA, TrainingConfig
from tradeops.core.errors import ApplicationError


class Command(BaseCommand):
    help = (
        "Train both models with walk-forward evaluation, print and store their out-of-sample edge over the "
        "baselines (always-up, previous-sign), register them in the model registry and (with --activate) make "
        "them active. A model without an edge is activated only with --allow-no-edge and a --reason (audited). "
        "--queue runs it as a Celery task on the 'ml' queue."
    )

    def add_arguments(self, parser):
        parser.add_argument("--activate", action="store_true", help="Activate the new versions (audited)")
        parser.add_argument(
            "--allow-no-edge",
            action="store_true",
            help="With --activate: activate even a model that does not beat the baselines (needs --reason)",
        )
        parser.add_argument("--reason", default="", help="Why (recorded with the activation; required to override)")
        parser.add_argument("--folds", type=int, default=5, help="Walk-forward folds (default 5)")
        parser.add_argument("--horizon", type=int, default=1, help="Bars ahead to predict (default 1)")
        parser.add_argument("--supervised", choices=["gbm", "logreg"], default="gbm")
        parser.add_argument("--estimators", type=int, default=150, help="Gradient boosting trees")
        parser.add_argument("--actor", default="service:train_models", help="Recorded as the trainer")
        parser.add_argument("--queue", action="store_true", help="Send to the Celery 'ml' queue and follow it")

    def _bar(self, message: str, fraction: float) -> None:
        filled = int(fraction * 30)
        self.stdout.write(f"[{'#' * filled}{'.' * (30 - filled)}] {fraction:4.0%} {message}")

    def handle(self, *args, **opts):
        if opts["allow_no_edge"] and not opts["activate"]:
            raise CommandError("--allow-no-edge only makes sense with --activate")
        if opts["allow_no_edge"] and not opts["reason"].strip():
            raise CommandError("--allow-no-edge needs --reason: the override is audited with who and why")
        config = TrainingConfig(
            horizon=opts["horizon"],
            n_folds=opts["folds"],
            supervised=opts["supervised"],
            gbm_estimators=opts["estimators"],
        )
        if opts["queue"]:
            return self._queued(config, opts)
        from mlmodels.services import model_training_run, model_versions_activate

        started = time.monotonic()
        try:
            versions = model_training_run(actor=opts["actor"], config=config, progress=self._bar)
        except (ApplicationError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"trained in {time.monotonic() - started:.1f}s")
        refused = None
        if opts["activate"]:
            try:
                versions = model_versions_activate(
                    versions=versions,
                    actor=opts["actor"],
                    reason=opts["reason"],
                    allow_no_edge=opts["allow_no_edge"],
                )
            except ApplicationError as exc:
                refused = exc
        self._report(versions)
        if refused is not None:
            self._refused(refused)

    def _queued(self, config: TrainingConfig, opts) -> None:
        from mlmodels.tasks import models_train_task

        result = models_train_task.apply_async(
            kwargs={
                "actor": opts["actor"],
                "activate": opts["activate"],
                "allow_no_edge": opts["allow_no_edge"],
                "reason": opts["reason"],
                **config.as_dict(),
            },
            queue="ml",
        )
        self.stdout.write(f"queued task {result.id} on 'ml'")
        last = None
        while not result.ready():
            info = result.info if isinstance(result.info, dict) else {}
            if result.state == "PROGRESS" and info != last:
                self._bar(info.get("message", ""), float(info.get("fraction", 0.0)))
                last = info
            time.sleep(0.5)
        if result.failed():
            raise CommandError(f"training task failed: {result.result!r}")
        from mlmodels.models import ModelVersion

        self._report(list(ModelVersion.objects.filter(version__in=result.result["versions"])))
        if result.result.get("activation_refused"):
            self._refused(result.result["activation_refused"]["message"])

    def _report(self, versions) -> None:
        for version in versions:
            accuracy = version.metrics["walk_forward"]["accuracy"]
            rows = version.metrics["walk_forward"]["out_of_sample_rows"]
            self.stdout.write(
                f"{version.version} [{version.algorithm}] sha256 {version.artifact_sha256[:12]} "
                f"{'ACTIVE' if version.is_active else 'candidate'}: out-of-sample accuracy "
                f"{accuracy[version.name]:.2%} over {rows} bars; baselines always-up "
                f"{accuracy['always_up']:.2%}, previous-sign {accuracy['previous_sign']:.2%}"
            )
        self.stdout.write(f"edge out of sample (model minus the best baseline; an edge needs p < {EDGE_ALPHA}):")
        for version in versions:
            verdict = "EDGE" if version.has_edge else "NO EDGE"
            self.stdout.write(f"  {version.name:<10} {verdict:<8} {version.edge_summary}")
        if not any(v.has_edge for v in versions):
            self.stdout.write(
                self.style.WARNING(
                    "No model beats the naive baselines: its signals are no better than always buying. "
                    "Fine for a demonstration of the pipeline; not a reason to trade money."
                )
            )

    def _refused(self, error) -> None:
        raise CommandError(
            f"not activated: {error}. The versions are registered as candidates; to activate a model without "
            "an edge say so: train_models --activate --allow-no-edge --reason '...', or the admin's "
            "'Activate without an edge' action."
        )
