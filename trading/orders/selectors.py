"""Readers of the order path: what the execution worker loads its hot state from (at start and
after a reconciliation), and what reconciliation compares with the broker.

Reference data the worker re-reads (instruments, risk limits in force, engaged kill switches)
comes through the two-level caches (``tradeops.observability.cache``): a write to any of them
bumps the cache's generation when it commits, and the kill switches' cache is strict (every read
checks the generation), so the worker's periodic safety re-read costs one cache read instead of
a query and never misses an engage committed anywhere (RTS 6 Art. 12)."""

from __future__ import annotations

from datetime import datetime

from tradeops.observability.cache import cached
from trading.controls.selectors import kill_switch_scopes_engaged, risk_limits_in_force
from trading.models import AccountRiskSnapshot, Execution, Instrument, Order, Position, RiskLimit, TradingAccount
from trading.order_states import OrderStatus

OPEN_AT_BROKER = (OrderStatus.RISK_APPROVED, OrderStatus.SUBMITTED, OrderStatus.PARTIALLY_FILLED)


def instruments_active() -> dict[str, Instrument]:
    """Active instruments by symbol (cached: reference data, invalidated when one is saved)."""
    return dict(cached("instruments", "active", _instruments_active_load))


def _instruments_active_load() -> dict[str, Instrument]:
    return {i.symbol: i for i in Instrument.objects.filter(is_active=True)}


def accounts_active(*, ids) -> dict[int, TradingAccount]:
    """The active accounts among ``ids``, by id."""
    return {a.pk: a for a in TradingAccount.objects.filter(pk__in=list(ids), is_active=True)}


def account_ids_active(*, ids=None) -> list[int]:
    """Active account ids (all, or those among ``ids``)."""
    accounts = TradingAccount.objects.filter(is_active=True)
    if ids:
        accounts = accounts.filter(pk__in=list(ids))
    return list(accounts.order_by("pk").values_list("pk", flat=True))


def account_with_login(*, login: int) -> TradingAccount | None:
    return TradingAccount.objects.filter(is_active=True, mt5_login=login).first()


def account_positions(*, account_id: int) -> dict[int, Position]:
    """The account's position rows by instrument id (instrument joined)."""
    rows = Position.objects.filter(account_id=account_id).select_related("instrument")
    return {p.instrument_id: p for p in rows}


def orders_open(*, account_id: int) -> list[Order]:
    """The account's orders that may still execute (approved, at the broker, partly filled)."""
    statuses = [s.value for s in OPEN_AT_BROKER]
    return list(Order.objects.filter(account_id=account_id, status__in=statuses).select_related("instrument"))


def client_order_ids_recorded_since(*, account_ids, since: datetime) -> set[str]:
    """Client order ids of the accounts' orders first written since ``since`` (record time: a
    redelivered signal is a wall-clock phenomenon, whatever the orders' event times)."""
    return set(
        Order.objects.filter(account_id__in=list(account_ids), recorded_at__gte=since).values_list(
            "client_order_id", flat=True
        )
    )


def algo_ids_known() -> set[str]:
    return set(Order.objects.exclude(algo_id="").values_list("algo_id", flat=True).distinct())


def risk_limits_active() -> list[RiskLimit]:
    """Active risk limits, account and instrument joined (cached)."""
    return risk_limits_in_force()


def kill_switches_engaged() -> list[tuple[str, str]]:
    """(scope, value) of every engaged kill switch (cached, strict)."""
    return sorted(kill_switch_scopes_engaged())


def risk_snapshot_get(*, account_id: int) -> AccountRiskSnapshot | None:
    return AccountRiskSnapshot.objects.filter(account_id=account_id).first()


def order_of_deal(*, account_id: int, client_order_id: str) -> Order | None:
    """The order a broker deal's comment names (a resting order's fill)."""
    return (
        Order.objects.filter(account_id=account_id, client_order_id=client_order_id)
        .select_related("instrument")
        .first()
    )


def orders_by_client_id(*, account_id: int, client_order_ids) -> dict[str, Order]:
    rows = Order.objects.filter(account_id=account_id, client_order_id__in=list(client_order_ids))
    return {o.client_order_id: o for o in rows.select_related("instrument")}


def deal_ids_recorded(*, account_id: int, deal_ids) -> set[str]:
    return set(
        Execution.objects.filter(account_id=account_id, broker_deal_id__in=list(deal_ids)).values_list(
            "broker_deal_id", flat=True
        )
    )


def orders_unsettled(*, account_id: int, since: datetime | None, exclude) -> list[Order]:
    """The account's orders not final (NEW included) received since ``since`` (event time; all
    when None), other than ``exclude``: the ones reconciliation checks the broker still knows."""
    statuses = [OrderStatus.NEW, *OPEN_AT_BROKER]
    rows = Order.objects.filter(account_id=account_id, status__in=statuses).exclude(client_order_id__in=list(exclude))
    if since is not None:
        rows = rows.filter(created_at__gte=since)
    return list(rows.select_related("instrument"))


def positions_net(*, account_id: int) -> dict[str, object]:
    """Our net quantity per symbol for the account."""
    return {
        p.instrument.symbol: p.net_quantity
        for p in Position.objects.filter(account_id=account_id).select_related("instrument")
    }
