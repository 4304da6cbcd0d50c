"""From the gate's decision to the compliance record (pure).

The execution worker publishes one ``risk.decision`` per intent with every check's result (risk
and compliance alike). The compliance part of it, the results of the checks named in
``COMPLIANCE_CHECK_NAMES``, becomes the ``compliance.decision`` on compliance-events and the
``PreTradeDecision`` row (``compliance.services.pretrade_decision_record``).
"""

from __future__ import annotations

from compliance.pretrade.checks import COMPLIANCE_CHECK_NAMES
from tradeops.events import DECISION_NOT_RECOVERABLE, ComplianceDecision, RiskDecision


def compliance_decision_of(decision: RiskDecision) -> ComplianceDecision | None:
    """The compliance checks' part of a gate decision, or None when no compliance check ran
    (a cancel, or a gate without compliance checks); for an order recovered by reconciliation,
    the statement that its decision is not recoverable. ``approved`` is whether the compliance
    checks passed (the order may still have been refused by a risk check)."""
    # A decision reconciliation recorded for an order it recovered has no check results, only the
    # statement that they are not recoverable: it is the record compliance keeps for that order.
    checks = tuple(c for c in decision.checks if c.name in COMPLIANCE_CHECK_NAMES or c.code == DECISION_NOT_RECOVERABLE)
    if not checks:
        return None
    return ComplianceDecision(
        client_order_id=decision.client_order_id,
        account_id=decision.account_id,
        symbol=decision.symbol,
        approved=all(c.passed for c in checks),
        checks=checks,
        ts=decision.ts,
    )
