"""The event bus: ``get_bus()`` returns the backend that ``EVENT_BUS`` selects.

``memory`` (one process) returns one process-wide bus, so the outbox relay, the stage runners and
the embedded run share it; ``kafka`` returns a new ``KafkaBus`` for ``KAFKA_BOOTSTRAP_SERVERS``
with ``KAFKA_TOPIC_PREFIX``. See ``tradeops.bus.base`` for the contract.
"""

from __future__ import annotations

from tradeops.bus.base import Bus, BusError, DeadLetter, EventTooLarge, Record, Subscription

__all__ = ["Bus", "BusError", "DeadLetter", "EventTooLarge", "Record", "Subscription", "get_bus", "memory_bus"]

_memory_bus = None


def memory_bus():
    """The process-wide memory bus (created on first use)."""
    global _memory_bus
    if _memory_bus is None:
        from tradeops.bus.memory import MemoryBus

        _memory_bus = MemoryBus()
    return _memory_bus


def get_bus(backend: str | None = None, **options) -> Bus:
    """Build the bus named by ``backend`` or settings.EVENT_BUS.

    Kafka options (``bootstrap_servers``, ``topic_prefix``, ``client_id``, ``producer_config``,
    ``consumer_config``) default to the settings."""
    from django.conf import settings

    backend = backend or settings.EVENT_BUS
    if backend == "memory":
        return memory_bus()
    if backend == "kafka":
        from tradeops.bus.kafka import KafkaBus

        options.setdefault("bootstrap_servers", settings.KAFKA_BOOTSTRAP_SERVERS)
        options.setdefault("topic_prefix", settings.KAFKA_TOPIC_PREFIX)
        return KafkaBus(**options)
    raise BusError(f"EVENT_BUS must be 'memory' or 'kafka', got {backend!r}", code="bus_misconfigured")
