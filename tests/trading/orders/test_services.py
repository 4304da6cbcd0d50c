"""The order path's services and selectors against the database (PostgreSQL under scripts/test.sh)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
from django.db import close_old_connections, connection

from trading import selectors
from trading.errors import ExecutionError, OrderTransitionError, OrderValidationError
from trading.models import Order, Position
from trading.order_states import OrderStatus
from trading.orders.plan import FillDraft
from trading.orders.services import execution_record, order_create, order_transition
from trading.position_math import PositionState, apply_fill

T0 = datetime(2026, 1, 5, 10, 0, 0, 123456, tzinfo=UTC)


def _order(account, instrument, key="C-1", side="BUY", qty=D("1.00"), **kw):
    order, _ = order_create(
        client_order_id=key, account=account, instrument=instrument, side=side, quantity=qty, at=T0, **kw
    )
    return order


def _submitted(account, instrument, **kw):
    order = _order(account, instrument, **kw)
    order_transition(order=order, to=OrderStatus.RISK_APPROVED)
    order_transition(order=order, to=OrderStatus.SUBMITTED, broker_order_id="B-" + order.client_order_id)
    return order


@pytest.mark.django_db
def test_order_create_is_idempotent_and_refuses_reused_keys(account, instrument):
    first, created = order_create(
        client_order_id="K1", account=account, instrument=instrument, side="BUY", quantity=D("0.10"), algo_id="ml-v1"
    )
    again, created_again = order_create(
        client_order_id="K1", account=account, instrument=instrument, side="BUY", quantity=D("0.10")
    )
    assert created and not created_again and first.pk == again.pk
    assert Order.objects.count() == 1
    with pytest.raises(OrderValidationError) as info:
        order_create(client_order_id="K1", account=account, instrument=instrument, side="SELL", quantity=D("0.10"))
    assert info.value.code == "client_order_id_reused"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("qty", "code"), [(D("0.001"), "invalid_volume"), (D("101"), "invalid_volume"), (D("0.015"), "invalid_volume")]
)
def test_order_create_refuses_volumes_off_the_instrument_spec(account, instrument, qty, code):
    with pytest.raises(OrderValidationError) as info:
        order_create(client_order_id="K", account=account, instrument=instrument, side="BUY", quantity=qty)
    assert info.value.code == code
    assert not Order.objects.exists()


@pytest.mark.django_db
def test_limit_order_needs_a_price_on_the_tick_grid(account, instrument):
    with pytest.raises(OrderValidationError):
        _order(account, instrument, order_type="LIMIT")
    with pytest.raises(OrderValidationError):
        _order(account, instrument, order_type="LIMIT", limit_price=D("1.100005"))
    order = _order(account, instrument, order_type="LIMIT", limit_price=D("1.10005"))
    assert order.limit_price == D("1.10005")


@pytest.mark.django_db
def test_transitions_stamp_stage_times_and_invalid_ones_change_nothing(account, instrument):
    order = _order(account, instrument)
    order_transition(order=order, to=OrderStatus.RISK_APPROVED, at=T0)
    assert order.status == OrderStatus.RISK_APPROVED and order.decided_at == T0
    with pytest.raises(OrderTransitionError) as info:
        order_transition(order=order, to=OrderStatus.FILLED)
    assert "RISK_APPROVED" in str(info.value) and "FILLED" in str(info.value)
    fresh = Order.objects.get(pk=order.pk)
    assert fresh.status == OrderStatus.RISK_APPROVED and fresh.updated_at == order.updated_at
    order_transition(order=order, to=OrderStatus.SUBMITTED, broker_order_id="777")
    order_transition(order=order, to=OrderStatus.CANCELLED, reason="kill switch")
    fresh = Order.objects.get(pk=order.pk)
    assert fresh.status == "CANCELLED" and fresh.broker_order_id == "777" and fresh.closed_at is not None
    assert fresh.submitted_at.microsecond == order.submitted_at.microsecond


@pytest.mark.django_db
def test_fills_update_order_and_position_and_dedupe_by_deal(account, instrument):
    order = _submitted(account, instrument, qty=D("2.00"))
    r1 = execution_record(
        order=order, fill=FillDraft(broker_deal_id="D1", quantity=D("0.50"), price=D("1.10000"), executed_at=T0)
    )
    assert r1.created and order.status == OrderStatus.PARTIALLY_FILLED
    dup = execution_record(
        order=order, fill=FillDraft(broker_deal_id="D1", quantity=D("0.50"), price=D("1.10000"), executed_at=T0)
    )
    assert not dup.created and dup.execution.pk == r1.execution.pk
    r2 = execution_record(
        order=order, fill=FillDraft(broker_deal_id="D2", quantity=D("1.50"), price=D("1.10040"), executed_at=T0)
    )
    assert r2.order.status == OrderStatus.FILLED and r2.order.filled_quantity == D("2.00")
    assert r2.order.average_fill_price == D("1.10030")
    position = selectors.position_get(account=account, instrument=instrument)
    assert position.net_quantity == D("2.00") and position.average_price == D("1.10030")
    with pytest.raises(ExecutionError):
        execution_record(
            order=order, fill=FillDraft(broker_deal_id="D3", quantity=D("0.01"), price=D("1.1"), executed_at=T0)
        )
    assert selectors.execution_list(order=order).count() == 2


@pytest.mark.django_db
def test_overfill_is_refused(account, instrument):
    order = _submitted(account, instrument, qty=D("1.00"))
    with pytest.raises(ExecutionError) as info:
        execution_record(
            order=order, fill=FillDraft(broker_deal_id="X", quantity=D("1.01"), price=D("1.1"), executed_at=T0)
        )
    assert info.value.code == "overfill"


@pytest.mark.django_db
def test_selectors_find_unexecuted_orders(account, instrument):
    _submitted(account, instrument, key="A")
    done = _submitted(account, instrument, key="B")
    execution_record(
        order=done, fill=FillDraft(broker_deal_id="DB", quantity=D("1.00"), price=D("1.1"), executed_at=T0)
    )
    _order(account, instrument, key="C")
    keys = set(selectors.order_list_unexecuted(account=account).values_list("client_order_id", flat=True))
    assert keys == {"A", "C"}
    assert selectors.order_get(client_order_id="B").status == "FILLED"


@pytest.mark.django_db(transaction=True)
def test_concurrent_fills_on_one_position_serialise(postgres, account, instrument):
    """Two threads fill many orders on one position at once; the row lock keeps every update."""
    per_thread = 15
    orders = {
        side: [_submitted(account, instrument, key=f"{side}-{i}", side=side, qty=D("0.10")) for i in range(per_thread)]
        for side in ("BUY", "SELL")
    }
    prices = {"BUY": D("1.10000"), "SELL": D("1.10050")}
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def work(side: str) -> None:
        try:
            barrier.wait()
            for i, order in enumerate(orders[side]):
                execution_record(
                    order=order,
                    fill=FillDraft(
                        broker_deal_id=f"{side}-deal-{i}", quantity=D("0.10"), price=prices[side], executed_at=T0
                    ),
                )
        except BaseException as exc:
            errors.append(exc)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=work, args=(side,)) for side in ("BUY", "SELL")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    position = Position.objects.get(account=account, instrument=instrument)
    assert position.net_quantity == 0
    # Recompute from the fills in the order the database recorded them.
    state = PositionState()
    for fill in selectors.execution_list(account=account).order_by("recorded_at", "pk"):
        signed = fill.quantity if fill.side == "BUY" else -fill.quantity
        state = apply_fill(state, signed_quantity=signed, price=fill.price, contract_size=instrument.contract_size)
    assert position.realised_pnl == state.realised_pnl.quantize(D("1E-6"))
    # Every buy was closed by a sell 5 pips higher: 15 x 0.10 lots x 100,000 x 0.0005 = 75.
    assert position.realised_pnl == D("75")
