"""Readers of the trading system of record."""

from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet

from tradeops.api.matrix import role_may, visible_to
from tradeops.audit.models import AuditRecord
from tradeops.core.db_router import read_only
from tradeops.core.errors import NotFound
from tradeops.observability.cache import cached
from trading.models import Execution, Instrument, Order, Position, ReplayCheckpoint, TradingAccount
from trading.order_states import UNEXECUTED
from trading.orders.requests import OrderRequestResult, order_request_event_id, order_request_result


def instrument_get(*, symbol: str) -> Instrument:
    """The instrument (reference data: cached, invalidated when an instrument is saved)."""

    def load() -> Instrument:
        try:
            return Instrument.objects.get(symbol=symbol)
        except Instrument.DoesNotExist:
            raise NotFound(f"no instrument with symbol {symbol!r}", code="instrument_not_found") from None

    return cached("instruments", f"symbol:{symbol}", load)


def instruments_active() -> dict[str, Instrument]:
    """Active instruments by symbol (cached as ``instrument_get``)."""
    return dict(
        cached("instruments", "active", lambda: {i.symbol: i for i in Instrument.objects.filter(is_active=True)})
    )


def replay_checkpoint_get(*, symbol: str, timeframe: str) -> ReplayCheckpoint | None:
    """How far replays of ``symbol``/``timeframe`` got (``ReplayCheckpoint``); None before any."""
    return ReplayCheckpoint.objects.filter(symbol=symbol, timeframe=timeframe).first()


def feature_time_recorded(*, symbol: str) -> datetime | None:
    """The market time of the newest feature vector the audit trail holds for ``symbol`` (its
    bar's close): how far a replay from before replay checkpoints got (``workers.replay_checkpoint``)."""
    newest = (
        AuditRecord.objects.filter(action="feature.vector", object_type="features", object_id__startswith=f"{symbol}:")
        .order_by("-occurred_at")
        .values_list("occurred_at", flat=True)
        .first()
    )
    return newest


def instrument_list(*, active_only: bool = True) -> QuerySet[Instrument]:
    qs = Instrument.objects.all()
    return qs.filter(is_active=True) if active_only else qs


def account_list(*, active_only: bool = True) -> QuerySet[TradingAccount]:
    qs = TradingAccount.objects.all()
    return qs.filter(is_active=True) if active_only else qs


def order_get(*, client_order_id: str) -> Order:
    try:
        return Order.objects.select_related("account", "instrument").get(client_order_id=client_order_id)
    except Order.DoesNotExist:
        raise NotFound(f"no order with client_order_id {client_order_id!r}", code="order_not_found") from None


def order_list(
    *,
    account: TradingAccount | None = None,
    instrument: Instrument | None = None,
    status: str | None = None,
    algo_id: str | None = None,
) -> QuerySet[Order]:
    qs = Order.objects.select_related("account", "instrument")
    if account is not None:
        qs = qs.filter(account=account)
    if instrument is not None:
        qs = qs.filter(instrument=instrument)
    if status:
        qs = qs.filter(status=status)
    if algo_id:
        qs = qs.filter(algo_id=algo_id)
    return qs


def order_list_unexecuted(**filters) -> QuerySet[Order]:
    """Orders the kill switch must cancel (RTS 6 Art. 12): not final and not fully executed."""
    return order_list(**filters).filter(status__in=[s.value for s in UNEXECUTED])


@read_only
def execution_list(*, order: Order | None = None, account: TradingAccount | None = None) -> QuerySet[Execution]:
    qs = Execution.objects.select_related("order", "instrument")
    if order is not None:
        qs = qs.filter(order=order)
    if account is not None:
        qs = qs.filter(account=account)
    return qs


def position_get(*, account: TradingAccount, instrument: Instrument) -> Position | None:
    return Position.objects.filter(account=account, instrument=instrument).first()


@read_only
def position_list(*, account: TradingAccount | None = None, open_only: bool = False) -> QuerySet[Position]:
    qs = Position.objects.select_related("account", "instrument")
    if account is not None:
        qs = qs.filter(account=account)
    if open_only:
        qs = qs.exclude(net_quantity=0)
    return qs


# ---------------------------------------------------------------- what a user may see (tradeops.api.matrix)


def _visible_get(qs: QuerySet, *, code: str, what: str, **lookup):
    try:
        return qs.get(**lookup)
    except (qs.model.DoesNotExist, ValueError):
        raise NotFound(f"no {what} {next(iter(lookup.values()))!r}", code=code) from None


def instruments_visible_to(*, user) -> QuerySet[Instrument]:
    return visible_to(Instrument.objects.all(), user=user, resource="instruments")


def instrument_visible_get(*, user, symbol: str) -> Instrument:
    return _visible_get(
        instruments_visible_to(user=user), code="instrument_not_found", what="instrument", symbol=symbol
    )


def accounts_visible_to(*, user) -> QuerySet[TradingAccount]:
    """Accounts with their latest risk snapshot (equity, drawdown, trading state)."""
    return visible_to(TradingAccount.objects.select_related("risk_snapshot"), user=user, resource="accounts")


def account_visible_get(*, user, pk: int) -> TradingAccount:
    return _visible_get(accounts_visible_to(user=user), code="account_not_found", what="account", pk=pk)


def orders_visible_to(*, user) -> QuerySet[Order]:
    return visible_to(Order.objects.select_related("account", "instrument", "trader"), user=user, resource="orders")


def order_visible_get(*, user, client_order_id: str) -> Order:
    return _visible_get(
        orders_visible_to(user=user), code="order_not_found", what="order", client_order_id=client_order_id
    )


def order_request_visible_get(*, user, client_order_id: str) -> OrderRequestResult:
    """An order requested over the API and what became of it (its order once the execution
    worker wrote it), for a user who may read orders."""
    record = None
    if role_may(user, "orders", "read"):
        record = AuditRecord.objects.filter(event_id=order_request_event_id(client_order_id)).first()
    if record is None:
        raise NotFound(f"no order request {client_order_id!r}", code="order_request_not_found")
    return order_request_result(record)


def executions_visible_to(*, user) -> QuerySet[Execution]:
    return visible_to(Execution.objects.select_related("order", "instrument"), user=user, resource="executions")


def positions_visible_to(*, user) -> QuerySet[Position]:
    """Positions with their P&L (realised, and unrealised at the last mark), the account's name and
    the instrument's symbol and quote currency (the P&L currency); the rest of the account and
    instrument rows is not read (a page of 100 positions reads 3 x 100 rows otherwise)."""
    qs = Position.objects.select_related("account", "instrument").only(
        *(f.name for f in Position._meta.concrete_fields),
        "account__name",
        "instrument__symbol",
        "instrument__quote_currency",
    )
    return visible_to(qs, user=user, resource="positions")
