"""Scheduled audit work (Celery beat, see ``CELERY_BEAT_SCHEDULE`` in settings): the daily
Merkle digest of yesterday, a nightly chain verification and, every 30 s, a signed checkpoint of
the chain head when one is due. Tasks take no ids and call one
service each; both are idempotent (a digest is written once per day, verification only reads)."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task

log = logging.getLogger(__name__)


@shared_task(acks_late=True, autoretry_for=(Exception,), retry_backoff=True, max_retries=5)
def audit_digest_daily() -> dict:
    """Digest yesterday (UTC) and write its export file (2017/565 Art. 72: not open to alteration)."""
    from tradeops.audit.digest import audit_digest_create
    from tradeops.core.clock import utcnow

    digest, path = audit_digest_create(day=utcnow().date() - timedelta(days=1))
    return {
        "day": digest.day.isoformat(),
        "records": digest.record_count,
        "root": digest.merkle_root,
        "file": str(path),
    }


@shared_task(acks_late=True)
def audit_verify_nightly() -> dict:
    """Recompute the chain and record the run in the trail (``audit.verified``, actor
    ``service:audit-verify-nightly``), as the screen and the API record theirs: the audit screen's
    "last verification" and the ``tradeops_audit_chain_verified*`` series (read from that record
    when scraped, in every process) then say when it last ran and what it found. A broken chain is
    also logged at ERROR."""
    from tradeops.audit.services import audit_verification_run

    report, _ = audit_verification_run(actor="service:audit-verify-nightly")
    if not report.ok:
        log.error("audit chain broken: %s", report.problem)
    return {"ok": report.ok, "checked": report.checked, "problem": str(report.problem or "")}


@shared_task(acks_late=True, ignore_result=True)
def audit_checkpoint_tick() -> dict:
    """Write a signed checkpoint of the chain head if one is due (every N records or M minutes)."""
    from tradeops.audit.checkpoint import audit_checkpoint_if_due

    checkpoint = audit_checkpoint_if_due(force_check=True)
    return {"written": checkpoint.name if checkpoint else None}
