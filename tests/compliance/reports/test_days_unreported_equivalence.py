"""The home page's T+1 reminder, read per trading date (``transaction_days_unreported``), says
exactly what the one-pass definition says (``days_unreported_oracle``), on PostgreSQL:

- over arbitrary database states: fills on a few dates recorded early or late, runs of every
  status and kind over one or two days with their ``as_of`` on the same hour grid as the fills'
  ``recorded_at`` (ties included), records in every state, active or not, NEWT or CANC;
- over histories made through the services: fills, runs generated and validated, approvals,
  a run superseded, late fills, records held back and corrected, an ARM's partial rejection.

Both cover the state where a run awaits approval (its records ``reported`` in a run not signed
off), which the reminder reads from the records' own ``trade_date`` (reports 0004); the
histories also check that every record the services write carries its fill's UTC date.
"""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta

import pytest
from django.db import transaction
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from compliance.reports.models import RecordState, ReportKind, ReportRun, RunStatus, TransactionRecord
from compliance.reports.selectors import transaction_days_unreported
from tests.compliance.reports.days_unreported_oracle import days_unreported_by_scan
from tests.screens.world import order_filled
from tradeops.core.errors import Conflict

pytestmark = pytest.mark.django_db

D0 = date(2026, 3, 2)
_SLOW = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large]
_serial = itertools.count()


class _Rollback(Exception):
    pass


def _hour(h: int) -> datetime:
    """An instant on the hour grid from D0 00:00 UTC (fills' and runs' times meet on it)."""
    return datetime.combine(D0, time(), UTC) + timedelta(hours=h)


def _both(user, through):
    found = transaction_days_unreported(user=user, through=through)
    return (found.days, found.oldest), days_unreported_by_scan(through=through)


def _records_misdated() -> list:
    """Records whose ``trade_date`` is not their execution's UTC trading date (the reminder
    reads a run's dates from the records, the definition from the fills)."""
    from django.db.models import F
    from django.db.models.functions import TruncDate

    return list(
        TransactionRecord.objects.annotate(fill_date=TruncDate("execution__executed_at", tzinfo=UTC))
        .exclude(trade_date=F("fill_date"))
        .values_list("trn", "report_status", "state", "trade_date", "fill_date")
    )


fills = st.lists(
    st.tuples(
        st.integers(0, 4 * 24 - 1),  # executed: hour from D0 (midnights included)
        st.sampled_from([0, 0, 1, 5, 30, 60]),  # recorded so many hours later (late fills)
        st.booleans(),  # a microsecond before the hour (the edge of a date)
    ),
    min_size=0,
    max_size=14,
)
runs = st.lists(
    st.tuples(
        st.integers(0, 4),  # period start, days from D0
        st.integers(0, 1),  # period length - 1
        st.integers(0, 6 * 24),  # as_of: hour from D0
        st.sampled_from(list(RunStatus)),
        st.sampled_from([ReportKind.TRANSACTION, ReportKind.TRANSACTION, ReportKind.ORDER_RECORD]),
    ),
    max_size=5,
)
records = st.lists(
    st.tuples(
        st.integers(0, 13),  # which fill
        st.integers(0, 4),  # which run
        st.sampled_from(list(RecordState)),
        st.booleans(),  # active
        st.sampled_from(["NEWT", "NEWT", "CANC"]),
    ),
    max_size=16,
)


@given(fills=fills, runs=runs, records=records, through=st.integers(-1, 5))
@settings(max_examples=150, deadline=None, suppress_health_check=_SLOW)
def test_any_state_reads_as_the_definition(alice, account, instrument, fills, runs, records, through):
    from trading.models import Execution

    try:
        with transaction.atomic():
            order = order_filled(account=account, instrument=instrument, at=_hour(24 * 30))  # after any `through`
            made = Execution.objects.bulk_create(
                Execution(
                    order=order,
                    account=account,
                    instrument=instrument,
                    side="BUY",
                    quantity=1,
                    price=1,
                    broker_deal_id=f"EQ{next(_serial)}",
                    executed_at=_hour(h) - timedelta(microseconds=1 if edge else 0),
                    recorded_at=_hour(h + late) - timedelta(microseconds=1 if edge and not late else 0),
                )
                for h, late, edge in fills
            )
            made_runs = [
                ReportRun.objects.create(
                    reference=f"EQRUN{next(_serial)}",
                    kind=kind,
                    period_start=D0 + timedelta(days=start),
                    period_end=D0 + timedelta(days=start + length),
                    as_of=_hour(as_of),
                    file_format="xml",
                    status=status,
                    created_at=_hour(as_of),
                    generated_by_label="service:test",
                )
                for start, length, as_of, status, kind in runs
            ]
            standing: set[int] = set()
            for fill, run, state, active, report_status in records:
                if fill >= len(made) or run >= len(made_runs):
                    continue
                execution = made[fill]
                if active and report_status == "NEWT":
                    if execution.pk in standing:
                        active = False  # at most one standing record per execution (a constraint)
                    standing.add(execution.pk)
                TransactionRecord.objects.create(
                    run=made_runs[run],
                    execution=execution,
                    trn=f"T{execution.pk}",
                    report_status=report_status,
                    state=state,
                    active=active,
                    trade_date=execution.executed_at.astimezone(UTC).date(),  # as the generator writes it
                )
            new, old = _both(alice, D0 + timedelta(days=through))
            assert new == old
            event(f"{new[0]} days due")
            raise _Rollback
    except _Rollback:
        pass


# ---------------------------------------------------------------- histories made by the services


def _run(day, *, by, period_days=1):
    from compliance.reports.services import report_run_create, report_run_execute

    run = report_run_create(
        kind=ReportKind.TRANSACTION, period_start=day, period_end=day + timedelta(days=period_days - 1), user=by
    )
    return report_run_execute(run=run)


def _arm_answers(run, *, rejected_every: int):
    """The ARM's feedback on a run (submitted by hand: no ARM here), rejecting one record in
    ``rejected_every`` (0: none)."""
    from compliance.reports.feedback import FeedbackHeader, FeedbackRecord, feedback_render
    from compliance.reports.services import report_feedback_apply

    ReportRun.objects.filter(pk=run.pk).update(status=RunStatus.SUBMITTED, submission_id=f"SUB{run.pk}")
    trns = list(run.records.filter(state=RecordState.REPORTED).order_by("trn").values_list("trn", flat=True))
    rejected = {trn for n, trn in enumerate(trns) if rejected_every and n % rejected_every == 0}
    answers = [
        FeedbackRecord(trn, accepted=False, reasons=({"code": "CON-412", "text": "rejected"},))
        if trn in rejected
        else FeedbackRecord(trn, accepted=True)
        for trn in trns
    ]
    header = FeedbackHeader(f"SUB{run.pk}", run.sha256, "PART" if rejected_every else "ACPT", "", None, None)
    report_feedback_apply(run=run, data=feedback_render(header, answers))


steps = st.lists(
    st.tuples(
        st.sampled_from(["fill", "fill", "fill", "run", "approve", "supersede", "profile", "correct", "arm"]),
        st.integers(0, 2),  # day
        st.integers(0, 3),  # a choice within the step
    ),
    min_size=3,
    max_size=14,
)


@given(steps=steps)
@settings(max_examples=150, deadline=None, suppress_health_check=_SLOW)
def test_histories_made_by_the_services_read_as_the_definition(
    configured, account, instrument, gbpusd, alice, bob, steps
):
    """Random sequences of fills (some recorded after their date's run: late), runs, approvals,
    a new run superseding one not yet submitted, an instrument's profile made invalid (held
    back) or fixed, corrections of held-back or rejected records, and the ARM's answers
    (accepted, or some records rejected): after every step, new == definition."""
    from compliance.reports.models import InstrumentReportingProfile
    from compliance.reports.services import report_run_approve, transaction_report_correct

    through = D0 + timedelta(days=4)
    try:
        with transaction.atomic():
            for op, day_n, choice in steps:
                day = D0 + timedelta(days=day_n)
                runs = ReportRun.objects.filter(kind=ReportKind.TRANSACTION).order_by("pk")
                if op == "fill":
                    spot = (instrument, gbpusd)[choice % 2]
                    order_filled(account=account, instrument=spot, at=datetime.combine(day, time(9 + choice), UTC))
                elif op in ("run", "supersede"):
                    open_run = runs.filter(period_start=day, status__in=[RunStatus.VALIDATED, RunStatus.APPROVED])
                    if op == "supersede" and not open_run.exists():
                        continue
                    try:
                        run = _run(day, by=(alice, bob)[choice % 2], period_days=1 + (choice == 3))
                    except Conflict:  # the period was already submitted: refused, nothing written
                        event("run refused: period submitted")
                        continue
                    if op == "run" and choice in (1, 2) and run.status == RunStatus.VALIDATED:
                        report_run_approve(run=run, approver=(bob, alice)[choice % 2])
                        event("run approved")
                elif op == "approve":
                    run = runs.filter(status=RunStatus.VALIDATED).first()
                    if run is not None:
                        approver = bob if run.generated_by_id == alice.pk else alice
                        report_run_approve(run=run, approver=approver)
                        event("run approved")
                elif op == "profile":
                    spot = (instrument, gbpusd)[choice % 2]
                    InstrumentReportingProfile.objects.filter(instrument=spot).update(
                        cfi_code="" if choice < 2 else "JFTXFC"
                    )
                elif op == "correct":
                    run = runs.filter(
                        status__in=[RunStatus.APPROVED, RunStatus.REJECTED, RunStatus.VALIDATED],
                        records__state__in=[RecordState.HELD_BACK, RecordState.REJECTED],
                        records__active=True,
                    ).first()
                    if run is not None:
                        transaction_report_correct(run=run, user=(alice, bob)[choice % 2], reason="fixed")
                        event("correction opened")
                elif op == "arm":
                    run = runs.filter(status__in=[RunStatus.VALIDATED, RunStatus.APPROVED]).exclude(sha256="").first()
                    if run is not None:
                        if run.status == RunStatus.VALIDATED:
                            report_run_approve(run=run, approver=bob if run.generated_by_id == alice.pk else alice)
                        _arm_answers(run, rejected_every=choice)
                        event(f"ARM answered, rejecting 1 in {choice}")
                new, old = _both(alice, through)
                assert new == old, (op, day, choice)
                assert _records_misdated() == []  # generated, held back, late, corrected: dated as their fills
                event(f"{new[0]} days due")
            event("runs: " + " ".join(sorted({r.status for r in runs})))
            raise _Rollback
    except _Rollback:
        pass


def test_the_four_ways_a_reported_date_becomes_due_again(configured, account, instrument, gbpusd, alice, bob):
    """Walked through in order, each read by both: a late fill after its date's run; a record
    held back, then corrected; a run superseded before submission; the ARM rejecting records of
    a run, then their correction approved."""
    from compliance.reports.models import InstrumentReportingProfile
    from compliance.reports.services import report_run_approve, transaction_report_correct

    day, next_day = D0, D0 + timedelta(days=1)
    through = next_day

    def due():
        new, old = _both(alice, through)
        assert new == old
        assert _records_misdated() == []
        return new

    def approve(run):
        return report_run_approve(run=run, approver=bob if run.generated_by_id == alice.pk else alice)

    for hour in (9, 10, 11):
        order_filled(account=account, instrument=instrument, at=datetime.combine(day, time(hour), UTC))
    assert due() == (1, day)
    first = approve(_run(day, by=alice))
    assert due() == (0, None)

    # a late fill: its date is due until the next day's run reports it
    order_filled(account=account, instrument=instrument, at=datetime.combine(day, time(12), UTC))
    assert due() == (1, day)
    late = approve(_run(next_day, by=bob))
    assert late.summary["late"] == 1 and due() == (0, None)

    # a record held back (the instrument's CFI emptied), then corrected once the profile is fixed
    order_filled(account=account, instrument=gbpusd, at=datetime.combine(next_day, time(9), UTC))
    InstrumentReportingProfile.objects.filter(instrument=gbpusd).update(cfi_code="")
    held = _run(next_day, by=alice)  # supersedes `late` (approved, not submitted) and reports the late fill again
    assert (held.held_back_count, held.summary["late"]) == (1, 1)
    assert due() == (2, day)  # the late fill's record awaits this run's approval; the held-back record
    held = approve(held)
    assert due() == (1, next_day)
    InstrumentReportingProfile.objects.filter(instrument=gbpusd).update(cfi_code="JFTXFC")
    correction = transaction_report_correct(run=held, user=bob, reason="CFI fixed")
    assert due() == (1, next_day)  # the correction awaits approval
    approve(correction)
    assert due() == (0, None)

    # an approved run superseded before submission: its records stop standing (withdrawn), the
    # date is due again until the new run is approved
    again = _run(day, by=bob)
    assert ReportRun.objects.get(pk=first.pk).status == RunStatus.SUPERSEDED and due() == (1, day)
    again = approve(again)
    assert due() == (0, None)

    # the ARM rejects one record in two of the run: its date is due until the correction
    _arm_answers(again, rejected_every=2)
    again.refresh_from_db()
    assert again.status == RunStatus.REJECTED and due() == (1, day)
    approve(transaction_report_correct(run=again, user=alice, reason="ARM rejection fixed"))
    assert due() == (0, None)
