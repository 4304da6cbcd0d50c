"""The model registry and the pattern validator's thresholds.

``ModelVersion``: one trained model artifact (joblib) with its sha256, the feature list it was
trained on, the training data range, its walk-forward metrics beside naive baselines and its
out-of-sample edge over the best of them (``edge``, ``edge_p_value``, ``has_edge``). At most one
version per model name is active (a partial unique constraint); activations and rollbacks go
through ``mlmodels.services`` only, which verify the artifact first, refuse a model without an
edge unless told otherwise with a reason, log a ``ModelActivation`` row and write the audit
record (RTS 6 Art. 9 validation evidence and algorithm attribution).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class ModelName(models.TextChoices):
    SUPERVISED = "supervised", "Supervised (gradient boosting / logistic regression)"
    DEEP = "deep", "Neural network (MLP)"


class ModelVersion(models.Model):
    name = models.CharField(max_length=32, choices=ModelName.choices)
    version = models.CharField(max_length=96, unique=True)
    algorithm = models.CharField(max_length=200, help_text="Estimator pipeline, e.g. GradientBoostingClassifier")
    artifact_path = models.CharField(max_length=500, help_text="joblib file (absolute, or relative to ML_MODEL_DIR)")
    artifact_sha256 = models.CharField(max_length=64)
    feature_names = models.JSONField(help_text="Ordered feature list the model was trained on")
    feature_set = models.CharField(max_length=32)
    symbol = models.CharField(max_length=32)
    timeframe = models.CharField(max_length=8)
    horizon = models.PositiveSmallIntegerField(help_text="Bars ahead whose return direction is predicted")
    train_start = models.DateTimeField(help_text="Open time of the first training bar (UTC)")
    train_end = models.DateTimeField(help_text="Open time of the last training bar (UTC)")
    n_samples = models.PositiveIntegerField()
    params = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(
        default=dict, blank=True, help_text="Walk-forward out-of-sample accuracy, beside always-up and previous-sign"
    )
    drift_reference = models.JSONField(default=dict, blank=True, help_text="Training distribution for PSI")
    edge = models.FloatField(
        null=True, blank=True, help_text="Out-of-sample accuracy minus the best baseline's (a fraction; < 0: worse)"
    )
    edge_baseline = models.CharField(max_length=32, blank=True, help_text="The best baseline on the same rows")
    edge_rows = models.PositiveIntegerField(null=True, blank=True, help_text="Out-of-sample rows the edge is over")
    edge_p_value = models.FloatField(
        null=True,
        blank=True,
        help_text="One-sided exact sign test against the best baseline (empty: not measured when trained)",
    )
    has_edge = models.BooleanField(
        default=False, help_text="Beats the best baseline out of sample: edge > 0 at p < 0.05"
    )
    created_at = models.DateTimeField()
    created_by = models.CharField(max_length=150)
    is_active = models.BooleanField(default=False)
    activated_at = models.DateTimeField(null=True, blank=True)
    activated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    activated_by_label = models.CharField(max_length=150, blank=True, help_text="Who activated it (user or process)")

    class Meta:
        ordering = ["name", "-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["name"], condition=Q(is_active=True), name="mlmodels_one_active_per_name"),
        ]

    def __str__(self) -> str:
        return f"{self.version}{' (active)' if self.is_active else ''}"

    def accuracy(self, key: str) -> float | None:
        return (self.metrics.get("walk_forward") or {}).get("accuracy", {}).get(key)

    @property
    def edge_summary(self) -> str:
        """One line for screens: ``-0.41 pts vs always_up over 2946 bars (p=0.64): no edge``."""
        if self.edge is None:
            return "edge not measured"
        p_value = "p not measured" if self.edge_p_value is None else f"p={self.edge_p_value:.2f}"
        verdict = "edge" if self.has_edge else "no edge"
        return f"{self.edge * 100:+.2f} pts vs {self.edge_baseline} over {self.edge_rows} bars ({p_value}): {verdict}"


class ModelActivation(models.Model):
    """History of activations and rollbacks (append-only; written by the services)."""

    class Action(models.TextChoices):
        ACTIVATE = "activate", "Activate"
        ROLLBACK = "rollback", "Roll back"

    name = models.CharField(max_length=32, choices=ModelName.choices)
    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="activations")
    previous = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    action = models.CharField(max_length=16, choices=Action.choices)
    actor = models.CharField(max_length=150)
    reason = models.CharField(max_length=500, blank=True)
    no_edge_override = models.BooleanField(
        default=False, help_text="Activated although the model does not beat the baselines (reason required)"
    )
    at = models.DateTimeField()

    class Meta:
        ordering = ["-at", "-pk"]

    def __str__(self) -> str:
        return f"{self.action} {self.version.version} by {self.actor}"


# The validator fields an operator edits (admin form, ``validator_config_update``); here, not in
# services, so the admin can name them without importing the training stack at start-up.
VALIDATOR_FIELDS = ("min_confidence", "psi_limit", "drift_window", "algo_id", "enabled")


class ValidatorConfig(models.Model):
    """The pattern validator's thresholds: one row (pk 1). Serving picks a change up without a
    restart; every change is audited."""

    min_confidence = models.FloatField(
        default=0.55, help_text="Both models must predict the same direction with at least this probability"
    )
    psi_limit = models.FloatField(
        default=0.25, help_text="Signals are withheld while the mean PSI over the features exceeds this"
    )
    drift_window = models.PositiveIntegerField(default=500, help_text="Live feature vectors in the PSI window")
    algo_id = models.CharField(
        max_length=64, default="tradeops-ml", help_text="Algorithm id stamped on signals (RTS 6 Art. 12)"
    )
    enabled = models.BooleanField(default=True, help_text="Off: predictions are published, no signals")
    updated_at = models.DateTimeField(null=True, blank=True)
    updated_by = models.CharField(max_length=150, blank=True)

    class Meta:
        verbose_name = "validator configuration"
        verbose_name_plural = "validator configuration"

    def __str__(self) -> str:
        return f"validator: confidence >= {self.min_confidence}, PSI <= {self.psi_limit}"
