"""The run's status machine and four eyes: the person who generated a report cannot approve it
(checked on the person, not the role; also a database constraint), only compliance officers
run and approve, steps out of order are refused, and every step is audited."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from compliance.reports.models import ReportKind, ReportRun, RunStatus
from compliance.reports.services import (
    FourEyesViolation,
    InvalidRunTransition,
    report_run_approve,
    report_run_create,
    report_run_execute,
    report_run_generate,
)
from tradeops.audit.models import AuditRecord
from tradeops.core.errors import PermissionDenied

pytestmark = pytest.mark.django_db


@pytest.fixture
def generated_by_alice(traded, trade_date, alice):
    run = report_run_create(kind=ReportKind.TRANSACTION, period_start=trade_date, period_end=trade_date, user=alice)
    return report_run_execute(run=run)


def test_the_generator_cannot_approve_even_holding_two_roles(generated_by_alice, alice):
    with pytest.raises(FourEyesViolation) as refused:
        report_run_approve(run=generated_by_alice, approver=alice)
    assert refused.value.code == "four_eyes"
    generated_by_alice.refresh_from_db()
    assert generated_by_alice.status == RunStatus.VALIDATED and generated_by_alice.approved_by is None


def test_a_second_officer_approves(generated_by_alice, bob):
    run = report_run_approve(run=generated_by_alice, approver=bob, note="checked against the blotter")
    assert run.status == RunStatus.APPROVED and run.approved_by == bob
    record = AuditRecord.objects.get(action="report.approved", object_id=run.reference)
    assert record.actor_id == "bob" and "checked against the blotter" in record.payload


def test_the_database_refuses_a_self_approval_written_around_the_service(generated_by_alice, alice):
    with pytest.raises(IntegrityError), transaction.atomic():
        ReportRun.objects.filter(pk=generated_by_alice.pk).update(approved_by=alice, status=RunStatus.APPROVED)


def test_only_compliance_officers_run_and_approve(traded, trade_date, trader, generated_by_alice):
    with pytest.raises(PermissionDenied):
        report_run_create(kind=ReportKind.TRANSACTION, period_start=trade_date, period_end=trade_date, user=trader)
    with pytest.raises(PermissionDenied):
        report_run_approve(run=generated_by_alice, approver=trader)


def test_a_scheduled_run_needs_one_officers_approval(traded, trade_date, alice):
    run = report_run_create(
        kind=ReportKind.TRANSACTION, period_start=trade_date, period_end=trade_date, actor="service:celery-beat"
    )
    run = report_run_execute(run=run)
    assert report_run_approve(run=run, approver=alice).status == RunStatus.APPROVED


def test_steps_out_of_order_are_refused(traded, trade_date, bob, alice):
    run = report_run_create(kind=ReportKind.TRANSACTION, period_start=trade_date, period_end=trade_date, user=alice)
    with pytest.raises(InvalidRunTransition):
        report_run_approve(run=run, approver=bob)  # pending, not validated
    run = report_run_generate(run=run)
    with pytest.raises(InvalidRunTransition):
        report_run_generate(run=run)  # a generated run is never regenerated
    with pytest.raises(InvalidRunTransition):
        report_run_approve(run=run, approver=bob)  # generated, not yet validated


def test_bad_requests_are_refused_with_a_code(traded, trade_date, alice):
    from datetime import timedelta

    from compliance.reports.services import ReportError

    cases = [
        ({"kind": "stor"}, "report_kind_unknown"),
        ({"period_end": trade_date - timedelta(days=1)}, "report_period_invalid"),
        ({"period_end": trade_date + timedelta(days=40)}, "report_period_too_long"),
        ({"file_format": "pdf"}, "report_format"),
        ({"options": {"layout": "soap"}}, "report_layout"),
    ]
    for change, code in cases:
        args = {"kind": ReportKind.TRANSACTION, "period_start": trade_date, "period_end": trade_date, "user": alice}
        with pytest.raises(ReportError) as refused:
            report_run_create(**(args | change))
        assert refused.value.code == code


def test_a_person_asking_for_a_future_period_is_refused_and_nothing_is_opened(
    alice, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    from compliance.reports.services import report_run_request
    from tradeops.core.clock import utcnow
    from tradeops.core.errors import ApplicationError

    today = utcnow().date()
    with pytest.raises(ApplicationError) as refused:
        report_run_request(
            kind=ReportKind.ALERTS_SUMMARY, period_start=today, period_end=today + timedelta(days=1), user=alice
        )
    assert refused.value.code == "report_period_future"
    assert not ReportRun.objects.exists() and not AuditRecord.objects.filter(object_type="report_run").exists()
    # a period that ends today is not in the future (an interim summary); its generation is
    # queued once the run is committed
    with django_capture_on_commit_callbacks(execute=False) as queued:
        run = report_run_request(kind=ReportKind.ALERTS_SUMMARY, period_start=today, period_end=today, user=alice)
    assert run.status == RunStatus.PENDING
    assert [c for c in queued if c.__qualname__.startswith("report_run_request.")]


def test_the_day_is_reportable_once_closed_for_the_grace_period(firm, alice, monkeypatch, settings):
    """Within ``REPORTING_CLOSE_GRACE_MINUTES`` after midnight UTC the day just ended is still
    open to late fills (the daily schedule waits for it too); a person is refused it until then."""
    from datetime import UTC, date, datetime

    import compliance.reports.services as services
    from compliance.reports.services import ReportError, report_run_request

    settings.REPORTING_CLOSE_GRACE_MINUTES = 15
    day = date(2026, 12, 5)
    monkeypatch.setattr(services, "utcnow", lambda: datetime(2026, 12, 6, 0, 10, tzinfo=UTC))
    with pytest.raises(ReportError) as refused:
        report_run_request(
            kind=ReportKind.TRANSACTION,
            period_start=day,
            period_end=day,
            user=alice,
            generate_on_commit=False,
        )
    assert refused.value.code == "report_day_open" and "from 2026-12-06 00:15 UTC" in refused.value.message
    monkeypatch.setattr(services, "utcnow", lambda: datetime(2026, 12, 6, 0, 15, tzinfo=UTC))
    run = report_run_request(
        kind=ReportKind.TRANSACTION,
        period_start=day,
        period_end=day,
        user=alice,
        generate_on_commit=False,
    )
    assert run.status == RunStatus.PENDING


def test_a_run_supersedes_only_a_standing_run_of_its_own_kind_and_period(alice):
    from datetime import date

    from tradeops.core.errors import ApplicationError

    week = dict(period_start=date(2026, 3, 2), period_end=date(2026, 3, 8))
    first = report_run_create(kind=ReportKind.ALERTS_SUMMARY, user=alice, **week)
    for kind, period in (
        (ReportKind.ORDER_RECORD, week),
        (ReportKind.ALERTS_SUMMARY, dict(period_start=date(2026, 3, 9), period_end=date(2026, 3, 15))),
    ):
        with pytest.raises(ApplicationError) as refused:
            report_run_create(kind=kind, user=alice, supersedes=first, reason="wrong figures", **period)
        assert refused.value.code == "report_supersedes_mismatch"
    second = report_run_create(kind=ReportKind.ALERTS_SUMMARY, user=alice, supersedes=first, reason="redo", **week)
    first.refresh_from_db()
    assert first.status == RunStatus.SUPERSEDED and second.supersedes == first
    with pytest.raises(ApplicationError) as refused:
        report_run_create(kind=ReportKind.ALERTS_SUMMARY, user=alice, supersedes=first, reason="again", **week)
    assert refused.value.code == "report_supersedes_superseded"
    assert ReportRun.objects.count() == 2
