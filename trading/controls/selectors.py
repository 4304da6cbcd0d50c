"""Readers of risk limits, kill switches and the trading breakers' last moves."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from django.db.models import QuerySet

from tradeops.api.matrix import visible_to
from tradeops.audit.models import AuditRecord
from tradeops.core.errors import NotFound
from tradeops.observability.cache import cached
from trading.models import DrawdownRebase, KillSwitch, ProposalStatus, RiskLimit, RiskLimitProposal
from trading.risk.breaker import BREAKER_OBJECT_TYPE, breaker_object_id


def risk_limit_list(*, active_only: bool = True) -> QuerySet[RiskLimit]:
    qs = RiskLimit.objects.select_related("account", "instrument")
    return qs.filter(is_active=True) if active_only else qs


def risk_limits_in_force() -> list[RiskLimit]:
    """Active risk limits with their account and instrument (cached; invalidated when a limit is
    saved and, in a process that consumes it, by ``risk.limit_changed``)."""
    return list(cached("limits", "active", lambda: list(risk_limit_list())))


def kill_switch_scopes_engaged() -> frozenset[tuple[str, str]]:
    """(scope, scope value) of every engaged kill switch (cached, strict: never older than an
    engage or release committed anywhere; RTS 6 Art. 12)."""
    return cached("kill_switches", "engaged", lambda: frozenset(kill_switch_list().values_list("scope", "scope_value")))


def kill_switch_list(*, engaged_only: bool = True) -> QuerySet[KillSwitch]:
    qs = KillSwitch.objects.all()
    return qs.filter(engaged=True) if engaged_only else qs


def kill_switch_get(*, pk: int) -> KillSwitch:
    try:
        return KillSwitch.objects.get(pk=pk)
    except KillSwitch.DoesNotExist:
        raise NotFound(f"no kill switch with id {pk}", code="kill_switch_not_found") from None


def kill_switch_get_engaged(*, scope: str, scope_value: str = "") -> KillSwitch:
    switch = KillSwitch.objects.filter(scope=scope, scope_value=scope_value, engaged=True).first()
    if switch is None:
        target = scope if scope == "all" else f"{scope}={scope_value}"
        raise NotFound(f"the kill switch on {target} is not engaged", code="kill_switch_not_engaged")
    return switch


def risk_limits_visible_to(*, user) -> QuerySet[RiskLimit]:
    return visible_to(RiskLimit.objects.select_related("account", "instrument"), user=user, resource="risk_limits")


def risk_limit_visible_get(*, user, pk: int) -> RiskLimit:
    try:
        return risk_limits_visible_to(user=user).get(pk=pk)
    except RiskLimit.DoesNotExist:
        raise NotFound(f"no risk limit row {pk}", code="risk_limit_not_found") from None


def risk_limit_proposals_visible_to(*, user) -> QuerySet[RiskLimitProposal]:
    qs = RiskLimitProposal.objects.select_related("account", "instrument", "proposed_by", "decided_by")
    return visible_to(qs, user=user, resource="risk_limits")


def risk_limit_proposal_visible_get(*, user, pk: int) -> RiskLimitProposal:
    try:
        return risk_limit_proposals_visible_to(user=user).get(pk=pk)
    except RiskLimitProposal.DoesNotExist:
        raise NotFound(f"no risk limit change {pk}", code="risk_limit_change_not_found") from None


def drawdown_rebases_visible_to(*, user) -> QuerySet[DrawdownRebase]:
    """Re-bases of accounts' peak equity, newest proposed first (``trading.controls.drawdown``)."""
    qs = DrawdownRebase.objects.select_related("proposed_by", "decided_by")
    return visible_to(qs, user=user, resource="drawdown_rebases")


def drawdown_rebase_visible_get(*, user, pk: int) -> DrawdownRebase:
    try:
        return drawdown_rebases_visible_to(user=user).get(pk=pk)
    except DrawdownRebase.DoesNotExist:
        raise NotFound(f"no drawdown re-base {pk}", code="drawdown_rebase_not_found") from None


def kill_switches_visible_to(*, user) -> QuerySet[KillSwitch]:
    return visible_to(KillSwitch.objects.select_related("released_by"), user=user, resource="kill_switch")


def kill_switch_visible_get(*, user, pk: int) -> KillSwitch:
    try:
        return kill_switches_visible_to(user=user).get(pk=pk)
    except KillSwitch.DoesNotExist:
        raise NotFound(f"no kill switch with id {pk}", code="kill_switch_not_found") from None


def algo_ids_known() -> frozenset[str]:
    """The algorithm ids the platform knows (RTS 6 Art. 12: a kill switch on an algorithm must
    name one): those orders carry, and those the firm's signal producers are configured to stamp
    before their first order (``settings.
    KILL_SWITCH_ALGO_SOURCES``: dotted paths to callables returning ids; the ML validator's
    ``algo_id`` by default, named by string so trading does not import mlmodels)."""
    from django.conf import settings
    from django.utils.module_loading import import_string

    from trading.models import Order

    known = set(Order.objects.exclude(algo_id="").values_list("algo_id", flat=True).distinct())
    for path in getattr(settings, "KILL_SWITCH_ALGO_SOURCES", ()):
        known |= {str(a) for a in import_string(path)() if a}
    return frozenset(known)


@dataclass(frozen=True)
class BreakerLastMove:
    """A trading breaker's latest ``trading_breaker.*`` record, as a restart reads it.

    ``state`` is the state it left the breaker in (``after.state``); ``opened_recorded_at`` is
    the wall-clock time its cool-down counts from: when it opened or was last extended (the
    opening's or the extension's ``recorded_at``, both ``open`` records; a restore's record
    carries it forward), None when unknown and over (a ``half_open`` record: its cool-down had
    passed). ``account_id`` None: a record from before 2026-12-06, one breaker for the worker."""

    account_id: int | None
    state: str
    reason: str
    opened_recorded_at: datetime | None
    sequence: int
    occurred_at: datetime


def trading_breakers_last_moves(*, source: str, account_ids: Iterable[int]) -> list[BreakerLastMove]:
    """The latest ``trading_breaker.*`` record of the worker ``source``'s breaker of each account
    (``<source>:<account id>``), and of its one breaker from before 2026-12-06 (``<source>``),
    those that have one: one ``LIMIT 1`` probe of ``audit_breaker_latest_idx`` per breaker,
    however long its history, in one query on PostgreSQL (a UNION ALL; SQLite, the embedded
    default, allows no LIMIT in a UNION's parts, so there a query per breaker). The audit trail is
    the breakers' system of record: every move is recorded as it happens; the risk snapshot only
    on its cadence."""
    object_ids = {breaker_object_id(source=source, account=account_id): int(account_id) for account_id in account_ids}
    object_ids[breaker_object_id(source=source, account=None)] = None
    probes = [
        AuditRecord.objects.filter(object_type=BREAKER_OBJECT_TYPE, object_id=object_id).order_by("-sequence")[:1]
        for object_id in object_ids
    ]
    if len(probes) == 1:
        records = list(probes[0])
    elif connection.features.supports_slicing_ordering_in_compound:  # PostgreSQL: one statement
        records = list(probes[0].union(*probes[1:], all=True))
    else:  # SQLite (the embedded default) allows no LIMIT in a UNION's parts: a probe per breaker
        records = [record for probe in probes for record in probe]
    moves = []
    for record in records:
        payload = record.payload_data or {}
        after = payload.get("after") or {}
        state = str(after.get("state") or record.action.split(".")[-1])
        if "opened_recorded_at" in after:  # a restore's record: the opening it restored
            opened = after["opened_recorded_at"]
            opened_recorded_at = datetime.fromisoformat(opened) if opened else None
        else:
            opened_recorded_at = record.recorded_at if state == "open" else None
        moves.append(
            BreakerLastMove(
                account_id=object_ids[record.object_id],
                state=state,
                reason=str(after.get("reason") or payload.get("reason") or ""),
                opened_recorded_at=opened_recorded_at,
                sequence=record.sequence,
                occurred_at=record.occurred_at,
            )
        )
    return sorted(moves, key=lambda m: (m.account_id is not None, m.account_id or 0))


def drawdown_rebases_to_apply(*, account_ids: Iterable[int]) -> list[DrawdownRebase]:
    """Approved re-bases of these accounts' peak equity that no worker has applied yet, oldest
    first (``trading.controls.drawdown``): on ``risk.drawdown_rebased`` and at start-up."""
    return list(
        DrawdownRebase.objects.filter(
            account_id__in=list(account_ids), status=ProposalStatus.APPROVED, applied_at__isnull=True
        ).order_by("decided_at", "pk")
    )


def drawdown_rebase_get(*, pk: int) -> DrawdownRebase:
    rebase = DrawdownRebase.objects.select_related("account", "proposed_by", "decided_by").filter(pk=pk).first()
    if rebase is None:
        raise NotFound(f"no drawdown re-base {pk}")
    return rebase
