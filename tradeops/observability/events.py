"""Metrics derived from the durable event stream: the ``metrics`` stage (``tradeops.stages``).

It consumes trading-events and compliance-events and keeps: orders that reached a final state by
outcome and refusal reason code, fills per symbol, each position's net lots and P&L, failed
pre-trade checks per control (from every ``risk.decision``), alerts by type and severity, and the
kill switches engaged per scope. Counting from the events rather than inside the order path means
every writer (the execution worker, reconciliation, the kill switch from the admin) is counted
the same way, once (the runner drops redelivered event ids), in whichever process runs the stage.

A handler in the house's sense: state in, nothing out; the metrics are its only effect.
"""

from __future__ import annotations

from collections.abc import Iterable

from tradeops.events import Alert, Envelope, Fill, KillSwitchChanged, OrderEvent, PositionChanged, RiskDecision
from tradeops.observability import metrics
from tradeops.observability.metrics import reason_code

FINAL_STATUSES = frozenset({"FILLED", "REJECTED", "CANCELLED", "EXPIRED"})
SCOPES = ("all", "account", "instrument", "algo", "trader")


class MetricsHandler:
    """Events in, metrics updated, nothing published."""

    def __init__(self, *, engaged: Iterable[tuple[str, str]] = ()) -> None:
        self.engaged: set[tuple[str, str]] = set(engaged)
        self._publish_kill_switches()

    def handle(self, event: Envelope) -> list[Envelope]:
        payload = event.payload
        kind = type(payload)
        if kind is OrderEvent:
            if payload.status in FINAL_STATUSES:
                reason = reason_code(payload.reason) if payload.status == "REJECTED" else "none"
                metrics.orders.labels(payload.status.lower(), reason).inc()
        elif kind is Fill:
            metrics.fills.labels(payload.symbol).inc()
        elif kind is PositionChanged:
            account = str(payload.account_id)
            metrics.position_net_lots.labels(account, payload.symbol).set(float(payload.net_quantity))
            metrics.position_pnl.labels(account, payload.symbol, "realised").set(float(payload.realised_pnl))
            metrics.position_pnl.labels(account, payload.symbol, "unrealised").set(float(payload.unrealised_pnl))
        elif kind is RiskDecision:
            for check in payload.checks:
                if not check.passed:
                    metrics.pretrade_refusals.labels(check.code or check.name).inc()
        elif kind is Alert:
            metrics.alerts.labels(payload.alert_type, payload.severity).inc()
        elif kind is KillSwitchChanged:
            scope = (payload.scope, payload.scope_value)
            if payload.engaged:
                self.engaged.add(scope)
            else:
                self.engaged.discard(scope)
            self._publish_kill_switches()
        return []

    def _publish_kill_switches(self) -> None:
        for scope in SCOPES:
            metrics.kill_switches_engaged.labels(scope).set(sum(1 for s, _ in self.engaged if s == scope))


def metrics_stage() -> MetricsHandler:
    """Stage factory: starts from the kill switches engaged now (read through the cache)."""
    from django.apps import apps

    KillSwitch = apps.get_model("trading", "KillSwitch")  # core names apps by label, never by import
    return MetricsHandler(engaged=KillSwitch.objects.filter(engaged=True).values_list("scope", "scope_value"))
