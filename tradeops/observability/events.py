"""Metrics derived from the durable event stream: the ``metrics`` stage (``tradeops.stages``).

It consumes trading-events and compliance-events and keeps: fills per symbol, each position's
net lots and P&L, failed pre-trade checks per control (from every ``risk.decision``) and alerts
by type and severity. Counting from the events rather than inside a writer means every writer
(the execution worker, reconciliation, a resting order's fill) is counted the same way, once (the
runner drops redelivered event ids), in whichever process runs the stage.

Orders by outcome and reason, the order path's latency and the kill switches engaged are kept by
the execution worker itself (``tradeops.observability.orderpath``): counted here as well they
would be counted twice in the embedded run, where both share one registry.

A handler in the house's sense: state in, nothing out; the metrics are its only effect.
"""

from __future__ import annotations

from tradeops.events import Alert, Envelope, Fill, PositionChanged, RiskDecision
from tradeops.observability import metrics


class MetricsHandler:
    """Events in, metrics updated, nothing published."""

    def handle(self, event: Envelope) -> list[Envelope]:
        payload = event.payload
        kind = type(payload)
        if kind is Fill:
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
        return []


def metrics_stage() -> MetricsHandler:
    """Stage factory."""
    return MetricsHandler()
