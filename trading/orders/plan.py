"""What an order write is: the ONE definition both writers (``trading.orders.write``) carry out.

``OrderPlan`` builds, in memory and through the order state machine, an order's life in one
transaction: the order in its final state, its fills, the positions they move (and the marks
written with them), and one audit record and one trading-event per step, each with the snapshot
of that step. Every refusal (terms that can never be valid, an invalid transition, an overfill)
is raised here, before anything is written. The writers only decide how the rows reach the
database (the ORM on SQLite; one statement on PostgreSQL) and never what they are.

Times (bitemporal): the order's stage timestamps, a fill's ``executed_at``, a position's and a
snapshot's ``as_of`` and the audit records' ``occurred_at`` are EVENT times (the step's ``at``,
the deal's time; in a replay, market time); ``recorded_at`` and ``updated_at`` are the wall
clock of the write (``recorded_at`` given to the plan).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from tradeops.audit.services import AuditEntry
from tradeops.core.clock import ensure_utc
from tradeops.core.instances import model_new
from tradeops.events import Envelope
from trading.errors import ClientOrderIdReused, ExecutionError, OrderTransitionError, OrderValidationError
from trading.models import Execution, Instrument, Order, OrderType, Position, Side, TradingAccount
from trading.order_states import InvalidOrderTransition, OrderStatus, check_transition
from trading.orders.marks import Mark, RiskFigures
from trading.orders.records import (
    action_records,
    execution_snapshot,
    order_snapshot,
    order_step_payload,
    position_snapshot,
)
from trading.position_math import PositionState, apply_fill, unrealised_pnl

PRICE_PLACES = Decimal("1E-10")
MONEY_PLACES = Decimal("1E-6")


@dataclass(frozen=True)
class OrderDraft:
    """The terms of a new order; ``at`` is when it was received (event time)."""

    client_order_id: str
    account: TradingAccount
    instrument: Instrument
    side: str
    quantity: Decimal
    at: datetime
    order_type: str = OrderType.MARKET
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    time_in_force: str = "GTC"
    algo_id: str = ""
    trader: object = None
    desk: str = ""
    signal_id: str = ""
    # W3C traceparent of the work that made the order (the signal's trace in the execution stage):
    # named in the order's audit records (``context``) and carried by its trading-events.
    traceparent: str = ""


@dataclass(frozen=True)
class OrderStep:
    """One move of the order's state machine at ``at`` (event time)."""

    to: str
    at: datetime
    reason: str = ""
    broker_order_id: str | None = None


@dataclass(frozen=True)
class FillDraft:
    """A broker deal to record as a fill; ``fee`` is our sign (a positive cost); ``executed_at``
    is the deal's time (event time)."""

    broker_deal_id: str
    quantity: Decimal
    price: Decimal
    executed_at: datetime
    fee: Decimal = Decimal(0)
    fee_currency: str = ""
    venue: str = ""
    liquidity_provider: str = ""
    arrival_mid: Decimal | None = None
    arrival_bid: Decimal | None = None  # the touch when the order arrived (None: not known)
    arrival_ask: Decimal | None = None


# ---------------------------------------------------------------- terms


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


# Django's ``Choices.values`` builds its list on every access (~30 us on the shared machine,
# twice per order): the valid values, once.
_SIDES = frozenset(Side.values)
_ORDER_TYPES = frozenset(OrderType.values)


def check_order_terms(draft: OrderDraft) -> None:
    """Refuse a new order's terms that can never be valid (OrderValidationError with a code)."""
    account, instrument = draft.account, draft.instrument
    if not draft.client_order_id:
        raise OrderValidationError("client_order_id is required (it is the idempotency key)")
    if draft.side not in _SIDES:
        raise OrderValidationError(f"side must be one of {Side.values}, got {draft.side!r}", code="invalid_side")
    if draft.order_type not in _ORDER_TYPES:
        raise OrderValidationError(f"order_type must be one of {OrderType.values}, got {draft.order_type!r}")
    if not account.is_active:
        raise OrderValidationError(f"account {account} is not active", code="account_inactive")
    if not instrument.is_active:
        raise OrderValidationError(f"instrument {instrument.symbol} is not active", code="instrument_inactive")
    check_volume(instrument=instrument, quantity=draft.quantity)
    if draft.order_type == OrderType.LIMIT:
        if draft.limit_price is None:
            raise OrderValidationError("a limit order needs limit_price", code="invalid_price")
        check_price(instrument=instrument, price=draft.limit_price, field="limit_price")
    if draft.order_type == OrderType.STOP:
        if draft.stop_price is None:
            raise OrderValidationError("a stop order needs stop_price", code="invalid_price")
        check_price(instrument=instrument, price=draft.stop_price, field="stop_price")


def check_same_terms(order: Order, draft: OrderDraft) -> None:
    """Refuse a ``client_order_id`` reused for different terms (``client_order_id_reused``)."""
    if (order.account_id, order.instrument_id, order.side, order.quantity) != (
        draft.account.pk,
        draft.instrument.pk,
        draft.side,
        Decimal(draft.quantity),
    ):
        raise ClientOrderIdReused(
            f"client_order_id {order.client_order_id} already names a different order "
            f"({order.side} {order.quantity} {order.instrument.symbol} on account {order.account_id})"
        )


# ---------------------------------------------------------------- the mutators (in memory)

_STAGE_FIELD = {OrderStatus.RISK_APPROVED: "decided_at", OrderStatus.SUBMITTED: "submitted_at"}


_DECIMAL_COLUMNS: dict[type, tuple[tuple[str, Decimal], ...]] = {}


def _decimal_columns(model: type) -> tuple[tuple[str, Decimal], ...]:
    """``model``'s Decimal fields: (attname, the quantum of its column's scale), looked up once."""
    columns = _DECIMAL_COLUMNS.get(model)
    if columns is None:
        columns = _DECIMAL_COLUMNS[model] = tuple(
            (f.attname, Decimal(1).scaleb(-f.decimal_places))
            for f in model._meta.concrete_fields
            if f.get_internal_type() == "DecimalField"
        )
    return columns


def as_stored(obj) -> None:
    """Give ``obj``'s Decimal fields the scale their column returns them with (``numeric(p, s)``
    reads back with ``s`` places; PostgreSQL rounds half away from zero), so an instance kept
    after a write snapshots exactly as the row read back would."""
    for attname, quantum in _decimal_columns(type(obj)):
        value = getattr(obj, attname)
        if value is not None:
            setattr(obj, attname, Decimal(value).quantize(quantum, ROUND_HALF_UP))


def order_apply_transition(order: Order, step: OrderStep) -> OrderStatus:
    """Move the in-memory ``order`` to ``step.to`` and stamp the stage's event time. Refuses an
    invalid move (OrderTransitionError naming both states) before changing anything."""
    before = order.status
    try:
        target = check_transition(order.status, step.to, order.client_order_id)
    except InvalidOrderTransition as exc:
        raise OrderTransitionError(str(exc), extra={"from": before, "to": str(step.to)}) from exc
    at = ensure_utc(step.at)
    order.status = target
    if target in _STAGE_FIELD:
        setattr(order, _STAGE_FIELD[target], at)
    if target == OrderStatus.REJECTED:
        order.decided_at = order.decided_at or at
        order.reject_reason = step.reason
    elif target == OrderStatus.EXPIRED:  # why it never executed, where the API and screens read it
        order.reject_reason = step.reason
    if order.is_terminal:
        order.closed_at = at
    if step.broker_order_id:
        order.broker_order_id = step.broker_order_id
    return target


def _fill_target(order: Order, quantity: Decimal) -> OrderStatus:
    return OrderStatus.FILLED if quantity == order.remaining_quantity else OrderStatus.PARTIALLY_FILLED


def execution_new(*, order: Order, fill: FillDraft, recorded_at: datetime) -> Execution:
    """A fill of ``order`` as an unsaved Execution, after refusing a fill that cannot be: a
    non-positive quantity or price (ExecutionError), more than the order has left
    (``overfill``), or an order whose status takes no fill (OrderTransitionError)."""
    quantity, price = fill.quantity, fill.price
    if quantity <= 0 or price <= 0:
        raise ExecutionError(f"fill {fill.broker_deal_id}: quantity and price must be positive ({quantity} @ {price})")
    if quantity > order.remaining_quantity:
        raise ExecutionError(
            f"fill {fill.broker_deal_id} of {quantity} exceeds the remaining {order.remaining_quantity} "
            f"of order {order.client_order_id}",
            code="overfill",
        )
    try:
        check_transition(order.status, _fill_target(order, quantity), order.client_order_id)
    except InvalidOrderTransition as exc:
        raise OrderTransitionError(str(exc)) from exc
    return model_new(  # Execution(...) without Model.__init__'s walk (tradeops/core/instances.py)
        Execution,
        order=order,
        account_id=order.account_id,
        instrument=order.instrument,  # the object, not the id: the snapshot reads its symbol
        side=order.side,
        quantity=quantity,
        price=price,
        fee=fill.fee,
        fee_currency=fill.fee_currency or order.instrument.quote_currency,
        venue=fill.venue or order.instrument.venue_mic,
        liquidity_provider=fill.liquidity_provider,
        broker_deal_id=fill.broker_deal_id,
        arrival_mid=fill.arrival_mid,
        arrival_bid=fill.arrival_bid,
        arrival_ask=fill.arrival_ask,
        executed_at=ensure_utc(fill.executed_at),
        recorded_at=recorded_at,
    )


def order_apply_fill(order: Order, execution: Execution) -> OrderStatus:
    """Apply a fill built by ``execution_new`` to the in-memory ``order`` (filled quantity,
    volume-weighted average price, fill times, status). Returns the new status."""
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
    if target == OrderStatus.FILLED:
        order.closed_at = execution.executed_at
    return target


def position_apply_fill(position: Position, execution: Execution, *, recorded_at: datetime) -> None:
    """Net a fill into the in-memory ``position`` (``trading.position_math``: quantity, average
    price, realised P&L after fees; unrealised at the mark, or the fill price before any mark)."""
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
    position.as_of = execution.executed_at
    position.updated_at = recorded_at


def position_apply_mark(position: Position, mark: Mark, *, recorded_at: datetime) -> None:
    """Mark the in-memory ``position`` to ``mark`` (unrealised P&L). Not audited: marks are
    derived data, recomputable from fills and market data."""
    if mark.price <= 0:
        raise ExecutionError(f"mark price must be positive, got {mark.price}")
    position.mark_price = mark.price
    position.unrealised_pnl = unrealised_pnl(
        PositionState(position.net_quantity, position.average_price),
        mark_price=mark.price,
        contract_size=position.instrument.contract_size,
    ).quantize(MONEY_PLACES)
    position.as_of = mark.at
    position.updated_at = recorded_at


def position_copy(row: Position) -> Position:
    """A copy of a position row to compute on (the row itself stays as read). Shallow, like
    ``copy.copy`` without Django's pickling path: the fields and the cached instrument."""
    copy = Position.__new__(Position)
    copy.__dict__.update(row.__dict__)
    state = copy._state = type(row._state)()
    state.adding, state.db = row._state.adding, row._state.db
    state.fields_cache = dict(row._state.fields_cache)
    return copy


def position_new(*, account_id: int, instrument: Instrument, recorded_at: datetime) -> Position:
    return model_new(Position, account_id=account_id, instrument=instrument, updated_at=recorded_at, as_of=None)


def positions_marked(
    bases: dict[int, Position | None], marks: dict[int, Mark], *, recorded_at: datetime
) -> dict[int, Position]:
    """Copies of the ``bases`` rows (instrument id -> row; None: no row, nothing to mark), each
    marked to its mark in ``marks`` when it has one."""
    positions = {}
    for instrument_id, base in sorted(bases.items()):
        if base is None:
            continue
        position = position_copy(base)
        mark = marks.get(instrument_id)
        if mark is not None:
            position_apply_mark(position, mark, recorded_at=recorded_at)
        positions[instrument_id] = position
    return positions


# ---------------------------------------------------------------- the plans


@dataclass
class _Action:
    action: str
    obj: object
    payload: dict | None  # None: a fill's position record, computed once the position base is known
    at: datetime
    events: list[Envelope] = field(default_factory=list)  # events appended right after this action
    # What caused it, when action, object, payload and time alone may repeat: a position netted
    # back to the same figures by two fills at one replayed instant (the fill's broker deal).
    cause: str = ""


class OrderPlan:
    """One order's write in memory. Build it with ``new`` or ``existing``, then ``transition``,
    ``fill``, ``after``; give it the positions it starts from (``positions``); the writer assigns
    ids and takes ``records()``."""

    def __init__(self, order: Order, *, created: bool, actor: str, recorded_at: datetime):
        self.order = order
        self.created = created
        self.actor = actor
        self.recorded_at = recorded_at
        self.executions: list[Execution] = []
        self.actions: list[_Action] = []
        self.marks: dict[int, Mark] = {}  # instrument id -> mark written with the order
        self.figures: RiskFigures | None = None  # the account's risk snapshot written with the order
        self.positions: dict[int, Position] = {}  # instrument id -> position row after the write
        self.position_bases: dict[int, Position | None] = {}  # instrument id -> the row it was computed from
        self.extra_events: list[Envelope] = []  # events to publish with the order (e.g. the risk decision)
        self.traceparent = ""  # the trace the order's records belong to (OrderDraft.traceparent)

    @classmethod
    def new(cls, draft: OrderDraft, *, actor: str, recorded_at: datetime, events=()) -> OrderPlan:
        """A new order in NEW, received at ``draft.at``; ``events`` (e.g. the gate's decision)
        are published right after its creation."""
        check_order_terms(draft)
        at = ensure_utc(draft.at)
        order = model_new(  # Order(...) without Model.__init__'s walk (tradeops/core/instances.py)
            Order,
            client_order_id=draft.client_order_id,
            account=draft.account,
            instrument=draft.instrument,
            side=draft.side,
            order_type=draft.order_type,
            quantity=draft.quantity,
            limit_price=draft.limit_price,
            stop_price=draft.stop_price,
            stop_loss=draft.stop_loss,
            take_profit=draft.take_profit,
            time_in_force=draft.time_in_force,
            algo_id=draft.algo_id,
            trader=draft.trader,
            desk=draft.desk,
            signal_id=draft.signal_id,
            status=OrderStatus.NEW,
            created_at=at,
            recorded_at=recorded_at,
            updated_at=recorded_at,
        )
        plan = cls(order, created=True, actor=actor, recorded_at=recorded_at)
        plan.traceparent = draft.traceparent
        plan.actions.append(_Action("order.created", order, order_snapshot(order), at, list(events)))
        as_stored(order)
        return plan

    @classmethod
    def existing(cls, order: Order, *, actor: str, recorded_at: datetime) -> OrderPlan:
        """Steps of an order already recorded. Precondition: ``order`` is the row as locked by
        the caller's transaction (its state is the row's)."""
        order.updated_at = recorded_at
        return cls(order, created=False, actor=actor, recorded_at=recorded_at)

    def transition(self, step: OrderStep) -> OrderPlan:
        before = self.order.status
        target = order_apply_transition(self.order, step)
        payload = order_step_payload(self.order, before=before, reason=step.reason)
        self.actions.append(_Action(f"order.{str(target).lower()}", self.order, payload, ensure_utc(step.at)))
        return self

    def fill(self, fill: FillDraft) -> OrderPlan:
        order = self.order
        execution = execution_new(order=order, fill=fill, recorded_at=self.recorded_at)
        before = order.status
        target = order_apply_fill(order, execution)
        at = execution.executed_at
        self.executions.append(execution)
        self.actions.append(_Action("execution.recorded", execution, execution_snapshot(execution), at))
        self.actions.append(
            _Action(f"order.{str(target).lower()}", order, order_step_payload(order, before=before), at)
        )
        self.actions.append(_Action("position.updated", execution, None, at))
        as_stored(order)
        return self

    def broker_order_id(self, broker_order_id: str, *, at: datetime) -> OrderPlan:
        """The broker's id of an order already SUBMITTED without one (reconciliation found it):
        audited (``broker_order_id.recorded``), no trading-event (the order did not move)."""
        self.order.broker_order_id = broker_order_id
        self.actions.append(_Action("broker_order_id.recorded", self.order, order_snapshot(self.order), ensure_utc(at)))
        return self

    def events(self, events) -> OrderPlan:
        """Events to publish after the last step so far."""
        if self.actions:
            self.actions[-1].events.extend(events)
        else:
            self.extra_events.extend(events)
        return self

    # ------------------------------------------------------------ positions

    @property
    def account_id(self) -> int:
        return self.order.account_id

    @property
    def instrument_ids(self) -> set[int]:
        """The positions the write changes: the filled instrument's and the marked ones."""
        ids = set(self.marks)
        if self.executions:
            ids.add(self.order.instrument_id)
        return ids

    def apply_positions(self, bases: dict[int, Position | None]) -> None:
        """Compute the positions after the write from ``bases`` (instrument id -> the row as it
        stands, None when there is none): marks first, then the fills in order. Fills the
        fills' ``position.updated`` payloads. Can be called again with other bases."""
        self.position_bases = {i: bases.get(i) for i in self.instrument_ids}
        self.positions = positions_marked(self.position_bases, self.marks, recorded_at=self.recorded_at)
        if not self.executions:
            return
        instrument_id = self.order.instrument_id
        position = self.positions.get(instrument_id)
        if position is None:
            position = self.positions[instrument_id] = position_new(
                account_id=self.order.account_id, instrument=self.order.instrument, recorded_at=self.recorded_at
            )
            mark = self.marks.get(instrument_id)
            if mark is not None:
                position_apply_mark(position, mark, recorded_at=self.recorded_at)
        fills = iter(self.executions)
        for action in self.actions:
            if action.action == "position.updated":
                fill = next(fills)
                position_apply_fill(position, fill, recorded_at=self.recorded_at)
                as_stored(position)
                action.obj, action.payload = position, position_snapshot(position)
                action.cause = f"deal:{fill.account_id}:{fill.broker_deal_id}"

    # ------------------------------------------------------------ records

    def records(self) -> tuple[list[AuditEntry], list[Envelope]]:
        """Every step's audit entry and trading-event, plus the events handed in, in order.
        Precondition: ids assigned (the records' event ids derive from the objects' ids)."""
        entries: list[AuditEntry] = []
        events: list[Envelope] = list(self.extra_events)
        for action in self.actions:
            entry, event = action_records(
                action=action.action,
                actor=self.actor,
                obj=action.obj,
                payload=action.payload,
                at=action.at,
                traceparent=self.traceparent,
                cause=action.cause,
            )
            entries.append(entry)
            if event is not None:
                events.append(event)
            events.extend(action.events)
        return entries, events


class MarksPlan:
    """An account's marks and risk snapshot written on their own, without an order: the
    execution worker's cadence and shutdown writes (``account_state_save``). Derived data: no
    audit record, no event."""

    order = None
    executions: tuple = ()

    def __init__(self, account_id: int, *, marks: dict[int, Mark], figures: RiskFigures | None, recorded_at: datetime):
        self.account_id = account_id
        self.marks = dict(marks)
        self.figures = figures
        self.recorded_at = recorded_at
        self.positions: dict[int, Position] = {}
        self.position_bases: dict[int, Position | None] = {}

    @property
    def instrument_ids(self) -> set[int]:
        return set(self.marks)

    def apply_positions(self, bases: dict[int, Position | None]) -> None:
        self.position_bases = {i: bases.get(i) for i in self.instrument_ids}
        self.positions = positions_marked(self.position_bases, self.marks, recorded_at=self.recorded_at)
