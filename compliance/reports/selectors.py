"""Readers of the regulatory reports, for the screens (issue 14) and the REST API (issue 15).

Reports are visible to compliance officers, auditors and admins; to anyone else the selectors
return nothing (``report_visible``), as the compliance selectors do.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import IO

from django.db import connections
from django.db.models import QuerySet

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
       file of a run not signed off (awaiting approval, or the ARM rejected it): that run's
       dates, by a skip scan of the partial index ``record_reported_run_date`` on (run, the
       record's ``trade_date``), one probe a date, not its records; or
    2. one of its executions has no standing record and was recorded after every signed-off run
       of its date (``as_of``), or the date has no such run: probed in the index
       ``execution_trade_date_recorded_idx`` (trading 0010) at (date, that ``as_of``), so a
       reported date costs one probe and its late fills, not its fills.

    The dates themselves come from that index's leading column, one probe each (a recursive
    skip scan). Cost: the dates with trades, the dates of the runs awaiting sign-off, the
    standing records held back or rejected, and the fills recorded after their date's run; not
    the executions ever recorded, nor a run's records (docs/reporting.md, "What
    is due", bench/home_t1_due.py). Preconditions the indexes rely on: runs are never deleted
    (PROTECT), so every record's run exists; a record's ``trade_date`` is its execution's UTC
    trading date (written with it; executions are append-only)."""
    if not report_visible(user):
        return UnreportedDays(days=0, oldest=None, through=through)
    connection = connections[read_alias()]
    due = _days_with_standing_records_unreported(through=through, connection=connection)
    due |= _days_with_fills_unseen(through=through, skip=due, connection=connection)
    return UnreportedDays(days=len(due), oldest=min(due, default=None), through=through)


def _days_with_standing_records_unreported(*, through: date, connection) -> set[date]:
    """Part 1: the dates (up to ``through``) of executions whose standing record does not report
    them: held back or rejected, or ``reported`` in the file of a run that is not signed off.
    The dates are the records' own (``trade_date``, the execution's UTC trading date, written
    with the record): no record is joined to its fill."""
    standing = TransactionRecord.objects.using(connection.alias).filter(active=True, report_status="NEWT")
    # Held back or rejected: the few rows of the partial index record_standing_unreported.
    found = set(
        standing.exclude(state__in=[RecordState.ACCEPTED, RecordState.REPORTED])
        .filter(trade_date__lte=through)
        .order_by()
        .values_list("trade_date", flat=True)
        .distinct()
    )
    found |= _days_reported_by_runs_not_signed_off(through=through, connection=connection)
    return found


# The dates of the standing records in the files of the runs not signed off (awaiting approval,
# or the ARM rejected them): per such run a recursive skip scan of the partial index
# record_reported_run_date (run, trade_date) (reports 0004), one probe a date, where reading
# the records would read a million a day at scale. The runs are the few not signed off (the
# runs table, not the records, is read for them).
_RUN_DAYS_SQL = """
WITH RECURSIVE run_day (run_id, d) AS (
    SELECT r.id, (SELECT min(t.trade_date) FROM reports_transactionrecord t
                  WHERE t.run_id = r.id AND {reported} AND t.trade_date <= %(through)s)
    FROM reports_reportrun r WHERE r.status NOT IN ({signed_off})
  UNION ALL
    SELECT s.run_id, (SELECT min(t.trade_date) FROM reports_transactionrecord t
                      WHERE t.run_id = s.run_id AND {reported} AND t.trade_date > s.d AND t.trade_date <= %(through)s)
    FROM run_day s WHERE s.d IS NOT NULL
)
SELECT DISTINCT d FROM run_day WHERE d IS NOT NULL
"""
# The index's condition, as the model states it (the planner matches the partial index by it).
_REPORTED_STANDING = "t.active = %(true)s AND t.report_status = 'NEWT' AND t.state = %(reported)s"


def _days_reported_by_runs_not_signed_off(*, through: date, connection) -> set[date]:
    sqlite = connection.vendor == "sqlite"
    params: dict = {
        "through": through.isoformat() if sqlite else through,  # SQLite compares Django's ISO text
        "true": True,
        "reported": RecordState.REPORTED.value,
    }
    params.update({f"signed_off{i}": status.value for i, status in enumerate(SIGNED_OFF)})
    sql = _RUN_DAYS_SQL.format(
        reported=_REPORTED_STANDING, signed_off=", ".join(f"%(signed_off{i})s" for i in range(len(SIGNED_OFF)))
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = [r[0] for r in cursor.fetchall()]
    return {date.fromisoformat(d) if isinstance(d, str) else d for d in rows}


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
