"""The pipeline's stage registry: adding a stage is one line in ``STAGES``.

A stage is a handler (``handle(event) -> list[Envelope]``) that a runner attaches to a bus as
a member of a consumer group. Core never imports a domain app, so factories are dotted paths,
resolved when a runner starts the stage. ``manage.py run_stage NAME`` runs one stage on the
configured bus; ``manage.py run_pipeline`` runs them all in one process on the memory bus.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from tradeops.events import Envelope, Topic


class Handler(Protocol):
    """A stage's handler. It may also define ``shutdown()``: the runner calls it once when it
    stops, after its last commit (a stateful stage saves its state there); and ``outboxed``, a
    dict topic -> count of the events it wrote to the transactional outbox (counted as their
    transaction commits) instead of returning them: the outbox relay publishes those, so the
    runner's ``produced`` leaves them out and its stats report them apart (``StageStats.outboxed``,
    ``tradeops_events_outboxed_total``)."""

    def handle(self, event: Envelope) -> Sequence[Envelope]:
        """Consume one event, return the events it produces (published by the runner)."""


@dataclass(frozen=True)
class Stage:
    name: str
    consumes: tuple[str, ...]  # topics
    group: str  # Kafka consumer group (the design brief's names)
    factory: str  # dotted path to a zero-argument callable that returns a Handler
    description: str = ""
    # A boolean setting that, when off, leaves the stage out of every run (``stages_wired``):
    # the metrics stage is not wired at all with METRICS_ENABLED off. "" = always wired.
    enabled_by: str = ""
    # Dotted path to a callable taking the built handler, that ``manage.py run_stage`` (the stage
    # as its own process) calls once before its first event, to take back state the bus will not
    # give it again (the features' rolling windows). The embedded run warms its own. "" = none.
    warm: str = ""


STAGES: list[Stage] = [
    # One line per stage, in pipeline order. Later issues add theirs here.
    Stage(
        "ml-features",
        (Topic.MARKET_DATA,),
        "feature-engineering",
        "mlmodels.runtime.features_stage",
        warm="workers.replay_checkpoint.features_warm_from_records",
    ),
    # ml-predict runs both models and the validator on each vector, so the validator sees both predictions
    Stage("ml-predict", (Topic.FEATURES,), "pattern-validator", "mlmodels.runtime.predict_stage"),
    # the audit trail also keeps each order's decision inputs: features, predictions, signals
    Stage(
        "audit-trail",
        (Topic.TRADING, Topic.COMPLIANCE, Topic.FEATURES, Topic.PREDICTIONS),
        "audit-trail",
        "tradeops.audit.consumers.audit_stage",
    ),
    Stage(
        "surveillance",
        (Topic.TRADING, Topic.MARKET_DATA, Topic.COMPLIANCE),
        "surveillance",
        "compliance.consumers.surveil_stage",
    ),
    Stage(
        "execution",
        (Topic.PREDICTIONS, Topic.MARKET_DATA, Topic.COMPLIANCE, Topic.TRADING),
        "execution-worker",
        "workers.execution.execution_stage",
    ),
    Stage("live-push", (Topic.TRADING, Topic.COMPLIANCE), "live-screens", "workers.live_push.live_push_stage"),
    # orders, fills, positions, refusals, alerts, kill switches as Prometheus metrics (issue 17)
    Stage(
        "metrics",
        (Topic.TRADING, Topic.COMPLIANCE),
        "metrics",
        "tradeops.observability.events.metrics_stage",
        enabled_by="METRICS_ENABLED",
    ),
]

_ = Topic  # topics are named through tradeops.events.Topic in the lines above


def stage_enabled(stage: Stage) -> bool:
    """Whether ``stage`` is switched on: it names no setting (``enabled_by``), or that setting
    is on (outside Django's settings: on)."""
    if not stage.enabled_by:
        return True
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    try:
        return bool(getattr(settings, stage.enabled_by, True))
    except ImproperlyConfigured:  # settings not configured (a script outside Django): on
        return True


def stages_wired() -> list[Stage]:
    """The registered stages a run wires, in pipeline order: those switched on (``stage_enabled``;
    with ``METRICS_ENABLED`` off, all but the metrics stage)."""
    return [s for s in STAGES if stage_enabled(s)]


def stage_get(name: str) -> Stage:
    for stage in STAGES:
        if stage.name == name:
            return stage
    known = ", ".join(s.name for s in STAGES) or "none registered"
    raise KeyError(f"no stage named {name!r}; known stages: {known}")
