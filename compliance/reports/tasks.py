"""Celery tasks of the regulatory reports (queue ``reports``; route ``compliance.reports.*`` in
settings). Entry points only: each loads what it needs and calls one service.

Schedules live in the database (django-celery-beat; ``compliance.reports.schedules``).
"""

from __future__ import annotations

import logging
from datetime import date, timedelta

from celery import shared_task

from compliance.reports.models import ReportKind, ReportRun, RunStatus
from tradeops.core.clock import utcnow

logger = logging.getLogger(__name__)
BEAT = "service:celery-beat"
FEEDBACK_POLL_SECONDS = 300
SUBMIT_RETRY_SECONDS = 600


def period_for(name: str, today: date) -> tuple[date, date]:
    """``previous_week`` (Monday-Sunday), ``previous_month``, ``previous_year``, ``yesterday``."""
    if name == "yesterday":
        day = today - timedelta(days=1)
        return day, day
    if name == "previous_week":
        monday = today - timedelta(days=today.weekday() + 7)
        return monday, monday + timedelta(days=6)
    if name == "previous_month":
        last = today.replace(day=1) - timedelta(days=1)
        return last.replace(day=1), last
    if name == "previous_year":
        return date(today.year - 1, 1, 1), date(today.year - 1, 12, 31)
    raise ValueError(f"unknown period {name!r}")


def _run_once(*, kind: str, start: date, end: date) -> ReportRun | None:
    """A redelivered beat tick must not make a second run: reuse a live one of the period."""
    return ReportRun.objects.standing_for(kind=kind, period_start=start, period_end=end).first()


@shared_task(name="compliance.reports.tasks.transaction_report_daily", acks_late=True)
def transaction_report_daily(day: str | None = None) -> int | None:
    """RTS 22, T+1: the transaction report of the last closed UTC trading date, generated and
    validated, waiting for a compliance officer's approval (which queues the submission). None,
    and no run, when the date has nothing to report (no trade, no late arrival): a weekend's
    empty file would only wait for an officer to sign off nothing. ``day``: a trading date to run
    instead (a backfill); one that has not closed is refused (``report_day_open``), as a person's
    run is (``check_trading_date_closed``)."""
    from compliance.reports.services import (
        check_trading_date_closed,
        report_run_create,
        report_run_execute,
        trading_date_closed,
        transaction_run_needed,
    )

    trading_date = date.fromisoformat(day) if day else trading_date_closed()
    check_trading_date_closed(trading_date=trading_date)
    run = _run_once(kind=ReportKind.TRANSACTION, start=trading_date, end=trading_date)
    if run is None:
        if not transaction_run_needed(trading_date=trading_date):
            logger.info("transaction report of %s: no execution to report, no run", trading_date)
            return None
        run = report_run_create(
            kind=ReportKind.TRANSACTION, period_start=trading_date, period_end=trading_date, actor=BEAT
        )
    if run.status == RunStatus.PENDING:
        run = report_run_execute(run=run)
    return run.pk


@shared_task(name="compliance.reports.tasks.report_run_scheduled", acks_late=True)
def report_run_scheduled(kind: str, period: str = "previous_month") -> int:
    """Best execution, alerts summary, RTS 6 pack on their cadence (settings.REPORTING_SCHEDULES)."""
    from compliance.reports.services import report_run_create, report_run_execute

    start, end = period_for(period, utcnow().date())
    run = _run_once(kind=kind, start=start, end=end) or report_run_create(
        kind=kind, period_start=start, period_end=end, actor=BEAT
    )
    if run.status == RunStatus.PENDING:
        run = report_run_execute(run=run)
    return run.pk


@shared_task(name="compliance.reports.tasks.report_run_execute_queued", acks_late=True)
def report_run_execute_queued(run_id: int) -> str:
    """Generate and validate a run a person opened (the integration API queues it on commit).
    Idempotent: a redelivered task finds the run past pending and does nothing."""
    from compliance.reports.services import report_run_execute

    run = ReportRun.objects.get(pk=run_id)
    if run.status != RunStatus.PENDING:
        return run.status
    return report_run_execute(run=run).status


@shared_task(bind=True, name="compliance.reports.tasks.report_submit", acks_late=True, max_retries=48)
def report_submit(self, run_id: int) -> str:
    """Submit an approved transaction report to the ARM; retried every 10 minutes while the ARM
    is unavailable (the adapter already retried with back-off). Idempotent by the run's key."""
    from compliance.reports.arm import ArmUnavailable
    from compliance.reports.services import report_run_submit

    run = ReportRun.objects.get(pk=run_id)
    try:
        run = report_run_submit(run=run, actor="service:celery")
    except ArmUnavailable as exc:
        raise self.retry(exc=exc, countdown=SUBMIT_RETRY_SECONDS) from exc
    report_feedback_poll.apply_async((run.pk,), countdown=FEEDBACK_POLL_SECONDS)
    return run.submission_id


@shared_task(bind=True, name="compliance.reports.tasks.report_feedback_poll", acks_late=True, max_retries=288)
def report_feedback_poll(self, run_id: int) -> str:
    """Fetch the ARM's feedback of a submitted run and apply it; until it exists, ask again
    every 5 minutes (for a day at most)."""
    from compliance.reports.arm import ArmUnavailable
    from compliance.reports.services import report_feedback_fetch

    run = ReportRun.objects.get(pk=run_id)
    if run.status != RunStatus.SUBMITTED:
        return run.status
    try:
        applied = report_feedback_fetch(run=run)
    except ArmUnavailable as exc:
        raise self.retry(exc=exc, countdown=FEEDBACK_POLL_SECONDS) from exc
    if applied is None:
        raise self.retry(countdown=FEEDBACK_POLL_SECONDS)
    return applied.status
