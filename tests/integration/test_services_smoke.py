"""The local services the project's script starts: Kafka and Redis answer for real."""

import os
import uuid

import pytest

pytestmark = pytest.mark.kafka


def test_kafka_create_produce_consume(kafka_bootstrap):
    from confluent_kafka import Consumer, Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    topic = f"smoke-{uuid.uuid4().hex[:12]}"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])[topic].result(timeout=30)
    try:
        producer = Producer({"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True, "acks": "all"})
        for i in range(10):
            producer.produce(topic, key=b"EURUSD", value=f"m{i}".encode())
        assert producer.flush(30) == 0
        consumer = Consumer(
            {
                "bootstrap.servers": kafka_bootstrap,
                "group.id": f"smoke-{uuid.uuid4().hex[:8]}",
                "auto.offset.reset": "earliest",
            }
        )
        consumer.subscribe([topic])
        seen = []
        for _ in range(60):
            for msg in consumer.consume(num_messages=100, timeout=1.0):
                assert msg.error() is None, msg.error()
                seen.append(msg.value().decode())
            if len(seen) == 10:
                break
        consumer.close()
        assert seen == [f"m{i}" for i in range(10)]  # one key, one partition: order kept
    finally:
        admin.delete_topics([topic])


def test_redis_ping():
    import redis

    client = redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"), socket_timeout=5)
    assert client.ping() is True
