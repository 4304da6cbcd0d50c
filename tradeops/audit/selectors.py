"""Readers of the audit trail for the people allowed to read it (``audit_*`` rows of
``tradeops.api.matrix``: compliance officers, auditors, admins)."""

from __future__ import annotations

from datetime import date

from django.db.models import QuerySet

from tradeops.api.matrix import visible_to
from tradeops.audit.models import AuditRecord, Digest
from tradeops.core.errors import NotFound


def audit_records_visible_to(*, user) -> QuerySet[AuditRecord]:
    return visible_to(AuditRecord.objects.all(), user=user, resource="audit_records")


def audit_record_visible_get(*, user, sequence: int) -> AuditRecord:
    try:
        return audit_records_visible_to(user=user).get(sequence=sequence)
    except AuditRecord.DoesNotExist:
        raise NotFound(
            f"no audit record {sequence} (or purged after its retention)", code="audit_record_not_found"
        ) from None


def audit_record_corrections(*, record: AuditRecord) -> list[int]:
    """Sequences of the records that correct ``record`` (2017/565 Art. 72: corrections visible)."""
    corrections = AuditRecord.objects.filter(corrects=record.event_id).order_by("sequence")
    return list(corrections.values_list("sequence", flat=True))


def audit_record_corrected(*, record: AuditRecord) -> int | None:
    """The sequence of the record ``record`` corrects, if any (and still in the table)."""
    if record.corrects is None:
        return None
    return AuditRecord.objects.filter(event_id=record.corrects).values_list("sequence", flat=True).first()


def audit_digests_visible_to(*, user) -> QuerySet[Digest]:
    return visible_to(Digest.objects.all(), user=user, resource="audit_digests")


def audit_digest_visible_get(*, user, day: date) -> Digest:
    try:
        return audit_digests_visible_to(user=user).get(day=day)
    except Digest.DoesNotExist:
        raise NotFound(f"no digest for {day}", code="audit_digest_not_found") from None


def audit_verification_latest(*, user) -> AuditRecord:
    """The newest ``audit.verified`` record the user may read: the latest verification of the
    chain, whoever ran it (the screen, the API, the nightly task, ``manage.py audit_verify``).
    Reads one row; runs nothing. Raises ``NotFound`` (``audit_not_verified``) before the first."""
    latest = audit_records_visible_to(user=user).filter(action="audit.verified").order_by("-sequence").first()
    if latest is None:
        raise NotFound(
            "the chain has not been verified yet: POST /api/v1/audit/verification/ runs a verification "
            "(or the audit screen's Verify now, manage.py audit_verify, the nightly task)",
            code="audit_not_verified",
        )
    return latest
