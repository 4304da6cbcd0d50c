"""Writers of the reporting configuration: the firm's identity, how each instrument is reported
(MiFIR Art. 26 or not, RTS 22 fields 41-56) and who stands behind each account (fields 7-29).
Each change is validated, made under a row lock and audited with before and after (2017/565
Art. 72); the admin and ``manage.py seed`` go through these."""

from __future__ import annotations

from django.db import transaction

from compliance.reports.models import AccountReportingProfile, InstrumentReportingProfile, ReportingFirm
from tradeops.audit.services import audit_record_change
from tradeops.core.clock import utcnow


def _config_save(*, model, lookup: dict, actor: str, reason: str, action: str, object_id: str, fields: dict):
    """Create or change one configuration row under a row lock, validated, audited with before
    and after. Precondition: inside the caller's transaction."""
    row = model.objects.select_for_update().filter(**lookup).first()
    before = row.snapshot() if row else None
    row = row or model(**lookup)
    for name, value in fields.items():
        setattr(row, name, value)
    row.updated_at, row.updated_by = utcnow(), actor
    row.full_clean()
    row.save()
    audit_record_change(
        action=action,
        actor=actor,
        object_type="reporting_config",
        object_id=object_id,
        before=before,
        after=row.snapshot(),
        occurred_at=utcnow(),
        reason=reason,
    )
    return row


@transaction.atomic
def reporting_firm_save(*, actor: str, reason: str = "", **fields) -> ReportingFirm:
    """Create or change the firm's reporting identity (audited with before/after)."""
    return _config_save(
        model=ReportingFirm,
        lookup={"pk": 1},
        actor=actor,
        reason=reason,
        action="reporting_firm.changed",
        object_id="firm",
        fields=fields,
    )


@transaction.atomic
def instrument_reporting_profile_save(
    *, instrument, actor: str, reason: str = "", **fields
) -> InstrumentReportingProfile:
    """Create or change how an instrument is reported (reportability and description)."""
    return _config_save(
        model=InstrumentReportingProfile,
        lookup={"instrument": instrument},
        actor=actor,
        reason=reason,
        action="reporting_profile.instrument_changed",
        object_id=f"instrument:{instrument.symbol}",
        fields=fields,
    )


@transaction.atomic
def account_reporting_profile_save(*, account, actor: str, reason: str = "", **fields) -> AccountReportingProfile:
    """Create or change who stands behind an account in reports (owner, capacity, counterparty)."""
    return _config_save(
        model=AccountReportingProfile,
        lookup={"account": account},
        actor=actor,
        reason=reason,
        action="reporting_profile.account_changed",
        object_id=f"account:{account.pk}",
        fields=fields,
    )
