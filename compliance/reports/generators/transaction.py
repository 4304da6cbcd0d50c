"""Stream executions from the system of record into an RTS 22 transaction report file.

Reads with a server-side cursor on PostgreSQL (``QuerySet.iterator(chunk_size=...)``), builds
each record with the pure ``TransactionRecordBuilder``, validates it (business rules per
record, ESMA's XSD per chunk of XML) and writes it at once. Nothing is held per execution
except the chunk in hand, so memory stays flat in the number of executions.

Which executions: those executed in the period (UTC dates, inclusive) and recorded by
``as_of`` (a run reports what was known when it ran; the trading time reported is the event
time, ``Execution.executed_at``). For a run (``mode="run"``) also the late ones: executed
before the period, within ``REPORTING_LATE_LOOKBACK_DAYS``, and recorded after the run that
covered their day had been generated; and never an execution that already has an active
record (every fill reported once). ``mode="export"`` reports the period's executions as they
are, whatever was reported before (the ``transaction_report`` command).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import IO

from django.conf import settings
from django.db import connection
from django.db.models import Case, CharField, DecimalField, Exists, F, Func, OuterRef, Subquery, Sum, When
from django.db.models.functions import TruncDate

from compliance.reports.models import (
    AccountReportingProfile,
    InstrumentReportingProfile,
    RecordState,
    ReportablePerson,
    ReportingFirm,
    ReportKind,
    ReportRun,
    RunStatus,
    TransactionRecord,
)
from compliance.reports.transaction.builder import (
    AccountConfig,
    BuiltRecord,
    ExecutionRow,
    FirmConfig,
    InstrumentConfig,
    PersonConfig,
    TransactionRecordBuilder,
)
from compliance.reports.transaction.fields import as_dict
from compliance.reports.transaction.rules import Reason
from compliance.reports.transaction.writers import (
    AppHeader,
    CsvReportWriter,
    EmptyReport,
    XmlReportWriter,
    error_field,
)
from tradeops.core.errors import ApplicationError
from trading.models import Execution, Instrument, TradingAccount

READ_CHUNK = 5000  # rows per server-side cursor fetch
RECORD_BATCH = 5000  # TransactionRecord rows per COPY / bulk_create


class ReportingNotConfigured(ApplicationError):
    code = "reporting_not_configured"


def period_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    """UTC instants [start 00:00, end+1 00:00) of an inclusive date period."""
    return datetime.combine(start, time(), UTC), datetime.combine(end + timedelta(days=1), time(), UTC)


# ---------------------------------------------------------------- configuration


def firm_config() -> FirmConfig:
    firm = ReportingFirm.objects.filter(pk=1).first()
    if firm is None:
        raise ReportingNotConfigured(
            "the firm's reporting identity is not configured (admin: Reporting firm; or run manage.py seed)"
        )
    return FirmConfig(
        executing_entity_lei=firm.executing_entity_lei,
        submitting_entity_lei=firm.submitting_entity_lei,
        investment_firm=firm.investment_firm,
        trn_prefix=firm.trn_prefix,
        granularity=firm.timestamp_granularity,
    )


def instrument_configs() -> dict[int, InstrumentConfig]:
    profiles = {p.instrument_id: p for p in InstrumentReportingProfile.objects.all()}
    configs = {}
    for inst in Instrument.objects.all():
        p = profiles.get(inst.pk)
        if p is None:
            configs[inst.pk] = InstrumentConfig(inst.pk, inst.symbol, None, inst.contract_size)
            continue
        configs[inst.pk] = InstrumentConfig(
            instrument_id=inst.pk,
            symbol=inst.symbol,
            reportability=p.reportability,
            contract_size=inst.contract_size,
            isin=p.isin,
            full_name=p.full_name or inst.description,
            cfi_code=p.cfi_code or inst.cfi_code,
            notional_currency_1=p.notional_currency_1,
            notional_currency_2=p.notional_currency_2,
            price_multiplier=p.price_multiplier,
            underlying_isin=p.underlying_isin,
            underlying_index_name=p.underlying_index_name,
            delivery_type=p.delivery_type,
            quantity_type=p.quantity_type,
            price_currency=p.price_currency or inst.quote_currency,
            venue=p.venue,
            commodity_derivative=p.commodity_derivative,
            short_selling_applicable=p.short_selling_applicable,
            otc_post_trade_indicators=tuple(p.otc_post_trade_indicators.split()),
        )
    return configs


def account_configs() -> dict[int, AccountConfig]:
    profiles = {p.account_id: p for p in AccountReportingProfile.objects.all()}
    configs = {}
    for account_id in TradingAccount.objects.values_list("pk", flat=True):
        p = profiles.get(account_id)
        if p is None:
            configs[account_id] = AccountConfig(account_id, False)
            continue
        configs[account_id] = AccountConfig(
            account_id=account_id,
            configured=True,
            trading_capacity=p.trading_capacity,
            owner_type=p.owner_type,
            owner_lei=p.owner_lei,
            owner_first_name=p.owner_first_name.upper(),
            owner_surname=p.owner_surname.upper(),
            owner_birth_date=p.owner_birth_date,
            owner_national_id=p.owner_national_id,
            owner_id_scheme=p.owner_id_scheme,
            owner_country_of_branch=p.owner_country_of_branch,
            decision_maker_lei=p.decision_maker_lei,
            counterparty_lei=p.counterparty_lei,
        )
    return configs


def person_configs() -> dict[int, PersonConfig]:
    return {
        p.user_id: PersonConfig(p.user_id, p.country_of_branch, p.national_id, p.id_scheme)
        for p in ReportablePerson.objects.all()
    }


def record_builder() -> TransactionRecordBuilder:
    return TransactionRecordBuilder(
        firm=firm_config(), instruments=instrument_configs(), accounts=account_configs(), persons=person_configs()
    )


def app_header(*, reference: str, created_at: datetime) -> AppHeader:
    firm = ReportingFirm.objects.get(pk=1)
    return AppHeader(
        from_lei=firm.submitting_entity_lei,
        to_id=firm.header_to,
        to_scheme=firm.header_to_scheme,
        message_id=reference,
        created_at=created_at,
    )


# ---------------------------------------------------------------- selection

_COVERING = [RunStatus.GENERATED, RunStatus.VALIDATED, RunStatus.APPROVED, RunStatus.SUBMITTED]
_COVERING += [RunStatus.ACCEPTED, RunStatus.REJECTED, RunStatus.SUPERSEDED]


class UtcTimestampText(Func):
    """A timestamptz as RTS 22 text in UTC (``2026-03-02T09:30:00.123456Z``), formatted by
    PostgreSQL: parsing a million timestamps into datetimes only to format them again costs
    more than the rest of a record (PostgreSQL only; elsewhere the datetime is formatted)."""

    output_field = CharField()

    def __init__(self, expression, *, millisecond: bool = False):
        super().__init__(expression)
        self.millisecond = millisecond

    def as_postgresql(self, compiler, connection, **extra):
        sql, params = compiler.compile(self.source_expressions[0])
        fraction = "MS" if self.millisecond else "US"
        return f"""to_char(({sql}) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.{fraction}"Z"')""", params


class DecimalText(Func):
    """A numeric as plain text without trailing zeros (``1.1000200000`` -> ``1.10002``),
    formatted by PostgreSQL (saves making and formatting a Decimal per field in Python)."""

    output_field = CharField()

    def as_postgresql(self, compiler, connection, **extra):
        sql, params = compiler.compile(self.source_expressions[0])
        text = f"(({sql})::text)"
        return f"(CASE WHEN {text} LIKE '%%.%%' THEN rtrim(rtrim({text}, '0'), '.') ELSE {text} END)", params * 3


def executions_selected(
    *,
    start: date,
    end: date,
    as_of: datetime,
    mode: str = "run",
    execution_ids: Iterable[int] | None = None,
    short_selling_instruments: Iterable[int] = (),
    millisecond: bool = False,
) -> list:
    """The querysets of the executions a report covers, each ordered by id (so references come
    out in order); their rows are disjoint. ``mode``: ``run`` (late arrivals first, then the
    period, minus what is already reported), ``export`` (the period as it is), ``correction``
    (exactly ``execution_ids``).

    Late arrivals are looked for only when a run covered one of the days of the look-back
    window: then among the executions of those days recorded after the earliest such run."""
    lo, hi = period_bounds(start, end)
    base = Execution.objects.filter(recorded_at__lte=as_of)
    if mode == "correction":
        selections = [base.filter(pk__in=list(execution_ids or ()))]
    elif mode == "export":
        selections = [base.filter(executed_at__gte=lo, executed_at__lt=hi)]
    else:
        reported = TransactionRecord.objects.filter(execution=OuterRef("pk"), active=True, report_status="NEWT")
        selections = [base.filter(executed_at__gte=lo, executed_at__lt=hi).filter(~Exists(reported))]
        lookback = lo - timedelta(days=settings.REPORTING_LATE_LOOKBACK_DAYS)
        covering = ReportRun.objects.filter(
            kind=ReportKind.TRANSACTION,
            status__in=_COVERING,
            period_end__gte=lookback.date(),
            period_start__lt=start,
        )
        earliest = covering.order_by("as_of").values_list("as_of", flat=True).first()
        if earliest is not None:
            day_run_before_recording = covering.filter(
                period_start__lte=OuterRef("trade_date"),
                period_end__gte=OuterRef("trade_date"),
                as_of__lt=OuterRef("recorded_at"),
            )
            late = (
                base.filter(executed_at__gte=lookback, executed_at__lt=lo, recorded_at__gt=earliest)
                .annotate(trade_date=TruncDate("executed_at", tzinfo=UTC))
                .filter(Exists(day_run_before_recording))
                .filter(~Exists(reported))
            )
            selections.insert(0, late)
    short = list(short_selling_instruments)
    fields = [
        "id",
        "account_id",
        "instrument_id",
        "side",
        "quantity",
        "price",
        "venue",
        "broker_deal_id",
        "executed_at",
        "order__algo_id",
        "order__trader_id",
    ]
    if connection.vendor == "postgresql":
        # formatted by the database, which works beside this process: time, price, units
        stamp = UtcTimestampText("executed_at", millisecond=millisecond)
        units = DecimalText(F("quantity") * F("instrument__contract_size"))
        selections = [
            qs.annotate(executed_at_text=stamp, price_text=DecimalText("price"), units_text=units) for qs in selections
        ]
        fields[5], fields[8] = "price_text", "executed_at_text"
        fields.insert(11, "units_text")
    if short:
        signed = Case(When(side="BUY", then=F("quantity")), default=-F("quantity"), output_field=DecimalField())
        before = (
            Execution.objects.filter(
                account_id=OuterRef("account_id"),
                instrument_id=OuterRef("instrument_id"),
                executed_at__lt=OuterRef("executed_at"),
                recorded_at__lte=as_of,
            )
            .values("account_id")
            .annotate(total=Sum(signed))
            .values("total")
        )
        position = Case(When(instrument_id__in=short, then=Subquery(before)), default=None, output_field=DecimalField())
        selections = [qs.annotate(position_before=position) for qs in selections]
        fields.append("position_before")
    return [qs.order_by("id").values_list(*fields) for qs in selections]


def execution_rows(querysets, *, period_start: datetime) -> Iterator[tuple[ExecutionRow, bool, Decimal | None]]:
    """(row, late, position_before) per selected execution, streamed with a server-side cursor."""
    make = ExecutionRow._make
    start = period_start.strftime("%Y-%m-%dT%H:%M:%S.000000Z")  # text rows compare as text (same format)
    for queryset in querysets:
        for values in queryset.iterator(chunk_size=READ_CHUNK):
            width = len(values)
            position = None
            if width == 11:  # not PostgreSQL, no short-selling column
                row = ExecutionRow(*values)
            elif width == 12 and not isinstance(values[11], str):  # not PostgreSQL, position
                row = ExecutionRow(*values[:11])
                position = values[11] if values[11] is not None else Decimal(0)
            else:  # PostgreSQL: units text at 11, position (when asked) at 12
                row = make(values[:12])
                if width == 13:
                    position = values[12] if values[12] is not None else Decimal(0)
            if row.algo_id is None:
                row = row._replace(algo_id="")
            late = (row.executed_at < start) if isinstance(row.executed_at, str) else (row.executed_at < period_start)
            yield row, late, position


# ---------------------------------------------------------------- writing


@dataclass
class GenerationResult:
    reported: int = 0
    held_back: int = 0
    out_of_scope: int = 0
    late: int = 0
    sha256: str = ""
    size: int = 0
    held_back_by_reason: dict[str, int] = field(default_factory=dict)
    empty: bool = False
    xsd: dict = field(default_factory=dict)  # how the XML was checked (writers.XmlReportWriter.stats)

    def summary(self) -> dict:
        return {
            **({"xsd": self.xsd} if self.xsd else {}),
            "reported": self.reported,
            "held_back": self.held_back,
            "out_of_scope": self.out_of_scope,
            "late": self.late,
            "held_back_by_reason": dict(sorted(self.held_back_by_reason.items())),
        }


RecordSink = Callable[[ExecutionRow, BuiltRecord, str, bool, tuple[Reason, ...]], None]


def transaction_report_write(
    *,
    rows: Iterable[tuple[ExecutionRow, bool, Decimal | None]],
    builder: TransactionRecordBuilder,
    file_format: str,
    out: IO[bytes],
    header: AppHeader | None = None,
    on_record: RecordSink | None = None,
    cancellations: Iterable[str] = (),
) -> GenerationResult:
    """Write the report to ``out`` (binary). ``on_record(row, built, state, late, reasons)`` is
    told the fate of every in-scope record (``reported`` or ``held_back`` with its reasons).
    ``cancellations``: references to cancel (CANC records, written first). Returns counts and
    the file's SHA-256; ``empty`` when no record could be written (no file content then)."""
    result = GenerationResult()
    builder.reset_sequence()
    xml = file_format == "xml"
    pending: dict[object, tuple[ExecutionRow, BuiltRecord, bool]] = {}

    def hold(row: ExecutionRow, built: BuiltRecord, late: bool, reasons: tuple[Reason, ...]) -> None:
        result.held_back += 1
        for reason in reasons:
            result.held_back_by_reason[reason.code] = result.held_back_by_reason.get(reason.code, 0) + 1
        if on_record:
            on_record(row, built, RecordState.HELD_BACK, late, reasons)

    def done(written: list, failed: list[tuple[object, str]]) -> None:
        """The XML writer wrote ``written`` and the XSD refused ``failed``."""
        for key in written:
            entry = pending.pop(key, None)
            if entry is None:  # a cancellation
                continue
            result.reported += 1
            if on_record:
                on_record(entry[0], entry[1], RecordState.REPORTED, entry[2], ())
        for key, error in failed:
            entry = pending.pop(key, None)
            if entry is None:
                raise ValueError(f"cancellation {key} refused by the XSD: {error}")
            hold(entry[0], entry[1], entry[2], (Reason("xsd_invalid", error_field(error), error[:500]),))

    if xml:
        writer = XmlReportWriter(
            out,
            header=header,
            on_done=done,
            check=settings.REPORTING_XSD_CHECK,
            sample_every=settings.REPORTING_XSD_SAMPLE_EVERY,
        )
    else:
        writer = CsvReportWriter(out)

    for trn in cancellations:
        built = builder.cancellation(trn)
        if built.reasons:
            raise ValueError(f"cannot cancel {trn}: {[r.message for r in built.reasons]}")
        if xml:
            writer.add(("CANC", trn), built.xml)
        else:
            writer.add(built.values)

    for row, late, position in rows:
        if builder.scope(row) == "out_of_scope":
            result.out_of_scope += 1
            continue
        built = builder.build(row, position_before=position)
        if late:
            result.late += 1
        if built.reasons:
            hold(row, built, late, built.reasons)
            continue
        if xml:
            pending[row.execution_id] = (row, built, late)
            writer.add_shaped(row.execution_id, built.shape, built.slots)
        else:
            writer.add(built.values, built.csv_line)
            result.reported += 1
            if on_record:
                on_record(row, built, RecordState.REPORTED, late, ())
    try:
        writer.close()
    except EmptyReport:
        result.empty = True
    if xml:
        result.xsd = {"check": "fields" if writer.fields else "full", **writer.stats}
    result.sha256 = writer.out.sha256
    result.size = writer.out.size
    return result


# ---------------------------------------------------------------- records


def record_trade_date(executed_at: datetime | str) -> str:
    """The execution's UTC trading date, ISO text, as ``TransactionRecord.trade_date`` keeps it:
    the date of its event time in UTC, the T+1 reminder's expression (trading 0010). ``executed_at``
    is a datetime, or its RTS 22 text in UTC as PostgreSQL formatted it (``UtcTimestampText``:
    ``to_char`` truncates the fraction, never rounds into the next day), whose first ten
    characters are that date."""
    if executed_at.__class__ is str:
        return executed_at[:10]
    return executed_at.astimezone(UTC).date().isoformat()


class RecordWriter:
    """Collects the run's TransactionRecord rows and writes them in batches (COPY on
    PostgreSQL, bulk_create elsewhere). Held-back records keep their values and reasons."""

    COLUMNS = (
        "run_id",
        "execution_id",
        "trn",
        "report_status",
        "state",
        "active",
        "late",
        "reasons",
        "values",
        "corrects_id",
        "trade_date",
    )

    def __init__(self, run: ReportRun, builder: TransactionRecordBuilder, *, corrects: dict[int, int] | None = None):
        self.run = run
        self.run_id = run.pk
        self.builder = builder
        self.corrects = corrects or {}
        self._copy = connection.vendor == "postgresql"
        self._lines: list[str] = []  # COPY text lines of plain reported records (the bulk)
        self._rows: list[tuple] = []
        self.written = 0

    def __call__(self, row: ExecutionRow, built: BuiltRecord, state: str, late: bool, reasons) -> None:
        corrects = self.corrects.get(row.execution_id)
        if self._copy and state == RecordState.REPORTED and corrects is None:
            self._lines.append(
                f"{self.run_id}\t{row.execution_id}\t{built.values[1]}\tNEWT\treported\tt\t{'t' if late else 'f'}"
                f"\t[]\t\\N\t\\N\t{record_trade_date(row.executed_at)}\n"
            )
            if len(self._lines) >= RECORD_BATCH:
                self.flush()
            return
        values = json.dumps(as_dict(built.values)) if state == RecordState.HELD_BACK else None
        reasons_json = json.dumps([r.as_dict() for r in reasons])
        self._rows.append(
            (
                self.run.pk,
                row.execution_id,
                built.values[1],
                "NEWT",
                state,
                True,
                late,
                reasons_json,
                values,
                corrects,
                record_trade_date(row.executed_at),
            )
        )
        if len(self._rows) >= RECORD_BATCH:
            self.flush()

    def add_cancellation(self, *, trn: str, execution_id: int, corrects_id: int, trade_date: date) -> None:
        self._rows.append(
            (
                self.run.pk,
                execution_id,
                trn,
                "CANC",
                RecordState.REPORTED,
                True,
                False,
                "[]",
                None,
                corrects_id,
                trade_date.isoformat(),
            )
        )

    def flush(self) -> None:
        lines, self._lines = self._lines, []
        rows, self._rows = self._rows, []
        if not lines and not rows:
            return
        if self._copy:
            table = TransactionRecord._meta.db_table
            sql = f"COPY {table} ({', '.join(self.COLUMNS)}) FROM STDIN"
            with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
                if lines:
                    copy.write("".join(lines))
                for r in rows:
                    copy.write_row(r)
        else:
            TransactionRecord.objects.bulk_create(
                [
                    TransactionRecord(
                        run_id=r[0],
                        execution_id=r[1],
                        trn=r[2],
                        report_status=r[3],
                        state=r[4],
                        active=r[5],
                        late=r[6],
                        reasons=json.loads(r[7]),
                        values=json.loads(r[8]) if r[8] else None,
                        corrects_id=r[9],
                        trade_date=date.fromisoformat(r[10]),
                    )
                    for r in rows
                ],
                batch_size=1000,
            )
        self.written += len(lines) + len(rows)


# ---------------------------------------------------------------- entry points


def transaction_run_generate(*, run: ReportRun, out: IO[bytes]):
    """The file and records of a transaction run (``services.report_run_generate``).
    Precondition: inside the run's transaction."""
    from compliance.reports.generators import Outcome

    builder = record_builder()
    lo, _hi = period_bounds(run.period_start, run.period_end)
    short = [iid for iid, cfg in builder.instruments.items() if cfg.short_selling_applicable]
    plan = run.options.get("correction")
    corrects: dict[int, int] = {}
    cancellations: list[tuple[str, int, int]] = []
    if plan:
        corrects = {execution_id: record_id for execution_id, record_id in plan["newt"]}
        cancellations = [tuple(c) for c in plan["canc"]]
        queryset = executions_selected(
            start=run.period_start,
            end=run.period_end,
            as_of=run.as_of,
            mode="correction",
            execution_ids=corrects,
            short_selling_instruments=short,
            millisecond=builder.firm.granularity == "millisecond",
        )
    else:
        queryset = executions_selected(
            start=run.period_start,
            end=run.period_end,
            as_of=run.as_of,
            short_selling_instruments=short,
            millisecond=builder.firm.granularity == "millisecond",
        )
    header = None
    if run.file_format == "xml" and run.options.get("layout", "envelope") == "envelope":
        header = app_header(reference=run.reference, created_at=run.created_at)
    records = RecordWriter(run, builder, corrects=corrects)
    cancelled_dates = dict(
        TransactionRecord.objects.filter(pk__in=[c[2] for c in cancellations]).values_list("pk", "trade_date")
    )
    for trn, execution_id, record_id in cancellations:
        records.add_cancellation(
            trn=trn, execution_id=execution_id, corrects_id=record_id, trade_date=cancelled_dates[record_id]
        )
    result = transaction_report_write(
        rows=execution_rows(queryset, period_start=lo),
        builder=builder,
        file_format=run.file_format,
        out=out,
        header=header,
        on_record=records,
        cancellations=[c[0] for c in cancellations],
    )
    records.flush()
    summary = {**result.summary(), "cancellations": len(cancellations), "layout": run.options.get("layout", "")}
    return Outcome(
        records=result.reported + len(cancellations),
        held_back=result.held_back,
        out_of_scope=result.out_of_scope,
        sha256=result.sha256,
        size=result.size,
        empty=result.empty,
        summary=summary,
    )


@dataclass
class Export:
    result: GenerationResult
    held_back: list[dict]


def transaction_report_export(*, day: date, file_format: str, out: IO[bytes], layout: str = "envelope") -> Export:
    """The transaction report of one trading date (UTC) as the system of record has it now,
    written to ``out``; no run, no records (the ``transaction_report`` command). Held-back
    records come back with their reasons."""
    from tradeops.core.clock import utcnow

    builder = record_builder()
    now = utcnow()
    short = [iid for iid, cfg in builder.instruments.items() if cfg.short_selling_applicable]
    queryset = executions_selected(
        start=day,
        end=day,
        as_of=now,
        mode="export",
        short_selling_instruments=short,
        millisecond=builder.firm.granularity == "millisecond",
    )
    header = None
    if file_format == "xml" and layout == "envelope":
        header = app_header(reference=f"TXE-{day:%Y%m%d}-{now:%H%M%S}", created_at=now)
    held: list[dict] = []

    def note(row, built, state, late, reasons):
        if state == RecordState.HELD_BACK:
            held.append(
                {"trn": built.values[1], "execution_id": row.execution_id, "reasons": [r.as_dict() for r in reasons]}
            )

    lo, _hi = period_bounds(day, day)
    result = transaction_report_write(
        rows=execution_rows(queryset, period_start=lo),
        builder=builder,
        file_format=file_format,
        out=out,
        header=header,
        on_record=note,
    )
    return Export(result, held)
