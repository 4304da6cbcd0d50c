"""The home page's T+1 reminder reads which closed trading dates still await their transaction
report: dates of the executions' event time (not the wall clock: a replay trades in 2018), each
with an execution that no signed-off run covers; a date without trades needs no report."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from compliance.reports.models import ReportKind
from compliance.reports.selectors import transaction_days_unreported
from compliance.reports.services import report_run_approve, report_run_create, report_run_execute
from tests.compliance.reports.conftest import fx_profile
from tests.screens.world import instrument_make, order_filled

pytestmark = pytest.mark.django_db


def _at(day, hour=9):
    return datetime.combine(day, time(hour), UTC)


def _signed_off(day, *, generator, approver):
    run = report_run_create(kind=ReportKind.TRANSACTION, period_start=day, period_end=day, user=generator)
    run = report_run_execute(run=run)
    return report_run_approve(run=run, approver=approver)


def test_the_days_awaiting_their_report_follow_the_executions_not_the_calendar(
    traded, trade_date, account, instrument, alice, bob, trader
):
    through = trade_date + timedelta(days=3)  # the closed days after it had no trades: nothing due

    def due():
        found = transaction_days_unreported(user=alice, through=through)
        return found.days, found.oldest

    assert due() == (1, trade_date)
    earlier, quiet = trade_date - timedelta(days=3), trade_date - timedelta(days=1)
    order_filled(account=account, instrument=instrument, at=_at(earlier))
    spot = instrument_make("XAGUSD")
    fx_profile(spot, reportability="none")  # not reportable: its fills are out of scope
    order_filled(account=account, instrument=spot, at=_at(quiet))
    order_filled(account=account, instrument=instrument, at=_at(through + timedelta(days=1)))  # not closed yet
    assert due() == (3, earlier)

    # generated and validated is not reported: the day waits for an officer's approval
    run = report_run_execute(
        run=report_run_create(kind=ReportKind.TRANSACTION, period_start=trade_date, period_end=trade_date, user=alice)
    )
    assert run.record_count == 5 and due() == (3, earlier)
    report_run_approve(run=run, approver=bob)
    assert due() == (2, earlier)
    # a run that found nothing to report (the fill is out of scope) still covers its day
    out = _signed_off(quiet, generator=alice, approver=bob)
    assert (out.record_count, out.out_of_scope_count) == (0, 1) and due() == (1, earlier)

    # a fill of a reported day recorded after its run: the day awaits again, until the next
    # day's run reports it as a late arrival
    order_filled(account=account, instrument=instrument, at=_at(trade_date, 22))
    assert due() == (2, earlier)
    _signed_off(earlier, generator=bob, approver=alice)
    assert due() == (1, trade_date)
    late = _signed_off(trade_date + timedelta(days=1), generator=alice, approver=bob)
    assert late.summary["late"] == 1 and due() == (0, None)
    assert transaction_days_unreported(user=trader, through=through).days == 0  # not a trader's business


def test_a_held_back_record_keeps_its_day_awaiting(traded, trade_date, account, alice, bob, gbpusd):
    from compliance.reports.models import InstrumentReportingProfile

    InstrumentReportingProfile.objects.filter(instrument=gbpusd).update(cfi_code="")  # an invalid record
    run = _signed_off(trade_date, generator=alice, approver=bob)
    assert run.held_back_count == 2 and run.record_count == 3
    found = transaction_days_unreported(user=alice, through=trade_date)
    assert (found.days, found.oldest) == (1, trade_date)


def test_the_home_page_names_what_is_due_and_is_calm_when_every_day_is_reported(
    traded, trade_date, account, instrument, alice, bob
):
    from compliance.desk.selectors import attention_for
    from compliance.reports.services import trading_date_closed

    def reminder():
        (item,) = [i for i in attention_for(alice) if i.title == "Transaction report due (T+1)"]
        return item

    closed = trading_date_closed()
    assert trade_date > closed  # the paper broker's fills are of today: not due before the day closes
    assert (reminder().count, reminder().level) == (0, "calm")
    order_filled(account=account, instrument=instrument, at=_at(closed))
    assert (reminder().count, reminder().what) == (1, f"Trading day {closed:%Y-%m-%d} awaits its report.")
    earlier = closed - timedelta(days=2)
    order_filled(account=account, instrument=instrument, at=_at(earlier))
    item = reminder()
    assert (item.count, item.level) == (2, "attention")
    assert item.what == f"2 trading days await their report: oldest {earlier:%Y-%m-%d}."
    # an officer goes straight to "Run a report", pre-filled with the oldest day due
    assert item.url == f"/compliance/reports/?run=transaction&from={earlier}&to={earlier}#run-report"
    _signed_off(closed, generator=alice, approver=bob)
    _signed_off(earlier, generator=bob, approver=alice)
    item = reminder()
    assert (item.count, item.what, item.level) == (0, "Every closed trading day with trades is reported.", "calm")
    assert item.url == "/compliance/reports/?kind=transaction"
