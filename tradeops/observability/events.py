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
    """Events in, metrics updated, nothing published. Each label child is looked up once and
    kept (``metrics``: a child's update is a lock and an add, the ``labels`` lookup several
    times that); the labels are bounded (the firm's symbols, accounts, controls, alert types).
    Events of other types (most of trading-events and compliance-events) cost a type check."""

    def __init__(self) -> None:
        self._fills: dict = {}
        self._positions: dict = {}
        self._refusals: dict = {}
        self._alerts: dict = {}

    def handle(self, event: Envelope) -> list[Envelope]:
        payload = event.payload
        kind = type(payload)
        if kind is Fill:
            child = self._fills.get(payload.symbol)
            if child is None:
                child = self._fills[payload.symbol] = metrics.fills.labels(payload.symbol)
            child.inc()
        elif kind is PositionChanged:
            key = (payload.account_id, payload.symbol)
            children = self._positions.get(key)
            if children is None:
                account = str(payload.account_id)
                children = self._positions[key] = (
                    metrics.position_net_lots.labels(account, payload.symbol),
                    metrics.position_pnl.labels(account, payload.symbol, "realised"),
                    metrics.position_pnl.labels(account, payload.symbol, "unrealised"),
                )
            net, realised, unrealised = children
            net.set(float(payload.net_quantity))
            realised.set(float(payload.realised_pnl))
            unrealised.set(float(payload.unrealised_pnl))
        elif kind is RiskDecision:
            for check in payload.checks:
                if not check.passed:
                    control = check.code or check.name
                    child = self._refusals.get(control)
                    if child is None:
                        child = self._refusals[control] = metrics.pretrade_refusals.labels(control)
                    child.inc()
        elif kind is Alert:
            key = (payload.alert_type, payload.severity)
            child = self._alerts.get(key)
            if child is None:
                child = self._alerts[key] = metrics.alerts.labels(*key)
            child.inc()
        return []


def metrics_stage() -> MetricsHandler:
    """Stage factory."""
    return MetricsHandler()
