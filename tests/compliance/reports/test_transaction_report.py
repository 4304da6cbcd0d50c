"""RTS 22 transaction reports built from trades made through the real order path (execution
worker, pre-trade gate, paper broker, trading services): field by field, every fill reported
once and nothing else; XML valid against ESMA's XSDs and read back equal to the CSV."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest

from compliance.reports.models import RecordState, ReportKind, RunStatus, TransactionRecord
from compliance.reports.services import report_run_create, report_run_execute
from compliance.reports.transaction.fields import COLUMNS
from compliance.reports.transaction.reader import transactions_read
from compliance.reports.xsd import xml_validate_stream
from tests.compliance.reports.conftest import COUNTERPARTY_LEI, fx_profile
from tradeops.audit.models import AuditRecord
from trading.models import Execution

pytestmark = pytest.mark.django_db


def run_for(day, *, file_format="xml", layout="envelope", actor="service:test", **kwargs):
    run = report_run_create(
        kind=ReportKind.TRANSACTION,
        period_start=day,
        period_end=day,
        actor=actor,
        file_format=file_format,
        options={"layout": layout} if file_format == "xml" else None,
        **kwargs,
    )
    return report_run_execute(run=run)


def record_late_fill(*, account, instrument, first, trade_date, name: str, side: str, hour: int):
    """A fill of the trade date recorded after the day's run (e.g. found by reconciliation),
    through the trading services."""
    from trading.models import Order
    from trading.orders.plan import FillDraft
    from trading.orders.services import execution_record, order_create, order_transition

    order, _ = order_create(
        client_order_id=name,
        account=account,
        instrument=instrument,
        side=side,
        quantity=Decimal("0.10"),
        at=first.as_of,
        algo_id="algo-1",
    )
    order_transition(order=order, to="RISK_APPROVED", at=first.as_of)
    order_transition(order=order, to="SUBMITTED", at=first.as_of)
    executed_at = first.as_of.replace(year=trade_date.year, month=trade_date.month, day=trade_date.day, hour=hour)
    return execution_record(
        order=Order.objects.get(pk=order.pk),
        fill=FillDraft(
            broker_deal_id=f"{name}-deal", quantity=Decimal("0.10"), price=Decimal("1.10100"), executed_at=executed_at
        ),
    ).execution


def read_file(run) -> bytes:
    with run.file.open("rb") as fh:
        return fh.read()


def test_report_matches_the_fills_field_by_field(trade_date, traded, account):
    fills = list(Execution.objects.select_related("instrument", "order").order_by("id"))
    assert len(fills) >= 4, "the worker should have filled most signals"
    assert {f.side for f in fills} == {"BUY", "SELL"}
    run = run_for(trade_date)
    assert run.status == RunStatus.VALIDATED, run.errors
    assert run.record_count == len(fills) and run.held_back_count == 0

    records = {r["transaction_reference_number"]: r for r in transactions_read(io.BytesIO(read_file(run)))}
    assert len(records) == len(fills)  # every fill once, nothing else
    lei = account.firm_lei
    for fill in fills:
        r = records.pop(f"TOPS{fill.pk:012d}")
        assert r["report_status"] == "NEWT"
        assert r["executing_entity_lei"] == lei and r["submitting_entity_lei"] == lei
        assert r["investment_firm"] == "true"
        buyer, seller = (lei, COUNTERPARTY_LEI) if fill.side == "BUY" else (COUNTERPARTY_LEI, lei)
        assert (r["buyer_id_type"], r["buyer_id"]) == ("LEI", buyer)
        assert (r["seller_id_type"], r["seller_id"]) == ("LEI", seller)
        assert r["transmission_of_order"] == "false"
        # field 28 is the fill's event time, in UTC to the microsecond (RTS 25)
        assert r["trading_date_time"] == fill.executed_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        assert r["trading_capacity"] == "DEAL"
        assert r["quantity_type"] == "NOML" and r["quantity_currency"] == fill.instrument.currency
        assert Decimal(r["quantity"]) == fill.quantity * fill.instrument.contract_size
        assert Decimal(r["price"]) == fill.price and r["price_currency"] == fill.instrument.quote_currency
        assert r["venue"] == "XXXX"
        assert r["instrument_isin"] == "" and r["instrument_full_name"] == f"{fill.instrument.symbol} CFD"
        assert r["instrument_classification"] == "JFTXFC"
        assert (r["notional_currency_1"], r["notional_currency_2"]) == (
            fill.instrument.currency,
            fill.instrument.quote_currency,
        )
        assert r["delivery_type"] == "CASH" and r["price_multiplier"] == "1"
        assert fill.order.algo_id == "algo-1"
        assert (r["investment_decision_type"], r["investment_decision_id"]) == ("ALGO", "ALGO1")
        assert (r["execution_type"], r["execution_id"]) == ("ALGO", "ALGO1")
        assert r["sft_indicator"] == "false" and r["short_selling_indicator"] == ""
    assert records == {}
    # one active record per fill, all of this run
    assert TransactionRecord.objects.filter(run=run, state=RecordState.REPORTED, active=True).count() == len(fills)


def test_xml_validates_against_the_esma_schemas_in_both_layouts_and_reads_back_as_the_csv(trade_date, traded):
    envelope = run_for(trade_date)
    data = read_file(envelope)
    assert data.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<BizData')
    result = xml_validate_stream(io.BytesIO(data))
    assert result.valid and result.transactions == envelope.record_count
    assert b"<MsgDefIdr>auth.016.001.01</MsgDefIdr>" in data and envelope.reference.encode() in data

    # the same executions again as a bare Document (a new run supersedes the unsubmitted one)
    document = run_for(trade_date, layout="document")
    envelope.refresh_from_db()
    assert envelope.status == RunStatus.SUPERSEDED
    bare = read_file(document)
    assert bare.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<Document')
    assert xml_validate_stream(io.BytesIO(bare)).valid

    as_csv = run_for(trade_date, file_format="csv")
    rows = list(csv.reader(io.StringIO(read_file(as_csv).decode())))
    assert tuple(rows[0]) == COLUMNS
    from_csv = [dict(zip(COLUMNS, row, strict=True)) for row in rows[1:]]
    from_xml = list(transactions_read(io.BytesIO(bare)))
    assert from_xml == from_csv  # every column of every record survives the XML round trip


def test_a_tampered_file_fails_validation(trade_date, traded):
    run = report_run_create(
        kind=ReportKind.TRANSACTION, period_start=trade_date, period_end=trade_date, actor="service:test"
    )
    from compliance.reports.services import report_run_generate, report_run_validate

    run = report_run_generate(run=run)
    path = run.file.path
    with open(path, "rb") as fh:
        data = fh.read()
    with open(path, "wb") as fh:
        fh.write(data.replace(b"<TradgCpcty>DEAL</TradgCpcty>", b"<TradgCpcty>SELF</TradgCpcty>", 1))
    run = report_run_validate(run=run)
    assert run.status == RunStatus.FAILED
    errors = " ".join(e["error"] for e in run.errors)
    assert "SHA-256" in errors and "TradgCpcty" in errors


def test_an_invalid_record_is_held_back_with_its_reasons_and_the_rest_still_goes(trade_date, traded, gbpusd):
    fx_profile(gbpusd, cfi_code="ZZZZZZ")  # not an ISO 10962 category
    run = run_for(trade_date)
    gbp = Execution.objects.filter(instrument=gbpusd).count()
    eur = Execution.objects.exclude(instrument=gbpusd).count()
    assert gbp and eur
    assert run.status == RunStatus.VALIDATED
    assert (run.record_count, run.held_back_count) == (eur, gbp)
    assert run.summary["held_back_by_reason"] == {"cfi_invalid": gbp}
    held = TransactionRecord.objects.filter(run=run, state=RecordState.HELD_BACK)
    assert held.count() == gbp
    record = held.first()
    assert record.reasons[0]["code"] == "cfi_invalid" and record.reasons[0]["field"] == "instrument_classification"
    assert record.values["instrument_classification"] == "ZZZZZZ"  # what the officer reviews
    symbols = {r["notional_currency_1"] for r in transactions_read(run.file.path)}
    assert symbols == {"EUR"}


def test_instruments_out_of_mifir_scope_are_left_out_and_counted(trade_date, traded, gbpusd):
    fx_profile(gbpusd, reportability="emir_only")
    run = run_for(trade_date)
    assert run.out_of_scope_count == Execution.objects.filter(instrument=gbpusd).count()
    assert run.record_count == Execution.objects.exclude(instrument=gbpusd).count()
    assert not TransactionRecord.objects.filter(run=run, execution__instrument=gbpusd).exists()


def test_every_fill_is_reported_once_across_runs_and_a_late_fill_goes_in_the_next_run(
    trade_date, traded, account, instrument
):
    first = run_for(trade_date)
    reported = first.record_count
    assert reported
    late = record_late_fill(
        account=account, instrument=instrument, first=first, trade_date=trade_date, name="late-1", side="BUY", hour=15
    )
    # a second run of the same day, once the first was submitted, must name it
    from compliance.reports.models import ReportRun

    ReportRun.objects.filter(pk=first.pk).update(status=RunStatus.SUBMITTED)
    from tradeops.core.errors import Conflict

    with pytest.raises(Conflict) as refused:
        run_for(trade_date)
    assert refused.value.code == "report_already_submitted"
    again = run_for(trade_date, supersedes=first, reason="late fill found by reconciliation")
    # nothing reported twice: only the fill that arrived after the first run
    assert again.record_count == 1 and again.supersedes_id == first.pk
    assert TransactionRecord.objects.get(run=again).execution_id == late.pk
    # and the next day's run does not report it again
    next_day = run_for(trade_date + timedelta(days=1))
    assert next_day.record_count == 0
    assert TransactionRecord.objects.filter(execution=late, active=True).count() == 1


def test_a_late_fill_goes_into_the_next_days_run_flagged_late(trade_date, traded, account, instrument):
    first = run_for(trade_date)
    late = record_late_fill(
        account=account, instrument=instrument, first=first, trade_date=trade_date, name="late-2", side="SELL", hour=16
    )
    next_day = run_for(trade_date + timedelta(days=1))
    record = TransactionRecord.objects.get(run=next_day)
    assert record.execution_id == late.pk and record.late
    assert next_day.summary["late"] == 1


def test_every_step_is_in_the_audit_trail(trade_date, traded, make_user):
    run = run_for(trade_date)
    actions = list(
        AuditRecord.objects.filter(object_type="report_run", object_id=run.reference)
        .order_by("sequence")
        .values_list("action", flat=True)
    )
    assert actions == ["report.created", "report.generated", "report.validated"]
