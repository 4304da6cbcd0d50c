"""Kafka for the collector's round-trip test: the topic catalogue provisioned under a unique
prefix (the broker is shared with other engineers' runs) and deleted afterwards."""

from __future__ import annotations

import os
import uuid

import pytest

from tests.conftest import service_unavailable


@pytest.fixture
def collector_kafka_bus():
    from confluent_kafka.admin import AdminClient

    from tradeops.bus.kafka import KafkaBus
    from tradeops.bus.provision import topics_apply, topics_delete, topics_plan

    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    admin = AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 3000})
    try:
        admin.list_topics(timeout=5)
    except Exception:
        service_unavailable(f"needs Kafka at {bootstrap}: bash scripts/services.sh up")
    prefix = f"test-md-{uuid.uuid4().hex[:8]}-"
    actions, _ = topics_plan(admin, prefix=prefix)
    topics_apply(admin, actions)
    bus = KafkaBus(
        bootstrap_servers=bootstrap,
        topic_prefix=prefix,
        consumer_config={"session.timeout.ms": 6000, "fetch.wait.max.ms": 50},
    )
    yield bus
    bus.close()
    topics_delete(admin, [a.topic for a in actions])
