"""Readers of the regulatory reports, for the screens (issue 14) and the REST API (issue 15).

Reports are visible to compliance officers, auditors and admins; to anyone else the selectors
return nothing (``report_visible``), as the compliance selectors do.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date
from typing import IO

from django.db.models import Count, Exists, Min, OuterRef, Q, QuerySet
from django.db.models.functions import TruncDate

from compliance.reports.models import RecordState, ReportKind, ReportRun, RunStatus, TransactionRecord
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


def report_runs_of_period(*, user, kind: str, period_start: date, period_end: date) -> list[ReportRun]:
    """The runs that stand for exactly this kind and period (not superseded, not failed, not a
    correction), oldest first: what a new run of it would supersede, or, once submitted, what it
    must name (``supersedes``) with a reason (``report_run_create``)."""
    return list(
        report_run_list(user=user, kind=kind)
        .filter(period_start=period_start, period_end=period_end, corrects__isnull=True)
        .exclude(status__in=[RunStatus.SUPERSEDED, RunStatus.FAILED])
        .order_by("created_at", "pk")
    )


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


# A transaction report run an officer signed off: what it reported stands (an ARM rejection of some
# of its records leaves the run "rejected" and those records "rejected": not reported).
SIGNED_OFF = (RunStatus.APPROVED, RunStatus.SUBMITTED, RunStatus.ACCEPTED)


@dataclass(frozen=True)
class UnreportedDays:
    """Closed UTC trading dates (event time) with executions no signed-off report covers."""

    days: int
    oldest: date | None
    through: date


@read_only
def transaction_days_unreported(*, user, through: date) -> UnreportedDays:
    """The trading dates up to ``through`` (the last closed one, ``trading_date_closed()``) that
    still await their RTS 22 transaction report (MiFIR Art. 26: every execution, T+1), in one
    aggregate over the executions: the count of such dates and the oldest.

    An execution is covered when its standing record (the active new-transaction record: at
    most one per execution) was accepted by the ARM, or is in the file of a run an officer
    approved (approved, submitted, accepted); or when it has no record at all and a signed-off
    run of its date (an ARM answer included) had seen it (recorded by the run's ``as_of``): the
    run found it out of scope. Not covered: a date no signed-off run covers, a fill recorded
    after its date's run (until a later run reports it as late), a record held back or rejected
    (until a correction reports it). A date without executions needs no report."""
    if not report_visible(user):
        return UnreportedDays(days=0, oldest=None, through=through)
    from compliance.reports.generators.transaction import period_bounds
    from trading.models import Execution

    standing = TransactionRecord.objects.filter(execution=OuterRef("pk"), active=True, report_status="NEWT")
    in_signed_off_file = Q(state=RecordState.REPORTED, run__status__in=SIGNED_OFF)
    reported = standing.filter(Q(state=RecordState.ACCEPTED) | in_signed_off_file)
    seen = ReportRun.objects.filter(
        kind=ReportKind.TRANSACTION,
        status__in=[*SIGNED_OFF, RunStatus.REJECTED],
        period_start__lte=OuterRef("trade_date"),
        period_end__gte=OuterRef("trade_date"),
        as_of__gte=OuterRef("recorded_at"),
    )
    _, end = period_bounds(through, through)
    due = (
        Execution.objects.filter(executed_at__lt=end)
        .annotate(trade_date=TruncDate("executed_at", tzinfo=UTC))
        .exclude(Exists(reported))
        .exclude(Exists(seen) & ~Exists(standing))
        .aggregate(days=Count("trade_date", distinct=True), oldest=Min("trade_date"))
    )
    return UnreportedDays(days=due["days"], oldest=due["oldest"], through=through)
