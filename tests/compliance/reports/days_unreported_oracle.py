"""The home page's T+1 reminder as it was first written (wip/touch35): one aggregate over every
execution, each checked against its standing record and its date's runs with two correlated
EXISTS. It reads the definition (``transaction_days_unreported``'s docstring) literally, so it is
the oracle the per-date reading is compared with (tests, ``bench/home_t1_due.py``); it grows with
the executions ever recorded, so it is not what the home page runs."""

from __future__ import annotations

from datetime import UTC, date

from django.db.models import Count, Exists, Min, OuterRef, Q
from django.db.models.functions import TruncDate

from compliance.reports.generators.transaction import period_bounds
from compliance.reports.models import RecordState, ReportKind, ReportRun, RunStatus, TransactionRecord
from compliance.reports.selectors import SIGNED_OFF


def days_unreported_by_scan(*, through: date) -> tuple[int, date | None]:
    """(count of due dates, oldest) up to ``through``, by the one-pass definition."""
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
    return due["days"], due["oldest"]
