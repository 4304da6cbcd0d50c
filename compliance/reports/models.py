"""Regulatory reports: the firm's reporting configuration, report runs and transaction records.

Configuration (edited in the admin, every change audited by ``compliance.reports.services``):

- ``ReportingFirm``: the firm's identity in RTS 22 reports (executing and submitting entity).
- ``InstrumentReportingProfile``: per instrument, whether MiFIR Art. 26 applies (or EMIR
  only, or nothing) and how the instrument is described (fields 41-56).
- ``AccountReportingProfile``: per trading account, who the account owner is (buyer or seller,
  fields 7-24), the trading capacity (field 29) and the counterparty on the other side.
- ``ReportablePerson``: the national identifier of a person who decides or executes (57-60).

Records: ``ReportRun`` (one report: kind, period, status machine, file with its SHA-256, four
eyes) and ``TransactionRecord`` (one RTS 22 record of one execution in one run, its state and
reasons). Services in ``compliance.reports.services`` are the only writers.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q


def reports_storage():
    """The storage alias "reports" (settings.STORAGES), looked up when used, not at import."""
    from django.core.files.storage import storages

    return storages["reports"]


_TRN_PREFIX = RegexValidator(r"^[A-Z0-9]{1,12}$", "1-12 capital letters or digits")


class ReportingFirm(models.Model):
    """The firm's identity in transaction reports. One row (``pk=1``)."""

    executing_entity_lei = models.CharField("executing entity LEI (field 4)", max_length=20)
    submitting_entity_lei = models.CharField(
        "submitting entity LEI (field 6)", max_length=20, help_text="The firm, or the ARM that submits for it"
    )
    investment_firm = models.BooleanField("investment firm covered by MiFID II (field 5)", default=True)
    home_country = models.CharField("home member state", max_length=2, help_text="ISO 3166-1, e.g. CY")
    trn_prefix = models.CharField(
        "transaction reference prefix",
        max_length=12,
        default="TOPS",
        validators=[_TRN_PREFIX],
        help_text="Transaction reference number = prefix + the execution's id on 12 digits (stable, unique)",
    )
    timestamp_granularity = models.CharField(
        max_length=12,
        choices=[("microsecond", "1 µs (HFT, RTS 25)"), ("millisecond", "1 ms (algorithmic, RTS 25)")],
        default="microsecond",
    )
    header_to = models.CharField(
        "application header: to", max_length=35, help_text="Receiving authority, e.g. its ISO 3166 country code"
    )
    header_to_scheme = models.CharField("application header: to scheme", max_length=35, default="NCA")
    updated_at = models.DateTimeField()
    updated_by = models.CharField(max_length=150)

    class Meta:
        verbose_name = "reporting firm"

    def __str__(self) -> str:
        return f"reporting firm {self.executing_entity_lei}"

    def snapshot(self) -> dict:
        return {
            f: getattr(self, f)
            for f in (
                "executing_entity_lei",
                "submitting_entity_lei",
                "investment_firm",
                "home_country",
                "trn_prefix",
                "timestamp_granularity",
                "header_to",
                "header_to_scheme",
            )
        }


class Reportability(models.TextChoices):
    MIFIR = "mifir", "MiFIR Art. 26 transaction report"
    EMIR_ONLY = "emir_only", "EMIR only (no MiFIR transaction report)"
    NONE = "none", "Not reportable"


class QuantityType(models.TextChoices):
    UNIT = "UNIT", "Units (contracts)"
    NOMINAL = "NOML", "Nominal value in the notional currency"


class DeliveryType(models.TextChoices):
    CASH = "CASH", "Cash"
    PHYSICAL = "PHYS", "Physical"
    OPTIONAL = "OPTL", "Optional"


class InstrumentReportingProfile(models.Model):
    """How one instrument is reported, if at all (RTS 22 fields 30-31, 33-36, 41-56, 62-64).

    ``reportability`` is a firm's decision, made per instrument: CFDs on shares and indices are
    in MiFIR scope (venue XXXX); many OTC FX CFDs are reportable under EMIR only, because their
    underlying is not traded on a venue. The instrument is identified by its own ISIN when it
    has one (field 41), else by its description (42-56) with the underlying's ISIN or index
    name. An instrument without a profile is held back (``reportability_unknown``), never
    silently left out."""

    instrument = models.OneToOneField("trading.Instrument", on_delete=models.PROTECT, related_name="reporting_profile")
    reportability = models.CharField(max_length=12, choices=Reportability.choices)
    rationale = models.TextField(blank=True, help_text="Why this instrument is (not) reportable")
    isin = models.CharField("instrument ISIN (field 41)", max_length=12, blank=True)
    full_name = models.CharField("full name (field 42)", max_length=350, blank=True)
    cfi_code = models.CharField("CFI (field 43)", max_length=6, blank=True, help_text="Empty: the instrument's")
    notional_currency_1 = models.CharField("notional currency 1 (field 44)", max_length=3, blank=True)
    notional_currency_2 = models.CharField(
        "notional currency 2 (field 45)", max_length=3, blank=True, help_text="FX derivatives: the other currency"
    )
    price_multiplier = models.DecimalField("price multiplier (field 46)", max_digits=18, decimal_places=6, default=1)
    underlying_isin = models.CharField("underlying ISIN (field 47)", max_length=12, blank=True)
    underlying_index_name = models.CharField("underlying index name (field 48)", max_length=25, blank=True)
    delivery_type = models.CharField(max_length=4, choices=DeliveryType.choices, default=DeliveryType.CASH)
    quantity_type = models.CharField(max_length=4, choices=QuantityType.choices, default=QuantityType.UNIT)
    price_currency = models.CharField(
        "price currency (field 34)", max_length=3, blank=True, help_text="Empty: the instrument's quote currency"
    )
    venue = models.CharField(
        "venue (field 36)", max_length=4, blank=True, help_text="Empty: the execution's venue (MIC, XOFF or XXXX)"
    )
    commodity_derivative = models.BooleanField("commodity derivative (field 64)", default=False)
    short_selling_applicable = models.BooleanField(
        "short selling indicator applies (field 62)", default=False, help_text="Shares and sovereign debt"
    )
    otc_post_trade_indicators = models.CharField(
        "OTC post-trade indicators (field 63)", max_length=100, blank=True, help_text="Space-separated codes"
    )
    updated_at = models.DateTimeField()
    updated_by = models.CharField(max_length=150)

    class Meta:
        ordering = ["instrument__symbol"]

    def __str__(self) -> str:
        return f"{self.instrument} ({self.reportability})"

    def snapshot(self) -> dict:
        data = {f.name: getattr(self, f.attname) for f in self._meta.concrete_fields if f.name not in ("id",)}
        data["price_multiplier"] = str(self.price_multiplier)
        data["updated_at"] = self.updated_at.isoformat() if self.updated_at else None
        return data


class TradingCapacity(models.TextChoices):
    DEAL = "DEAL", "Dealing on own account"
    MTCH = "MTCH", "Matched principal"
    AOTC = "AOTC", "Any other capacity"


class OwnerType(models.TextChoices):
    FIRM = "firm", "The firm itself (own account)"
    LEI = "lei", "A client with an LEI"
    PERSON = "person", "A client who is a natural person"


class PersonIdScheme(models.TextChoices):
    NIDN = "NIDN", "National identity number"
    CCPT = "CCPT", "Passport number"
    CONCAT = "CONCAT", "CONCAT (country, birth date, first name, surname)"


class AccountReportingProfile(models.Model):
    """Who stands behind a trading account in a transaction report: the account owner (buyer
    on a buy, seller on a sell; RTS 22 fields 7-24), the trading capacity (29), the decision
    maker when the firm decides for a client (12/21), and the counterparty on the other side
    (the broker or liquidity provider the MT5 server belongs to)."""

    account = models.OneToOneField("trading.TradingAccount", on_delete=models.PROTECT, related_name="reporting_profile")
    trading_capacity = models.CharField(max_length=4, choices=TradingCapacity.choices, default=TradingCapacity.DEAL)
    owner_type = models.CharField(max_length=8, choices=OwnerType.choices, default=OwnerType.FIRM)
    owner_lei = models.CharField("owner LEI", max_length=20, blank=True)
    owner_first_name = models.CharField(max_length=140, blank=True)
    owner_surname = models.CharField(max_length=140, blank=True)
    owner_birth_date = models.DateField(null=True, blank=True)
    owner_national_id = models.CharField(max_length=35, blank=True)
    owner_id_scheme = models.CharField(max_length=6, choices=PersonIdScheme.choices, blank=True)
    owner_country_of_branch = models.CharField(
        "country of the branch (fields 8/17)", max_length=2, blank=True, help_text="For a client's account"
    )
    decision_maker_lei = models.CharField(
        "decision maker LEI (fields 12/21)", max_length=20, blank=True, help_text="The firm, under a mandate"
    )
    counterparty_lei = models.CharField("counterparty LEI", max_length=20)
    updated_at = models.DateTimeField()
    updated_by = models.CharField(max_length=150)

    class Meta:
        ordering = ["account__name"]

    def __str__(self) -> str:
        return f"{self.account} ({self.trading_capacity}, {self.owner_type})"

    def snapshot(self) -> dict:
        data = {f.name: getattr(self, f.attname) for f in self._meta.concrete_fields if f.name not in ("id",)}
        data["owner_birth_date"] = self.owner_birth_date.isoformat() if self.owner_birth_date else None
        data["updated_at"] = self.updated_at.isoformat() if self.updated_at else None
        return data


class ReportablePerson(models.Model):
    """A person's national identifier for fields 57-60 (investment decision and execution
    within the firm), when an order was decided or executed by a trader and not an algorithm."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="reporting_identity")
    country_of_branch = models.CharField(max_length=2, help_text="ISO 3166-1 (fields 58/60)")
    national_id = models.CharField(max_length=35)
    id_scheme = models.CharField(max_length=6, choices=PersonIdScheme.choices, default=PersonIdScheme.NIDN)
    updated_at = models.DateTimeField()
    updated_by = models.CharField(max_length=150)

    def __str__(self) -> str:
        return f"{self.user} ({self.id_scheme} {self.country_of_branch})"


class ReportKind(models.TextChoices):
    TRANSACTION = "transaction", "RTS 22 transaction report (MiFIR Art. 26)"
    BEST_EXECUTION = "best_execution", "Best-execution quality (MiFID II Art. 27)"
    ALERTS_SUMMARY = "alerts_summary", "Compliance alerts and violations summary"
    ORDER_RECORD = "order_record", "Order record (MiFIR Art. 25, 2017/565 Art. 72)"
    RTS6_PACK = "rts6_pack", "RTS 6 Art. 9 self-assessment evidence pack"


class RunStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    GENERATED = "generated", "Generated"
    VALIDATED = "validated", "Validated"
    APPROVED = "approved", "Approved"
    SUBMITTED = "submitted", "Submitted"
    ACCEPTED = "accepted", "Accepted"
    REJECTED = "rejected", "Rejected (some or all records)"
    FAILED = "failed", "Failed"
    SUPERSEDED = "superseded", "Superseded"


class ReportRunQuerySet(models.QuerySet):
    def standing_for(self, *, kind: str, period_start, period_end) -> ReportRunQuerySet:
        """The runs that stand for exactly this kind and period: not superseded, not failed, not
        a correction. What a new run of it supersedes (or, once submitted, must name with a
        reason), and what a redelivered schedule tick reuses."""
        return self.filter(kind=kind, period_start=period_start, period_end=period_end, corrects__isnull=True).exclude(
            status__in=[RunStatus.SUPERSEDED, RunStatus.FAILED]
        )


class ReportRun(models.Model):
    """One report: kind, period (UTC dates, inclusive), status, file, four eyes.

    Status: pending -> generated -> validated -> approved -> submitted -> accepted | rejected
    (transaction reports go to the ARM; the others stop at approved). ``failed`` when
    generation or validation could not finish; ``superseded`` when a later run replaced this one
    before it was submitted. A run that was submitted is never regenerated: a new run
    ``supersedes`` or ``corrects`` it, with a reason. ``as_of`` is the record-time cut: the run
    reports what had been recorded by then (bitemporal: executions carry event and record time).
    """

    reference = models.CharField(max_length=35, unique=True, help_text="Also the AppHdr BizMsgIdr")
    kind = models.CharField(max_length=16, choices=ReportKind.choices, db_index=True)
    period_start = models.DateField()
    period_end = models.DateField()
    as_of = models.DateTimeField(help_text="Records recorded up to this instant (wall clock)")
    file_format = models.CharField(max_length=8)
    options = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.PENDING, db_index=True)
    file = models.FileField(storage=reports_storage, upload_to="runs/%Y/%m/", max_length=300, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    size_bytes = models.BigIntegerField(default=0)
    record_count = models.PositiveIntegerField(default=0, help_text="Records in the file")
    held_back_count = models.PositiveIntegerField(default=0)
    out_of_scope_count = models.PositiveIntegerField(default=0)
    accepted_count = models.PositiveIntegerField(default=0)
    rejected_count = models.PositiveIntegerField(default=0)
    summary = models.JSONField(default=dict, blank=True)
    errors = models.JSONField(default=list, blank=True, help_text="Generation or validation errors")
    supersedes = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    corrects = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True, related_name="corrections")
    reason = models.TextField(blank=True, help_text="Why this run supersedes or corrects another")
    generated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    generated_by_label = models.CharField(max_length=150, help_text="user:<name> or service:<name>")
    created_at = models.DateTimeField()
    generated_at = models.DateTimeField(null=True, blank=True)
    validated_at = models.DateTimeField(null=True, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    approval_note = models.TextField(blank=True)
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    submitted_at = models.DateTimeField(null=True, blank=True)
    submission_id = models.CharField(max_length=100, blank=True, help_text="The ARM's id of the submission")
    submission_attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    feedback_file = models.FileField(storage=reports_storage, upload_to="feedback/%Y/%m/", max_length=300, blank=True)
    feedback_sha256 = models.CharField(max_length=64, blank=True)
    feedback_at = models.DateTimeField(null=True, blank=True)

    objects = ReportRunQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["kind", "period_start", "period_end"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(approved_by__isnull=True)
                | Q(generated_by__isnull=True)
                | ~Q(approved_by=models.F("generated_by")),
                name="reportrun_four_eyes",
            ),
            models.CheckConstraint(condition=Q(period_end__gte=models.F("period_start")), name="reportrun_period"),
        ]

    def __str__(self) -> str:
        return f"{self.reference} {self.kind} {self.period_start}..{self.period_end} [{self.status}]"

    def snapshot(self) -> dict:
        return {
            "reference": self.reference,
            "kind": self.kind,
            "period_start": self.period_start.isoformat(),
            "period_end": self.period_end.isoformat(),
            "as_of": self.as_of.isoformat(),
            "status": self.status,
            "file": self.file.name if self.file else "",
            "sha256": self.sha256,
            "record_count": self.record_count,
            "held_back_count": self.held_back_count,
            "accepted_count": self.accepted_count,
            "rejected_count": self.rejected_count,
            "supersedes": self.supersedes.reference if self.supersedes_id else None,
            "corrects": self.corrects.reference if self.corrects_id else None,
            "submission_id": self.submission_id,
        }


class RecordState(models.TextChoices):
    REPORTED = "reported", "In the report file"
    HELD_BACK = "held_back", "Held back (invalid)"
    ACCEPTED = "accepted", "Accepted by the ARM"
    REJECTED = "rejected", "Rejected by the ARM"
    CORRECTED = "corrected", "Replaced by a correction"
    CANCELLED = "cancelled", "Cancelled"
    WITHDRAWN = "withdrawn", "Withdrawn (run superseded before submission)"


class TransactionRecord(models.Model):
    """One RTS 22 record of one execution in one transaction run.

    ``active`` marks the record that currently stands for the execution: at most one active
    new-transaction record per execution (a database constraint), which is what makes "every
    fill reported once" hold across runs. A correction or a cancellation is a new record in a
    new run that ``corrects`` this one; this one then stops being active. ``values`` keeps the
    record's fields for held-back, rejected and corrected records (what an officer reviews);
    the report file holds them for the rest."""

    # A run writes up to a million rows at once, so the table carries what its queries use and
    # no more: the (run, trn) and (run, state) indexes, the partial unique index behind "already
    # reported", and no database-level foreign keys. A foreign-key check per row takes a row
    # lock on the referenced execution (a write to a million trading rows) and on the run; the
    # rows are written only by the generator, from executions it has just read in the same
    # transaction, and executions and runs are never deleted (PROTECT, append-only records).
    run = models.ForeignKey(
        ReportRun, on_delete=models.PROTECT, related_name="records", db_index=False, db_constraint=False
    )
    execution = models.ForeignKey(
        "trading.Execution", on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False
    )
    trn = models.CharField("transaction reference number", max_length=52)
    report_status = models.CharField(max_length=4, choices=[("NEWT", "New"), ("CANC", "Cancellation")])
    state = models.CharField(max_length=10, choices=RecordState.choices)
    active = models.BooleanField(default=True)
    late = models.BooleanField(default=False, help_text="Executed before the period, recorded after its day's run")
    reasons = models.JSONField(default=list, blank=True, help_text="[{code, field, message}]")
    values = models.JSONField(null=True, blank=True)
    corrects = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="+", db_index=False, db_constraint=False
    )
    feedback_at = models.DateTimeField(null=True, blank=True)
    # The execution's UTC trading date (of its event time, ``executed_at``): the date the
    # record reports, the expression the T+1 reminder groups fills by (trading 0010). Written
    # with the record from the execution it was built from (executions are append-only, so it
    # never goes stale); kept here so the reminder reads a run's dates from the index below
    # instead of joining its records to every fill (reports 0003, 0004).
    trade_date = models.DateField()

    class Meta:
        ordering = ["run", "trn"]
        indexes = [
            models.Index(fields=["run", "trn"]),
            models.Index(fields=["run", "state"]),
            # The standing records that do not report their execution (held back, rejected by the
            # ARM): few, where the table has a million rows a day. The home page's T+1 reminder
            # reads them here instead of every standing record (reports 0002).
            models.Index(
                fields=["execution"],
                condition=Q(active=True, report_status="NEWT") & ~Q(state__in=["accepted", "reported"]),
                name="record_standing_unreported",
            ),
            # The dates a run's file reports, per run: the T+1 reminder reads the dates of the
            # runs awaiting sign-off by a skip scan here (one probe a date), not their records
            # (a million a day at scale) joined to the fills (reports 0004).
            models.Index(
                fields=["run", "trade_date"],
                condition=Q(active=True, report_status="NEWT", state="reported"),
                name="record_reported_run_date",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["execution"],
                condition=Q(active=True, report_status="NEWT"),
                name="transactionrecord_one_active_per_execution",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.trn} {self.report_status} [{self.state}]"
