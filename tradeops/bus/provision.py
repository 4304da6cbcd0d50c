"""Provision and reconcile the topic catalogue (``tradeops.topics``) on a Kafka cluster.

``topics_plan`` compares the catalogue with the cluster and returns the actions; ``topics_apply``
carries them out through confluent-kafka's AdminClient. Reconciling is safe to repeat: a topic
that matches gets no action. Partitions only grow (Kafka cannot shrink them; more partitions
than the catalogue is reported, not changed); the replication factor is capped at the number of
brokers and a mismatch on an existing topic is reported (changing it needs a reassignment).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
    ResourceType,
)

from tradeops.topics import TopicSpec, all_specs

logger = logging.getLogger(__name__)


@dataclass
class TopicAction:
    kind: str  # create | add_partitions | set_config | warn | ok
    topic: str  # physical name
    detail: str
    partitions: int = 0
    replication_factor: int = 0
    configs: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.kind:15} {self.topic:40} {self.detail}"


def topics_plan(
    admin: AdminClient, *, prefix: str = "", specs: tuple[TopicSpec, ...] | None = None, timeout: float = 15.0
) -> tuple[list[TopicAction], int]:
    """Return (actions, broker count) to bring the cluster in line with the catalogue."""
    specs = specs if specs is not None else all_specs()
    metadata = admin.list_topics(timeout=timeout)
    brokers = len(metadata.brokers)
    actions: list[TopicAction] = []
    existing = {}
    for spec in specs:
        name = prefix + spec.name
        rf = max(1, min(spec.replication_factor, brokers))
        wanted = spec.topic_configs(rf)
        topic = metadata.topics.get(name)
        if topic is None or topic.error is not None:
            actions.append(
                TopicAction(
                    "create",
                    name,
                    f"partitions={spec.partitions} rf={rf} retention.ms={spec.retention_ms}",
                    partitions=spec.partitions,
                    replication_factor=rf,
                    configs=wanted,
                )
            )
            continue
        existing[name] = (spec, topic, rf, wanted)
    if existing:
        resources = [ConfigResource(ResourceType.TOPIC, name) for name in existing]
        futures = admin.describe_configs(resources, request_timeout=timeout)
        for resource, future in futures.items():
            spec, topic, rf, wanted = existing[resource.name]
            current = {k: v.value for k, v in future.result(timeout=timeout).items()}
            count = len(topic.partitions)
            actual_rf = len(next(iter(topic.partitions.values())).replicas) if topic.partitions else 0
            changed = False
            if count < spec.partitions:
                actions.append(
                    TopicAction(
                        "add_partitions", resource.name, f"{count} -> {spec.partitions}", partitions=spec.partitions
                    )
                )
                changed = True
            elif count > spec.partitions:
                actions.append(
                    TopicAction("warn", resource.name, f"has {count} partitions, catalogue says {spec.partitions}")
                )
            if actual_rf != rf:
                actions.append(
                    TopicAction("warn", resource.name, f"replication factor {actual_rf}, target {rf} (reassign)")
                )
            diff = {k: v for k, v in wanted.items() if current.get(k) != v}
            if diff:
                detail = ", ".join(f"{k}: {current.get(k)} -> {v}" for k, v in diff.items())
                actions.append(TopicAction("set_config", resource.name, detail, configs=diff))
                changed = True
            if not changed:
                actions.append(TopicAction("ok", resource.name, f"partitions={count} rf={actual_rf}"))
    order = {name: i for i, name in enumerate(prefix + s.name for s in specs)}
    actions.sort(key=lambda a: order.get(a.topic, 0))
    return actions, brokers


def topics_apply(admin: AdminClient, actions: list[TopicAction], *, timeout: float = 30.0) -> list[str]:
    """Carry out the plan; return a line per change made. Raises on the first failure."""
    done: list[str] = []
    creates = [
        NewTopic(a.topic, num_partitions=a.partitions, replication_factor=a.replication_factor, config=a.configs)
        for a in actions
        if a.kind == "create"
    ]
    if creates:
        for name, future in admin.create_topics(creates, request_timeout=timeout).items():
            future.result(timeout=timeout)
            done.append(f"created {name}")
    grows = [NewPartitions(a.topic, a.partitions) for a in actions if a.kind == "add_partitions"]
    if grows:
        for name, future in admin.create_partitions(grows, request_timeout=timeout).items():
            future.result(timeout=timeout)
            done.append(f"partitions of {name} increased")
    alters = [
        ConfigResource(
            ResourceType.TOPIC,
            a.topic,
            incremental_configs=[
                ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in a.configs.items()
            ],
        )
        for a in actions
        if a.kind == "set_config"
    ]
    if alters:
        for resource, future in admin.incremental_alter_configs(alters, request_timeout=timeout).items():
            future.result(timeout=timeout)
            done.append(f"configs of {resource.name} set")
    return done


def topics_delete(admin: AdminClient, names: list[str], *, timeout: float = 30.0) -> None:
    """Delete topics (tests tidy up their prefixed topics)."""
    if names:
        for future in admin.delete_topics(names, request_timeout=timeout).values():
            try:
                future.result(timeout=timeout)
            except (KafkaException, TimeoutError) as exc:  # already gone or slow: tidying up is best effort
                logger.debug("topic deletion: %s", exc)
