"""Writers of the trading system of record. Keyword-only, atomic, the only path to change state.

Locking (Saleor's rule): an execution locks its order row, then the position row; positions are
always locked by (account, instrument) through ``_position_for_update`` so concurrent fills on
one position serialise instead of losing updates.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from django.db import IntegrityError, transaction

from tradeops.core.clock import ensure_utc, utcnow
from trading.errors import ExecutionError, OrderTransitionError, OrderValidationError
from trading.models import Execution, Instrument, Order, OrderType, Position, Side, TradingAccount
from trading.order_states import InvalidOrderTransition, OrderStatus, check_transition
from trading.position_math import PositionState, apply_fill, unrealised_pnl

PRICE_PLACES = Decimal("1E-10")
MONEY_PLACES = Decimal("1E-6")


def _emit(*, action: str, actor: str, obj: Order | Execution | Position, payload: dict, at: datetime) -> None:
    """Integration point for the audit trail and the outbox; called inside the writer's transaction."""
    from trading import recording  # late import: recording wires core services (audit, outbox)

    recording.record(action=action, actor=actor, obj=obj, payload=payload, at=at)


def _atomic_writer(func):
    """``transaction.atomic`` for the writers below, without the savepoint inside a
    ``recording.batched()`` block (the execution worker's one transaction per order): that block
    is all-or-nothing, so a failure in a writer dooms the caller's whole transaction (Django
    marks it for rollback) instead of rolling back to a savepoint nobody would use. Outside a
    block, exactly ``transaction.atomic`` (a savepoint when nested)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        from trading import recording

        with transaction.atomic(savepoint=not recording.in_batch()):
            return func(*args, **kwargs)

    return wrapper


def _as_stored(obj) -> None:
    """Give ``obj``'s Decimal fields the scale their column returns them with (``numeric(p, s)``
    reads back with ``s`` places; PostgreSQL rounds half away from zero), so an instance kept
    after an INSERT snapshots exactly as the row read back would."""
    for field in obj._meta.concrete_fields:
        if field.get_internal_type() == "DecimalField":
            value = getattr(obj, field.attname)
            if value is not None:
                setattr(
                    obj, field.attname, Decimal(value).quantize(Decimal(1).scaleb(-field.decimal_places), ROUND_HALF_UP)
                )


def _lock_order(pk: int) -> Order:
    """The order row locked ``FOR UPDATE`` (instrument joined, only the order row locked). Inside
    a ``recording.batched()`` block a row this transaction already inserted or locked is reused
    from the block's note (``recording.locked_row``) instead of being read and locked again."""
    from trading import recording

    locked = recording.locked_row(Order, pk)
    if locked is None:
        locked = Order.objects.select_for_update(of=("self",)).select_related("instrument").get(pk=pk)
        recording.remember_locked(locked)
    return locked


def check_volume(*, instrument: Instrument, quantity: Decimal) -> None:
    """Refuse a volume outside the instrument's min/max or off its volume step."""
    if quantity <= 0:
        raise OrderValidationError(f"quantity must be positive, got {quantity}", code="invalid_volume")
    if quantity < instrument.min_volume or quantity > instrument.max_volume:
        raise OrderValidationError(
            f"{instrument.symbol}: volume {quantity} outside [{instrument.min_volume}, {instrument.max_volume}]",
            code="invalid_volume",
        )
    if (quantity - instrument.min_volume) % instrument.volume_step != 0:
        raise OrderValidationError(
            f"{instrument.symbol}: volume {quantity} is not a multiple of the step {instrument.volume_step}",
            code="invalid_volume",
        )


def check_price(*, instrument: Instrument, price: Decimal, field: str) -> None:
    if price <= 0:
        raise OrderValidationError(f"{field} must be positive, got {price}", code="invalid_price")
    if price % instrument.tick_size != 0:
        raise OrderValidationError(
            f"{instrument.symbol}: {field} {price} is not on the tick grid {instrument.tick_size}",
            code="invalid_price",
        )


def check_order_terms(
    *,
    account: TradingAccount,
    instrument: Instrument,
    side: str,
    quantity: Decimal,
    order_type: str,
    limit_price: Decimal | None,
    stop_price: Decimal | None,
) -> None:
    """Refuse a new order's terms that can never be valid (OrderValidationError with a code)."""
    if side not in Side.values:
        raise OrderValidationError(f"side must be one of {Side.values}, got {side!r}", code="invalid_side")
    if order_type not in OrderType.values:
        raise OrderValidationError(f"order_type must be one of {OrderType.values}, got {order_type!r}")
    if not account.is_active:
        raise OrderValidationError(f"account {account} is not active", code="account_inactive")
    if not instrument.is_active:
        raise OrderValidationError(f"instrument {instrument.symbol} is not active", code="instrument_inactive")
    check_volume(instrument=instrument, quantity=quantity)
    if order_type == OrderType.LIMIT:
        if limit_price is None:
            raise OrderValidationError("a limit order needs limit_price", code="invalid_price")
        check_price(instrument=instrument, price=limit_price, field="limit_price")
    if order_type == OrderType.STOP:
        if stop_price is None:
            raise OrderValidationError("a stop order needs stop_price", code="invalid_price")
        check_price(instrument=instrument, price=stop_price, field="stop_price")


def order_new(
    *,
    client_order_id: str,
    account: TradingAccount,
    instrument: Instrument,
    side: str,
    quantity: Decimal,
    at: datetime,
    order_type: str = OrderType.MARKET,
    limit_price: Decimal | None = None,
    stop_price: Decimal | None = None,
    stop_loss: Decimal | None = None,
    take_profit: Decimal | None = None,
    time_in_force: str = "GTC",
    algo_id: str = "",
    trader=None,
    desk: str = "",
    signal_id: str = "",
) -> Order:
    """A new order in NEW received at ``at``, unsaved, after ``check_order_terms`` refused
    terms that can never be valid. Shared by ``order_create`` and ``trading.order_commit``."""
    check_order_terms(
        account=account,
        instrument=instrument,
        side=side,
        quantity=quantity,
        order_type=order_type,
        limit_price=limit_price,
        stop_price=stop_price,
    )
    at = ensure_utc(at)
    return Order(
        client_order_id=client_order_id,
        account=account,
        instrument=instrument,
        side=side,
        order_type=order_type,
        quantity=quantity,
        limit_price=limit_price,
        stop_price=stop_price,
        stop_loss=stop_loss,
        take_profit=take_profit,
        time_in_force=time_in_force,
        algo_id=algo_id,
        trader=trader,
        desk=desk,
        signal_id=signal_id,
        status=OrderStatus.NEW,
        created_at=at,
        updated_at=at,
    )


def order_step_record(order: Order, *, target: str, before: str, reason: str | None = None) -> tuple[str, dict]:
    """The audit action and payload of ``order`` having moved from ``before`` to ``target``:
    ``order.<status>`` with the order's snapshot, the previous status and, for a transition
    (not a fill), its reason. Shared by the services and ``trading.order_commit``."""
    payload = {**order_snapshot(order), "from_status": before}
    if reason is not None:
        payload["reason"] = reason
    return f"order.{str(target).lower()}", payload


@_atomic_writer
def order_create(
    *,
    client_order_id: str,
    account: TradingAccount,
    instrument: Instrument,
    side: str,
    quantity: Decimal,
    order_type: str = OrderType.MARKET,
    limit_price: Decimal | None = None,
    stop_price: Decimal | None = None,
    stop_loss: Decimal | None = None,
    take_profit: Decimal | None = None,
    time_in_force: str = "GTC",
    algo_id: str = "",
    trader=None,
    desk: str = "",
    signal_id: str = "",
    at: datetime | None = None,
    actor: str = "system",
) -> tuple[Order, bool]:
    """Create an order in NEW, or return the existing one for the same ``client_order_id``.

    Returns ``(order, created)``. Idempotent: the same key never makes two orders, and a key
    reused with different terms is refused (``client_order_id_reused``).
    """
    if not client_order_id:
        raise OrderValidationError("client_order_id is required (it is the idempotency key)")
    existing = Order.objects.filter(client_order_id=client_order_id).first()
    if existing is not None:
        _check_same_terms(existing, account=account, instrument=instrument, side=side, quantity=quantity)
        return existing, False
    order = order_new(
        client_order_id=client_order_id,
        account=account,
        instrument=instrument,
        side=side,
        quantity=quantity,
        order_type=order_type,
        limit_price=limit_price,
        stop_price=stop_price,
        stop_loss=stop_loss,
        take_profit=take_profit,
        time_in_force=time_in_force,
        algo_id=algo_id,
        trader=trader,
        desk=desk,
        signal_id=signal_id,
        at=ensure_utc(at) if at else utcnow(),
    )
    now = order.created_at
    try:
        with transaction.atomic():
            order.save(force_insert=True)
    except IntegrityError:
        # A concurrent writer created the same key between our read and insert.
        order = Order.objects.get(client_order_id=client_order_id)
        _check_same_terms(order, account=account, instrument=instrument, side=side, quantity=quantity)
        return order, False
    _emit(action="order.created", actor=actor, obj=order, payload=order_snapshot(order), at=now)
    from trading import recording

    if recording.in_batch():
        # Inserted by this transaction: no other can see or change it before the commit.
        _as_stored(order)
        recording.remember_locked(order)
    return order, True


def _check_same_terms(order: Order, *, account, instrument, side, quantity) -> None:
    if (order.account_id, order.instrument_id, order.side, order.quantity) != (
        account.pk,
        instrument.pk,
        side,
        Decimal(quantity),
    ):
        raise OrderValidationError(
            f"client_order_id {order.client_order_id} already names a different order "
            f"({order.side} {order.quantity} {order.instrument.symbol} on account {order.account_id})",
            code="client_order_id_reused",
        )


_STAGE_FIELD = {
    OrderStatus.RISK_APPROVED: "decided_at",
    OrderStatus.SUBMITTED: "submitted_at",
}


@_atomic_writer
def order_transition(
    *,
    order: Order,
    to: str,
    at: datetime | None = None,
    reason: str = "",
    broker_order_id: str | None = None,
    actor: str = "system",
) -> Order:
    """Move an order to ``to`` under a row lock. An invalid move raises OrderTransitionError
    naming both states, and nothing changes. Stamps the stage timestamp (µs, UTC)."""
    # The snapshot below reads the instrument's symbol: join it (lock only the order row).
    locked = _lock_order(order.pk)
    before = locked.status
    now = ensure_utc(at) if at else utcnow()
    target = order_apply_transition(locked, to=to, at=now, reason=reason, broker_order_id=broker_order_id)
    locked.save()
    action, payload = order_step_record(locked, target=target, before=before, reason=reason)
    _emit(action=action, actor=actor, obj=locked, payload=payload, at=now)
    _copy_state(src=locked, dst=order)
    return locked


def order_apply_transition(
    order: Order, *, to: str, at: datetime, reason: str = "", broker_order_id: str | None = None
) -> OrderStatus:
    """Move the in-memory ``order`` to ``to`` and stamp the stage's timestamp; the caller saves
    it. Refuses an invalid move (OrderTransitionError naming both states) before changing
    anything. Returns the target status. Shared by ``order_transition`` and ``trading.order_commit``."""
    before = order.status
    try:
        target = check_transition(order.status, to, order.client_order_id)
    except InvalidOrderTransition as exc:
        raise OrderTransitionError(str(exc), extra={"from": before, "to": str(to)}) from exc
    order.status = target
    order.updated_at = at
    if target in _STAGE_FIELD:
        setattr(order, _STAGE_FIELD[target], at)
    if target == OrderStatus.REJECTED:
        order.decided_at = order.decided_at or at
        order.reject_reason = reason
    if order.is_terminal:
        order.closed_at = at
    if broker_order_id:
        order.broker_order_id = broker_order_id
    return target


def _copy_state(*, src: Order, dst: Order) -> None:
    if dst is not src:
        dst.__dict__.update({k: v for k, v in src.__dict__.items() if not k.startswith("_")})


def _position_for_update(*, account_id: int, instrument_id: int, at: datetime) -> Position:
    """Lock (creating if needed) the position row. Caller is inside a transaction."""
    position = Position.objects.select_for_update().filter(account_id=account_id, instrument_id=instrument_id).first()
    if position is not None:
        return position
    try:
        with transaction.atomic():
            Position.objects.create(account_id=account_id, instrument_id=instrument_id, updated_at=at)
    except IntegrityError:
        pass  # created concurrently; lock theirs
    return Position.objects.select_for_update().get(account_id=account_id, instrument_id=instrument_id)


@dataclass(frozen=True)
class FillResult:
    execution: Execution
    order: Order
    position: Position
    created: bool


@_atomic_writer
def execution_record(
    *,
    order: Order,
    quantity: Decimal,
    price: Decimal,
    broker_deal_id: str,
    executed_at: datetime,
    fee: Decimal = Decimal(0),
    fee_currency: str = "",
    venue: str = "",
    liquidity_provider: str = "",
    arrival_mid: Decimal | None = None,
    actor: str = "system",
) -> FillResult:
    """Record a fill: the execution row, the order's filled quantity and status, and the
    position (net quantity, average price, realised P&L), all in one transaction.

    Idempotent by ``(account, broker_deal_id)``: a deal already recorded returns it with
    ``created=False`` and changes nothing. Locks the order row, then the position row.
    """
    executed_at = ensure_utc(executed_at)
    locked = _lock_order(order.pk)
    existing = Execution.objects.filter(account_id=locked.account_id, broker_deal_id=broker_deal_id).first()
    if existing is not None:
        position = Position.objects.get(account_id=locked.account_id, instrument_id=locked.instrument_id)
        return FillResult(existing, locked, position, False)
    now = utcnow()
    execution = execution_new(
        order=locked,
        quantity=quantity,
        price=price,
        broker_deal_id=broker_deal_id,
        executed_at=executed_at,
        fee=fee,
        fee_currency=fee_currency,
        venue=venue,
        liquidity_provider=liquidity_provider,
        arrival_mid=arrival_mid,
        recorded_at=now,
    )
    previous_status = locked.status
    target = order_apply_fill(locked, execution=execution, at=now)
    execution.save(force_insert=True)
    locked.save()

    position = _position_for_update(account_id=locked.account_id, instrument_id=locked.instrument_id, at=now)
    position.instrument = locked.instrument  # same row; saves a query when the snapshot reads the symbol
    position_apply_fill(position, execution=execution, at=now)
    position.save()

    _emit(action="execution.recorded", actor=actor, obj=execution, payload=execution_snapshot(execution), at=now)
    action, payload = order_step_record(locked, target=target, before=previous_status)
    _emit(action=action, actor=actor, obj=locked, payload=payload, at=now)
    _emit(action="position.updated", actor=actor, obj=position, payload=position_snapshot(position), at=now)
    _as_stored(locked)  # the quantity and average price as the row now holds them (it may be reused)
    _copy_state(src=locked, dst=order)
    return FillResult(execution, locked, position, True)


def execution_new(
    *,
    order: Order,
    quantity: Decimal,
    price: Decimal,
    broker_deal_id: str,
    executed_at: datetime,
    recorded_at: datetime,
    fee: Decimal = Decimal(0),
    fee_currency: str = "",
    venue: str = "",
    liquidity_provider: str = "",
    arrival_mid: Decimal | None = None,
) -> Execution:
    """A fill of ``order`` as an unsaved Execution, after refusing a fill that cannot be: a
    non-positive quantity or price (ExecutionError), more than the order has left
    (``overfill``), or an order whose status takes no fill (OrderTransitionError)."""
    if quantity <= 0 or price <= 0:
        raise ExecutionError(f"fill {broker_deal_id}: quantity and price must be positive ({quantity} @ {price})")
    if quantity > order.remaining_quantity:
        raise ExecutionError(
            f"fill {broker_deal_id} of {quantity} exceeds the remaining {order.remaining_quantity} "
            f"of order {order.client_order_id}",
            code="overfill",
        )
    try:
        check_transition(order.status, _fill_target(order, quantity), order.client_order_id)
    except InvalidOrderTransition as exc:
        raise OrderTransitionError(str(exc)) from exc
    return Execution(
        order=order,
        account_id=order.account_id,
        instrument=order.instrument,  # the object, not the id: the snapshot reads its symbol
        side=order.side,
        quantity=quantity,
        price=price,
        fee=fee,
        fee_currency=fee_currency or order.instrument.quote_currency,
        venue=venue or order.instrument.venue_mic,
        liquidity_provider=liquidity_provider,
        broker_deal_id=broker_deal_id,
        arrival_mid=arrival_mid,
        executed_at=ensure_utc(executed_at),
        recorded_at=recorded_at,
    )


def _fill_target(order: Order, quantity: Decimal) -> OrderStatus:
    return OrderStatus.FILLED if quantity == order.remaining_quantity else OrderStatus.PARTIALLY_FILLED


def order_apply_fill(order: Order, *, execution: Execution, at: datetime) -> OrderStatus:
    """Apply a fill built by ``execution_new`` to the in-memory ``order`` (filled quantity,
    volume-weighted average price, fill times, status); the caller saves it. Returns the new status."""
    target = _fill_target(order, execution.quantity)
    filled_before = order.filled_quantity
    order.filled_quantity = filled_before + execution.quantity
    previous_avg = order.average_fill_price or Decimal(0)
    order.average_fill_price = (
        (previous_avg * filled_before + execution.price * execution.quantity) / order.filled_quantity
    ).quantize(PRICE_PLACES)
    order.first_fill_at = order.first_fill_at or execution.executed_at
    order.last_fill_at = execution.executed_at
    order.status = target
    order.updated_at = at
    if target == OrderStatus.FILLED:
        order.closed_at = execution.executed_at
    return target


def position_apply_fill(position: Position, *, execution: Execution, at: datetime) -> None:
    """Net a fill into the in-memory ``position`` (``trading.position_math``: quantity, average
    price, realised P&L after fees; unrealised at the last mark, or the fill price before any
    mark). Precondition: the caller holds the row's lock and saves it."""
    contract_size = execution.instrument.contract_size
    signed = execution.quantity if execution.side == Side.BUY else -execution.quantity
    state = apply_fill(
        PositionState(position.net_quantity, position.average_price, position.realised_pnl),
        signed_quantity=signed,
        price=execution.price,
        contract_size=contract_size,
        fee=execution.fee,
    )
    position.net_quantity = state.net_quantity
    position.average_price = state.average_price.quantize(PRICE_PLACES)
    position.realised_pnl = state.realised_pnl.quantize(MONEY_PLACES)
    position.unrealised_pnl = unrealised_pnl(
        PositionState(position.net_quantity, position.average_price),
        mark_price=position.mark_price or execution.price,
        contract_size=contract_size,
    ).quantize(MONEY_PLACES)
    position.updated_at = at


@transaction.atomic
def position_mark(*, account: TradingAccount, instrument: Instrument, mark_price: Decimal) -> Position:
    """Mark a position to the latest quote (unrealised P&L). Not audited per tick: marks are
    derived data, recomputable from fills and market data."""
    if mark_price <= 0:
        raise ExecutionError(f"mark price must be positive, got {mark_price}")
    now = utcnow()
    position = _position_for_update(account_id=account.pk, instrument_id=instrument.pk, at=now)
    position.mark_price = mark_price
    position.unrealised_pnl = unrealised_pnl(
        PositionState(position.net_quantity, position.average_price),
        mark_price=mark_price,
        contract_size=instrument.contract_size,
    ).quantize(MONEY_PLACES)
    position.updated_at = now
    position.save(update_fields=["mark_price", "unrealised_pnl", "updated_at"])
    return position


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _dec(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def order_snapshot(order: Order) -> dict:
    """The order as recorded in audit records and events (strings for Decimals, ISO times)."""
    return {
        "client_order_id": order.client_order_id,
        "broker_order_id": order.broker_order_id,
        "account_id": order.account_id,
        "instrument": order.instrument.symbol,
        "side": order.side,
        "order_type": order.order_type,
        "quantity": _dec(order.quantity),
        "filled_quantity": _dec(order.filled_quantity),
        "average_fill_price": _dec(order.average_fill_price),
        "limit_price": _dec(order.limit_price),
        "stop_price": _dec(order.stop_price),
        "time_in_force": order.time_in_force,
        "algo_id": order.algo_id,
        "trader_id": order.trader_id,
        "desk": order.desk,
        "signal_id": order.signal_id,
        "status": order.status,
        "reject_reason": order.reject_reason,
        "created_at": _iso(order.created_at),
        "decided_at": _iso(order.decided_at),
        "submitted_at": _iso(order.submitted_at),
        "first_fill_at": _iso(order.first_fill_at),
        "last_fill_at": _iso(order.last_fill_at),
        "closed_at": _iso(order.closed_at),
    }


def execution_snapshot(execution: Execution) -> dict:
    return {
        "broker_deal_id": execution.broker_deal_id,
        "client_order_id": execution.order.client_order_id,
        "account_id": execution.account_id,
        "instrument": execution.instrument.symbol,
        "side": execution.side,
        "quantity": _dec(execution.quantity),
        "price": _dec(execution.price),
        "fee": _dec(execution.fee),
        "fee_currency": execution.fee_currency,
        "venue": execution.venue,
        "liquidity_provider": execution.liquidity_provider,
        "arrival_mid": _dec(execution.arrival_mid),
        "executed_at": _iso(execution.executed_at),
    }


def position_snapshot(position: Position) -> dict:
    return {
        "account_id": position.account_id,
        "instrument": position.instrument.symbol,
        "net_quantity": _dec(position.net_quantity),
        "average_price": _dec(position.average_price),
        "realised_pnl": _dec(position.realised_pnl),
        "unrealised_pnl": _dec(position.unrealised_pnl),
        "mark_price": _dec(position.mark_price),
    }


@transaction.atomic
def instrument_upsert(*, symbol: str, **spec) -> tuple[Instrument, bool]:
    """Create or update an instrument specification by symbol."""
    instrument, created = Instrument.objects.update_or_create(symbol=symbol, defaults=spec)
    return instrument, created


@transaction.atomic
def account_upsert(*, mt5_server: str, mt5_login: int, **fields) -> tuple[TradingAccount, bool]:
    """Create or update a trading account by its MT5 login and server."""
    from tradeops.core.identifiers import lei_is_valid

    lei = fields.get("firm_lei", "")
    if lei and not lei_is_valid(lei):
        raise OrderValidationError(f"firm LEI {lei!r} fails the ISO 17442 check digits", code="invalid_lei")
    return TradingAccount.objects.update_or_create(mt5_server=mt5_server, mt5_login=mt5_login, defaults=fields)
