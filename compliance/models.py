"""Compliance system of record: rules (versioned, four-eyes), pre-trade decisions, alerts, cases.

Services in ``compliance.services`` are the only writers. Datetimes are aware UTC with
microseconds (RTS 25). Regulation: RTS 6 Art. 13 and 15 (controls, surveillance), MAR Art. 16 and
2016/957 (STORs, four-eyes analysis kept), 2017/565 Art. 72 (content before a change is kept:
a rule change is a new version, never an edit).
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from compliance.pretrade.params import PRETRADE_PARAMS, PretradeParameterError, pretrade_params_convert
from compliance.surveillance.params import ALERT_TYPES, DETECTOR_PARAMS, ParameterError, params_convert
from tradeops.core.clock import utcnow


class RuleScope(models.TextChoices):
    FIRM = "firm", "Firm"
    ACCOUNT = "account", "Account"
    INSTRUMENT = "instrument", "Instrument"
    ALGORITHM = "algorithm", "Algorithm"


class RuleStatus(models.TextChoices):
    PENDING = "pending", "Pending approval"
    ACTIVE = "active", "Active"
    SUPERSEDED = "superseded", "Superseded"
    REJECTED = "rejected", "Rejected"
    RETIRED = "retired", "Retired"


RULE_TYPES = [(k, f"pre-trade: {k}") for k in PRETRADE_PARAMS] + [(k, f"surveillance: {k}") for k in DETECTOR_PARAMS]


# Detector parameters for the offline fit of a learned gate, never a rule's: ``gate_candidates``
# keeps every candidate on the detector, in memory and without bound (a long-running streaming
# stage would grow until it is killed), and loosens momentum ignition's chains as the gate does
# (surveil_scenarios --momentum-candidates / --fit-close-gate set it on a book of their own).
OFFLINE_ONLY_PARAMETERS = ("gate_candidates",)


def parameters_check(rule_type: str, parameters) -> None:
    """Raise ValidationError naming the field when ``parameters`` do not fit ``rule_type``."""
    if not isinstance(parameters, dict):
        raise ValidationError({"parameters": "parameters must be a JSON object"})
    if rule_type in DETECTOR_PARAMS:
        offline = [name for name in OFFLINE_ONLY_PARAMETERS if parameters.get(name)]
        if offline:
            raise ValidationError(
                {
                    "parameters": f"{', '.join(offline)} is for the offline fit of a learned gate (surveil_scenarios"
                    " --momentum-candidates, --fit-close-gate), not a rule: it keeps every candidate in memory"
                    " without bound; leave it out or set it to false"
                }
            )
    try:
        if rule_type in PRETRADE_PARAMS:
            pretrade_params_convert(rule_type, parameters)
        elif rule_type in DETECTOR_PARAMS:
            params_convert(rule_type, parameters)
        else:
            raise ValidationError({"rule_type": f"unknown rule type {rule_type!r}"})
    except (PretradeParameterError, ParameterError) as exc:
        raise ValidationError({"parameters": str(exc)}) from None


class ComplianceRule(models.Model):
    """One version of a rule. ``code`` names the rule across its versions; a change is a new row
    with ``version + 1`` (status pending) that takes effect only when a second compliance
    officer approves it; the version it replaces becomes superseded and stays readable.
    Parameters are validated on every save (``parameters_check``)."""

    code = models.SlugField(max_length=80, help_text="Stable name of the rule across versions")
    version = models.PositiveIntegerField(default=1)
    rule_type = models.CharField(max_length=40, choices=RULE_TYPES)
    scope = models.CharField(max_length=12, choices=RuleScope.choices, default=RuleScope.FIRM)
    account = models.ForeignKey(
        "trading.TradingAccount", on_delete=models.PROTECT, null=True, blank=True, related_name="compliance_rules"
    )
    instrument = models.ForeignKey(
        "trading.Instrument", on_delete=models.PROTECT, null=True, blank=True, related_name="compliance_rules"
    )
    algo_id = models.CharField("algorithm id", max_length=64, blank=True)
    parameters = models.JSONField(default=dict)
    status = models.CharField(max_length=12, choices=RuleStatus.choices, default=RuleStatus.PENDING, db_index=True)
    change_reason = models.TextField(blank=True)
    previous = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    proposed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    proposed_at = models.DateTimeField()
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.TextField(blank=True)
    effective_from = models.DateTimeField(null=True, blank=True)
    effective_to = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["code", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["code", "version"], name="compliancerule_code_version"),
            models.UniqueConstraint(
                fields=["code"], condition=Q(status="active"), name="compliancerule_one_active_version"
            ),
            models.CheckConstraint(
                condition=Q(decided_by__isnull=True) | ~Q(decided_by=models.F("proposed_by")),
                name="compliancerule_four_eyes",
            ),
            models.CheckConstraint(
                condition=(Q(scope="account") & Q(account__isnull=False))
                | (~Q(scope="account") & Q(account__isnull=True)),
                name="compliancerule_account_scope",
            ),
            models.CheckConstraint(
                condition=(Q(scope="instrument") & Q(instrument__isnull=False))
                | (~Q(scope="instrument") & Q(instrument__isnull=True)),
                name="compliancerule_instrument_scope",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} v{self.version} ({self.rule_type}, {self.scope_label}) [{self.status}]"

    def save(self, *args, **kwargs):
        # Validated on every save, whoever saves (admin, service, shell): a rule the checks cannot
        # read must never reach the table.
        parameters_check(self.rule_type, self.parameters)
        super().save(*args, **kwargs)

    @property
    def scope_value(self) -> str:
        if self.scope == RuleScope.ACCOUNT:
            return str(self.account_id)
        if self.scope == RuleScope.INSTRUMENT:
            return self.instrument.symbol if self.instrument_id else ""
        if self.scope == RuleScope.ALGORITHM:
            return self.algo_id
        return ""

    @property
    def scope_label(self) -> str:
        return self.scope if self.scope == RuleScope.FIRM else f"{self.scope} {self.scope_value}"

    def clean(self) -> None:
        parameters_check(self.rule_type, self.parameters)
        if self.scope == RuleScope.ALGORITHM and not self.algo_id:
            raise ValidationError({"algo_id": "an algorithm-scoped rule needs the algorithm id"})
        if self.scope != RuleScope.ALGORITHM and self.algo_id:
            raise ValidationError({"algo_id": "only algorithm-scoped rules name an algorithm"})
        if self.scope == RuleScope.ACCOUNT and not self.account_id:
            raise ValidationError({"account": "an account-scoped rule needs the account"})
        if self.scope == RuleScope.INSTRUMENT and not self.instrument_id:
            raise ValidationError({"instrument": "an instrument-scoped rule needs the instrument"})

    def snapshot(self) -> dict:
        """What the audit trail records before/after a change."""
        return {
            "id": self.pk,
            "code": self.code,
            "version": self.version,
            "rule_type": self.rule_type,
            "scope": self.scope,
            "scope_value": self.scope_value,
            "parameters": self.parameters,
            "status": self.status,
            "proposed_by": getattr(self.proposed_by, "username", None),
            "decided_by": getattr(self.decided_by, "username", None) if self.decided_by_id else None,
            "change_reason": self.change_reason,
        }


class PreTradeDecision(models.Model):
    """The compliance part of one gate decision (RTS 6 Art. 15): approved or not, each check's
    result with the rule version it applied, and why. Written from the ``risk.decision`` event
    (idempotent by its ``event_id``)."""

    source_event_id = models.UUIDField(unique=True)
    client_order_id = models.CharField(max_length=64, db_index=True)
    account_id = models.BigIntegerField(db_index=True)
    symbol = models.CharField(max_length=32)
    approved = models.BooleanField()
    checks = models.JSONField(default=list, help_text="[{name, passed, code, detail, rule_version}]")
    rule_versions = models.JSONField(default=list)
    reason = models.TextField(blank=True)
    decided_at = models.DateTimeField(db_index=True)
    recorded_at = models.DateTimeField()

    class Meta:
        ordering = ["-decided_at"]

    def __str__(self) -> str:
        return f"{self.client_order_id}: {'approved' if self.approved else 'refused'}"


class CaseStatus(models.TextChoices):
    NEW = "new", "New"
    IN_REVIEW = "in_review", "In review"
    ESCALATED = "escalated", "Escalated"
    CLOSED = "closed", "Closed"
    REPORTED = "reported", "Reported (STOR)"


class Case(models.Model):
    """Alerts about one subject (owner or account) and symbol, grouped for one investigation.

    Workflow: new -> in review -> escalated -> closed (with a reason) or reported. Closing or
    reporting is requested by one officer and takes effect only when a different officer
    approves it (``pending_*``); the analysis behind a decision not to report is kept
    (MAR Art. 16, 2016/957 Art. 3(8))."""

    reference = models.CharField(max_length=24, unique=True)
    status = models.CharField(max_length=12, choices=CaseStatus.choices, default=CaseStatus.NEW, db_index=True)
    subject_owner = models.CharField(max_length=64, blank=True, db_index=True)
    subject_account = models.CharField(max_length=200, blank=True)
    symbol = models.CharField(max_length=64, blank=True)
    alert_types = models.JSONField(default=list)
    max_score = models.FloatField(default=0)
    opened_at = models.DateTimeField()
    last_alert_at = models.DateTimeField()
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    pending_action = models.CharField(max_length=8, blank=True, choices=[("close", "close"), ("report", "report")])
    pending_reason = models.TextField(blank=True)
    pending_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    pending_at = models.DateTimeField(null=True, blank=True)
    outcome_reason = models.TextField(blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-last_alert_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(decided_by__isnull=True) | ~Q(decided_by=models.F("pending_by")),
                name="case_four_eyes",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reference} {self.subject_owner or self.subject_account} {self.symbol} [{self.status}]"

    @property
    def is_open(self) -> bool:
        return self.status not in (CaseStatus.CLOSED, CaseStatus.REPORTED)


class Alert(models.Model):
    """One surveillance finding with its evidence. Duplicates (same type, subject, symbol and
    orders) are merged into one row (``occurrences``); each alert belongs to one case."""

    dedupe_key = models.CharField(max_length=64, unique=True)
    alert_type = models.CharField(max_length=40, choices=[(t, t) for t in ALERT_TYPES], db_index=True)
    severity = models.CharField(max_length=8, default="medium")
    account = models.CharField(max_length=200, blank=True)
    owner = models.CharField(max_length=64, blank=True)
    symbol = models.CharField(max_length=64, blank=True)
    order_ids = models.JSONField(default=list)
    score = models.FloatField(default=0)
    start = models.DateTimeField(null=True, blank=True)
    end = models.DateTimeField(null=True, blank=True)
    evidence = models.JSONField(default=dict)
    source = models.CharField(max_length=40, default="surveillance")
    occurrences = models.PositiveIntegerField(default=1)
    # When it was raised and last extended: event time (a replay's market time).
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    # When this row was written and last changed: wall clock (what a live screen catches up from).
    recorded_at = models.DateTimeField(default=utcnow)
    updated_at = models.DateTimeField(default=utcnow)
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="alerts")

    class Meta:
        ordering = ["-first_seen"]
        indexes = [models.Index(fields=["owner", "symbol"]), models.Index(fields=["account", "symbol"])]

    def __str__(self) -> str:
        return f"{self.alert_type} {self.account}/{self.symbol} ({self.score:.2f})"


class CaseAction(models.Model):
    """Every step taken on a case, by whom and why (also in the audit trail)."""

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="actions")
    action = models.CharField(max_length=40)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+")
    note = models.TextField(blank=True)
    from_status = models.CharField(max_length=12, blank=True)
    to_status = models.CharField(max_length=12, blank=True)
    at = models.DateTimeField()  # event time: a replay's market time for a step the engine took
    recorded_at = models.DateTimeField(default=utcnow)  # wall clock

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.case_id} {self.action} by {self.actor_id}"


class ThrottleTrip(models.Model):
    """RTS 6 Art. 15(3): the execution throttle disabled an algorithm. Open (``reset_at`` empty)
    until a designated person re-enables it; the worker's gate reloads open trips at start, so a
    restart does not re-enable anything."""

    algo_id = models.CharField("algorithm id", max_length=64, db_index=True)
    tripped_at = models.DateTimeField()
    detail = models.TextField()
    rule_version = models.CharField(max_length=120, blank=True)
    reset_at = models.DateTimeField(null=True, blank=True)
    reset_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    reset_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-tripped_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["algo_id"], condition=Q(reset_at__isnull=True), name="throttletrip_one_open"
            ),
        ]

    def __str__(self) -> str:
        return (
            f"{self.algo_id} tripped {self.tripped_at:%Y-%m-%d %H:%M:%S}{'' if self.reset_at is None else ' (reset)'}"
        )


class SurveillanceState(models.Model):
    """The streaming surveillance stage's detector windows, saved as it runs so that a restart
    resumes them instead of starting blind (RTS 6 Art. 13: surveillance without gaps). One row
    per stage: ``state`` is the engine's snapshot, versioned JSON (``compliance.surveillance.state``;
    decoded into typed structs, never unpickled: a row that does not match is discarded),
    ``event_ts`` the event time it covers up to, ``saved_at`` the wall clock of the save."""

    stage = models.CharField(max_length=64, unique=True)
    state = models.BinaryField()
    event_ts = models.DateTimeField(null=True, blank=True)
    events = models.PositiveBigIntegerField(default=0)
    saved_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.stage} state at {self.event_ts} ({len(self.state or b'')} bytes)"
