"""The order path's writers: the only way an order, a fill or a position changes.

Every service builds an ``OrderPlan`` (``trading.orders.plan``: what is written) and hands it to
``trading.orders.write`` (how it reaches the database); audit records and trading-events go
through the transaction's ``Recorder`` (``tradeops.recorder``). Keyword-only; a service called
without ``recorder`` writes in a transaction of its own.

- ``order_commit``: a new order and everything that happened to it on its way to the broker and
  back (decision, submission, fills, the position, the account's marks and risk snapshot) in ONE
  transaction; on PostgreSQL in one statement. The execution worker's writer; reconciliation
  records a recovered order with it too.
- ``order_create``: a new order in NEW (idempotent by ``client_order_id``).
- ``order_transition``, ``execution_record``: a later step of an existing order (a cancel, a
  resting order's fill, reconciliation), under the order row's lock.
- ``account_state_save``: an account's marks and risk snapshot alone (the worker's cadence).

Locking (Saleor's rule): the order row, then the position rows, then the audit chain head.
Regulation: RTS 6 Art. 17 (one record per order, settled with the broker), 2017/565 Art. 72
(the audit trail), RTS 25 (event times to the microsecond).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db import connection

from tradeops.core.clock import utcnow
from tradeops.events import Envelope
from tradeops.recorder import Recorder, recording
from trading.models import Execution, Instrument, Order, OrderType, Position, TradingAccount
from trading.orders import write
from trading.orders.marks import AccountState
from trading.orders.plan import FillDraft, MarksPlan, OrderDraft, OrderPlan, OrderStep, check_same_terms
from trading.orders.write import DEALS_RECORDED, EXISTS, Written


@dataclass(frozen=True)
class OrderCommit:
    """What ``order_commit`` wrote. ``created`` False: the ``client_order_id`` existed and nothing
    was written (``order`` is the existing one). ``fills``: the fills recorded. ``events``: the
    outbox events written, in order (for in-process consumers). ``positions``: the position rows
    as written (instrument id -> row). ``one_statement``: which writer."""

    order: Order
    created: bool
    fills: tuple[FillDraft, ...] = ()
    events: tuple[Envelope, ...] = ()
    positions: dict[int, Position] = field(default_factory=dict, repr=False)
    one_statement: bool = False
    audit_sequences: tuple[int, ...] = field(default=(), repr=False)


@contextmanager
def _writing(recorder: Recorder | None) -> Iterator[Recorder]:
    """The transaction a new-order write runs in: none of its own on PostgreSQL outside a
    transaction (the one statement is its own: one round trip, one commit), else
    ``recording``'s."""
    if recorder is None and write.one_statement_available() and not connection.in_atomic_block:
        recorder = Recorder()
        yield recorder
        if recorder.entries or recorder.events:  # nothing drained them (a refused write wrote nothing)
            with recording(recorder):
                recorder.flush()
        return
    with recording(recorder) as recorder:
        yield recorder


def order_commit(
    *,
    draft: OrderDraft,
    steps: Sequence[OrderStep] = (),
    fills: Sequence[FillDraft] = (),
    after_fills: Sequence[OrderStep] = (),
    events: Sequence[Envelope] = (),
    actor: str = "system",
    state: AccountState | None = None,
    recorder: Recorder | None = None,
) -> OrderCommit:
    """Create the order, apply ``steps``, record ``fills`` (order status, position), apply
    ``after_fills``, and publish ``events`` (e.g. the risk decision) right after the order's
    creation: one transaction, one audit record and one trading-event per step. With ``state``
    (the execution worker's view of the account) the account's pending marks and its risk
    snapshot are written in the same transaction, and the position rows it holds spare reading
    them; ``state`` is updated with what was written.

    Idempotent by ``client_order_id``: an existing order is returned with ``created=False`` and
    nothing is written. A fill whose broker deal is already recorded (it cannot be this order's)
    is left out. Refuses what the state machine refuses, before writing anything."""
    recorded_at = utcnow()
    fills = list(fills)
    while True:
        plan = OrderPlan.new(draft, actor=actor, recorded_at=recorded_at, events=events)
        for step in steps:
            plan.transition(step)
        for fill in fills:
            plan.fill(fill)
        for step in after_fills:
            plan.transition(step)
        if state is not None:
            plan.marks = dict(state.pending)
            plan.figures = None if state.figures_written else state.figures
        with _writing(recorder) as rec:
            written = write.plan_write(plan, recorder=rec, rows=state.rows if state is not None else None)
        if written.status == DEALS_RECORDED:
            fills = [f for f in fills if f.broker_deal_id not in written.deal_ids]
            continue
        if written.status == EXISTS:
            return OrderCommit(order=written.order, created=False)
        break
    if state is not None:
        state.written(written.positions, marks=plan.marks, figures=plan.figures)
    return OrderCommit(
        order=plan.order,
        created=True,
        fills=tuple(fills),
        events=written.events,
        positions=written.positions,
        one_statement=written.one_statement,
        audit_sequences=written.audit_sequences,
    )


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
    recorder: Recorder | None = None,
) -> tuple[Order, bool]:
    """Create an order in NEW received at ``at`` (event time; now when not given), or return
    the existing one for the same ``client_order_id``. Returns ``(order, created)``. Idempotent:
    the same key never makes two orders, and a key reused with different terms is refused
    (``client_order_id_reused``)."""
    draft = OrderDraft(
        client_order_id=client_order_id,
        account=account,
        instrument=instrument,
        side=side,
        quantity=quantity,
        at=at or utcnow(),
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
    )
    written = order_commit(draft=draft, actor=actor, recorder=recorder)
    if not written.created:
        check_same_terms(written.order, draft)
    return written.order, written.created


def _lock_order(pk: int) -> Order:
    """The order row locked ``FOR UPDATE`` (instrument joined, only the order row locked)."""
    return Order.objects.select_for_update(of=("self",)).select_related("instrument").get(pk=pk)


def _copy_state(*, src: Order, dst: Order) -> None:
    if dst is not src:
        dst.__dict__.update({k: v for k, v in src.__dict__.items() if not k.startswith("_")})


def order_transition(
    *,
    order: Order,
    to: str,
    at: datetime | None = None,
    reason: str = "",
    broker_order_id: str | None = None,
    actor: str = "system",
    recorder: Recorder | None = None,
) -> Order:
    """Move an order to ``to`` at ``at`` (event time; now when not given) under a row lock. An
    invalid move raises OrderTransitionError naming both states, and nothing changes."""
    with recording(recorder) as rec:
        locked = _lock_order(order.pk)
        plan = OrderPlan.existing(locked, actor=actor, recorded_at=utcnow())
        plan.transition(OrderStep(to, at or utcnow(), reason, broker_order_id))
        write.plan_write(plan, recorder=rec)
    _copy_state(src=locked, dst=order)
    return locked


def order_broker_id_record(
    *, order: Order, broker_order_id: str, at: datetime, actor: str = "system", recorder: Recorder | None = None
) -> Order:
    """Record the broker's id of an order already SUBMITTED without one (reconciliation)."""
    with recording(recorder) as rec:
        locked = _lock_order(order.pk)
        plan = OrderPlan.existing(locked, actor=actor, recorded_at=utcnow()).broker_order_id(broker_order_id, at=at)
        write.plan_write(plan, recorder=rec)
    _copy_state(src=locked, dst=order)
    return locked


@dataclass(frozen=True)
class FillResult:
    execution: Execution
    order: Order
    position: Position | None
    created: bool


def execution_record(
    *,
    order: Order,
    fill: FillDraft,
    actor: str = "system",
    state: AccountState | None = None,
    recorder: Recorder | None = None,
) -> FillResult:
    """Record a fill of an existing order: the execution row, the order's filled quantity and
    status, and the position (net quantity, average price, realised P&L), in one transaction.
    With ``state`` the account's pending marks and risk snapshot go with it.

    Idempotent by ``(account, broker_deal_id)``: a deal already recorded returns it with
    ``created=False`` and changes nothing. Locks the order row, then the position row."""
    with recording(recorder) as rec:
        locked = _lock_order(order.pk)
        existing = Execution.objects.filter(account_id=locked.account_id, broker_deal_id=fill.broker_deal_id).first()
        if existing is not None:
            position = Position.objects.filter(account_id=locked.account_id, instrument_id=locked.instrument_id).first()
            return FillResult(existing, locked, position, False)
        plan = OrderPlan.existing(locked, actor=actor, recorded_at=utcnow()).fill(fill)
        if state is not None:
            plan.marks = dict(state.pending)
            plan.figures = None if state.figures_written else state.figures
        written: Written = write.plan_write(plan, recorder=rec)
    if state is not None:
        state.written(written.positions, marks=plan.marks, figures=plan.figures)
    _copy_state(src=locked, dst=order)
    return FillResult(plan.executions[0], locked, written.positions.get(locked.instrument_id), True)


def account_state_save(*, state: AccountState, recorder: Recorder | None = None) -> None:
    """Write an account's pending marks (positions' mark price, unrealised P&L, ``as_of``) and
    its risk snapshot (equity, peak, drawdown, daily P&L, margin, trading and breaker state).
    Derived data: not audited, no event. Called on the execution worker's wall-clock cadence and
    at its shutdown (fills carry them in their own write)."""
    if not state.dirty:
        return
    plan = MarksPlan(
        state.account_id,
        marks=dict(state.pending),
        figures=None if state.figures_written else state.figures,
        recorded_at=utcnow(),
    )
    if recorder is None and write.one_statement_available() and not connection.in_atomic_block:
        written = write.plan_write(plan, recorder=Recorder(), rows=state.rows)
    else:
        with recording(recorder) as rec:
            written = write.plan_write(plan, recorder=rec, rows=state.rows, orm=True)
    state.written(written.positions, marks=plan.marks, figures=plan.figures)
