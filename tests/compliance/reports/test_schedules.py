"""Schedules in the database (django-celery-beat), the reports queue, the daily task."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest

from compliance.reports.models import ReportKind, ReportRun, RunStatus
from compliance.reports.schedules import report_schedules_install
from compliance.reports.services import trading_date_closed
from compliance.reports.tasks import period_for, report_run_scheduled, transaction_report_daily

pytestmark = pytest.mark.django_db


def test_schedules_are_installed_once_and_admin_edits_stand(settings):
    from django_celery_beat.models import PeriodicTask

    settings.REPORTING_TIMEZONE = "Europe/London"
    assert set(report_schedules_install()) == set(settings.REPORTING_SCHEDULES)
    daily = PeriodicTask.objects.get(name="transaction-report-daily")
    assert daily.task == "compliance.reports.tasks.transaction_report_daily" and daily.queue == "reports"
    assert (daily.crontab.minute, daily.crontab.hour, str(daily.crontab.timezone)) == ("30", "0", "Europe/London")
    monthly = PeriodicTask.objects.get(name="best-execution-monthly")
    assert json.loads(monthly.kwargs) == {"kind": "best_execution", "period": "previous_month"}
    daily.enabled = False  # an officer pauses it in the admin
    daily.save()
    assert report_schedules_install() == []
    daily.refresh_from_db()
    assert daily.enabled is False
    assert "transaction-report-daily" in report_schedules_install(overwrite=True)


def test_report_tasks_go_to_the_reports_queue():
    from tradeops.celery import app

    router = app.amqp.router
    for name in ("compliance.reports.tasks.report_submit", "compliance.reports.tasks.transaction_report_daily"):
        assert router.route({}, name)["queue"].name == "reports"
    assert "compliance.reports.tasks.report_submit" in app.tasks


def test_the_daily_report_is_for_the_last_closed_utc_date(settings):
    settings.REPORTING_CLOSE_GRACE_MINUTES = 15
    assert trading_date_closed(now=datetime(2026, 3, 3, 0, 30, tzinfo=UTC)) == date(2026, 3, 2)
    assert trading_date_closed(now=datetime(2026, 3, 3, 0, 10, tzinfo=UTC)) == date(2026, 3, 1)


def test_periods():
    today = date(2026, 3, 4)  # a Wednesday
    assert period_for("previous_week", today) == (date(2026, 2, 23), date(2026, 3, 1))
    assert period_for("previous_month", today) == (date(2026, 2, 1), date(2026, 2, 28))
    assert period_for("previous_year", today) == (date(2025, 1, 1), date(2025, 12, 31))


def services_now() -> datetime:
    import compliance.reports.services as services

    return services.utcnow()


def _days_after(monkeypatch, trade_date, days: int, *, hour: int = 1) -> None:
    """The wall clock ``days`` after the paper broker's fills (today's), at ``hour`` UTC: their
    trading date has closed, as the daily task needs (T+1)."""
    from datetime import time, timedelta

    import compliance.reports.services as services

    later = datetime.combine(trade_date + timedelta(days=days), time(hour, 0), tzinfo=UTC)
    monkeypatch.setattr(services, "utcnow", lambda: later)


def test_the_daily_task_given_a_date_not_closed_refuses_it_as_a_persons_run_is(traded, trade_date, monkeypatch):
    """A backfill of ``day`` goes through the same T+1 refusal as the form, the API and
    ``manage.py report_run``: a run over today would report part of the day."""
    from compliance.reports.services import ReportError

    with pytest.raises(ReportError, match=rf"the trading date {trade_date} has not closed yet") as refused:
        transaction_report_daily.apply(kwargs={"day": trade_date.isoformat()}).get()
    assert refused.value.code == "report_day_open"
    assert not ReportRun.objects.exists()
    _days_after(monkeypatch, trade_date, 1)
    assert transaction_report_daily.apply(kwargs={"day": trade_date.isoformat()}).get() is not None


def test_daily_task_generates_once(traded, trade_date, monkeypatch):
    _days_after(monkeypatch, trade_date, 1)
    run_id = transaction_report_daily.apply(kwargs={"day": trade_date.isoformat()}).get()
    run = ReportRun.objects.get(pk=run_id)
    assert run.status == RunStatus.VALIDATED and run.generated_by_label == "service:celery-beat"
    assert run.record_count > 0
    # a redelivered beat tick does not make a second run
    assert transaction_report_daily.apply(kwargs={"day": trade_date.isoformat()}).get() == run_id
    assert ReportRun.objects.filter(kind=ReportKind.TRANSACTION).count() == 1


def test_a_date_with_nothing_to_report_gets_no_run_but_a_late_fill_does(
    traded, trade_date, account, instrument, monkeypatch
):
    """RTS 22 reports executions: a closed date without any (a weekend) makes no run for an
    officer to sign off; a quiet date after a fill recorded late still makes one, for that fill."""
    from datetime import timedelta

    _days_after(monkeypatch, trade_date, 2)

    from tests.screens.world import order_filled

    first = transaction_report_daily.apply(kwargs={"day": trade_date.isoformat()}).get()
    quiet = trade_date + timedelta(days=1)
    assert transaction_report_daily.apply(kwargs={"day": quiet.isoformat()}).get() is None
    assert list(ReportRun.objects.values_list("pk", flat=True)) == [first]
    noon = datetime.combine(trade_date, datetime.min.time(), UTC) + timedelta(hours=12)
    late_fill = order_filled(account=account, instrument=instrument, at=noon)  # of the reported date
    # recorded after its run (the clock here runs ahead of the rows' own record time), before the next
    from trading.models import Execution

    Execution.objects.filter(order=late_fill).update(recorded_at=services_now() + timedelta(minutes=30))
    _days_after(monkeypatch, trade_date, 2, hour=2)
    late = ReportRun.objects.get(pk=transaction_report_daily.apply(kwargs={"day": quiet.isoformat()}).get())
    assert (late.period_start, late.record_count, late.summary["late"]) == (quiet, 1, 1)


def test_scheduled_other_reports(configured):
    run_id = report_run_scheduled.apply(kwargs={"kind": "alerts_summary", "period": "previous_week"}).get()
    assert ReportRun.objects.get(pk=run_id).status == RunStatus.VALIDATED
