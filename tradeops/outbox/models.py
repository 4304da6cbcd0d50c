"""The transactional outbox: events born of a database write, stored in the same transaction.

A row is appended by ``outbox_append`` inside the writer's transaction and published by the
relay (``manage.py run_outbox_relay``) in ``id`` order; ``sent_at`` marks it published. No dual
write: if the transaction rolls back the event never existed, if Kafka is down the row waits.
"""

from __future__ import annotations

import pgtrigger
from django.db import models

# Wakes the relay process (``OutboxListener``, tradeops/outbox/relay.py): once per INSERT statement,
# delivered at commit (PostgreSQL folds identical notifications of one transaction into one).
NOTIFY_FUNC = "PERFORM pg_notify('tradeops_outbox', ''); RETURN NULL;"


class Outbox(models.Model):
    id = models.BigAutoField(primary_key=True)  # publish order
    event_id = models.UUIDField(unique=True)
    topic = models.CharField(max_length=200, help_text="Logical topic (the bus adds the prefix)")
    key = models.CharField(max_length=200, blank=True, help_text="Partition key: symbol or account")
    event_type = models.CharField(max_length=100)
    version = models.PositiveSmallIntegerField()
    occurred_at = models.DateTimeField()
    traceparent = models.CharField(max_length=64, blank=True)
    message = models.BinaryField(help_text="The encoded envelope, published as is")
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)

    class Meta:
        db_table = "outbox"
        indexes = [
            # The relay's scan: unsent rows in id order. Partial, so it stays as small as the backlog.
            models.Index(fields=["id"], name="outbox_unsent_idx", condition=models.Q(sent_at__isnull=True)),
            # Pruning's scan (``outbox_prune``: sent before a cutoff). Partial: an unsent row (every
            # row the order path inserts) is not in it, so appends do not write it (outbox 0003).
            models.Index(fields=["sent_at"], name="outbox_sent_at_idx", condition=models.Q(sent_at__isnull=False)),
        ]
        triggers = [
            pgtrigger.Trigger(
                name="outbox_notify",
                when=pgtrigger.After,
                operation=pgtrigger.Insert,
                level=pgtrigger.Statement,
                func=NOTIFY_FUNC,
            )
        ]

    def __str__(self) -> str:
        state = "sent" if self.sent_at else "pending"
        return f"outbox #{self.id} {self.event_type} {self.event_id} ({state})"


class ProcessedEvent(models.Model):
    """An idempotent consumer's claim on an event: inserted in the same transaction as the
    consumer's effects, so a redelivered event (at-least-once) is recognised and skipped."""

    id = models.BigAutoField(primary_key=True)
    consumer = models.CharField(max_length=100)
    event_id = models.UUIDField()
    processed_at = models.DateTimeField()

    class Meta:
        db_table = "outbox_processed_event"
        constraints = [models.UniqueConstraint(fields=["consumer", "event_id"], name="processed_event_once")]
        indexes = [models.Index(fields=["processed_at"], name="processed_event_at_idx")]

    def __str__(self) -> str:
        return f"{self.consumer} processed {self.event_id}"
