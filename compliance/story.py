"""The story of an order: how it came to be, in one read (RTS 6 Art. 17; 2017/589 Art. 28 and
2017/565 Art. 72: the firm must be able to reconstitute each key stage of each order).

From the system of record and the audit trail: the bar and quotes it was decided on, the
feature values and each model's prediction with its version, the validated signal, every risk
and compliance check with its figure against its limit, each step at the broker, the fills, the
position after, and the audit records with their chain position (links to verify the chain and
each record's inclusion in its day's digest).

Who reads what: the order, its checks, fills and position are every trading role's business
(a trader may ask why an order was refused); the audit records' links go to the audit screens
(compliance officers and auditors). Surveillance alerts that name the order are never shown here
(no tipping off); the case view links here instead."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from compliance.models import PreTradeDecision
from tradeops.audit.models import AuditRecord
from tradeops.core import formatting
from tradeops.core.errors import NotFound
from trading.models import Execution, Order, Position


@dataclass
class Step:
    at: datetime
    recorded_at: datetime | None
    action: str
    actor: str
    detail: str = ""
    sequence: int | None = None


@dataclass
class Check:
    name: str
    passed: bool
    code: str
    detail: str
    rule_version: str = ""
    source: str = "risk"  # risk | compliance
    limit: str = ""  # the limit in force now, for the risk checks that have one


# risk check -> (RiskLimits field, unit): the limit each check compares its figure with
RISK_LIMITS = {
    "max_position": ("max_position_lots", "lots"),
    "max_gross_exposure": ("max_gross_exposure", "account currency"),
    "max_net_exposure": ("max_net_exposure", "account currency"),
    "daily_loss": ("daily_loss_limit", "account currency"),
    "max_drawdown": ("max_drawdown", "of peak equity"),
    "submit_rate": ("max_submits_per_second", "per second"),
    "modify_rate": ("max_modifies_per_second", "per second"),
    "max_open_orders": ("max_open_orders", "orders"),
    "duplicate_order": ("duplicate_window_ms", "ms window"),
}


def _limits_now(order: Order, checks: list[Check]) -> None:
    """Beside each risk check, the limit in force now for the order's account and instrument
    (resolved as the execution worker resolves them; a change since is in the audit trail)."""
    from trading.console.selectors import limit_book

    limits = limit_book().for_instrument(order.account_id, order.instrument.symbol)
    for check in checks:
        field_unit = RISK_LIMITS.get(check.name)
        if field_unit is None or check.source != "risk":
            continue
        value = getattr(limits, field_unit[0], None)
        check.limit = "none" if value is None else _limit_text(value, field_unit[1], order)


def _limit_text(value, unit: str, order: Order) -> str:
    """A limit as a person reads it: lots to the instrument's volume step, money with separators
    and the account's currency, a drawdown as a percentage."""
    if unit == "lots":
        return f"{formatting.lots(value, order.instrument.volume_step)} lots"
    if unit == "account currency":
        return f"{formatting.money(value)} {order.account.base_currency}".strip()
    if unit == "of peak equity":
        return f"{formatting.fixed(value * 100, 1)} % of peak equity"
    return f"{value} {unit}"


@dataclass
class Story:
    order: Order
    signal: dict[str, Any] | None = None
    predictions: list[dict[str, Any]] = field(default_factory=list)
    features: dict[str, Any] | None = None
    model_versions: list[dict[str, Any]] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    decision_approved: bool | None = None
    steps: list[Step] = field(default_factory=list)
    fills: list[Execution] = field(default_factory=list)
    position_after: dict[str, Any] | None = None
    position_now: Position | None = None
    audit: list[AuditRecord] = field(default_factory=list)


def _data(record: AuditRecord) -> dict[str, Any]:
    payload = json.loads(record.payload)
    return payload.get("data", payload) if isinstance(payload, dict) else {}


def _ts_key(value: str) -> str:
    """The object id form of an event time (``str`` of an aware UTC datetime)."""
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return str(parsed.astimezone(UTC))


def order_story(*, client_order_id: str) -> Story:
    """Everything recorded about one order, oldest first. NotFound when there is no such order."""
    order = (
        Order.objects.select_related("account", "instrument", "trader").filter(client_order_id=client_order_id).first()
    )
    if order is None:
        raise NotFound(f"no order {client_order_id!r}", code="order_not_found")
    story = Story(order=order)
    symbol = order.instrument.symbol

    # decision inputs: the signal, the predictions and the features on its bar
    if order.signal_id:
        signal = AuditRecord.objects.filter(action="signal.validated", object_id=order.signal_id).first()
        if signal is not None:
            story.signal = _data(signal)
            story.audit.append(signal)
            key = f"{symbol}:{_ts_key(story.signal['ts'])}"
            for record in AuditRecord.objects.filter(action="prediction.made", object_id=key).order_by("sequence"):
                story.predictions.append(_data(record))
                story.audit.append(record)
            features = AuditRecord.objects.filter(action="feature.vector", object_id=key).first()
            if features is not None:
                story.features = _data(features)
                story.audit.append(features)
    # activations are wall-clock facts: compare with when the order was recorded, not its event time
    story.model_versions = _models_at(getattr(order, "recorded_at", None) or order.created_at, story.signal)

    # the gate: risk checks (risk.decision) and the compliance part (PreTradeDecision)
    decision = AuditRecord.objects.filter(
        action="risk.decision", object_type="order", object_id=client_order_id
    ).first()
    if decision is not None:
        data = _data(decision)
        story.decision_approved = bool(data.get("approved"))
        story.checks = [
            Check(
                name=c.get("name", ""),
                passed=bool(c.get("passed")),
                code=c.get("code", ""),
                detail=c.get("detail", ""),
                rule_version=c.get("rule_version", ""),
            )
            for c in data.get("checks", [])
        ]
        _limits_now(order, story.checks)
        story.audit.append(decision)
    compliance = PreTradeDecision.objects.filter(client_order_id=client_order_id).order_by("decided_at").first()
    if compliance is not None and not story.checks:
        story.decision_approved = compliance.approved
        story.checks = [
            Check(
                c["name"], c["passed"], c.get("code", ""), c.get("detail", ""), c.get("rule_version", ""), "compliance"
            )
            for c in compliance.checks
        ]

    # each step of the order (created, approved, at the broker, filled, ...) and the fills
    order_records = AuditRecord.objects.filter(object_type="order", object_id__in=[str(order.pk), client_order_id])
    for record in order_records.exclude(action="risk.decision").order_by("sequence"):
        data = _data(record)
        after = data.get("after") if isinstance(data.get("after"), dict) else data
        detail = after.get("reason") or after.get("reject_reason") or ""
        if after.get("broker_order_id"):
            detail = (detail + f" (broker order {after['broker_order_id']})").strip()
        story.steps.append(
            Step(record.occurred_at, record.recorded_at, record.action, record.actor_id, detail, record.sequence)
        )
        story.audit.append(record)
    story.fills = list(Execution.objects.filter(order=order).select_related("instrument").order_by("executed_at", "pk"))
    deal_records = AuditRecord.objects.filter(
        object_type="execution",
        object_id__in=[str(x.pk) for x in story.fills] + [x.broker_deal_id for x in story.fills],
    ).order_by("sequence")
    story.audit.extend(deal_records)

    # the position after the last fill, as recorded then (and as it is now)
    story.position_now = Position.objects.filter(account=order.account, instrument=order.instrument).first()
    if story.fills and story.position_now is not None:
        last = story.fills[-1]
        after_fill = (
            AuditRecord.objects.filter(
                action="position.updated", object_type="position", object_id=str(story.position_now.pk)
            )
            .filter(occurred_at__gte=last.executed_at)
            .order_by("occurred_at", "sequence")
            .first()
        )
        if after_fill is None:  # recorded at the write's time rather than the deal's
            after_fill = (
                AuditRecord.objects.filter(
                    action="position.updated", object_type="position", object_id=str(story.position_now.pk)
                )
                .filter(
                    sequence__gt=min((r.sequence for r in story.audit if r.action.startswith("execution")), default=0)
                )
                .order_by("sequence")
                .first()
            )
        if after_fill is not None:
            data = _data(after_fill)
            story.position_after = data.get("after", data)
            story.audit.append(after_fill)
    story.audit.sort(key=lambda r: r.sequence)
    return story


def _models_at(when: datetime, signal: dict | None) -> list[dict[str, Any]]:
    """The model versions that decided: the signal's own list when it was recorded, else the
    versions active at ``when`` (the registry's activation history)."""
    from mlmodels.models import ModelActivation, ModelVersion

    if signal and signal.get("model_versions"):
        versions = signal["model_versions"]
        rows = {m.version: m for m in ModelVersion.objects.filter(version__in=list(versions.values()))}
        return [
            {"name": name, "version": version, "model": rows.get(version), "source": "the signal"}
            for name, version in sorted(versions.items())
        ]
    out = []
    for name in ModelActivation.objects.values_list("name", flat=True).distinct().order_by("name"):
        act = (
            ModelActivation.objects.filter(name=name, at__lte=when)
            .select_related("version")
            .order_by("-at", "-pk")
            .first()
        )
        if act is not None:
            out.append({"name": name, "version": act.version.version, "model": act.version, "source": "active then"})
    return out
