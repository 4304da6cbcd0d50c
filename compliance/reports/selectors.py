"""Readers of the regulatory reports, for the screens (issue 14) and the REST API (issue 15).

Reports are visible to compliance officers, auditors and admins; to anyone else the selectors
return nothing (``report_visible``), as the compliance selectors do.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date
from typing import IO

from django.db import connections
from django.db.models import QuerySet
from django.db.models.functions import TruncDate

from compliance.reports.models import RecordState, ReportKind, ReportRun, RunStatus, TransactionRecord
from tradeops.api.matrix import role_may
from tradeops.core.db_router import read_alias, read_only
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
        .standing_for(kind=kind, period_start=period_start, period_end=period_end)
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
    still await their RTS 22 transaction report (MiFIR Art. 26: every execution, T+1): the
    count of such dates and the oldest.

    An execution is covered when its standing record (the active new-transaction record: at
    most one per execution) was accepted by the ARM, or is in the file of a run an officer
    approved (approved, submitted, accepted); or when it has no record at all and a signed-off
    run of its date (an ARM answer included) had seen it (recorded by the run's ``as_of``): the
    run found it out of scope. Not covered: a date no signed-off run covers, a fill recorded
    after its date's run (until a later run reports it as late), a record held back or rejected
    (until a correction reports it). A date without executions needs no report.

    Read per trading date, not per execution (the home page reads it; the executions grow every
    day): a date is due when

    1. one of its executions has a standing record that does not report it: held back or
       rejected (the partial index ``record_standing_unreported``: those few rows), or in the
       file of a run not signed off (its records, by the ``(run, state)`` index: the runs
       awaiting approval or the ARM's rejection, not the history); or
    2. one of its executions has no standing record and was recorded after every signed-off run
       of its date (``as_of``), or the date has no such run: probed in the index
       ``execution_trade_date_recorded_idx`` (trading 0010) at (date, that ``as_of``), so a
       reported date costs one probe and its late fills, not its fills.

    The dates themselves come from that index's leading column, one probe each (a recursive
    skip scan). Cost: the dates with trades, the standing records not reported, and the fills
    recorded after their date's run; not the executions ever recorded (docs/reporting.md, "What
    is due", bench/home_t1_due.py). Precondition the indexes rely on: runs are never deleted
    (PROTECT), so every record's run exists."""
    if not report_visible(user):
        return UnreportedDays(days=0, oldest=None, through=through)
    connection = connections[read_alias()]
    due = _days_with_standing_records_unreported(through=through, using=connection.alias)
    due |= _days_with_fills_unseen(through=through, skip=due, connection=connection)
    return UnreportedDays(days=len(due), oldest=min(due, default=None), through=through)


def _days_with_standing_records_unreported(*, through: date, using: str) -> set[date]:
    """Part 1: the dates (up to ``through``) of executions whose standing record does not report
    them: held back or rejected, or ``reported`` in the file of a run that is not signed off."""
    from compliance.reports.generators.transaction import period_bounds

    standing = TransactionRecord.objects.using(using).filter(active=True, report_status="NEWT")
    unreported = [standing.exclude(state__in=[RecordState.ACCEPTED, RecordState.REPORTED])]
    # The runs first, as values: a handful (awaiting approval, or the ARM rejected them), so the
    # records are read by the (run, state) index, never by a scan of the table.
    not_signed_off = list(ReportRun.objects.using(using).exclude(status__in=SIGNED_OFF).values_list("pk", flat=True))
    if not_signed_off:
        unreported.append(standing.filter(state=RecordState.REPORTED, run_id__in=not_signed_off))
    found: set[date] = set()
    for records in unreported:
        found.update(
            records.filter(execution__executed_at__lt=period_bounds(through, through)[1])
            .annotate(trade_date=TruncDate("execution__executed_at", tzinfo=UTC))
            .order_by()
            .values_list("trade_date", flat=True)
            .distinct()
        )
    return found


# Part 2, one statement. The trading dates by a recursive skip scan of the index's leading column
# (trading 0010); the latest as_of of each date's signed-off runs, by expanding each such run's
# period into its dates once (a run is a day or a few: one row a date, where a lookup per date
# would read every run for every date); then per date one probe at (date, that as_of) for a fill
# with no standing record. The trading date is the index's expression, written as the database
# has it: TruncDate(tzinfo=UTC) on PostgreSQL, SQLite's date() of Django's UTC text.
_TRADE_DATE = {"postgresql": "((e.executed_at AT TIME ZONE 'UTC')::date)", "sqlite": "date(e.executed_at)"}
_NEXT_DAY = {"postgresql": "s.d + 1", "sqlite": "date(s.d, '+1 day')"}
_NEVER = {"postgresql": "'-infinity'::timestamptz", "sqlite": "''"}
# PostgreSQL would turn the EXISTS into a semi join over every execution (it expects many dates),
# and the NOT EXISTS into a merge anti join walking the executions by id; OFFSET 0 keeps both
# probes: per date, the index at (date, as_of) and, per fill found there, the standing record's
# unique index, stopping at the first fill without one. SQLite probes per row anyway (and has no
# OFFSET without LIMIT).
_PROBE_FENCE = {"postgresql": " OFFSET 0", "sqlite": ""}
_UNSEEN_SQL = """
WITH RECURSIVE day (d) AS (
    SELECT min({td}) FROM trading_execution e WHERE {td} <= %(through)s
  UNION ALL
    SELECT (SELECT min({td}) FROM trading_execution e WHERE {td} > day.d AND {td} <= %(through)s)
    FROM day WHERE day.d IS NOT NULL
),
seen_day (d, period_end, as_of) AS (
    SELECT r.period_start, r.period_end, r.as_of FROM reports_reportrun r
    WHERE r.kind = %(kind)s AND r.status IN ({seen}) AND r.period_start <= %(through)s
  UNION ALL
    SELECT {next_day}, s.period_end, s.as_of FROM seen_day s WHERE s.d < s.period_end AND s.d < %(through)s
),
seen (d, as_of) AS (SELECT d, max(as_of) FROM seen_day GROUP BY d)
SELECT day.d FROM day LEFT JOIN seen ON seen.d = day.d
WHERE day.d IS NOT NULL{skip}
  AND EXISTS (
    SELECT 1 FROM trading_execution e
    WHERE {td} = day.d
      AND e.recorded_at > COALESCE(seen.as_of, {never})
      AND NOT EXISTS (
        SELECT 1 FROM reports_transactionrecord t
        WHERE t.execution_id = e.id AND t.active = %(true)s AND t.report_status = 'NEWT'{fence})
    {fence}
  )
"""


def _days_with_fills_unseen(*, through: date, skip: set[date], connection) -> set[date]:
    """Part 2: the dates (up to ``through``, not in ``skip``: already due) with an execution
    that has no standing record and that no signed-off run of its date saw."""
    vendor = connection.vendor
    if vendor not in _TRADE_DATE:
        raise NotImplementedError(f"transaction_days_unreported reads PostgreSQL or SQLite, not {vendor}")
    sqlite = vendor == "sqlite"

    def day(d: date):
        return d.isoformat() if sqlite else d  # SQLite compares Django's ISO text

    seen = [*SIGNED_OFF, RunStatus.REJECTED]
    params: dict = {"through": day(through), "kind": ReportKind.TRANSACTION, "true": True}
    params.update({f"seen{i}": status.value for i, status in enumerate(seen)})
    params.update({f"skip{i}": day(d) for i, d in enumerate(sorted(skip))})
    sql = _UNSEEN_SQL.format(
        td=_TRADE_DATE[vendor],
        never=_NEVER[vendor],
        next_day=_NEXT_DAY[vendor],
        fence=_PROBE_FENCE[vendor],
        seen=", ".join(f"%(seen{i})s" for i in range(len(seen))),
        skip=("\n  AND day.d NOT IN (" + ", ".join(f"%(skip{i})s" for i in range(len(skip))) + ")" if skip else ""),
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = [r[0] for r in cursor.fetchall()]
    return {date.fromisoformat(d) if isinstance(d, str) else d for d in rows}
