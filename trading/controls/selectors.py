"""Readers of risk limits and kill switches."""

from __future__ import annotations

from django.db.models import QuerySet

from tradeops.core.errors import NotFound
from trading.models import KillSwitch, RiskLimit


def risk_limit_list(*, active_only: bool = True) -> QuerySet[RiskLimit]:
    qs = RiskLimit.objects.select_related("account", "instrument")
    return qs.filter(is_active=True) if active_only else qs


def kill_switch_list(*, engaged_only: bool = True) -> QuerySet[KillSwitch]:
    qs = KillSwitch.objects.all()
    return qs.filter(engaged=True) if engaged_only else qs


def kill_switch_get(*, pk: int) -> KillSwitch:
    try:
        return KillSwitch.objects.get(pk=pk)
    except KillSwitch.DoesNotExist:
        raise NotFound(f"no kill switch with id {pk}", code="kill_switch_not_found") from None


def kill_switch_get_engaged(*, scope: str, scope_value: str = "") -> KillSwitch:
    switch = KillSwitch.objects.filter(scope=scope, scope_value=scope_value, engaged=True).first()
    if switch is None:
        target = scope if scope == "all" else f"{scope}={scope_value}"
        raise NotFound(f"the kill switch on {target} is not engaged", code="kill_switch_not_engaged")
    return switch
