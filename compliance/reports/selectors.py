"""Readers of the regulatory reports, for the screens (issue 14) and the REST API (issue 15).

Reports are visible to compliance officers, auditors and admins; to anyone else the selectors
return nothing (``report_visible``), as the compliance selectors do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import IO

from django.db.models import QuerySet

from compliance.reports.models import ReportRun, TransactionRecord
from tradeops.api.matrix import role_may
from tradeops.core.db_router import read_only
from tradeops.core.errors import NotFound, PermissionDenied


def report_visible(user) -> bool:
    """Compliance officers, auditors and admins: the ``reports`` row of ``tradeops.api.matrix``."""
    return role_may(user, "reports", "read")


def report_run_list(*, user, kind: str | None = None, status: str | None = None) -> QuerySet[ReportRun]:
    """Runs, newest first, filtered by kind and status."""
    if not report_visible(user):
        return ReportRun.objects.none()
    runs = ReportRun.objects.select_related("generated_by", "approved_by", "supersedes", "corrects")
    if kind:
        runs = runs.filter(kind=kind)
    if status:
        runs = runs.filter(status=status)
    return runs.order_by("-created_at", "-pk")


def report_run_get(*, user, reference: str) -> ReportRun:
    """One run by reference (or id). NotFound when missing or not visible."""
    runs = report_run_list(user=user)
    run = runs.filter(reference=reference).first()
    if run is None and reference.isdigit():
        run = runs.filter(pk=int(reference)).first()
    if run is None:
        raise NotFound(f"no report {reference}", code="report_not_found")
    return run


@read_only
def report_run_records(*, user, run: ReportRun, state: str | None = None) -> QuerySet[TransactionRecord]:
    """A transaction run's records (held back, rejected, ... with reasons)."""
    if not report_visible(user):
        return TransactionRecord.objects.none()
    records = TransactionRecord.objects.filter(run=run)
    if state:
        records = records.filter(state=state)
    return records.order_by("trn", "pk")


@dataclass(frozen=True)
class Download:
    fh: IO[bytes]
    filename: str
    content_type: str
    sha256: str
    size: int


def report_run_download(*, user, run: ReportRun, feedback: bool = False) -> Download:
    """The run's file (or the ARM's feedback file), opened for reading, with its SHA-256."""
    import os

    from compliance.reports.services import CONTENT_TYPES

    if not report_visible(user):
        raise PermissionDenied("reports are for compliance officers and auditors", code="report_forbidden")
    field = run.feedback_file if feedback else run.file
    if not field:
        raise NotFound(f"{run.reference} has no {'feedback ' if feedback else ''}file", code="report_file_missing")
    content_type = (
        "application/x-ndjson" if feedback else CONTENT_TYPES.get(run.file_format, "application/octet-stream")
    )
    return Download(
        fh=field.open("rb"),
        filename=os.path.basename(field.name),
        content_type=content_type,
        sha256=run.feedback_sha256 if feedback else run.sha256,
        size=field.size,
    )
