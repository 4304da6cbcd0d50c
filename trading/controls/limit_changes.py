"""Changes to risk limits with four eyes (RTS 6 Art. 15 and 17: limits are the risk function's;
2017/565 Art. 72: every change kept with its before and after).

A risk manager proposes new values for one scope (``risk_limit_change_propose``); a different
risk manager approves (``risk_limit_change_approve``, which saves them through
``trading.controls.services.risk_limit_save``: audited and published, so the execution worker
reloads at once) or either rejects. The check is on the person, like compliance rules: one user
holding two roles still cannot approve their own change. The API's limit changes come this way,
and so do the admin's (``RiskLimitAdmin`` files a proposal, ``RiskLimitProposalAdmin`` decides it;
until 2026-12-06 the admin saved a limit at once, one person alone).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from tradeops.audit.actors import user_actor
from tradeops.core.clock import ensure_utc, utcnow
from tradeops.core.errors import Conflict, FourEyesViolation
from tradeops.recorder import Recorder, recording
from trading.controls.services import (
    LIMIT_FIELDS,
    RiskControlError,
    _plain,
    risk_limit_save,
    risk_limit_snapshot,
    risk_manager_require,
)
from trading.models import Instrument, ProposalStatus, RiskLimit, RiskLimitProposal, TradingAccount

RISK_MANAGERS_DO = "risk limits are changed by risk managers"


def risk_limit_values_clean(values: dict) -> dict:
    """Check proposed limit values against the model's fields: unknown names are refused, each
    value converted (decimals from strings or numbers; ``null`` means "no limit"). Returns the
    values as the model takes them. Raises ``RiskControlError`` naming the field."""
    from django.core.exceptions import ValidationError

    if not isinstance(values, dict) or not values:
        raise RiskControlError("a limit change names at least one limit field and its value", code="risk_limit_invalid")
    unknown = sorted(set(values) - set(LIMIT_FIELDS))
    if unknown:
        raise RiskControlError(f"unknown risk limit fields: {unknown}; known: {list(LIMIT_FIELDS)}")
    cleaned = {}
    for name, raw in values.items():
        field = RiskLimit._meta.get_field(name)
        if raw is None and not field.null:
            raise RiskControlError(f"{name} cannot be empty", code="risk_limit_invalid")
        try:
            value = None if raw is None else field.clean(field.to_python(raw), None)
        except (ValidationError, TypeError, ValueError) as exc:
            detail = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
            raise RiskControlError(f"{name}: {detail}", code="risk_limit_invalid") from None
        if isinstance(value, Decimal) and value < 0:
            raise RiskControlError(f"{name} cannot be negative", code="risk_limit_invalid")
        cleaned[name] = value
    drawdown = cleaned.get("max_drawdown")
    if drawdown is not None and not (0 < drawdown <= 1):
        raise RiskControlError(f"max_drawdown is a fraction in (0, 1], got {drawdown}", code="risk_limit_invalid")
    return cleaned


def risk_limit_proposal_snapshot(proposal: RiskLimitProposal) -> dict:
    return {
        "id": proposal.pk,
        "limit_id": proposal.limit_id,
        "account_id": proposal.account_id,
        "instrument": proposal.instrument.symbol if proposal.instrument_id else None,
        "values": proposal.values,
        "status": proposal.status,
        "proposed_by": proposal.proposed_by.get_username(),
        "decided_by": proposal.decided_by.get_username() if proposal.decided_by_id else None,
        "reason": proposal.reason,
    }


def risk_limit_change_propose(
    *,
    proposed_by,
    values: dict,
    reason: str,
    account: TradingAccount | None = None,
    instrument: Instrument | None = None,
    at: datetime | None = None,
    recorder: Recorder | None = None,
) -> RiskLimitProposal:
    """Propose new values for the limits of a scope (account and/or instrument; neither = the
    firm-wide row). Takes no effect until a different risk manager approves it
    (``risk_limit_change_approve``). One pending change per scope (``risk_limit_change_pending``).
    Side effects: audit ``risk_limit.change_proposed`` (current row before, proposal after).
    RTS 6 Art. 15 and 17: limits are set by the risk function, changes kept (2017/565 Art. 72)."""
    risk_manager_require(proposed_by, does=RISK_MANAGERS_DO)
    if not reason.strip():
        raise RiskControlError("a limit change needs a reason", code="reason_required")
    cleaned = risk_limit_values_clean(values)
    now = ensure_utc(at) if at else utcnow()
    with recording(recorder) as rec:
        return _propose(proposed_by, cleaned, reason, account, instrument, now, rec)


def _propose(proposed_by, cleaned, reason, account, instrument, now, rec: Recorder) -> RiskLimitProposal:
    pending = RiskLimitProposal.objects.select_for_update().filter(
        account=account, instrument=instrument, status=ProposalStatus.PENDING
    )
    if pending.exists():
        raise Conflict("a change to these limits is already awaiting approval", code="risk_limit_change_pending")
    limit = RiskLimit.objects.filter(account=account, instrument=instrument).first()
    proposal = RiskLimitProposal.objects.create(
        limit=limit,
        account=account,
        instrument=instrument,
        values={name: _plain(value) for name, value in cleaned.items()},
        reason=reason,
        proposed_by=proposed_by,
        proposed_at=now,
    )
    rec.change(
        action="risk_limit.change_proposed",
        actor=user_actor(proposed_by),
        object_type="risk_limit_proposal",
        object_id=str(proposal.pk),
        before=risk_limit_snapshot(limit) if limit else None,
        after=risk_limit_proposal_snapshot(proposal),
        reason=reason,
        at=now,
    )
    return proposal


def _decided(proposal: RiskLimitProposal) -> RiskLimitProposal:
    locked = RiskLimitProposal.objects.select_for_update().get(pk=proposal.pk)
    if locked.status != ProposalStatus.PENDING:
        raise Conflict(
            f"limit change {locked.pk} is {locked.status}, not pending", code="risk_limit_change_not_pending"
        )
    return locked


def risk_limit_change_approve(
    *,
    proposal: RiskLimitProposal,
    approver,
    note: str = "",
    at: datetime | None = None,
    recorder: Recorder | None = None,
) -> RiskLimit:
    """A second risk manager approves: the values are saved through ``risk_limit_save`` (audited
    before/after, published so the execution worker reloads its limits). Four eyes on the person:
    the proposer cannot approve, whatever roles they hold (``four_eyes``)."""
    risk_manager_require(approver, does=RISK_MANAGERS_DO)
    now = ensure_utc(at) if at else utcnow()
    with recording(recorder) as rec:
        return _approve(proposal, approver, note, now, rec)


def _approve(proposal: RiskLimitProposal, approver, note: str, now: datetime, rec: Recorder) -> RiskLimit:
    proposal = _decided(proposal)
    if proposal.proposed_by_id == approver.pk:
        raise FourEyesViolation(
            f"{approver.get_username()} proposed limit change {proposal.pk} and cannot also approve it; "
            "a second risk manager must"
        )
    actor = user_actor(approver)
    before = risk_limit_proposal_snapshot(proposal)
    current = RiskLimit.objects.filter(account=proposal.account, instrument=proposal.instrument).first()
    limit = risk_limit_save(
        actor=actor,
        limit=current,
        account=proposal.account,
        instrument=proposal.instrument,
        reason=f"limit change {proposal.pk} proposed by {proposal.proposed_by.get_username()}: {proposal.reason}",
        at=now,
        recorder=rec,
        **risk_limit_values_clean(proposal.values),
    )
    proposal.status, proposal.decided_by, proposal.decided_at, proposal.decision_note = (
        ProposalStatus.APPROVED,
        approver,
        now,
        note,
    )
    proposal.limit = limit
    proposal.save(update_fields=["status", "decided_by", "decided_at", "decision_note", "limit"])
    rec.change(
        action="risk_limit.change_approved",
        actor=actor,
        object_type="risk_limit_proposal",
        object_id=str(proposal.pk),
        before=before,
        after=risk_limit_proposal_snapshot(proposal),
        reason=note,
        at=now,
    )
    return limit


def risk_limit_change_reject(
    *,
    proposal: RiskLimitProposal,
    officer,
    note: str,
    at: datetime | None = None,
    recorder: Recorder | None = None,
) -> RiskLimitProposal:
    """Refuse (or, by its proposer, withdraw) a pending limit change; the limits stay as they are."""
    risk_manager_require(officer, does=RISK_MANAGERS_DO)
    if not note.strip():
        raise RiskControlError("rejecting a limit change needs a note", code="reason_required")
    now = ensure_utc(at) if at else utcnow()
    with recording(recorder) as rec:
        return _reject(proposal, officer, note, now, rec)


def _reject(proposal: RiskLimitProposal, officer, note: str, now: datetime, rec: Recorder) -> RiskLimitProposal:
    proposal = _decided(proposal)
    before = risk_limit_proposal_snapshot(proposal)
    proposal.status, proposal.decided_at, proposal.decision_note = ProposalStatus.REJECTED, now, note
    if officer.pk != proposal.proposed_by_id:
        proposal.decided_by = officer
    proposal.save(update_fields=["status", "decided_by", "decided_at", "decision_note"])
    rec.change(
        action="risk_limit.change_rejected",
        actor=user_actor(officer),
        object_type="risk_limit_proposal",
        object_id=str(proposal.pk),
        before=before,
        after=risk_limit_proposal_snapshot(proposal),
        reason=note,
        at=now,
    )
    return proposal
