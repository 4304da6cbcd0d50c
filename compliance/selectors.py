"""Readers of the compliance system of record, with the visibility rules.

Visibility (MAR Art. 16; 2016/957 Art. 5, no tipping off): alerts, cases and STOR drafts are
visible to compliance officers (read and act) and auditors (read only); nobody else, traders
above all, sees any of them or learns that one exists (the selectors return empty querysets,
not a refusal that would itself reveal something).
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from compliance.models import Alert, Case, CaseAction, ComplianceRule, PreTradeDecision, RuleStatus
from compliance.pretrade.checks import RuleSpec
from compliance.pretrade.params import PRETRADE_PARAMS, pretrade_params_convert
from compliance.surveillance.params import DETECTOR_PARAMS
from tradeops.api.matrix import role_may, visible_to
from tradeops.core.clock import utcnow
from tradeops.core.db_router import read_only
from tradeops.core.errors import NotFound, PermissionDenied
from tradeops.core.roles import Role
from tradeops.observability.cache import cached

SURVEILLANCE_ROLES = (Role.COMPLIANCE_OFFICER, Role.AUDITOR)


def can_see_surveillance(user) -> bool:
    """Compliance officers and auditors (the ``alerts`` row of ``tradeops.api.matrix``)."""
    return role_may(user, "alerts", "read")


@read_only
def alerts_visible_to(*, user) -> QuerySet[Alert]:
    """Alerts with their case's reference and status (the rest of the case row is not read)."""
    qs = Alert.objects.select_related("case").only(
        *(f.name for f in Alert._meta.concrete_fields), "case__reference", "case__status"
    )
    return visible_to(qs, user=user, resource="alerts")


def alert_visible_get(*, user, pk: int) -> Alert:
    try:
        return alerts_visible_to(user=user).get(pk=pk)
    except Alert.DoesNotExist:
        raise NotFound(f"no alert {pk}", code="alert_not_found") from None


@read_only
def cases_visible_to(*, user) -> QuerySet[Case]:
    return visible_to(
        Case.objects.select_related("assigned_to", "pending_by", "decided_by"), user=user, resource="cases"
    )


def case_visible_get(*, user, pk: int) -> Case:
    try:
        return cases_visible_to(user=user).get(pk=pk)
    except Case.DoesNotExist:
        raise NotFound(f"no case {pk}", code="case_not_found") from None


def case_actions_visible_to(*, user, case: Case) -> QuerySet[CaseAction]:
    """Every step taken on a case, oldest first (what the regulator reconstructs)."""
    return visible_to(CaseAction.objects.filter(case=case).select_related("actor"), user=user, resource="cases")


@read_only
def pretrade_decisions_visible_to(*, user) -> QuerySet[PreTradeDecision]:
    """Pre-trade decisions are the trader's own business too (why was my order refused?), so
    every role may read them; they name controls, not suspicions."""
    return visible_to(PreTradeDecision.objects.all(), user=user, resource="pretrade_decisions")


def compliance_rules_visible_to(*, user) -> QuerySet[ComplianceRule]:
    """Every version of every rule (pending, active, superseded, rejected, retired)."""
    qs = ComplianceRule.objects.select_related("account", "instrument", "proposed_by", "decided_by")
    return visible_to(qs, user=user, resource="rules")


def compliance_rule_visible_get(*, user, pk: int) -> ComplianceRule:
    try:
        return compliance_rules_visible_to(user=user).get(pk=pk)
    except ComplianceRule.DoesNotExist:
        raise NotFound(f"no compliance rule version {pk}", code="rule_not_found") from None


@read_only
def compliance_rule_history(*, code: str) -> list[ComplianceRule]:
    """Every version of a rule, newest first (superseded and rejected ones included)."""
    return list(
        ComplianceRule.objects.filter(code=code).select_related("proposed_by", "decided_by").order_by("-version")
    )


def compliance_rule_in_force(*, code: str) -> ComplianceRule | None:
    """The version of rule ``code`` in force (active), if any: what a proposal starts from. The
    code as typed, normalised as ``compliance_rule_propose`` stores it (``MAX_VOLUME`` is
    ``max-volume``), so the admin prefills and checks the version the service will supersede."""
    return ComplianceRule.objects.filter(code=code.lower().replace("_", "-"), status=RuleStatus.ACTIVE).first()


def compliance_rules_effective(*, rule_types=None) -> QuerySet[ComplianceRule]:
    qs = ComplianceRule.objects.filter(status=RuleStatus.ACTIVE).select_related("account", "instrument")
    if rule_types is not None:
        qs = qs.filter(rule_type__in=list(rule_types))
    return qs


def pretrade_rule_specs() -> list[RuleSpec]:
    """The active pre-trade rules as the pure checks' values. Cached (strict): a process never
    gets rules older than an approval committed anywhere (``tradeops.observability.cache``)."""
    return list(cached("rules", "pretrade", _pretrade_rule_specs_load))  # a copy: callers may change theirs


def _pretrade_rule_specs_load() -> list[RuleSpec]:
    return [
        RuleSpec(
            rule_type=r.rule_type,
            scope=r.scope,
            scope_value=r.scope_value,
            params=pretrade_params_convert(r.rule_type, r.parameters),
            version=r.version,
            rule_id=r.pk,
            code=r.code,
        )
        for r in compliance_rules_effective(rule_types=PRETRADE_PARAMS)
    ]


def surveillance_params_effective() -> dict[str, dict[str, Any]]:
    """Detector parameters from the active firm-wide surveillance rules (detector -> params; cached
    like ``pretrade_rule_specs``)."""
    return {k: dict(v) for k, v in cached("rules", "surveillance-firm", _surveillance_params_load).items()}


def _surveillance_params_load() -> dict[str, dict[str, Any]]:
    return {
        r.rule_type: r.parameters
        for r in compliance_rules_effective(rule_types=DETECTOR_PARAMS).filter(scope="firm").order_by("pk")
    }


def surveillance_instrument_params_effective() -> dict[str, dict[str, dict[str, Any]]]:
    """Instrument-scoped surveillance rules in force: detector -> {symbol -> params}."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for r in compliance_rules_effective(rule_types=DETECTOR_PARAMS).filter(scope="instrument").order_by("pk"):
        out.setdefault(r.rule_type, {})[r.instrument.symbol] = r.parameters
    return out


def surveillance_account_params_effective(*, keys: str = "pk") -> dict[str, dict[str, dict[str, Any]]]:
    """Account-scoped surveillance rules in force: detector -> {account key -> params}. The key
    is how the account appears on the surveillance records: its primary key on the live stream
    (``keys="pk"``); for a ``surveil`` file, both its primary key and its MT5 login
    (``keys="pk+login"``). The pairing detectors apply an account's rule to every account of
    its beneficial owner (see ``compliance.surveillance.engine``)."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for r in compliance_rules_effective(rule_types=DETECTOR_PARAMS).filter(scope="account").order_by("pk"):
        by = out.setdefault(r.rule_type, {})
        by[str(r.account_id)] = r.parameters
        if keys == "pk+login" and r.account.mt5_login:
            by[str(r.account.mt5_login)] = r.parameters
    return out


def surveillance_algo_params_effective() -> dict[str, dict[str, dict[str, Any]]]:
    """Algorithm-scoped surveillance rules in force: detector -> {algo id -> params} (orders carry
    their algorithm id; fills take their order's)."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for r in compliance_rules_effective(rule_types=DETECTOR_PARAMS).filter(scope="algorithm").order_by("pk"):
        out.setdefault(r.rule_type, {})[r.algo_id] = r.parameters
    return out


def surveillance_state_load(*, stage: str):
    """The streaming stage's saved detector windows (``SurveillanceState``), or None."""
    from compliance.models import SurveillanceState

    return SurveillanceState.objects.filter(stage=stage).first()


_TODO = "TO COMPLETE"


def case_stor_draft(*, case: Case, user) -> dict[str, Any]:
    """A draft suspicious transaction and order report (MAR Art. 16(1)-(2)) following the
    sections of the template in the Annex of Delegated Regulation 2016/957. Facts the system
    holds are filled in; what only a person can state is marked ``TO COMPLETE``. The draft is
    for the competent authority, never for the subject (Art. 5: no tipping off)."""
    if not role_may(user, "stor_drafts", "read"):
        raise PermissionDenied("only compliance officers prepare STORs", code="not_compliance_officer")
    from trading.models import Order, TradingAccount

    alerts = list(case.alerts.order_by("start", "pk"))
    order_ids = [oid for a in alerts for oid in a.order_ids]
    orders = {
        o.client_order_id: o
        for o in Order.objects.filter(client_order_id__in=order_ids).select_related("instrument", "account")
    }
    account_ids = [a for a in case.subject_account.split(",") if a.isdigit()]
    accounts = list(TradingAccount.objects.filter(pk__in=account_ids))
    firm_lei = accounts[0].firm_lei if accounts else ""
    if not firm_lei:
        # a surveilled file's accounts are not in the system of record: the firm's own LEI (the
        # reporting firm of its transaction reports) is still the reporting entity's
        from compliance.reports.models import ReportingFirm

        firm = ReportingFirm.objects.filter(pk=1).first()
        firm_lei = (firm.executing_entity_lei if firm else "") or _TODO
    instrument = next((o.instrument for o in orders.values()), None)
    return {
        "template": "Commission Delegated Regulation (EU) 2016/957, Annex (STOR)",
        "case": case.reference,
        "generated_at": utcnow().isoformat(timespec="microseconds"),
        "section_1_reporting_entity": {
            "name": _TODO,
            "lei": firm_lei,
            "person_submitting": {
                "name": user.get_full_name() or user.get_username(),
                "position": _TODO,
                "contact": user.email or _TODO,
            },
            "capacity": "investment firm executing orders (MAR Art. 16(2))",
            "relationship_with_subject": "client" if accounts else _TODO,
        },
        "section_2_transactions_and_orders": {
            "instrument": {
                "symbol": case.symbol,
                "name": instrument.description if instrument else _TODO,
                "isin": (instrument.isin or _TODO) if instrument else _TODO,
                "type": instrument.asset_class if instrument else _TODO,
            },
            "venue": instrument.venue_mic if instrument else "XXXX",
            "period": {
                "from": min((a.start for a in alerts if a.start), default=None),
                "to": max((a.end for a in alerts if a.end), default=None),
            },
            "orders_and_transactions": [_order_row(oid, orders.get(oid)) for oid in dict.fromkeys(order_ids)][:500],
        },
        "section_3_nature_of_suspicion": {
            "types": case.alert_types,
            "description": _TODO,
            "reasons_for_suspicion": [
                {"alert_type": a.alert_type, "score": a.score, "start": a.start, "end": a.end, "evidence": a.evidence}
                for a in alerts
            ],
            "analysis": [
                {"action": x.action, "note": x.note, "at": x.at} for x in case.actions.exclude(note="").order_by("at")
            ],
        },
        "section_4_person_concerned": {
            "owner": case.subject_owner,
            "accounts": [
                {"account_number": f"{a.mt5_login}@{a.mt5_server}", "client_id": a.client_id, "name": a.name}
                for a in accounts
            ]
            or [{"account": case.subject_account}],
            "name": _TODO,
            "date_of_birth_or_lei": _TODO,
            "address": _TODO,
            "relationship_with_issuer": _TODO,
        },
        "section_5_additional_information": {
            "background": _TODO,
            "attachments": [f"alert evidence {a.pk}" for a in alerts],
        },
    }


def _order_row(order_id: str, order) -> dict[str, Any]:
    if order is None:
        return {"order_id": order_id}
    return {
        "order_id": order_id,
        "side": order.side,
        "type": order.order_type,
        "quantity": str(order.quantity),
        "limit_price": None if order.limit_price is None else str(order.limit_price),
        "average_fill_price": None if order.average_fill_price is None else str(order.average_fill_price),
        "status": order.status,
        "created_at": order.created_at,
        "algo_id": order.algo_id,
    }
