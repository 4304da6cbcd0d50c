"""Writers of risk limits, the kill switch and the trading breaker's record, and the record of
signals the strategy did not trade. Every change is audited with its before and after
(2017/565 Art. 72) and published on the outbox in the same transaction, through the
transaction's recorder (``tradeops.recorder``).

Kill switch (RTS 6 Art. 12): ``kill_switch_engage`` blocks new orders in its scope (the row is
committed first, so the block is durable before anything else happens) and then cancels at once
every unexecuted order in scope: at the broker when the order is there (through the broker the
caller hands in), then in the system of record through ``order_transition``. The execution worker
mirrors engaged switches in memory (``killswitch.changed`` events) and, on an engage, cancels at
its own broker anything in scope that is still open there (``kill_switch_cancel_at_broker``).
Release needs a user with the ``risk_manager`` role and a reason.

Trading breaker (RTS 6 Art. 12; one per account): ``trading_breaker_change_record`` audits each
move of an account's breaker, raises an alert naming the account when it opens and, when it
opened on realised losses, engages the kill switch on that account. ``risk_alert_raise``
publishes the execution worker's alerts.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from django.db import IntegrityError, transaction

from tradeops.audit.actors import user_actor
from tradeops.audit.models import Category
from tradeops.core.clock import ensure_utc, utcnow
from tradeops.core.errors import ApplicationError, Conflict, PermissionDenied
from tradeops.core.roles import Role, user_has_role
from tradeops.events import Alert, BreakerChanged, KillSwitchChanged, RiskLimitChanged, make_event
from tradeops.recorder import Recorder, recording
from trading.models import (
    Instrument,
    KillScope,
    KillSwitch,
    Order,
    RiskLimit,
    TradingAccount,
)
from trading.order_states import OrderStatus
from trading.orders.services import order_transition
from trading.risk.breaker import BREAKER_OBJECT_TYPE, breaker_object_id
from trading.selectors import order_list_unexecuted
from trading.strategy import SignalSkip

if TYPE_CHECKING:
    from trading.brokers.base import Broker

# A risk limit row's limits, as the risk manager's ``LimitBook`` takes them: one list for every
# reader (the execution worker's reload, the console's book), so a limit added to the model is
# read by all of them or none.
LIMIT_VALUE_FIELDS = (
    "max_position_lots",
    "max_gross_exposure",
    "max_net_exposure",
    "check_margin",
    "daily_loss_limit",
    "max_drawdown",
    "max_submits_per_second",
    "max_modifies_per_second",
    "max_open_orders",
    "duplicate_window_ms",
)
LIMIT_FIELDS = (*LIMIT_VALUE_FIELDS, "is_active")  # what a change may set (``risk_limit_save``)
KILL_SOURCES = ("admin", "api", "command", "console", "automatic")


class RiskControlError(ApplicationError):
    code = "risk_control_invalid"


def _plain(value):
    return str(value) if isinstance(value, Decimal) else value


# ---------------------------------------------------------------- risk limits


def risk_manager_require(user, *, does: str) -> None:
    """Refuse (``not_risk_manager``) anyone but a risk manager; ``does`` names what risk managers
    do, for the message ("risk limits are changed by risk managers")."""
    if not user_has_role(user, Role.RISK_MANAGER):
        raise PermissionDenied(f"{user.get_username()} is not a risk manager: {does}", code="not_risk_manager")


def risk_limit_snapshot(limit: RiskLimit) -> dict:
    return {
        "id": limit.pk,
        "account_id": limit.account_id,
        "instrument": limit.instrument.symbol if limit.instrument_id else None,
        **{name: _plain(getattr(limit, name)) for name in LIMIT_FIELDS},
    }


def risk_limit_save(
    *,
    actor: str,
    limit: RiskLimit | None = None,
    account: TradingAccount | None = None,
    instrument: Instrument | None = None,
    reason: str = "",
    at: datetime | None = None,
    recorder: Recorder | None = None,
    **values,
) -> RiskLimit:
    """Create a limit row (``limit`` None) or change one. ``values``: any of ``LIMIT_FIELDS``.

    Side effects: audit record ``risk_limit.created``/``risk_limit.changed`` with before and
    after; ``risk.limit_changed`` on the outbox (the execution worker reloads its limits).
    A second row for the same scope is refused (``risk_limit_duplicate``)."""
    unknown = set(values) - set(LIMIT_FIELDS)
    if unknown:
        raise RiskControlError(f"unknown risk limit fields: {sorted(unknown)}")
    with recording(recorder) as rec:
        return _risk_limit_save(
            actor=actor,
            limit=limit,
            account=account,
            instrument=instrument,
            reason=reason,
            at=at,
            rec=rec,
            values=values,
        )


def _risk_limit_save(*, actor, limit, account, instrument, reason, at, rec: Recorder, values) -> RiskLimit:
    now = ensure_utc(at) if at else utcnow()
    if limit is None:
        before = None
        limit = RiskLimit(account=account, instrument=instrument)
    else:
        limit = RiskLimit.objects.select_for_update().get(pk=limit.pk)
        before = risk_limit_snapshot(limit)
    for name, value in values.items():
        setattr(limit, name, value)
    if limit.max_drawdown is not None and not (0 < limit.max_drawdown <= 1):
        raise RiskControlError(f"max_drawdown is a fraction in (0, 1], got {limit.max_drawdown}")
    same_scope = RiskLimit.objects.filter(account_id=limit.account_id, instrument_id=limit.instrument_id)
    if limit.pk:
        same_scope = same_scope.exclude(pk=limit.pk)
    if same_scope.exists():  # also covers the firm-wide row, which no unique index can express portably
        raise RiskControlError(
            "a risk limit row for this account and instrument exists already", code="risk_limit_duplicate"
        )
    limit.updated_at = now
    limit.updated_by = actor
    limit.save()
    after = risk_limit_snapshot(limit)
    event = make_event(
        RiskLimitChanged(
            limit_id=limit.pk,
            account_id=limit.account_id,
            symbol=limit.instrument.symbol if limit.instrument_id else "",
            actor=actor,
            ts=now,
        ),
        source="trading",
        key=str(limit.account_id or "firm"),
    )
    rec.change(
        action="risk_limit.created" if before is None else "risk_limit.changed",
        actor=actor,
        object_type="risk_limit",
        object_id=str(limit.pk),
        before=before,
        after=after,
        reason=reason,
        at=now,
        event_id=event.event_id,
    )
    rec.event(event)
    return limit


# ---------------------------------------------------------------- kill switch


def kill_switch_snapshot(switch: KillSwitch) -> dict:
    return {
        "id": switch.pk,
        "scope": switch.scope,
        "scope_value": switch.scope_value,
        "engaged": switch.engaged,
        "engaged_at": switch.engaged_at.isoformat() if switch.engaged_at else None,
        "engaged_by": switch.engaged_by,
        "engage_reason": switch.engage_reason,
        "source": switch.source,
        "cancelled_orders": list(switch.cancelled_orders),
        "released_at": switch.released_at.isoformat() if switch.released_at else None,
        "released_by": switch.released_by.get_username() if switch.released_by_id else None,
        "release_reason": switch.release_reason,
    }


def orders_in_scope(*, scope: str, scope_value: str = ""):
    """Unexecuted orders a switch on (scope, value) covers (``order_list_unexecuted``), oldest first."""
    qs = order_list_unexecuted()
    if scope == KillScope.ACCOUNT:
        qs = qs.filter(account_id=int(scope_value))
    elif scope == KillScope.INSTRUMENT:
        qs = qs.filter(instrument__symbol=scope_value)
    elif scope == KillScope.ALGO:
        qs = qs.filter(algo_id=scope_value)
    elif scope == KillScope.TRADER:
        qs = qs.filter(trader_id=int(scope_value))
    return qs.order_by("pk")


@dataclass
class KillResult:
    switch: KillSwitch
    created: bool
    cancelled: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # client_order_id -> why it is still open


ALGO_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
# Who engages a switch by hand (the API, the admin, manage.py): a person, whose role is checked.
HUMAN_SOURCES = ("admin", "api", "command", "console")


def _check_scope(scope: str, scope_value: str) -> str:
    """The normalised value of a switch's scope, checked against the system of record: an account,
    instrument or trader that exists (a switch on a misspelt symbol would block nothing), an algo
    id of the form orders carry. Raises ``RiskControlError`` (400) naming what is wrong."""
    if scope not in KillScope.values:
        raise RiskControlError(f"scope must be one of {KillScope.values}, got {scope!r}", code="kill_switch_scope")
    if scope == KillScope.ALL:
        return ""
    value = str(scope_value).strip()
    if not value:
        raise RiskControlError(f"a kill switch on {scope} needs a value", code="kill_switch_scope")
    limit = KillSwitch._meta.get_field("scope_value").max_length
    if len(value) > limit:
        raise RiskControlError(
            f"a kill switch's {scope} is at most {limit} characters, got {len(value)}", code="kill_switch_scope"
        )
    if scope in (KillScope.ACCOUNT, KillScope.TRADER) and not value.isdigit():
        raise RiskControlError(f"a kill switch on {scope} takes a numeric id, got {value!r}", code="kill_switch_scope")
    if scope == KillScope.INSTRUMENT and not Instrument.objects.filter(symbol=value).exists():
        # Symbols are the broker's, case and all: say which one was meant rather than guess.
        near = Instrument.objects.filter(symbol__iexact=value).values_list("symbol", flat=True).first()
        raise RiskControlError(
            f"no instrument {value!r} in the system of record: a switch on it would block nothing"
            + (f" (symbols are case-sensitive: did you mean {near!r}?)" if near else ""),
            code="kill_switch_unknown_instrument",
        )
    if scope == KillScope.ACCOUNT and not TradingAccount.objects.filter(pk=int(value)).exists():
        raise RiskControlError(f"no trading account with id {value}", code="kill_switch_unknown_account")
    if scope == KillScope.TRADER:
        from django.contrib.auth import get_user_model

        if not get_user_model().objects.filter(pk=int(value)).exists():
            raise RiskControlError(f"no user with id {value}", code="kill_switch_unknown_trader")
    if scope == KillScope.ALGO and not ALGO_ID_RE.match(value):
        raise RiskControlError(
            f"an algo id is letters, digits and . _ : - (as orders carry it), got {value!r}",
            code="kill_switch_scope",
        )
    if scope == KillScope.ALGO:
        _check_algo_known(value)
    return value


def _check_algo_known(value: str) -> None:
    """A switch on an algorithm nobody knows protects nothing (a typo engages silently): the id
    must be one orders carry or a signal producer is configured to stamp (``algo_ids_known``).
    Refused, not accepted with a warning: an algorithm about to trade for the first time is
    known by its configuration, and one that is not would reach us under an account and a
    trader, whose switches stop it too."""
    from trading.controls.selectors import algo_ids_known

    known = algo_ids_known()
    if value in known:
        return
    near = sorted(a for a in known if a.lower() == value.lower())
    listed = ", ".join(sorted(known)[:10]) + (f" and {len(known) - 10} more" if len(known) > 10 else "")
    raise RiskControlError(
        f"no algorithm {value!r} is known to the platform (no order carries it, no signal producer is configured "
        "with it): a switch on it would block nothing"
        + (f" (algo ids are case-sensitive: did you mean {near[0]!r}?)" if near else "")
        + (f"; known: {listed}" if known else "; no algorithm is known yet"),
        code="kill_switch_unknown_algo",
        extra={"known": sorted(known)[:50]},
    )


def kill_switch_check_scope(*, scope: str, scope_value: str) -> str:
    """The check ``kill_switch_engage`` makes of a scope and its value, for a form that shows a
    refusal beside the fields, with what was typed, before anything is engaged (the admin's).
    Returns the normalised value; raises ``RiskControlError`` (400) naming what is wrong."""
    return _check_scope(scope, scope_value)


def kill_switch_check_engage_rights(*, user, scope: str) -> None:
    """RTS 6 Art. 12 with the firm's role split: anyone with a trading, risk or compliance role
    may stop an account, instrument, algo or trader at once; stopping the whole firm needs the
    risk manager role. Raises ``PermissionDenied`` (403)."""
    if scope == KillScope.ALL and not user_has_role(user, Role.RISK_MANAGER):
        raise PermissionDenied(
            "engaging the firm-wide kill switch needs the risk_manager role", code="kill_switch_scope_forbidden"
        )


def kill_switch_engage(
    *,
    scope: str,
    scope_value: str = "",
    actor: str,
    reason: str,
    source: str,
    broker_for: Callable[[TradingAccount], Broker | None] | None = None,
    at: datetime | None = None,
    user=None,
) -> KillResult:
    """Engage the kill switch on a scope and cancel every unexecuted order in it at once.

    Engaged by hand (``source`` api, admin or command) on the whole firm, it needs ``user`` with
    the risk manager role (``kill_switch_check_engage_rights``); the scope's value must exist in
    the system of record (``_check_scope``).

    Idempotent: engaging an engaged scope re-runs the cancellation and returns the same row.
    ``broker_for(account)`` gives the broker session to cancel resting orders through; without
    one, orders already at the broker are left to the execution worker (which cancels them when
    the ``killswitch.changed`` event reaches it) and are listed in ``failed``. Orders not yet at
    the broker are cancelled (or, from NEW, rejected) in the system of record directly.
    Side effects: the KillSwitch row; audit ``killswitch.engaged`` and ``killswitch.changed``
    (with the cancelled orders); one ``killswitch.changed`` event; order transitions."""
    if not reason.strip():
        raise RiskControlError("engaging the kill switch needs a reason", code="reason_required")
    if source not in KILL_SOURCES:
        raise RiskControlError(f"source must be one of {KILL_SOURCES}, got {source!r}")
    if source in HUMAN_SOURCES:
        kill_switch_check_engage_rights(user=user, scope=scope)
    value = _check_scope(scope, scope_value)
    now = ensure_utc(at) if at else utcnow()
    # 1. The block first, durable on its own: no new order in scope from here on.
    switch, created = _engage_row(scope=scope, value=value, actor=actor, reason=reason, source=source, at=now)
    # 2. Cancel at once, one order per transaction (a failure leaves the others cancelled).
    result = KillResult(switch=switch, created=created)
    result.cancelled, result.failed = kill_switch_cancel_in_scope(
        switch=switch, broker_for=broker_for, actor=actor, at=now
    )
    # 3. Record what was cancelled and tell everyone.
    with recording() as rec:
        switch = KillSwitch.objects.select_for_update().get(pk=switch.pk)
        before = kill_switch_snapshot(switch)
        switch.cancelled_orders = sorted(set(switch.cancelled_orders) | set(result.cancelled))
        switch.save(update_fields=["cancelled_orders"])
        event = make_event(
            KillSwitchChanged(
                scope=scope,
                scope_value=value,
                engaged=True,
                actor=actor,
                reason=reason,
                cancelled_orders=tuple(result.cancelled),
                ts=now,
            ),
            source="trading",
            key=f"{scope}:{value}",
        )
        rec.change(
            action="killswitch.changed",
            actor=actor,
            object_type="killswitch",
            object_id=f"{scope}:{value}",
            before=before,
            after={**kill_switch_snapshot(switch), "cancel_failures": result.failed},
            reason=reason,
            at=now,
            event_id=event.event_id,
        )
        rec.event(event)
    result.switch = switch
    return result


def kill_switch_cancel_in_scope(
    *,
    switch: KillSwitch,
    broker_for: Callable[[TradingAccount], Broker | None] | None,
    actor: str,
    account_ids: set[int] | None = None,
    at: datetime | None = None,
) -> tuple[list[str], dict[str, str]]:
    """Cancel every unexecuted order the engaged ``switch`` covers (optionally only on
    ``account_ids``: the accounts whose broker the caller holds). Returns (cancelled ids,
    {id: why still open}). Each order moves in its own transaction (``order_transition``,
    audited and published). Used by ``kill_switch_engage`` and by the execution worker when a
    ``killswitch.changed`` event reaches it."""
    cancelled: list[str] = []
    failed: dict[str, str] = {}
    orders = orders_in_scope(scope=switch.scope, scope_value=switch.scope_value).select_related("account", "instrument")
    if account_ids is not None:
        orders = orders.filter(account_id__in=account_ids)
    for order in orders:
        why = _kill_one(order=order, broker_for=broker_for, actor=actor, switch=switch, at=at or utcnow())
        if why:
            failed[order.client_order_id] = why
        else:
            cancelled.append(order.client_order_id)
    return cancelled, failed


def _engage_row(*, scope, value, actor, reason, source, at) -> tuple[KillSwitch, bool]:
    with recording() as rec:
        return _engage_row_in(scope=scope, value=value, actor=actor, reason=reason, source=source, at=at, rec=rec)


def _engage_row_in(*, scope, value, actor, reason, source, at, rec: Recorder) -> tuple[KillSwitch, bool]:
    existing = KillSwitch.objects.select_for_update().filter(scope=scope, scope_value=value, engaged=True).first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            switch = KillSwitch.objects.create(
                scope=scope,
                scope_value=value,
                engaged=True,
                engaged_at=at,
                engaged_by=actor,
                engage_reason=reason,
                source=source,
            )
    except IntegrityError:  # engaged concurrently by someone else
        return KillSwitch.objects.get(scope=scope, scope_value=value, engaged=True), False
    rec.change(
        action="killswitch.engaged",
        actor=actor,
        object_type="killswitch",
        object_id=f"{scope}:{value}",
        before=None,
        after=kill_switch_snapshot(switch),
        reason=reason,
        at=at,
    )
    return switch, True


def _kill_one(*, order: Order, broker_for, actor: str, switch: KillSwitch, at: datetime) -> str:
    """Cancel one order for the kill switch; returns "" when cancelled, else why not."""
    from trading.brokers.base import BrokerError

    target = switch.scope if switch.scope == KillScope.ALL else f"{switch.scope}={switch.scope_value}"
    reason = f"kill switch engaged on {target}"
    status = OrderStatus(order.status)
    if status == OrderStatus.NEW:
        order_transition(order=order, to=OrderStatus.REJECTED, at=at, reason=reason, actor=actor)
        return ""
    if status == OrderStatus.RISK_APPROVED and not order.broker_order_id:
        order_transition(order=order, to=OrderStatus.CANCELLED, at=at, reason=reason, actor=actor)
        return ""
    broker = broker_for(order.account) if broker_for else None
    if broker is None:
        return "at the broker; no broker session here (the execution worker cancels it on the event)"
    try:
        answer = broker.cancel_order(order.broker_order_id)
    except BrokerError as exc:
        return f"broker cancel failed: {exc.code}: {exc}"
    if answer.outcome not in ("DONE", "CANCELLED"):
        return f"broker refused the cancel: {answer.outcome} {answer.message}".strip()
    order.refresh_from_db()
    if order.is_terminal:  # filled or cancelled meanwhile (reconciliation records the fill)
        return "" if order.status == OrderStatus.CANCELLED else f"already {order.status}"
    order_transition(order=order, to=OrderStatus.CANCELLED, at=at, reason=reason, actor=actor)
    return ""


def kill_switch_release(
    *, switch: KillSwitch, user, reason: str, at: datetime | None = None, recorder: Recorder | None = None
) -> KillSwitch:
    """Release an engaged kill switch. Only a user with the ``risk_manager`` role, with a reason.

    Side effects: audit ``killswitch.released`` (before/after); ``killswitch.changed`` event."""
    if not user_has_role(user, Role.RISK_MANAGER):
        raise PermissionDenied(
            "only a user with the risk_manager role may release the kill switch", code="kill_switch_release_forbidden"
        )
    if not reason.strip():
        raise RiskControlError("releasing the kill switch needs a reason", code="reason_required")
    with recording(recorder) as rec:
        locked = _release_row(switch=switch, user=user, reason=reason, at=ensure_utc(at) if at else utcnow(), rec=rec)
    switch.__dict__.update({k: v for k, v in locked.__dict__.items() if not k.startswith("_")})
    return locked


def _release_row(*, switch: KillSwitch, user, reason: str, at: datetime, rec: Recorder) -> KillSwitch:
    now = at
    locked = KillSwitch.objects.select_for_update().get(pk=switch.pk)
    if not locked.engaged:
        # the request is sound; the switch's state is not what it assumes (released meanwhile): 409
        raise Conflict(f"{locked} is not engaged (already released)", code="kill_switch_not_engaged")
    before = kill_switch_snapshot(locked)
    locked.engaged = False
    locked.released_at = now
    locked.released_by = user
    locked.release_reason = reason
    locked.save()
    actor = user_actor(user)
    event = make_event(
        KillSwitchChanged(
            scope=locked.scope, scope_value=locked.scope_value, engaged=False, actor=actor, reason=reason, ts=now
        ),
        source="trading",
        key=f"{locked.scope}:{locked.scope_value}",
    )
    rec.change(
        action="killswitch.released",
        actor=actor,
        object_type="killswitch",
        object_id=f"{locked.scope}:{locked.scope_value}",
        before=before,
        after=kill_switch_snapshot(locked),
        reason=reason,
        at=now,
        event_id=event.event_id,
    )
    rec.event(event)
    return locked


def kill_switch_cancel_at_broker(
    *,
    scope: str,
    scope_value: str,
    broker_for: Callable[[TradingAccount], Broker | None],
    account_ids: set[int],
    actor: str,
    at: datetime | None = None,
) -> tuple[list[str], dict[str, str]]:
    """A process holding broker sessions (the execution worker) learnt that the switch on
    (scope, value) was engaged: cancel what is still open in scope on ``account_ids`` at its
    brokers. Nothing when it was released meanwhile. Returns (cancelled, {id: why still open})."""
    switch = KillSwitch.objects.filter(scope=scope, scope_value=scope_value, engaged=True).first()
    if switch is None:
        return [], {}
    return kill_switch_cancel_in_scope(
        switch=switch, broker_for=broker_for, actor=actor, account_ids=account_ids, at=at
    )


# ---------------------------------------------------------------- alerts and the trading breaker


def risk_alert_raise(
    *,
    alert_type: str,
    severity: str,
    at: datetime,
    source: str,
    account: str = "",
    evidence: dict | None = None,
    recorder: Recorder | None = None,
) -> None:
    """Publish an ``alert.raised`` (compliance-events) for a person to look at: a position
    mismatch, an open trading breaker. ``at`` is the event time of what happened."""
    with recording(recorder) as rec:
        rec.event(
            make_event(
                Alert(alert_type=alert_type, severity=severity, account=account, evidence=evidence or {}, ts=at),
                source=source,
                key=account or alert_type,
            )
        )


def trading_breaker_change_record(
    *,
    account_id: int | None = None,
    old: str,
    new: str,
    reason: str,
    at: datetime,
    source: str,
    actor: str,
    auto_kill_on_loss: bool,
    broker_for: Callable[[TradingAccount], Broker | None] | None = None,
) -> KillResult | None:
    """Account ``account_id``'s trading breaker moved (RTS 6 Art. 12): audit the change
    (``trading_breaker.<state>`` on ``<source>:<account id>``, before and after, the account in
    ``after``) and publish ``breaker.changed`` for the screens (one event id for both), raise
    ``trading_breaker_open`` for the account when it opened, and, when it opened on realised
    losses and ``auto_kill_on_loss``, engage the kill switch on that account (on everything when
    no account is named: a breaker that guards the whole worker). Returns the kill switch's
    result, or None.

    ``old`` and ``new`` both ``open`` is an extension: the open breaker was tripped again and its
    cool-down restarts now. Audited as ``trading_breaker.extended`` (``after``: state ``open``, the
    new reason, ``extended: true``; its ``recorded_at`` is when the cool-down now counts from, as
    an opening's is, so a restart's restore counts from it) and published; no second alert (the
    opening had one; the breaker did not move). An extension on realised losses still engages the
    kill switch when ``auto_kill_on_loss``, as an opening on them does: a breaker opened on broker
    refusals and then held open by losses past the threshold would otherwise let its trial order
    through after the cool-down (engaging is idempotent, so a loss opening's switch is not doubled)."""
    account = "" if account_id is None else str(account_id)
    extended = str(old) == str(new) == "open"
    with recording() as rec:
        _breaker_move_record(
            rec,
            action="trading_breaker.extended" if extended else f"trading_breaker.{new}",
            source=source,
            account=account,
            old=str(old),
            new=str(new),
            reason=reason,
            after={
                "state": str(new),
                "reason": reason,
                **({"account": account} if account else {}),
                **({"extended": True} if extended else {}),
            },
            at=at,
            actor=actor,
        )
        if new == "open" and not extended:
            risk_alert_raise(
                alert_type="trading_breaker_open",
                severity="high",
                account=account,
                evidence={"reason": reason},
                at=at,
                source=source,
                recorder=rec,
            )
    if new == "open" and reason.startswith("loss_threshold") and auto_kill_on_loss:
        return kill_switch_engage(
            scope=KillScope.ACCOUNT if account else KillScope.ALL,
            scope_value=account,
            actor=actor,
            reason=(
                f"automatic: {f'account {account} ' if account else ''}trading breaker "
                f"{'held open' if extended else 'opened'} on {reason}"
            ),
            source="automatic",
            broker_for=broker_for,
            at=at,
        )
    return None


def trading_breaker_restore_record(
    *,
    account_id: int,
    state: str,
    reason: str,
    opened_recorded_at: datetime | None,
    restored_from: int,
    at: datetime,
    source: str,
    actor: str,
) -> None:
    """A restarted execution worker started account ``account_id``'s trading breaker open (or
    half-open: its cool-down over) as its previous process left it (RTS 6 Art. 12: a restart
    does not lift a halt). Audit it (``trading_breaker.restored`` on ``<source>:<account id>``:
    before, the closed breaker a process starts with; after, the state it starts in, the reason
    it opened, when it opened on the wall clock, so a further restart counts the same cool-down,
    and ``restored_from``, the record it was restored from) and publish ``breaker.changed`` for
    the screens (one event id for both). No alert and no kill switch: those followed the
    opening, and an operator may have released the switch since."""
    account = str(account_id)
    with recording() as rec:
        _breaker_move_record(
            rec,
            action="trading_breaker.restored",
            source=source,
            account=account,
            old="closed",
            new=state,
            reason=reason,
            after={
                "state": state,
                "reason": reason,
                "account": account,
                "opened_recorded_at": None if opened_recorded_at is None else opened_recorded_at.isoformat(),
                "restored_from": restored_from,
            },
            at=at,
            actor=actor,
        )


def _breaker_move_record(
    rec, *, action: str, source: str, account: str, old: str, new: str, reason: str, after: dict, at, actor: str
) -> None:
    """One move of a trading breaker, audited (``action`` on ``<source>:<account id>``, or
    ``<source>`` for a breaker that guards the whole worker) and published as ``breaker.changed``
    for the screens, under one event id (the audit-trail stage skips the event: recorded once)."""
    event = make_event(
        BreakerChanged(source=source, account=account, old=old, new=new, reason=reason, ts=at),
        source="trading",
        key=account or source,
    )
    rec.change(
        action=action,
        actor=actor,
        object_type=BREAKER_OBJECT_TYPE,
        object_id=breaker_object_id(source=source, account=account),
        before={"state": old},
        after=after,
        reason=reason,
        at=at,
        category=Category.TRADING,
        event_id=event.event_id,
    )
    rec.event(event)  # every trading screen shows the breaker at once


# ---------------------------------------------------------------- signals the strategy did not trade


def _skip_event_id(skip) -> uuid.UUID:
    """One record per (signal, account): a redelivered signal after a restart records nothing new."""
    from tradeops.audit.identity import NAMESPACE

    return uuid.uuid5(NAMESPACE, f"signal.skipped|{skip.signal_id}|{skip.account_id or ''}")


@transaction.atomic
def signal_skips_record(*, skips: Sequence[SignalSkip], actor: str) -> int:
    """Record in the audit trail each validated signal the strategy did not turn into an order,
    with its stable code and figures (``trading.strategy.SKIP_CODES``; for
    ``strategy.no_headroom`` the size wanted and the risk limit that left no room), so "why did
    this signal not trade?" has an answer next to the orders that did (2017/565 Art. 72 record
    keeping; RTS 6 Art. 15: the limits shaped the order flow). Event time is the signal's time.
    Idempotent per (signal, account). Returns the number of records written. The records go
    through the order path's statements (``audit_append_statements``: the same rows as
    ``audit_append_many``, without Django's cursor wrapper per statement); the transaction is
    this one's, committed before the worker counts the signal as handled."""
    from tradeops.audit.services import AuditEntry
    from trading.orders.write import audit_append_statements

    entries = [
        AuditEntry(
            action="signal.skipped",
            object_type="signal",
            object_id=skip.signal_id if skip.account_id is None else f"{skip.signal_id}:{skip.account_id}",
            occurred_at=ensure_utc(skip.ts),
            payload={
                "code": skip.code,
                "reason": skip.reason,
                "signal_id": skip.signal_id,
                "account_id": skip.account_id,
                "symbol": skip.symbol,
                "side": skip.side,
                "algo_id": skip.algo_id,
                "wanted": None if skip.wanted is None else str(skip.wanted),
                "limit_code": skip.limit_code,
            },
            actor=actor,
            event_id=_skip_event_id(skip),
        )
        for skip in skips
    ]
    return len(audit_append_statements(entries=entries)) if entries else 0
