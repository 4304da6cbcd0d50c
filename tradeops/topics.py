"""Topics as code: the Kafka topic catalogue from the design brief, its consumer groups and the
dead-letter topics. ``manage.py provision_topics`` creates and reconciles them on a cluster.

Partitions bound a consumer group's parallelism; retention is the replay window of each stage.
compliance-events keeps 7 years: MiFID II Art. 16(6)/(7) record keeping (5 years, up to 7 at
the regulator's request). Replication factor 3 is the production target, capped at the broker
count (a one-node development broker gets 1).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tradeops.events import Topic

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
YEAR_MS = 365 * DAY_MS + 6 * HOUR_MS  # Julian year: 7 "years" never falls a day short

DLQ_SUFFIX = "-dlq"
DLQ_PARTITIONS = 1  # dead letters are rare and read by people; one partition keeps them in order
DLQ_MIN_RETENTION_MS = 30 * DAY_MS  # time for a person to look at a dead letter


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    retention_ms: int
    # consumer groups that read it: the groups of the stages in tradeops/stages.py that consume
    # it (tests/tradeops/test_topics.py keeps them equal; written out, not imported: this module
    # is read by the pure memory bus, and the stage registry reads Django's settings)
    groups: tuple[str, ...] = ()
    replication_factor: int = 3  # capped at the broker count when provisioned
    min_insync_replicas: int = 2  # capped at the replication factor
    description: str = ""
    configs: dict[str, str] = field(default_factory=dict)

    def topic_configs(self, replication_factor: int) -> dict[str, str]:
        return {
            "cleanup.policy": "delete",
            "retention.ms": str(self.retention_ms),
            "min.insync.replicas": str(max(1, min(self.min_insync_replicas, replication_factor))),
            **self.configs,
        }


def dlq_name(topic: str) -> str:
    """The dead-letter topic of ``topic`` (logical names)."""
    return topic if topic.endswith(DLQ_SUFFIX) else topic + DLQ_SUFFIX


class Group:
    """Consumer group names (one per stage; a stage scales by adding members). The market monitor
    runs inside the collector, before market-data-events: it consumes no topic."""

    FEATURES = "feature-engineering"
    PATTERN_VALIDATOR = "pattern-validator"  # runs both models and the validator on each vector
    EXECUTION = "execution-worker"
    SURVEILLANCE = "surveillance"
    AUDIT = "audit-trail"
    LIVE = "live-screens"
    METRICS = "metrics"


CATALOGUE: tuple[TopicSpec, ...] = (
    TopicSpec(
        Topic.MARKET_DATA,
        partitions=12,
        retention_ms=7 * DAY_MS,
        groups=(Group.FEATURES, Group.SURVEILLANCE, Group.EXECUTION),
        description="ticks and bars from MT5, replay files or the synthetic source, keyed by symbol",
    ),
    TopicSpec(
        Topic.FEATURES,
        partitions=8,
        retention_ms=DAY_MS,
        groups=(Group.PATTERN_VALIDATOR, Group.AUDIT),  # the audit trail keeps orders' decision inputs
        description="feature vectors, keyed by symbol",
    ),
    TopicSpec(
        Topic.PREDICTIONS,
        partitions=6,
        retention_ms=12 * HOUR_MS,
        groups=(Group.EXECUTION, Group.AUDIT),  # signals, and the decision inputs again
        description="model predictions and validated signals, keyed by symbol",
    ),
    TopicSpec(
        Topic.TRADING,
        partitions=4,
        retention_ms=30 * DAY_MS,
        groups=(Group.SURVEILLANCE, Group.AUDIT, Group.EXECUTION, Group.LIVE, Group.METRICS),
        description="order lifecycle, fills, positions, risk decisions (from the outbox), keyed by account",
    ),
    TopicSpec(
        Topic.COMPLIANCE,
        partitions=2,
        retention_ms=7 * YEAR_MS,
        groups=(Group.AUDIT, Group.SURVEILLANCE, Group.EXECUTION, Group.LIVE, Group.METRICS),
        description="pre-trade compliance decisions, alerts, kill-switch changes (7 years: MiFID II Art. 16)",
    ),
)


def dead_letter_spec(spec: TopicSpec) -> TopicSpec:
    return TopicSpec(
        dlq_name(spec.name),
        partitions=DLQ_PARTITIONS,
        retention_ms=max(spec.retention_ms, DLQ_MIN_RETENTION_MS),
        groups=(),
        replication_factor=spec.replication_factor,
        min_insync_replicas=spec.min_insync_replicas,
        description=f"messages refused by consumers of {spec.name}, with the reason in headers",
    )


def all_specs(*, include_dlq: bool = True) -> tuple[TopicSpec, ...]:
    specs = list(CATALOGUE)
    if include_dlq:
        specs += [dead_letter_spec(s) for s in CATALOGUE]
    return tuple(specs)


SPECS_BY_NAME: dict[str, TopicSpec] = {s.name: s for s in all_specs()}


def topic_spec(name: str) -> TopicSpec | None:
    return SPECS_BY_NAME.get(name)


def partitions_for(name: str, default: int = 1) -> int:
    spec = SPECS_BY_NAME.get(name)
    return spec.partitions if spec else default
