"""Readers for the compliance desk screens (alert queue, case view, rules, reports, home).

Visibility is the compliance selectors' (``compliance.selectors``): alerts and cases exist only
for compliance officers and auditors (MAR Art. 16; 2016/957 Art. 5: no tipping off); everyone
else gets empty results, never a refusal that would say something exists. Reads only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Case as CaseWhen
from django.db.models import IntegerField, Q, QuerySet, Value, When

from compliance.models import Alert, Case, CaseAction, CaseStatus, ComplianceRule, RuleStatus
from compliance.selectors import alerts_visible_to, can_see_surveillance, cases_visible_to
from compliance.surveillance.params import ALERT_TYPES
from tradeops.audit.actors import user_actor
from tradeops.core.attention import ATTENTION, CALM, URGENT, Item
from tradeops.core.errors import NotFound
from tradeops.core.roles import Role, user_has_role

SEVERITIES = ("critical", "high", "medium", "low")
_SEVERITY_RANK = CaseWhen(
    *(When(severity=s, then=Value(n)) for n, s in enumerate(SEVERITIES)), default=Value(9), output_field=IntegerField()
)
OPEN_STATUSES = (CaseStatus.NEW, CaseStatus.IN_REVIEW, CaseStatus.ESCALATED)

# sort key in the URL -> ORDER BY (the second column keeps the order stable)
ALERT_SORTS = {
    "time": ("first_seen", "pk"),
    "event": ("start", "pk"),
    "score": ("score", "pk"),
    "severity": ("severity_rank", "pk"),
    "type": ("alert_type", "pk"),
    "symbol": ("symbol", "pk"),
    "account": ("account", "pk"),
    "status": ("case__status", "pk"),
    "assignee": ("case__assigned_to__username", "pk"),
}


@dataclass(frozen=True)
class AlertFilters:
    alert_type: str = ""
    severity: str = ""
    account: str = ""
    symbol: str = ""
    status: str = ""  # a case status, or "open" (new, in review, escalated)
    assignee: str = ""  # a username, or "-" for nobody
    since: datetime | None = None  # event time (the alert's window)
    until: datetime | None = None
    sort: str = "-time"


def alert_queue(*, user, filters: AlertFilters) -> QuerySet[Alert]:
    """The alert queue: history and open alerts, filtered and sorted. Period filters the alert's
    event-time window: it overlaps [since, until), ``until`` excluded like the audit search's."""
    # defer(None): the queue shows the case's assignee, beyond the columns the shared selector reads
    qs = (
        alerts_visible_to(user=user)
        .defer(None)
        .select_related("case", "case__assigned_to")
        .annotate(severity_rank=_SEVERITY_RANK)
    )
    f = filters
    if f.alert_type:
        qs = qs.filter(alert_type=f.alert_type)
    if f.severity:
        qs = qs.filter(severity=f.severity)
    if f.account:
        qs = qs.filter(Q(account__icontains=f.account) | Q(owner__iexact=f.account))
    if f.symbol:
        qs = qs.filter(symbol__iexact=f.symbol)
    if f.status == "open":
        qs = qs.filter(case__status__in=OPEN_STATUSES)
    elif f.status:
        qs = qs.filter(case__status=f.status)
    if f.assignee == "-":
        qs = qs.filter(case__assigned_to__isnull=True)
    elif f.assignee:
        qs = qs.filter(case__assigned_to__username=f.assignee)
    if f.since is not None:
        qs = qs.filter(Q(end__gte=f.since) | Q(end__isnull=True, start__gte=f.since))
    if f.until is not None:
        qs = qs.filter(Q(start__lt=f.until) | Q(start__isnull=True, first_seen__lt=f.until))
    key = f.sort.lstrip("-")
    columns = ALERT_SORTS.get(key, ALERT_SORTS["time"])
    descending = f.sort.startswith("-") or key not in ALERT_SORTS
    if key == "severity":  # rank 0 is the most severe: "descending" severity is ascending rank
        descending = not descending
    return qs.order_by(*(f"-{c}" if descending else c for c in columns))


def alert_filter_choices() -> dict[str, Any]:
    return {
        "types": sorted(ALERT_TYPES),
        "severities": SEVERITIES,
        "statuses": [("open", "Open (new, in review, escalated)"), *CaseStatus.choices],
        "officers": compliance_officers(),
    }


def compliance_officers() -> list:
    """Users who may be given a case (the compliance officer role), by username."""
    return list(
        get_user_model()
        .objects.filter(is_active=True, groups__name=str(Role.COMPLIANCE_OFFICER))
        .order_by("username")
        .distinct()
    )


def case_get(*, user, pk: int) -> Case:
    case = cases_visible_to(user=user).select_related("assigned_to", "pending_by", "decided_by").filter(pk=pk).first()
    if case is None:
        raise NotFound(f"no case {pk}", code="case_not_found")
    return case


def case_alerts(*, case: Case) -> list[Alert]:
    return list(case.alerts.order_by("start", "pk"))


def case_actions(*, case: Case) -> list[CaseAction]:
    """Every step, oldest first: what the regulator reconstructs (2017/565 Art. 72)."""
    return list(CaseAction.objects.filter(case=case).select_related("actor").order_by("at", "pk"))


def account_labels(values) -> dict[str, str]:
    """Surveillance names accounts by id on the live stream (by login in a file): id -> "name (id)"
    for the ids that are trading accounts, so a screen shows names, not bare numbers."""
    from trading.models import TradingAccount

    ids = {int(v) for value in values for v in str(value or "").split(",") if v.strip().isdigit()}
    return {
        str(pk): f"{name} ({pk})" for pk, name in TradingAccount.objects.filter(pk__in=ids).values_list("pk", "name")
    }


def account_label(value: str, labels: dict[str, str]) -> str:
    return ", ".join(labels.get(v, v) for v in str(value or "").split(",") if v)


def instrument_digits(symbols) -> dict[str, int]:
    """Symbol -> its price digits, for the symbols that are instruments of this system (a
    surveilled file's may not be): the evidence's prices are shown at them."""
    from trading.models import Instrument

    return dict(Instrument.objects.filter(symbol__in=set(symbols)).values_list("symbol", "digits"))


# ---------------------------------------------------------------- the case timeline chart

TIMELINE_MARGIN_MIN = timedelta(seconds=15)  # around the alerts' window: a fifth of it, within these bounds
TIMELINE_MARGIN_MAX = timedelta(minutes=5)
# The subject's other orders and fills in the window (context, not named by an alert): at most
# this many, the earliest first. An alert's own orders are never cut for them.
TIMELINE_MAX_ORDERS = 400
# Each alert's own orders drawn from the system of record (its first ones, as it lists them): an
# order-to-trade or stuffing alert may name thousands.
TIMELINE_MAX_ORDERS_PER_ALERT = 200


def _ts(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return value.isoformat()


def _num(value) -> float | None:
    if value is None:
        return None
    return float(value) if isinstance(value, Decimal | int | float) else float(str(value))


def _touch(price: float, side: str, away_bps) -> float | None:
    """The touch an order was placed away from (a buy below the bid, a sell above the ask)."""
    if away_bps is None:
        return None
    factor = 1 - float(away_bps) / 10_000 if side == "buy" else 1 + float(away_bps) / 10_000
    return price * factor


@dataclass
class Timeline:
    """What the case view's chart draws: a price line (quotes), the orders on it (placed ->
    cancelled or filled, by side) and the fills, each order and fill marked with the case's
    alerts that name it (``alerts``: their ids; empty for the subject's other orders in the
    window, drawn as context). Times are ISO 8601 UTC, event time."""

    symbol: str
    start: str | None = None
    end: str | None = None
    alerts: list[dict] = field(default_factory=list)  # {id, type, label}, in the case's order
    quotes: list[dict] = field(default_factory=list)  # {t, price, source}
    orders: list[dict] = field(default_factory=list)  # {id, side, price, placed, ended, end_state, qty, alerts}
    fills: list[dict] = field(default_factory=list)  # {id, order, t, side, price, qty, alerts}
    sources: list[str] = field(default_factory=list)


def _alerts_naming(alerts: list[Alert]) -> dict[str, list[int]]:
    """Order id -> the ids of the alerts that name it (its order ids, its evidence's orders and
    fill), in the case's order: an order may be in a spoofing and a layering alert at once."""
    naming: dict[str, list[int]] = {}

    def name(order_id, alert: Alert) -> None:
        if order_id is None:
            return
        ids = naming.setdefault(str(order_id), [])
        if alert.pk not in ids:
            ids.append(alert.pk)

    for alert in alerts:
        for oid in alert.order_ids or ():
            name(oid, alert)
        ev = alert.evidence if isinstance(alert.evidence, dict) else {}
        for c in ev.get("cancelled_orders") or ():
            if isinstance(c, dict):
                name(c.get("order_id"), alert)
        if isinstance(ev.get("fill"), dict):
            name(ev["fill"].get("order_id"), alert)
    return naming


def case_timeline(*, case: Case, alerts: list[Alert]) -> Timeline:
    """Orders, fills and quotes around the case's alerts, every alert's (a case groups alerts of
    several types, a spoofing and a layering alert on one account: each alert's orders are drawn,
    marked with it), from two sources: the orders and fills the system of record holds for the
    alerts' order ids (each alert's first ``TIMELINE_MAX_ORDERS_PER_ALERT``) and, as context, the
    subject's accounts' other orders and fills in the window (at most ``TIMELINE_MAX_ORDERS``,
    never at the cost of an alert's own), with the bid, ask and mid quoted at each order's
    arrival (the touch a fill is measured against; the mid alone for a fill recorded before
    trading 0009); and the alert evidence itself (surveillance of a file records the orders it
    saw there: placed, cancelled, the touch)."""
    from trading.models import Execution, Order

    timeline = Timeline(symbol=case.symbol)
    timeline.alerts = [
        {"id": a.pk, "type": a.alert_type, "label": f"{a.alert_type.replace('_', ' ')} #{a.pk}"} for a in alerts
    ]
    starts = [a.start for a in alerts if a.start] or [a.first_seen for a in alerts]
    ends = [a.end for a in alerts if a.end] or [a.last_seen for a in alerts]
    if not starts:
        return timeline
    margin = min(max((max(ends) - min(starts)) / 5, TIMELINE_MARGIN_MIN), TIMELINE_MARGIN_MAX)
    lo, hi = min(starts) - margin, max(ends) + margin
    timeline.start, timeline.end = lo.isoformat(), hi.isoformat()
    naming = _alerts_naming(alerts)
    seen_orders: set[str] = set()

    order_ids = {str(oid) for a in alerts for oid in (a.order_ids or ())[:TIMELINE_MAX_ORDERS_PER_ALERT]}
    accounts = [int(a) for a in case.subject_account.split(",") if a.strip().isdigit()]
    in_symbol = Order.objects.filter(instrument__symbol=case.symbol)
    named = list(in_symbol.filter(client_order_id__in=order_ids))
    context = list(
        in_symbol.filter(account_id__in=accounts, created_at__gte=lo, created_at__lte=hi)
        .exclude(client_order_id__in=order_ids)
        .order_by("created_at", "pk")[:TIMELINE_MAX_ORDERS]
    )
    for o in sorted(named + context, key=lambda o: (o.created_at, o.pk)):
        price = o.limit_price or o.stop_price or o.average_fill_price
        seen_orders.add(o.client_order_id)
        timeline.orders.append(
            {
                "id": o.client_order_id,
                "side": o.side.lower(),
                "qty": _num(o.quantity),
                "price": _num(price),
                "placed": _ts(o.created_at),
                "ended": _ts(o.closed_at),
                "end_state": o.status,
                "story": f"/orders/{o.client_order_id}/",
                "alerts": naming.get(o.client_order_id, []),
            }
        )
    in_symbol_fills = Execution.objects.filter(instrument__symbol=case.symbol).select_related("order")
    named_fills = list(in_symbol_fills.filter(order__client_order_id__in=order_ids))
    context_fills = list(
        in_symbol_fills.filter(account_id__in=accounts, executed_at__gte=lo, executed_at__lte=hi)
        .exclude(order__client_order_id__in=order_ids)
        .order_by("executed_at", "pk")[:TIMELINE_MAX_ORDERS]
    )
    with_touch = False
    for x in sorted(named_fills + context_fills, key=lambda x: (x.executed_at, x.pk)):
        timeline.fills.append(
            {
                "id": x.broker_deal_id,
                "order": x.order.client_order_id,
                "t": _ts(x.executed_at),
                "side": x.side.lower(),
                "price": _num(x.price),
                "qty": _num(x.quantity),
                "alerts": naming.get(x.order.client_order_id, []),
            }
        )
        arrived = _ts(x.order.created_at)
        if x.arrival_mid is not None:
            timeline.quotes.append({"t": arrived, "price": _num(x.arrival_mid), "source": "mid"})
        # The touch the fill is measured against (a buy against the ask, a sell against the bid),
        # kept since trading 0009; a fill recorded before has only the mid.
        if x.arrival_bid is not None and x.arrival_ask is not None:
            with_touch = True
            timeline.quotes.append({"t": arrived, "price": _num(x.arrival_bid), "source": "bid"})
            timeline.quotes.append({"t": arrived, "price": _num(x.arrival_ask), "source": "ask"})
    if timeline.orders or timeline.fills:
        quoted = "bid, ask and mid at arrival" if with_touch else "mid at arrival"
        timeline.sources.append(f"system of record (orders, fills, {quoted})")

    from_evidence = False
    for alert in alerts:
        ev = alert.evidence if isinstance(alert.evidence, dict) else {}
        for c in ev.get("cancelled_orders") or ():
            if not isinstance(c, dict) or c.get("order_id") in seen_orders or c.get("price") is None:
                continue
            seen_orders.add(c.get("order_id"))
            from_evidence = True
            timeline.orders.append(
                {
                    "id": c.get("order_id"),
                    "side": c.get("side", ""),
                    "qty": c.get("qty"),
                    "price": c.get("price"),
                    "placed": c.get("placed"),
                    "ended": c.get("cancelled"),
                    "end_state": "CANCELLED",
                    "alerts": naming.get(str(c.get("order_id")), [alert.pk]),
                }
            )
            touch = _touch(float(c["price"]), c.get("side", ""), c.get("away_from_touch_bps"))
            if touch is not None and c.get("placed"):
                timeline.quotes.append({"t": c["placed"], "price": touch, "source": "touch"})
        fill = ev.get("fill")
        has_fill = isinstance(fill, dict) and fill.get("price") is not None and fill.get("ts")
        if has_fill and not any(f.get("order") == fill.get("order_id") for f in timeline.fills):
            from_evidence = True
            timeline.fills.append(
                {
                    "id": fill.get("order_id"),
                    "order": fill.get("order_id"),
                    "t": fill.get("ts"),
                    "side": fill.get("side", ""),
                    "price": fill.get("price"),
                    "qty": fill.get("qty"),
                    "alerts": naming.get(str(fill.get("order_id")), [alert.pk]),
                }
            )
            timeline.quotes.append({"t": fill["ts"], "price": fill["price"], "source": "trade"})
    if from_evidence:
        timeline.sources.append("alert evidence (orders placed and cancelled, touch at placement, the fill)")
    timeline.quotes.sort(key=lambda q: q["t"])
    return timeline


# ---------------------------------------------------------------- rules


@dataclass
class RuleSummary:
    code: str
    rule_type: str
    scope_label: str
    active: ComplianceRule | None
    pending: ComplianceRule | None
    versions: int


def rule_summaries(*, user) -> list[RuleSummary]:
    """One line per rule code: the version in force and the one awaiting approval."""
    if not can_see_surveillance(user):
        return []
    by_code: dict[str, RuleSummary] = {}
    rows = ComplianceRule.objects.select_related("account", "instrument", "proposed_by").order_by("code", "-version")
    for r in rows:
        summary = by_code.setdefault(r.code, RuleSummary(r.code, r.rule_type, r.scope_label, None, None, 0))
        summary.versions += 1
        if r.status == RuleStatus.ACTIVE:
            summary.active = r
        elif r.status == RuleStatus.PENDING:
            summary.pending = r
    return list(by_code.values())


def rule_versions(*, user, code: str) -> list[ComplianceRule]:
    """Every version of one rule, oldest first (side by side on the screen)."""
    if not can_see_surveillance(user):
        raise NotFound(f"no rule {code}", code="rule_not_found")
    versions = list(
        ComplianceRule.objects.filter(code=code)
        .select_related("account", "instrument", "proposed_by", "decided_by")
        .order_by("version")
    )
    if not versions:
        raise NotFound(f"no rule {code}", code="rule_not_found")
    return versions


def rule_version_get(*, user, pk: int) -> ComplianceRule:
    rule = ComplianceRule.objects.filter(pk=pk).first() if can_see_surveillance(user) else None
    if rule is None:
        raise NotFound(f"no rule version {pk}", code="rule_not_found")
    return rule


def rule_diff(versions: list[ComplianceRule]) -> list[dict]:
    """Rows of the side-by-side table: each parameter (and the scope) across the versions, each
    cell marked ``changed``/``added``/``removed`` against the version before it."""
    keys: list[str] = []
    for v in versions:
        for k in v.parameters:
            if k not in keys:
                keys.append(k)
    rows = []
    for label, getter in [("scope", lambda v: v.scope_label)] + [
        (k, (lambda key: lambda v: v.parameters.get(key, _ABSENT))(k)) for k in keys
    ]:
        cells, previous = [], _ABSENT
        for n, v in enumerate(versions):
            value = getter(v)
            state = ""
            if n > 0:
                if previous is _ABSENT and value is not _ABSENT:
                    state = "added"
                elif value is _ABSENT and previous is not _ABSENT:
                    state = "removed"
                elif value != previous:
                    state = "changed"
            cells.append({"value": "" if value is _ABSENT else value, "state": state, "absent": value is _ABSENT})
            previous = value
        rows.append({"name": label, "cells": cells, "differs": any(c["state"] for c in cells)})
    return rows


_ABSENT = object()


def rules_pending(*, user) -> list[ComplianceRule]:
    if not can_see_surveillance(user):
        return []
    return list(
        ComplianceRule.objects.filter(status=RuleStatus.PENDING)
        .select_related("proposed_by", "previous")
        .order_by("proposed_at")
    )


# ---------------------------------------------------------------- home: what needs attention


def attention_for(user) -> list[Item]:
    """Compliance items for the home page: open alerts, cases waiting for a second officer,
    rule changes waiting for approval, report runs to approve or due. Nothing for a role that
    may not see surveillance (a trader never learns an alert exists)."""
    if not can_see_surveillance(user):
        return []
    from compliance.reports.models import ReportRun, RunStatus

    officer = user_has_role(user, Role.COMPLIANCE_OFFICER)
    items: list[Item] = []
    open_alerts = Alert.objects.filter(case__status__in=OPEN_STATUSES)
    new_alerts = open_alerts.filter(case__status=CaseStatus.NEW).count()
    total_open = open_alerts.count()
    items.append(
        Item(
            "Open alerts",
            total_open,
            f"{new_alerts} not yet reviewed; the queue sorts by severity and score."
            if total_open
            else "Nothing open in the alert queue.",
            "/compliance/alerts/?status=open&sort=severity",
            URGENT if new_alerts else (ATTENTION if total_open else CALM),
        )
    )
    waiting = Case.objects.exclude(pending_action="")
    if officer:
        mine = waiting.exclude(pending_by=user).count()
        items.append(
            Item(
                "Case decisions to approve",
                mine,
                "Close or report requests by another officer, waiting for your four-eyes decision."
                if mine
                else "No case decision waits for you.",
                "/compliance/alerts/?status=open&pending=1",
                ATTENTION if mine else CALM,
            )
        )
        mine_assigned = Case.objects.filter(assigned_to=user, status__in=OPEN_STATUSES).count()
        items.append(
            Item(
                "Cases assigned to you",
                mine_assigned,
                "Open cases you hold." if mine_assigned else "No open case is assigned to you.",
                f"/compliance/alerts/?status=open&assignee={user.get_username()}",
                ATTENTION if mine_assigned else CALM,
            )
        )
    pending_rules = ComplianceRule.objects.filter(status=RuleStatus.PENDING)
    to_approve = pending_rules.exclude(proposed_by=user).count() if officer else pending_rules.count()
    items.append(
        Item(
            "Rule changes pending",
            to_approve,
            "Proposed by another officer: a second officer approves or rejects."
            if to_approve
            else "No rule change waits for approval.",
            "/compliance/rules/#pending",
            ATTENTION if to_approve else CALM,
        )
    )
    runs = ReportRun.objects.filter(status=RunStatus.VALIDATED)
    if officer:
        runs = runs.exclude(generated_by=user)
    to_sign = runs.count()
    failed = ReportRun.objects.filter(status__in=[RunStatus.FAILED, RunStatus.REJECTED]).count()
    items.append(
        Item(
            "Reports to approve",
            to_sign,
            (
                f"Validated runs waiting for sign-off; {failed} failed or rejected."
                if failed
                else "Validated runs waiting for sign-off."
            )
            if to_sign or failed
            else "No report waits for approval.",
            "/compliance/reports/?status=validated",
            URGENT if failed else (ATTENTION if to_sign else CALM),
        )
    )
    from compliance.reports.selectors import transaction_days_unreported
    from compliance.reports.services import trading_date_closed

    # By the executions' event time, not the wall clock: a replay's fills are of 2018, and a
    # closed day without trades needs no report.
    due = transaction_days_unreported(user=user, through=trading_date_closed())
    if due.days:
        text = (
            f"{due.days} trading days await their report: oldest {due.oldest:%Y-%m-%d}."
            if due.days > 1
            else f"Trading day {due.oldest:%Y-%m-%d} awaits its report."
        )
    else:
        text = "Every closed trading day with trades is reported."
    # An officer goes straight to "Run a report" for the oldest day due; anyone else to the runs.
    url = (
        f"/compliance/reports/?run=transaction&from={due.oldest:%Y-%m-%d}&to={due.oldest:%Y-%m-%d}#run-report"
        if due.days and officer
        else "/compliance/reports/?kind=transaction"
    )
    items.append(
        Item(
            "Transaction report due (T+1)",
            due.days,
            text,
            url,
            ATTENTION if due.days else CALM,
        )
    )
    return items


# ---------------------------------------------------------------- live screens: catch-up

CATCH_UP_MARGIN = timedelta(seconds=5)
CATCH_UP_MAX = 500


def live_catch_up(*, user, since: datetime) -> list[dict]:
    """What a compliance screen missed since ``since`` (record time): alerts recorded or extended
    and case steps taken since then, as ``alert.raised`` and ``case.changed`` events. Nothing at
    all for a role that may not see surveillance (no tipping off)."""
    if not can_see_surveillance(user):
        return []
    since = since - CATCH_UP_MARGIN
    out: list[tuple[datetime, dict]] = []
    # record time (wall clock), not event time: a replay's alerts are raised at 2017's market time
    for a in Alert.objects.filter(updated_at__gte=since).order_by("-updated_at")[:CATCH_UP_MAX]:
        out.append(
            (
                a.updated_at,
                {
                    "event_id": None,
                    "type": "alert.raised",
                    "occurred_at": _ts(a.end or a.start or a.first_seen),
                    "key": a.account or a.symbol,
                    "catch_up": True,
                    "payload": {
                        "alert_type": a.alert_type,
                        "severity": a.severity,
                        "symbol": a.symbol,
                        "account": a.account,
                        "owner": a.owner,
                        "score": a.score,
                        "start": _ts(a.start),
                        "end": _ts(a.end),
                        "ts": _ts(a.end or a.start or a.first_seen),
                    },
                },
            )
        )
    steps = (
        CaseAction.objects.filter(recorded_at__gte=since)
        .select_related("case", "actor", "case__assigned_to")
        .order_by("-recorded_at")
    )
    for x in steps[:CATCH_UP_MAX]:
        out.append(
            (
                x.recorded_at,
                {
                    "event_id": None,
                    "type": "case.changed",
                    "occurred_at": _ts(x.at),
                    "key": x.case.reference,
                    "catch_up": True,
                    "payload": {
                        "case_id": x.case_id,
                        "reference": x.case.reference,
                        "status": x.case.status,
                        "action": x.action,
                        "pending_action": x.case.pending_action,
                        "assigned_to": x.case.assigned_to.get_username() if x.case.assigned_to_id else "",
                        "actor": user_actor(x.actor) if x.actor_id else "service:surveillance",
                        "ts": _ts(x.at),
                    },
                },
            )
        )
    out.sort(key=lambda pair: pair[0])
    return [event for _, event in out]
