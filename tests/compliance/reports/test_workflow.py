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
