"""The gate factory the execution worker loads by dotted path (``PRETRADE_COMPLIANCE_CHECKS``).

This is the Django side of the pure checks: it reads the active pre-trade ``ComplianceRule``
versions, the open execution-throttle trips and the current positions once, at worker start;
afterwards rule changes reach the checks as ``compliance.rule_changed`` events (``on_event``),
positions as ``position.changed``, re-enables as ``compliance.throttle_reset``.
"""

from __future__ import annotations

from compliance.pretrade.checks import ComplianceCheck, ExecutionThrottle, PositionLimit, checks_build


def pretrade_checks() -> list[ComplianceCheck]:
    from compliance.models import ThrottleTrip
    from compliance.selectors import pretrade_rule_specs
    from trading.models import Position

    checks = checks_build(pretrade_rule_specs())
    for check in checks:
        if isinstance(check, ExecutionThrottle):
            for trip in ThrottleTrip.objects.filter(reset_at__isnull=True):
                check.disable(trip.algo_id, trip.detail)
        if isinstance(check, PositionLimit):
            for account_id, symbol, net in Position.objects.values_list(
                "account_id", "instrument__symbol", "net_quantity"
            ):
                check.load(account_id, symbol, net)
    return checks
