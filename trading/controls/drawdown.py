"""Re-basing an account's peak equity, with four eyes: how a risk manager ends a REDUCING that
the drawdown limit caused (RTS 6 Art. 15 and 17: limits and their overrides are the risk
function's; 2017/565 Art. 72: every change kept with its before and after).

The drawdown is measured from the account's peak equity; a flat account cannot earn it back, so
once the limit bites the account stays REDUCING (every later signal a ``strategy.reduce_only``
skip) until something moves the peak. Until 2026-12-07 nothing did short of a change of the
limit. A risk desk's answer is to acknowledge the drawdown and re-base the high-water mark (a
copy-trading platform's risk limit takes a new ``startTime`` "to reset the filter after a
stop-out"), so:

1. a risk manager proposes it for one account with a reason (``drawdown_rebase_propose``; the
   account's snapshot figures are kept, what the proposer saw); one pending per account;
2. a DIFFERENT risk manager approves it (``drawdown_rebase_approve``, four eyes on the person,
   as for limit changes) or either rejects it (``drawdown_rebase_reject``);
3. the approval publishes ``risk.drawdown_rebased``; the execution worker trading the account
   re-bases the peak on the equity it holds at that moment (``RiskManager.peak_equity_rebase``)
   and records the figures (``drawdown_rebase_applied_record``): peak before and after, the
   drawdown it ended, event time and wall clock. A worker that was down applies approved
   re-bases at start-up (``drawdown_rebases_to_apply``), so none is lost with an event.

Every step is an audit record on ``drawdown_rebase:<id>``. The daily loss limit is not touched:
it is the day's, and ends with the UTC day (event time).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db import IntegrityError, transaction

from tradeops.audit.actors import user_actor
from tradeops.core.clock import ensure_utc, utcnow
from tradeops.core.errors import Conflict, FourEyesViolation
from tradeops.events import DrawdownRebased, make_event
from tradeops.recorder import Recorder, recording
from trading.controls.services import RiskControlError, _plain, risk_manager_require
from trading.models import AccountRiskSnapshot, DrawdownRebase, ProposalStatus, TradingAccount

OBJECT_TYPE = "drawdown_rebase"
RISK_MANAGERS_DO = "an account's peak equity is re-based by risk managers"


def drawdown_rebase_snapshot(rebase: DrawdownRebase) -> dict:
    return {
        "id": rebase.pk,
        "account_id": rebase.account_id,
        "status": rebase.status,
        "reason": rebase.reason,
        "proposed_by": rebase.proposed_by.get_username(),
        "decided_by": rebase.decided_by.get_username() if rebase.decided_by_id else None,
        "seen_peak_equity": _plain(rebase.seen_peak_equity),
        "seen_equity": _plain(rebase.seen_equity),
        "seen_drawdown": _plain(rebase.seen_drawdown),
        "peak_before": _plain(rebase.peak_before),
        "peak_after": _plain(rebase.peak_after),
        "drawdown_before": _plain(rebase.drawdown_before),
        "applied_at": rebase.applied_at.isoformat() if rebase.applied_at else None,
        "applied_recorded_at": rebase.applied_recorded_at.isoformat() if rebase.applied_recorded_at else None,
    }


def drawdown_rebase_propose(
    *,
    proposed_by,
    account: TradingAccount,
    reason: str,
    at: datetime | None = None,
    recorder: Recorder | None = None,
) -> DrawdownRebase:
    """Propose re-basing ``account``'s peak equity (acknowledge its drawdown, resume trading).
    Takes no effect until a different risk manager approves it. One pending per account
    (``drawdown_rebase_pending``), and none while an approved one awaits the worker. Side
    effects: audit ``drawdown_rebase.proposed`` (the account's snapshot figures as ``before``)."""
    risk_manager_require(proposed_by, does=RISK_MANAGERS_DO)
    if not reason.strip():
        raise RiskControlError("re-basing an account's peak equity needs a reason", code="reason_required")
    now = ensure_utc(at) if at else utcnow()
    with recording(recorder) as rec:
        if DrawdownRebase.objects.filter(account=account, status=ProposalStatus.PENDING).exists():
            raise Conflict(
                f"a re-base of account {account.pk}'s peak equity is already awaiting approval",
                code="drawdown_rebase_pending",
            )
        waiting = DrawdownRebase.objects.filter(
            account=account, status=ProposalStatus.APPROVED, applied_at__isnull=True
        ).first()
        if waiting is not None:  # approved, not yet applied: a second would re-base on the same equity
            raise Conflict(
                f"drawdown re-base {waiting.pk} of account {account.pk} is approved and awaits the execution worker",
                code="drawdown_rebase_pending",
            )
        snapshot = AccountRiskSnapshot.objects.filter(account=account).first()
        try:
            with transaction.atomic():
                rebase = DrawdownRebase.objects.create(
                    account=account,
                    reason=reason.strip(),
                    proposed_by=proposed_by,
                    proposed_at=now,
                    seen_peak_equity=snapshot.peak_equity if snapshot else None,
                    seen_equity=snapshot.equity if snapshot else None,
                    seen_drawdown=snapshot.drawdown if snapshot else None,
                )
        except IntegrityError:  # another proposal for the account committed in between
            raise Conflict(
                f"a re-base of account {account.pk}'s peak equity is already awaiting approval",
                code="drawdown_rebase_pending",
            ) from None
        rec.change(
            action="drawdown_rebase.proposed",
            actor=user_actor(proposed_by),
            object_type=OBJECT_TYPE,
            object_id=str(rebase.pk),
            before=_snapshot_figures(snapshot),
            after=drawdown_rebase_snapshot(rebase),
            reason=rebase.reason,
            at=now,
        )
        return rebase


def _snapshot_figures(snapshot: AccountRiskSnapshot | None) -> dict | None:
    if snapshot is None:
        return None
    return {
        "peak_equity": _plain(snapshot.peak_equity),
        "equity": _plain(snapshot.equity),
        "drawdown": _plain(snapshot.drawdown),
        "trading_state": snapshot.trading_state,
        "as_of": snapshot.as_of.isoformat(),
    }


def _pending(rebase: DrawdownRebase) -> DrawdownRebase:
    locked = DrawdownRebase.objects.select_for_update().select_related("proposed_by").get(pk=rebase.pk)
    if locked.status != ProposalStatus.PENDING:
        raise Conflict(f"drawdown re-base {locked.pk} is {locked.status}, not pending", code="drawdown_rebase_decided")
    return locked


def drawdown_rebase_approve(
    *,
    rebase: DrawdownRebase,
    approver,
    note: str = "",
    at: datetime | None = None,
    recorder: Recorder | None = None,
) -> DrawdownRebase:
    """A second risk manager approves: ``risk.drawdown_rebased`` goes on the outbox, and the
    execution worker trading the account re-bases its peak equity when it takes it (or at its
    next start). Four eyes on the person: the proposer cannot approve (``four_eyes``). Side
    effects: audit ``drawdown_rebase.approved``."""
    risk_manager_require(approver, does=RISK_MANAGERS_DO)
    now = ensure_utc(at) if at else utcnow()
    with recording(recorder) as rec:
        rebase = _pending(rebase)
        if rebase.proposed_by_id == approver.pk:
            raise FourEyesViolation(
                f"{approver.get_username()} proposed drawdown re-base {rebase.pk} and cannot also approve it; "
                "a second risk manager must"
            )
        before = drawdown_rebase_snapshot(rebase)
        rebase.status, rebase.decided_by, rebase.decided_at, rebase.decision_note = (
            ProposalStatus.APPROVED,
            approver,
            now,
            note,
        )
        rebase.save(update_fields=["status", "decided_by", "decided_at", "decision_note"])
        actor = user_actor(approver)
        event = make_event(
            DrawdownRebased(rebase_id=rebase.pk, account_id=rebase.account_id, actor=actor, ts=now),
            source="trading",
            key=str(rebase.account_id),
        )
        rec.change(
            action="drawdown_rebase.approved",
            actor=actor,
            object_type=OBJECT_TYPE,
            object_id=str(rebase.pk),
            before=before,
            after=drawdown_rebase_snapshot(rebase),
            reason=note,
            at=now,
            event_id=event.event_id,
        )
        rec.event(event)
        return rebase


def drawdown_rebase_reject(
    *,
    rebase: DrawdownRebase,
    officer,
    note: str,
    at: datetime | None = None,
    recorder: Recorder | None = None,
) -> DrawdownRebase:
    """Refuse (or, by its proposer, withdraw) a pending re-base, with a note; the peak stays."""
    risk_manager_require(officer, does=RISK_MANAGERS_DO)
    if not note.strip():
        raise RiskControlError("rejecting a drawdown re-base needs a note", code="reason_required")
    now = ensure_utc(at) if at else utcnow()
    with recording(recorder) as rec:
        rebase = _pending(rebase)
        before = drawdown_rebase_snapshot(rebase)
        rebase.status, rebase.decided_at, rebase.decision_note = ProposalStatus.REJECTED, now, note
        if officer.pk != rebase.proposed_by_id:
            rebase.decided_by = officer
        rebase.save(update_fields=["status", "decided_by", "decided_at", "decision_note"])
        rec.change(
            action="drawdown_rebase.rejected",
            actor=user_actor(officer),
            object_type=OBJECT_TYPE,
            object_id=str(rebase.pk),
            before=before,
            after=drawdown_rebase_snapshot(rebase),
            reason=note,
            at=now,
        )
        return rebase


def drawdown_rebase_applied_record(
    *,
    rebase_id: int,
    peak_before: Decimal,
    peak_after: Decimal,
    drawdown_before: Decimal,
    at: datetime,
    actor: str,
    source: str,
    recorder: Recorder | None = None,
) -> DrawdownRebase | None:
    """The execution worker re-based the account's peak equity (``RiskManager.peak_equity_rebase``)
    at ``at`` (event time): the figures go on the row and in the audit trail
    (``drawdown_rebase.applied``, ``before``/``after`` the peak and the drawdown; the record's
    time is ``at``, its ``recorded_at`` the wall clock). Returns None, recording nothing, if it was
    applied already: the worker reads only re-bases not yet applied (``drawdown_rebases_to_apply``),
    so an event delivered twice or a start-up after the event finds none to apply; this guards the
    row under its lock all the same."""
    with recording(recorder) as rec:
        rebase = DrawdownRebase.objects.select_for_update().select_related("proposed_by").get(pk=rebase_id)
        if rebase.status != ProposalStatus.APPROVED or rebase.applied_at is not None:
            return None
        rebase.peak_before, rebase.peak_after, rebase.drawdown_before = peak_before, peak_after, drawdown_before
        rebase.applied_at, rebase.applied_recorded_at, rebase.applied_by = ensure_utc(at), utcnow(), source
        rebase.save(
            update_fields=[
                "peak_before",
                "peak_after",
                "drawdown_before",
                "applied_at",
                "applied_recorded_at",
                "applied_by",
            ]
        )
        rec.change(
            action="drawdown_rebase.applied",
            actor=actor,
            object_type=OBJECT_TYPE,
            object_id=str(rebase.pk),
            before={
                "account": str(rebase.account_id),
                "peak_equity": _plain(peak_before),
                "drawdown": _plain(drawdown_before),
            },
            after={"account": str(rebase.account_id), "peak_equity": _plain(peak_after), "drawdown": "0"},
            reason=f"drawdown re-base {rebase.pk} approved by "
            f"{rebase.decided_by.get_username() if rebase.decided_by_id else '?'}: {rebase.reason}",
            at=rebase.applied_at,
        )
        return rebase
