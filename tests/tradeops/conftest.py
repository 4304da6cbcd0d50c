"""Fixtures for the event backbone: a unique Kafka topic prefix per test, topics provisioned
from the catalogue, and tidy-up afterwards (the broker is shared with other engineers' runs)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tests.conftest import service_unavailable
from tradeops.events import Tick, make_event


def kafka_available(bootstrap: str) -> bool:
    from confluent_kafka.admin import AdminClient

    try:
        AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 3000}).list_topics(timeout=5)
    except Exception:
        return False
    return True


@pytest.fixture(scope="session")
def kafka(kafka_bootstrap_session) -> str:
    if not kafka_available(kafka_bootstrap_session):
        service_unavailable(f"needs Kafka at {kafka_bootstrap_session}: bash scripts/services.sh up")
    return kafka_bootstrap_session


@pytest.fixture(scope="session")
def kafka_bootstrap_session() -> str:
    import os

    return os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")


@pytest.fixture
def kafka_prefix(kafka):
    """Provision the whole catalogue under a unique prefix; delete it after the test."""
    from confluent_kafka.admin import AdminClient

    from tradeops.bus.provision import topics_apply, topics_delete, topics_plan

    prefix = f"test-{uuid.uuid4().hex[:10]}-"
    admin = AdminClient({"bootstrap.servers": kafka})
    actions, _ = topics_plan(admin, prefix=prefix)
    topics_apply(admin, actions)
    yield prefix
    topics_delete(admin, [a.topic for a in actions])


@pytest.fixture
def kafka_bus(kafka, kafka_prefix):
    from tradeops.bus.kafka import KafkaBus

    bus = KafkaBus(
        bootstrap_servers=kafka,
        topic_prefix=kafka_prefix,
        consumer_config={"session.timeout.ms": 6000, "fetch.wait.max.ms": 50},
    )
    yield bus
    bus.close()


T0 = datetime(2026, 1, 5, 9, 0, 0, 123456, tzinfo=UTC)


def tick(symbol: str = "EURUSD", seq: int = 0, *, traceparent: str = ""):
    """A tick whose volume carries a per-key sequence number (for ordering checks)."""
    return make_event(
        Tick(
            symbol=symbol,
            bid=Decimal("1.08510") + Decimal(seq % 100) / 100000,
            ask=Decimal("1.08520") + Decimal(seq % 100) / 100000,
            ts=T0,
            volume=Decimal(seq),
        ),
        source="test",
        key=symbol,
        traceparent=traceparent,
    )
