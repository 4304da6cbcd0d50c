"""Which ``alert.raised`` events are operator alerts, in one place.

An operator alert is raised by the platform about itself or its inputs, for the people who run
trading to act on: the execution worker's reconciliation mismatch and trading breaker, model drift,
the market-data collector's and monitor's flags, the anomaly detector. Every other alert is
surveillance's (market abuse, execution quality): it stays on the compliance screens only and
never reaches a trader's (MAR tipping-off, 2016/957 Art. 5). So the list is an allow-list: an
alert type not named here is treated as surveillance's. A new operator alert type is added here.
Pure: no Django.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

OPERATOR_ALERT_TYPES = frozenset(
    {
        "reconciliation_position_mismatch",  # trading.orders.reconcile
        "trading_breaker_open",  # trading.controls.services
        "model_drift",  # mlmodels.handlers
        "model_drift_cleared",
    }
)
# market_data.<flag> (trading.marketdata.monitor, workers.collector), anomaly.<series> (observability)
OPERATOR_ALERT_PREFIXES = ("market_data.", "anomaly.")
HIGH_SEVERITIES = ("high", "critical")


def alert_is_operator(alert_type: str) -> bool:
    """True for an operator alert's type; False for surveillance's and for any type not known."""
    return alert_type in OPERATOR_ALERT_TYPES or alert_type.startswith(OPERATOR_ALERT_PREFIXES)


def operator_alert_explanation(alert_type: str, evidence: Mapping[str, Any] | None) -> str:
    """The alert's own words, from its evidence: the anomaly detector's ``explanation``, a feed's
    ``reason`` or ``error``, drift's ``action``; a reconciliation mismatch names each symbol's
    two positions. Empty when the evidence says nothing a person can read."""
    evidence = evidence or {}
    if alert_type == "reconciliation_position_mismatch":
        parts = [
            f"{symbol} ours {v.get('ours')} broker {v.get('broker')}"
            for symbol, v in sorted(evidence.items())
            if isinstance(v, Mapping)
        ]
        return "Positions differ from the broker: " + ", ".join(parts) if parts else "Positions differ from the broker."
    for key in ("explanation", "reason", "error", "action"):
        value = evidence.get(key)
        if isinstance(value, str) and value:
            text = value
            if key == "action" and alert_type.startswith("model_drift"):
                psi = evidence.get("psi_mean")
                text = (
                    f"{value} (PSI {psi:.3f} against a limit of {evidence.get('psi_limit')})"
                    if isinstance(psi, int | float)
                    else value
                )
            return text
    if evidence.get("flag"):
        return str(evidence["flag"]).replace("_", " ")
    return ""
