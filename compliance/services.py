"""Writers of the compliance system of record. Keyword-only, atomic, audited, the only path.

- Rules: ``compliance_rule_propose`` makes a new pending version (never edits one);
  ``compliance_rule_approve`` lets it take effect, only by a *different* compliance officer
  (four eyes: the check is on the person, so one user holding two roles cannot approve their
  own change), supersedes the version before it, and publishes ``compliance.rule_changed`` so the
  execution worker's checks apply it. Every step is audited with before/after (2017/565 Art. 72).
- Pre-trade decisions: ``pretrade_decision_record`` keeps the compliance part of each gate
  decision and publishes ``compliance.decision`` (RTS 6 Art. 15).
- Alerts and cases: ``alerts_record`` deduplicates and groups alerts into cases; the case
  workflow (new -> in review -> escalated -> closed or reported) with four-eyes dispositions
  (MAR Art. 16; 2016/957).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Max

from compliance.models import (
    Alert,
    Case,
    CaseAction,
    CaseStatus,
    ComplianceRule,
    PreTradeDecision,
    RuleScope,
    RuleStatus,
    ThrottleTrip,
    parameters_check,
)
from compliance.pretrade.decisions import compliance_decision_of
from compliance.pretrade.params import PRETRADE_PARAMS
from compliance.rule_parameters import check_rule_parameters_proposal
from tradeops.audit.actors import user_actor
from tradeops.core.clock import ensure_utc, utcnow
from tradeops.core.errors import ApplicationError, Conflict, FourEyesViolation, PermissionDenied
from tradeops.core.roles import Role, user_has_role
from tradeops.core.rows import row_insert
from tradeops.events import (
    DECISION_NOT_RECOVERABLE,
    CaseChanged,
    ComplianceRuleChanged,
    Envelope,
    ExecutionThrottleReset,
    make_event,
)

SOURCE = "compliance"
CASE_GROUPING_WINDOW = timedelta(hours=24)  # an alert joins an open case about the same subject seen this recently
_DECISION_NS = uuid.UUID("5b0b1c1e-8f0d-4b7e-9a52-6c1f0b1d2e01")


class ComplianceError(ApplicationError):
    code = "compliance_error"


class ThrottleNotTripped(Conflict):
    code = "throttle_not_tripped"


class InvalidCaseTransition(ComplianceError):
    code = "invalid_case_transition"


def _require_officer(user) -> None:
    if not user_has_role(user, Role.COMPLIANCE_OFFICER):
        raise PermissionDenied(f"{user.get_username()} is not a compliance officer", code="not_compliance_officer")


def _audit(
    *,
    action: str,
    actor: str,
    object_type: str,
    object_id,
    before,
    after,
    at: datetime,
    reason: str = "",
    event_id=None,
):
    """The audit trail (tradeops.audit), inside the caller's transaction. ``event_id``: the id of
    the event published for the same action, so the audit-trail stage does not record it twice."""
    from tradeops.audit.services import audit_record_change

    audit_record_change(
        action=action,
        actor=actor,
        object_type=object_type,
        object_id=str(object_id),
        before=before,
        after=after,
        occurred_at=at,
        reason=reason,
        event_id=event_id,
    )


def _publish(payload, *, key: str, event_id: uuid.UUID | None = None) -> None:
    from tradeops.outbox.services import outbox_append

    outbox_append(event=make_event(payload, source=SOURCE, key=key, event_id=event_id))


# ---------------------------------------------------------------- rules


@transaction.atomic
def compliance_rule_propose(
    *,
    proposed_by,
    rule_type: str,
    parameters: dict[str, Any],
    code: str = "",
    scope: str = RuleScope.FIRM,
    account=None,
    instrument=None,
    algo_id: str = "",
    reason: str = "",
    at: datetime | None = None,
) -> ComplianceRule:
    """Propose a rule or a change to one (a new pending version of ``code``). Takes no effect
    until another officer approves it. Refuses a second pending change to the same rule and
    parameters that do not validate or that leave out one the version in force sets
    (ValidationError naming the field: ``check_rule_parameters_proposal``)."""
    _require_officer(proposed_by)
    at = ensure_utc(at or utcnow())
    code = code or f"{rule_type}-{scope}" + (f"-{account.pk}" if account else "") + (
        f"-{instrument.symbol}" if instrument else ""
    ) + (f"-{algo_id}" if algo_id else "")
    code = code.lower().replace("_", "-")
    versions = ComplianceRule.objects.select_for_update().filter(code=code).order_by("pk")
    latest = versions.order_by("-version").first()
    if versions.filter(status=RuleStatus.PENDING).exists():
        raise Conflict(f"rule {code} already has a change pending approval", code="rule_change_pending")
    if latest is not None and latest.rule_type != rule_type:
        raise ComplianceError(f"rule {code} is a {latest.rule_type} rule, not {rule_type}", code="rule_type_mismatch")
    previous = versions.filter(status=RuleStatus.ACTIVE).first()
    # the new version's whole parameter set: what the version in force sets is kept or nulled
    # back to its default on purpose, never dropped by omission (the admin form and the API alike)
    parameters = check_rule_parameters_proposal(
        rule_type=rule_type, parameters=parameters, current=previous.parameters if previous else None
    )
    parameters_check(rule_type, parameters)
    rule = ComplianceRule(
        code=code,
        version=(versions.aggregate(v=Max("version"))["v"] or 0) + 1,
        rule_type=rule_type,
        scope=scope,
        account=account,
        instrument=instrument,
        algo_id=algo_id,
        parameters=parameters,
        status=RuleStatus.PENDING,
        change_reason=reason,
        previous=previous,
        proposed_by=proposed_by,
        proposed_at=at,
    )
    rule.full_clean(validate_unique=False, validate_constraints=False)
    rule.save()
    _audit(
        action="compliance_rule.proposed",
        actor=user_actor(proposed_by),
        object_type="compliance_rule",
        object_id=f"{code}@v{rule.version}",
        before=previous.snapshot() if previous else None,
        after=rule.snapshot(),
        at=at,
        reason=reason,
    )
    return rule


def _rule_event(rule: ComplianceRule, *, active: bool, actor: str, at: datetime) -> ComplianceRuleChanged:
    return ComplianceRuleChanged(
        rule_id=rule.pk,
        code=rule.code,
        rule_type=rule.rule_type,
        scope=rule.scope,
        scope_value=rule.scope_value,
        version=rule.version,
        active=active,
        parameters=rule.parameters,
        actor=actor,
        ts=at,
    )


@transaction.atomic
def compliance_rule_approve(*, rule: ComplianceRule, approver, note: str = "", at: datetime | None = None):
    """Second officer's approval: the pending version takes effect now and the version it
    replaces is superseded (kept). Four eyes: the approver must be a different person from the
    proposer, whatever roles either holds. Publishes ``compliance.rule_changed``."""
    _require_officer(approver)
    at = ensure_utc(at or utcnow())
    rule = ComplianceRule.objects.select_for_update().get(pk=rule.pk)
    if rule.status != RuleStatus.PENDING:
        raise Conflict(f"{rule.code} v{rule.version} is {rule.status}, not pending", code="rule_not_pending")
    if rule.proposed_by_id == approver.pk:
        raise FourEyesViolation(
            f"{approver.get_username()} proposed {rule.code} v{rule.version} and cannot also approve it; "
            "a second compliance officer must approve it"
        )
    actor = user_actor(approver)
    before = rule.snapshot()
    previous = (
        ComplianceRule.objects.select_for_update()
        .filter(code=rule.code, status=RuleStatus.ACTIVE)
        .order_by("pk")
        .first()
    )
    if previous is not None:
        prev_before = previous.snapshot()
        previous.status = RuleStatus.SUPERSEDED
        previous.effective_to = at
        previous.save(update_fields=["status", "effective_to"])
        _audit(
            action="compliance_rule.superseded",
            actor=actor,
            object_type="compliance_rule",
            object_id=f"{previous.code}@v{previous.version}",
            before=prev_before,
            after=previous.snapshot(),
            at=at,
        )
        if rule.rule_type in PRETRADE_PARAMS and (previous.scope, previous.scope_value) != (
            rule.scope,
            rule.scope_value,
        ):
            _publish(_rule_event(previous, active=False, actor=actor, at=at), key=previous.code)
    rule.status = RuleStatus.ACTIVE
    rule.decided_by = approver
    rule.decided_at = at
    rule.decision_note = note
    rule.effective_from = at
    rule.save(update_fields=["status", "decided_by", "decided_at", "decision_note", "effective_from"])
    _audit(
        action="compliance_rule.approved",
        actor=actor,
        object_type="compliance_rule",
        object_id=f"{rule.code}@v{rule.version}",
        before=before,
        after=rule.snapshot(),
        at=at,
        reason=note,
    )
    _publish(_rule_event(rule, active=True, actor=actor, at=at), key=rule.code)
    return rule


@transaction.atomic
def compliance_rule_reject(*, rule: ComplianceRule, officer, note: str, at: datetime | None = None):
    """Refuse (or, by its proposer, withdraw) a pending version; the version in force stays."""
    _require_officer(officer)
    at = ensure_utc(at or utcnow())
    rule = ComplianceRule.objects.select_for_update().get(pk=rule.pk)
    if rule.status != RuleStatus.PENDING:
        raise Conflict(f"{rule.code} v{rule.version} is {rule.status}, not pending", code="rule_not_pending")
    before = rule.snapshot()
    rule.status = RuleStatus.REJECTED
    rule.decision_note = note
    if officer.pk != rule.proposed_by_id:
        rule.decided_by = officer
    rule.decided_at = at
    rule.save(update_fields=["status", "decision_note", "decided_by", "decided_at"])
    _audit(
        action="compliance_rule.rejected",
        actor=user_actor(officer),
        object_type="compliance_rule",
        object_id=f"{rule.code}@v{rule.version}",
        before=before,
        after=rule.snapshot(),
        at=at,
        reason=note,
    )
    return rule


@transaction.atomic
def execution_throttle_trip_record(*, algo_id: str, at: datetime, detail: str, rule_version: str = "") -> ThrottleTrip:
    """Persist a throttle trip (idempotent: an open trip for the algorithm is returned as is).
    Audited. Called by the surveillance stage, which runs the same check on the same events."""
    trip = ThrottleTrip.objects.select_for_update().filter(algo_id=algo_id, reset_at__isnull=True).first()
    if trip is not None:
        return trip
    trip = ThrottleTrip.objects.create(algo_id=algo_id, tripped_at=at, detail=detail, rule_version=rule_version)
    _audit(
        action="execution_throttle.tripped",
        actor="service:surveillance",
        object_type="algorithm",
        object_id=algo_id,
        before={"disabled": False},
        after={"disabled": True, "detail": detail, "rule_version": rule_version},
        at=at,
    )
    return trip


@transaction.atomic
def execution_throttle_reset(
    *, algo_id: str, officer, reason: str, at: datetime | None = None, unrecorded_trip: bool = False
) -> ThrottleTrip | None:
    """RTS 6 Art. 15(3): a designated person re-enables an algorithm the execution throttle
    disabled. Closes its open trip, audited; publishes ``compliance.throttle_reset`` (the
    worker's check re-enables). Returns the trip closed.

    An algorithm without an open trip is refused (``throttle_not_tripped``: nothing audited or
    published), so a mistyped id is not taken for a re-enabled algorithm and the trail never says
    a never-throttled algorithm was disabled. ``unrecorded_trip``: publish the re-enable anyway
    (audited as such; returns None) for a worker that refuses the algorithm's orders before the
    surveillance stage recorded the trip (that stage down or behind)."""
    if not (user_has_role(officer, Role.COMPLIANCE_OFFICER) or user_has_role(officer, Role.RISK_MANAGER)):
        raise PermissionDenied("only a compliance officer or a risk manager may re-enable an algorithm")
    if not reason.strip():
        raise ComplianceError("a reason is required to re-enable an algorithm", code="reason_required")
    at = ensure_utc(at or utcnow())
    actor = user_actor(officer)
    trip = ThrottleTrip.objects.select_for_update().filter(algo_id=algo_id, reset_at__isnull=True).first()
    if trip is None and not unrecorded_trip:
        last = ThrottleTrip.objects.filter(algo_id=algo_id).order_by("-tripped_at").first()
        history = (
            "it was never throttled"
            if last is None
            else f"its last trip ({last.tripped_at:%Y-%m-%d %H:%M:%S} UTC) was already reset at "
            f"{last.reset_at:%Y-%m-%d %H:%M:%S} UTC"
        )
        raise ThrottleNotTripped(
            f"algorithm {algo_id!r} is not disabled by the execution throttle ({history}): nothing re-enabled, "
            "nothing published. If an execution worker refuses its orders as throttled before the trip "
            "was recorded (the surveillance stage down or behind), re-enable it with unrecorded_trip "
            "(compliance_throttle_reset --unrecorded-trip)"
        )
    if trip is not None:
        trip.reset_at, trip.reset_by, trip.reset_reason = at, officer, reason
        trip.save(update_fields=["reset_at", "reset_by", "reset_reason"])
    _audit(
        action="execution_throttle.reset",
        actor=actor,
        object_type="algorithm",
        object_id=algo_id,
        before={"disabled": True, "trip_recorded": trip is not None},
        after={"disabled": False},
        at=at,
        reason=reason,
    )
    _publish(ExecutionThrottleReset(algo_id=algo_id, actor=actor, reason=reason, ts=at), key=algo_id)
    return trip


# ---------------------------------------------------------------- pre-trade decisions


@transaction.atomic
def pretrade_decision_record(*, event: Envelope, at: datetime | None = None) -> PreTradeDecision | None:
    """Keep the compliance part of one ``risk.decision`` and publish it as ``compliance.decision``
    (deterministic event id). Idempotent: a redelivered event is a no-op. None when no
    compliance check took part (e.g. a cancel)."""
    decision = compliance_decision_of(event.payload)
    if decision is None:
        return None
    failures = [c for c in decision.checks if not c.passed or c.code == DECISION_NOT_RECOVERABLE]
    row = PreTradeDecision(
        source_event_id=event.event_id,
        client_order_id=decision.client_order_id,
        account_id=decision.account_id,
        symbol=decision.symbol,
        approved=decision.approved,
        checks=[
            {"name": c.name, "passed": c.passed, "code": c.code, "detail": c.detail, "rule_version": c.rule_version}
            for c in decision.checks
        ],
        rule_versions=sorted({c.rule_version for c in decision.checks if c.rule_version}),
        reason="; ".join(f"{c.code}: {c.detail}" for c in failures),
        decided_at=decision.ts,
        recorded_at=ensure_utc(at or utcnow()),
    )
    # One plain INSERT .. ON CONFLICT DO NOTHING (its unique source_event_id): it replaced an
    # exists() query and an ORM create, their SQL compiled per decision (bench/pipeline_replay.py).
    if not row_insert(row, on_conflict_skip="source_event_id"):
        return None  # recorded before: a redelivered event
    _publish(decision, key=str(decision.account_id), event_id=uuid.uuid5(_DECISION_NS, str(event.event_id)))
    return row


# ---------------------------------------------------------------- alerts and cases


def alert_dedupe_key(alert: dict[str, Any]) -> str:
    """One key per episode: the episode id the engine gives (``evidence.episode.id``), else the
    same type, subject, symbol and orders (or, without orders, same start)."""
    episode = (alert.get("evidence") or {}).get("episode") or {}
    if episode.get("id"):
        return hashlib.sha256(f"episode\x1f{alert['alert_type']}\x1f{episode['id']}".encode()).hexdigest()
    orders = sorted(alert.get("order_ids") or ())
    parts = [alert["alert_type"], alert.get("account") or "", alert.get("owner") or "", alert.get("symbol") or ""]
    parts += orders if orders else [str(alert.get("start") or "")]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def _parse_ts(value) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return ensure_utc(datetime.fromisoformat(str(value).replace("Z", "+00:00")))


def _case_for(alert: dict[str, Any], *, when: datetime, at: datetime) -> tuple[Case, bool]:
    """The open case the alert joins, or a new one: (case, whether it was opened now)."""
    subject_owner = alert.get("owner") or ""
    subject_account = alert.get("account") or ""
    symbol = alert.get("symbol") or ""
    open_cases = Case.objects.select_for_update().filter(
        status__in=[CaseStatus.NEW, CaseStatus.IN_REVIEW, CaseStatus.ESCALATED],
        symbol=symbol,
        last_alert_at__gte=when - CASE_GROUPING_WINDOW,
    )
    case = (
        (
            open_cases.filter(subject_owner=subject_owner)
            if subject_owner
            else open_cases.filter(subject_account=subject_account)
        )
        .order_by("pk")
        .first()
    )
    if case is None:
        case = Case.objects.create(
            reference=uuid.uuid4().hex[:24],
            subject_owner=subject_owner,
            subject_account=subject_account,
            symbol=symbol,
            opened_at=at,
            last_alert_at=when,
        )
        case.reference = f"CASE-{at:%Y%m%d}-{case.pk:06d}"
        case.save(update_fields=["reference"])
        CaseAction.objects.create(case=case, action="opened", actor=None, to_status=case.status, at=at)
        return case, True
    return case, False


def _episode_of(data: dict[str, Any], start: datetime | None, end: datetime | None) -> Alert | None:
    """An alert row of the same episode recorded under another key: same type, subject (the
    client for client-level types, else the account) and symbol, its case still open, its
    event-time window within the type's quiet period of this one (e.g. two ``surveil
    --record`` runs over adjacent periods)."""
    from compliance.surveillance.episodes import CLIENT_LEVEL, QUIET_S

    if start is None and end is None:
        return None
    quiet = timedelta(seconds=QUIET_S.get(data["alert_type"], 600.0))
    rows = Alert.objects.select_for_update().filter(
        alert_type=data["alert_type"],
        symbol=data.get("symbol") or "",
        case__status__in=[CaseStatus.NEW, CaseStatus.IN_REVIEW, CaseStatus.ESCALATED],
        end__gte=(start or end) - quiet,
        start__lte=(end or start) + quiet,
    )
    if data["alert_type"] in CLIENT_LEVEL and data.get("owner"):
        rows = rows.filter(owner=data["owner"])
    else:
        rows = rows.filter(account=data.get("account") or "")
    return rows.order_by("pk").first()


def _alert_extend(row: Alert, data: dict[str, Any], start, end, *, at: datetime, same_episode: bool) -> bool:
    """Grow an alert row with a later view of its episode: window, order ids, score, evidence.
    Returns whether anything changed (a plain re-run of the same input changes nothing)."""
    before = (row.start, row.end, list(row.order_ids), row.score)
    ids = list(dict.fromkeys([*row.order_ids, *(data.get("order_ids") or ())]))
    row.order_ids = ids[:MAX_ALERT_ORDERS]
    if start is not None and (row.start is None or start < row.start):
        row.start = start
    if end is not None and (row.end is None or end > row.end):
        row.end = end
    score = float(data.get("score") or 0)
    evidence = dict(data.get("evidence") or {})
    if same_episode:
        row.evidence = evidence  # the engine's latest view of the episode is the whole of it
        row.score = max(row.score, score)
    else:
        merged = list((row.evidence or {}).get("merged_alerts") or [])
        merged.append({"start": data.get("start"), "end": data.get("end"), "score": score, "evidence": evidence})
        if score > row.score:
            row.evidence = {**evidence, "merged_alerts": merged}
            row.score = score
        else:
            row.evidence = {**(row.evidence or {}), "merged_alerts": merged}
    accounts = sorted({a for a in (row.account or "").split(",") + (data.get("account") or "").split(",") if a})
    row.account = ",".join(accounts)[:200]
    row.occurrences += 1
    row.last_seen = at
    row.updated_at = utcnow()
    fields = ["order_ids", "start", "end", "score", "evidence", "account", "occurrences", "last_seen", "updated_at"]
    row.save(update_fields=fields)
    case = row.case
    case.max_score = max(case.max_score, row.score)
    if row.end is not None:
        case.last_alert_at = max(case.last_alert_at, row.end)
    case.save(update_fields=["max_score", "last_alert_at"])
    return (row.start, row.end, list(row.order_ids), row.score) != before


MAX_ALERT_ORDERS = 200


@transaction.atomic
def alerts_record(*, alerts: Iterable[dict[str, Any]], source: str = "surveillance", at: datetime | None = None):
    """Record surveillance alerts (``surveil`` output dicts), one row per episode: an alert of
    an episode already recorded (same ``evidence.episode.id``, or same type, subject and symbol
    within the type's quiet period while its case is open) extends that row (window, order
    ids, score, evidence; ``occurrences`` counts the sightings); a new episode joins the open
    case about the same subject (owner, else account) and symbol seen within 24 h, or opens a
    case. ``start``/``end`` (the behaviour) and ``first_seen``/``last_seen`` (raised, extended) are
    event time: ``at``, a replay's market time, else the wall clock; ``recorded_at``/``updated_at``
    are always the wall clock. Returns
    the new alerts; extensions are audited as ``alert.extended``. Publishes nothing: the streaming
    stage publishes its own ``alert.raised`` (``compliance.consumers``); a caller with no stage
    behind it uses ``alerts_record_published``."""
    return _alerts_record(alerts, source=source, at=ensure_utc(at or utcnow()), derive_ids=False).created


@dataclass(frozen=True)
class AlertsPublished:
    """What ``alerts_record_published`` did: the alerts it created and the events it wrote to the
    outbox (in the rows' transaction; the outbox relay publishes them)."""

    created: list[Alert]
    events: list[Envelope]


@transaction.atomic
def alerts_record_published(
    *,
    sightings: Iterable[tuple[datetime, Iterable[dict[str, Any]]]],
    source: str = "surveil-batch",
    event_source: str = "",
    cause: str = "",
) -> AlertsPublished:
    """Record alerts as ``alerts_record`` does, each group at its own event time (``sightings``:
    (raised at, alerts) pairs, e.g. ``surveil --record``'s alerts by the book's time when
    surveillance raised them), and publish what changed for the compliance screens through the
    outbox in the same transaction: one ``alert.raised`` per alert recorded or extended (its state
    after the last group) and one ``case.changed`` per case opened or given an alert (action
    ``opened``, ``alert_added`` or ``alert_extended``), so an officer's open queue shows them live
    (docs/screens.md). All or none: no event without its rows, no row without its event.

    Idempotent: a re-run over the same input changes no alert and publishes nothing. Each
    ``alert.raised`` carries the event id of the alert's last audit record (``alert.recorded`` or
    ``alert.extended``, derived: ``tradeops.audit.identity.recorded_event_id``), so the audit-trail
    stage that consumes it appends nothing (one action, one record); each ``case.changed`` has an
    id derived from the case, the step and its alerts, so a redelivery is recorded once. Returns
    the new alerts and the events written to the outbox (``AlertsPublished``: the streaming stage
    counts those as its own, ``StageStats.outboxed``).

    The one way recorded alerts and touched cases become events: ``surveil --record`` calls it
    once per run, the streaming stage (``compliance.consumers``) once per event whose handling
    raised alerts (a redelivered event that changes no alert publishes nothing). ``source``: the
    rows' source and the audit actor (``service:<source>``); ``event_source``: the events'
    ``source`` when it differs (the stage's name, ``surveillance``); ``cause``: what raised them
    (the stage: the input event's id), part of each ``case.changed`` id, so two events at the
    same event time that extend the same case publish two steps, not one id twice."""
    from compliance.surveillance.stream import alert_payload
    from tradeops.audit.identity import recorded_event_id
    from tradeops.outbox.services import outbox_append_many

    created: list[Alert] = []
    alerts_out: dict[int, tuple[Alert, uuid.UUID, datetime]] = {}
    cases_out: dict[int, dict[str, Any]] = {}
    for raised_at, group in sightings:
        at = ensure_utc(raised_at)
        recorded = _alerts_record(group, source=source, at=at, derive_ids=True)
        created += recorded.created
        for alert, action, event_id in recorded.touched:
            alerts_out[alert.pk] = (alert, event_id, at)
            step = cases_out.setdefault(alert.case_id, {"case": alert.case, "action": "alert_extended", "alerts": []})
            step["at"] = at
            step["alerts"].append(alert.pk)
            if alert.case_id in recorded.opened:
                step["action"] = "opened"
            elif action == "alert.recorded" and step["action"] != "opened":
                step["action"] = "alert_added"
    events = []
    for alert, event_id, _at in sorted(alerts_out.values(), key=lambda item: item[0].pk):
        payload = alert_payload(alert, ts=alert.end or alert.start or alert.last_seen)  # event time, as the stage's
        events.append(
            make_event(payload, source=event_source or source, key=alert.account or alert.symbol, event_id=event_id)
        )
    for case_id in sorted(cases_out):
        step = cases_out[case_id]
        case = step["case"]
        case.refresh_from_db()
        event_id = recorded_event_id(
            action="case.changed",
            obj=case,
            payload={"action": step["action"], "alerts": sorted(set(step["alerts"])), "status": case.status},
            at=step["at"],
            cause=cause,
        )
        payload = CaseChanged(
            case_id=case.pk,
            reference=case.reference,
            status=case.status,
            action=step["action"],
            pending_action=case.pending_action,
            assigned_to=case.assigned_to.get_username() if case.assigned_to_id else "",
            actor=f"service:{source}",
            ts=step["at"],
        )
        events.append(make_event(payload, source=event_source or source, key=case.reference, event_id=event_id))
    if events:
        outbox_append_many(events=events)
    return AlertsPublished(created=created, events=events)


@dataclass
class _AlertsRecorded:
    created: list[Alert]
    touched: list[tuple[Alert, str, uuid.UUID | None]]  # (row, audit action, its event id) recorded or extended
    opened: set[int]  # the cases opened


def _alerts_record(alerts: Iterable[dict[str, Any]], *, source: str, at: datetime, derive_ids: bool) -> _AlertsRecorded:
    """``alerts_record``'s work inside the caller's transaction. ``derive_ids``: the audit
    records' event ids derived from the action (``recorded_event_id``), for a caller that
    publishes the same action with the same id; else random."""
    from tradeops.audit.identity import recorded_event_id
    from tradeops.audit.services import AuditEntry, audit_append_many

    created = []
    extended = []
    opened: set[int] = set()
    for data in alerts:
        key = alert_dedupe_key(data)
        start, end = _parse_ts(data.get("start")), _parse_ts(data.get("end"))
        existing = Alert.objects.select_for_update().select_related("case").filter(dedupe_key=key).first()
        same_episode = existing is not None
        if existing is None:
            existing = _episode_of(data, start, end)
        if existing is not None:
            if _alert_extend(existing, data, start, end, at=at, same_episode=same_episode):
                extended.append(existing)
            continue
        when = end or start or at
        case, new_case = _case_for(data, when=when, at=at)
        if new_case:
            opened.add(case.pk)
        recorded = utcnow()
        alert = Alert.objects.create(
            dedupe_key=key,
            alert_type=data["alert_type"],
            severity=data.get("severity") or _severity(data["alert_type"]),
            account=(data.get("account") or "")[:200],
            owner=data.get("owner") or "",
            symbol=data.get("symbol") or "",
            order_ids=list(data.get("order_ids") or ())[:MAX_ALERT_ORDERS],
            score=float(data.get("score") or 0),
            start=start,
            end=end,
            evidence=data.get("evidence") or {},
            source=source,
            first_seen=at,
            last_seen=at,
            recorded_at=recorded,
            updated_at=recorded,
            case=case,
        )
        types = set(case.alert_types) | {alert.alert_type}
        case.alert_types = sorted(types)
        case.max_score = max(case.max_score, alert.score)
        case.last_alert_at = max(case.last_alert_at, when)
        case.save(update_fields=["alert_types", "max_score", "last_alert_at"])
        CaseAction.objects.create(case=case, action="alert_added", actor=None, note=alert.alert_type, at=at)
        created.append(alert)
    touched: list[tuple[Alert, str, uuid.UUID | None]] = []
    entries = []
    for a, action in [(a, "alert.recorded") for a in created] + [(a, "alert.extended") for a in extended]:
        payload = {
            "alert_type": a.alert_type,
            "case": a.case.reference,
            "dedupe_key": a.dedupe_key,
            "order_ids": a.order_ids,
            "score": a.score,
            "start": a.start.isoformat() if a.start else None,
            "end": a.end.isoformat() if a.end else None,
        }
        event_id = recorded_event_id(action=action, obj=a, payload=payload, at=at) if derive_ids else None
        touched.append((a, action, event_id))
        entries.append(
            AuditEntry(
                action=action,
                object_type="alert",
                object_id=str(a.pk),
                occurred_at=at,
                payload=payload,
                actor=f"service:{source}",
                category="compliance",
                event_id=event_id,
            )
        )
    if entries:
        audit_append_many(entries=entries)
    return _AlertsRecorded(created=created, touched=touched, opened=opened)


@transaction.atomic
def surveillance_state_save(*, stage: str, state: bytes, event_ts: datetime | None, events: int, at=None) -> None:
    """Save the streaming surveillance stage's detector windows (one row per stage, replaced).
    Not audited: operational state, not a record of something that happened."""
    from compliance.models import SurveillanceState

    SurveillanceState.objects.update_or_create(
        stage=stage,
        defaults={"state": state, "event_ts": event_ts, "events": events, "saved_at": ensure_utc(at or utcnow())},
    )


def _severity(alert_type: str) -> str:
    from compliance.surveillance.base import SEVERITY

    return SEVERITY.get(alert_type, "medium")


_TRANSITIONS = {
    CaseStatus.NEW: {CaseStatus.IN_REVIEW},
    CaseStatus.IN_REVIEW: {CaseStatus.ESCALATED, CaseStatus.CLOSED, CaseStatus.REPORTED},
    CaseStatus.ESCALATED: {CaseStatus.CLOSED, CaseStatus.REPORTED},
    CaseStatus.CLOSED: set(),
    CaseStatus.REPORTED: set(),
}


def _locked(case: Case) -> Case:
    return Case.objects.select_for_update().get(pk=case.pk)


def _case_state(case: Case) -> dict:
    return {
        "status": case.status,
        "pending_action": case.pending_action,
        "assigned_to": case.assigned_to.get_username() if case.assigned_to_id else "",
    }


def _case_step(
    case: Case, *, action: str, officer, to: str | None, note: str, at: datetime, before: dict | None = None
) -> None:
    """Record one step: the case row, its ``CaseAction``, the audit record (before/after) and
    ``case.changed`` on the outbox (the compliance screens' live push), one event id for both."""
    before = before or _case_state(case)
    if to is not None:
        if to not in _TRANSITIONS[CaseStatus(case.status)]:
            raise InvalidCaseTransition(f"{case.reference}: cannot go from {case.status} to {to}")
        case.status = to
    case.save()
    CaseAction.objects.create(
        case=case, action=action, actor=officer, note=note, from_status=before["status"], to_status=case.status, at=at
    )
    after = _case_state(case)
    event = make_event(
        CaseChanged(
            case_id=case.pk,
            reference=case.reference,
            status=case.status,
            action=action,
            pending_action=case.pending_action,
            assigned_to=after["assigned_to"],
            actor=user_actor(officer),
            ts=ensure_utc(at),
        ),
        source=SOURCE,
        key=case.reference,
    )
    _audit(
        action=f"case.{action}",
        actor=user_actor(officer),
        object_type="case",
        object_id=case.reference,
        before=before,
        after=after,
        at=at,
        reason=note,
        event_id=event.event_id,
    )
    from tradeops.outbox.services import outbox_append

    outbox_append(event=event)


@transaction.atomic
def case_review_start(*, case: Case, officer, at: datetime | None = None) -> Case:
    """new -> in review, assigned to ``officer``."""
    _require_officer(officer)
    case = _locked(case)
    before = _case_state(case)
    case.assigned_to = officer
    _case_step(
        case,
        action="review_started",
        officer=officer,
        to=CaseStatus.IN_REVIEW,
        note="",
        at=at or utcnow(),
        before=before,
    )
    return case


@transaction.atomic
def case_assign(*, case: Case, officer, assignee, note: str = "", at: datetime | None = None) -> Case:
    """Give a case (and so its alerts) to a compliance officer, by a compliance officer; an open
    case only. Audited with before/after; ``case.changed`` for the screens."""
    _require_officer(officer)
    if not user_has_role(assignee, Role.COMPLIANCE_OFFICER):
        raise ComplianceError(
            f"{assignee.get_username()} is not a compliance officer; cases go to officers only",
            code="assignee_not_officer",
        )
    case = _locked(case)
    if not case.is_open:
        raise InvalidCaseTransition(f"{case.reference} is {case.status}; a decided case is not reassigned")
    before = _case_state(case)
    case.assigned_to = assignee
    _case_step(
        case,
        action="assigned",
        officer=officer,
        to=None,
        note=note or f"assigned to {assignee.get_username()}",
        at=at or utcnow(),
        before=before,
    )
    return case


MAX_COMMENT_CHARS = 10_000


@transaction.atomic
def case_comment_add(*, case: Case, officer, note: str, at: datetime | None = None) -> Case:
    """An officer's comment on a case (part of the analysis kept behind a decision: MAR Art. 16,
    2016/957 Art. 3(8)). Any status, closed cases included: a later finding is still written down."""
    _require_officer(officer)
    note = (note or "").strip()
    if not note:
        raise ComplianceError("a comment needs some text", code="comment_empty")
    if len(note) > MAX_COMMENT_CHARS:
        raise ComplianceError(f"a comment is at most {MAX_COMMENT_CHARS:,} characters", code="comment_too_long")
    case = _locked(case)
    _case_step(case, action="commented", officer=officer, to=None, note=note, at=at or utcnow())
    return case


@transaction.atomic
def case_escalate(*, case: Case, officer, note: str, at: datetime | None = None) -> Case:
    """in review -> escalated (e.g. to the head of compliance)."""
    _require_officer(officer)
    case = _locked(case)
    _case_step(case, action="escalated", officer=officer, to=CaseStatus.ESCALATED, note=note, at=at or utcnow())
    return case


@transaction.atomic
def case_disposition_request(*, case: Case, officer, action: str, reason: str, at: datetime | None = None) -> Case:
    """Ask to close (with the reason: the analysis behind not reporting is kept) or to report
    (STOR). Takes effect only when a second officer approves (``case_disposition_approve``)."""
    _require_officer(officer)
    if action not in ("close", "report"):
        raise ComplianceError("action must be 'close' or 'report'", code="invalid_disposition")
    if not reason.strip():
        raise ComplianceError("a reason is required", code="reason_required")
    case = _locked(case)
    target = CaseStatus.CLOSED if action == "close" else CaseStatus.REPORTED
    if target not in _TRANSITIONS[CaseStatus(case.status)]:
        raise InvalidCaseTransition(f"{case.reference}: a {case.status} case cannot be {target} (review it first)")
    if case.pending_action:
        raise Conflict(f"{case.reference}: a {case.pending_action} is already awaiting approval", code="pending")
    at = at or utcnow()
    before = _case_state(case)
    case.pending_action, case.pending_reason, case.pending_by, case.pending_at = action, reason, officer, at
    _case_step(case, action=f"{action}_requested", officer=officer, to=None, note=reason, at=at, before=before)
    return case


@transaction.atomic
def case_disposition_approve(*, case: Case, officer, note: str = "", at: datetime | None = None) -> Case:
    """Second officer approves the pending close/report. Four eyes on the person: the officer
    who asked cannot approve, whatever roles they hold."""
    _require_officer(officer)
    case = _locked(case)
    if not case.pending_action:
        raise Conflict(f"{case.reference}: nothing awaits approval", code="nothing_pending")
    if case.pending_by_id == officer.pk:
        raise FourEyesViolation(
            f"{officer.get_username()} asked to {case.pending_action} {case.reference} and cannot also approve it"
        )
    at = at or utcnow()
    before = _case_state(case)
    action = case.pending_action
    to = CaseStatus.CLOSED if action == "close" else CaseStatus.REPORTED
    case.outcome_reason = case.pending_reason
    case.decided_by, case.decided_at = officer, at
    case.pending_action = ""  # decided; pending_by/pending_reason stay as the record of who asked
    _case_step(case, action=f"{action}_approved", officer=officer, to=to, note=note, at=at, before=before)
    return case


@transaction.atomic
def case_disposition_reject(*, case: Case, officer, note: str, at: datetime | None = None) -> Case:
    """Send a pending close/report back (the case stays open, the request is kept in its history)."""
    _require_officer(officer)
    case = _locked(case)
    if not case.pending_action:
        raise Conflict(f"{case.reference}: nothing awaits approval", code="nothing_pending")
    action = case.pending_action
    before = _case_state(case)
    case.pending_action, case.pending_reason, case.pending_by, case.pending_at = "", "", None, None
    _case_step(case, action=f"{action}_rejected", officer=officer, to=None, note=note, at=at or utcnow(), before=before)
    return case
