"""The audit trail: an append-only, hash-chained record of everything that happened.

MiFID II record keeping (Delegated Regulation 2017/565 Art. 72): records let the regulator
reconstitute each stage of each transaction, corrections keep the prior content visible, and
records are not open to manipulation. Retention: 5 years (MiFIR Art. 25, MiFID II Art. 16(6)),
7 for compliance records (at the regulator's request).

Immutability is enforced by the database (migration 0002): triggers refuse UPDATE, DELETE and
TRUNCATE on ``audit_record``; a DELETE is let through only for a record past its
``retain_until`` with no retention hold on its category, inside a purge transaction
(``tradeops.audit.services.audit_purge``), and the trigger leaves a tombstone in
``audit_purged`` so the chain stays verifiable. The writers are
``tradeops.audit.services.audit_append_many`` and, for the order path on PostgreSQL, the
``trading_order_write`` function (trading migration 0003), both under the chain-head lock.
"""

from __future__ import annotations

import orjson
from django.db import models

from tradeops.audit.triggers import INSERT_ONLY_GUARD, RECORD_GUARD, append_only


class ActorType(models.TextChoices):
    USER = "user", "User"
    SERVICE = "service", "Service"
    ALGORITHM = "algorithm", "Algorithm"
    SYSTEM = "system", "System"


class Category(models.TextChoices):
    """Record categories. Retention per category lives in settings (``AUDIT_RETENTION_YEARS``)."""

    TRADING = "trading", "Trading (orders, fills, positions, risk decisions)"
    COMPLIANCE = "compliance", "Compliance (decisions, alerts, rules, limits, kill switch, cases, reports)"
    SECURITY = "security", "Security (logins, failed logins)"
    SYSTEM = "system", "System (model activations, configuration)"


class AuditRecord(models.Model):
    """One audit record. ``sequence`` is the chain position (gap-free, assigned under the lock
    on ``ChainHead``); ``hash`` signs the previous hash and every field (see ``canonical``)."""

    sequence = models.BigIntegerField(primary_key=True)
    event_id = models.UUIDField(unique=True, help_text="Idempotency key: the same event is recorded once")
    occurred_at = models.DateTimeField(help_text="When it happened (UTC, µs; RTS 25)")
    recorded_at = models.DateTimeField(help_text="When the trail recorded it (UTC, µs)")
    retain_until = models.DateTimeField(help_text="Not removable by any path before this instant")
    category = models.CharField(max_length=16, choices=Category.choices)
    actor_type = models.CharField(max_length=16, choices=ActorType.choices)
    actor_id = models.CharField(max_length=128)
    action = models.CharField(max_length=64)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=128)
    payload = models.TextField(help_text="Canonical JSON, stored as hashed")
    corrects = models.UUIDField(null=True, blank=True, help_text="event_id of the record this one corrects")
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        db_table = "audit_record"
        triggers = append_only("audit_record", RECORD_GUARD)  # tradeops/audit/triggers.py
        ordering = ["sequence"]
        indexes = [
            models.Index(fields=["occurred_at"], name="audit_occurred_idx"),
            models.Index(fields=["recorded_at"], name="audit_recorded_idx"),
            models.Index(fields=["action", "occurred_at"], name="audit_action_idx"),
            models.Index(fields=["actor_type", "actor_id"], name="audit_actor_idx"),
            models.Index(fields=["object_type", "object_id"], name="audit_object_idx"),
            # Only corrections are indexed (audit 0008): every other record's NULL is never looked up.
            models.Index(fields=["corrects"], name="audit_corrects_idx", condition=models.Q(corrects__isnull=False)),
            # The console's operator alerts, newest recorded first (trading.console.alerts): a few
            # alerts among millions of records, so only they are indexed (audit 0009).
            models.Index(
                fields=["-recorded_at"], name="audit_alert_recorded_idx", condition=models.Q(action="alert.raised")
            ),
            # Each trading breaker's latest move, read by a restarted execution worker to restore
            # its breakers (trading.controls.selectors.trading_breakers_last_moves): one probe per
            # breaker, however long its history; only breaker records are indexed (audit 0010).
            models.Index(
                fields=["object_id", "-sequence"],
                name="audit_breaker_latest_idx",
                condition=models.Q(object_type="trading_breaker"),
            ),
        ]
        # Read-only for everyone through Django: the admin shows, never edits.
        default_permissions = ("view",)

    def __str__(self) -> str:
        return f"#{self.sequence} {self.action} {self.object_type}:{self.object_id} by {self.actor}"

    @property
    def actor(self) -> str:
        return f"{self.actor_type}:{self.actor_id}"

    @property
    def payload_data(self):
        return orjson.loads(self.payload)


class ChainHead(models.Model):
    """The one-row head of the chain. Appenders lock it (``select_for_update``), so appends are
    serialised and ``sequence`` stays gap-free; ``audit_verify`` compares it with the last row."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    last_sequence = models.BigIntegerField(default=0)
    last_hash = models.CharField(max_length=64)
    updated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "audit_chain_head"
        constraints = [models.CheckConstraint(condition=models.Q(id=1), name="audit_chain_head_single_row")]

    def __str__(self) -> str:
        return f"chain head #{self.last_sequence} {self.last_hash[:12]}"


class PurgedRecord(models.Model):
    """Tombstone of a record removed after its retention: written by the database trigger, in
    the deleting transaction, so the chain through it stays verifiable (its hash and links)."""

    sequence = models.BigIntegerField(primary_key=True)
    event_id = models.UUIDField()
    category = models.CharField(max_length=16)
    recorded_at = models.DateTimeField()
    retain_until = models.DateTimeField()
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)
    purged_at = models.DateTimeField()

    class Meta:
        db_table = "audit_purged"
        triggers = append_only("audit_purged", INSERT_ONLY_GUARD)
        ordering = ["sequence"]
        default_permissions = ("view",)

    def __str__(self) -> str:
        return f"purged #{self.sequence} ({self.category})"


class RetentionHold(models.Model):
    """A hold on a category (a regulator's request to keep records up to 7 years, litigation):
    while one is active the database refuses to purge that category, whatever its age."""

    category = models.CharField(max_length=16, choices=Category.choices)
    reason = models.TextField()
    placed_by = models.CharField(max_length=128)
    placed_at = models.DateTimeField()
    released_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "audit_retention_hold"

    def __str__(self) -> str:
        state = "released" if self.released_at else "active"
        return f"hold on {self.category} ({state})"


class Digest(models.Model):
    """A daily Merkle digest: the root over the day's record hashes and the chain hash at the
    end of the day. Also written to an export file, which is the copy kept outside the database."""

    day = models.DateField(unique=True)
    first_sequence = models.BigIntegerField(null=True)
    last_sequence = models.BigIntegerField(null=True)
    record_count = models.PositiveIntegerField()
    merkle_root = models.CharField(max_length=64)
    chain_hash = models.CharField(max_length=64, help_text="hash of the day's last record")
    created_at = models.DateTimeField()
    file_name = models.CharField(max_length=255, blank=True)

    class Meta:
        db_table = "audit_digest"
        triggers = append_only("audit_digest", INSERT_ONLY_GUARD)
        ordering = ["day"]
        default_permissions = ("view",)

    def __str__(self) -> str:
        return f"digest {self.day} {self.merkle_root[:12]} ({self.record_count} records)"


class SearchDocument(models.Model):
    """The full-text document of one record (PostgreSQL search backend), kept beside the chain,
    not in it: a derived index like Elasticsearch's, rebuilt from the chain at will.

    On PostgreSQL ``document`` is a ``tsvector`` with a GIN index (migration 0003); rows are
    added in bulk by ``search_documents_catch_up`` (before each full-text search and from
    ``audit_reindex``), so appends (which run inside every trading transaction, under the
    chain-head lock) never pay for GIN maintenance. Unused on SQLite."""

    sequence = models.BigIntegerField(primary_key=True)
    document = models.TextField()

    class Meta:
        db_table = "audit_search_document"
        default_permissions = ()

    def __str__(self) -> str:
        return f"search document #{self.sequence}"
