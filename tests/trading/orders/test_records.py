"""The order's audit and event payloads (``trading.orders.records``): the snapshot read from the
instance's ``__dict__`` is the snapshot read through its attributes, key by key and byte for byte
once canonical, for an order in memory at every step of its life and for rows read back, with and
without deferred fields (those are loaded, not taken as missing)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from tests.workers.conftest import T0
from tradeops.audit.canonical import canonical_bytes
from trading.models import Order
from trading.order_states import OrderStatus
from trading.orders.plan import FillDraft, OrderDraft, OrderPlan, OrderStep
from trading.orders.records import order_snapshot, order_step_payload
from trading.orders.services import order_commit

pytestmark = pytest.mark.django_db


def _through_attributes(order: Order) -> dict:
    """The snapshot as written before it read ``__dict__``: every value through the attribute."""

    def dec(value):
        return None if value is None else str(value)

    def iso(value):
        return value.isoformat() if value else None

    return {
        "client_order_id": order.client_order_id,
        "broker_order_id": order.broker_order_id,
        "account_id": order.account_id,
        "instrument": order.instrument.symbol,
        "side": order.side,
        "order_type": order.order_type,
        "quantity": dec(order.quantity),
        "filled_quantity": dec(order.filled_quantity),
        "average_fill_price": dec(order.average_fill_price),
        "limit_price": dec(order.limit_price),
        "stop_price": dec(order.stop_price),
        "time_in_force": order.time_in_force,
        "algo_id": order.algo_id,
        "trader_id": order.trader_id,
        "desk": order.desk,
        "signal_id": order.signal_id,
        "status": order.status,
        "reject_reason": order.reject_reason,
        "created_at": iso(order.created_at),
        "decided_at": iso(order.decided_at),
        "submitted_at": iso(order.submitted_at),
        "first_fill_at": iso(order.first_fill_at),
        "last_fill_at": iso(order.last_fill_at),
        "closed_at": iso(order.closed_at),
    }


def _same(order: Order) -> None:
    snapshot, expected = order_snapshot(order), _through_attributes(order)
    assert list(snapshot) == list(expected)
    assert snapshot == expected
    assert canonical_bytes(snapshot) == canonical_bytes(expected)


def _draft(account, instrument, **terms) -> OrderDraft:
    return OrderDraft(
        client_order_id=terms.pop("client_order_id", "REC-1"),
        account=account,
        instrument=instrument,
        side="BUY",
        quantity=Decimal("0.30"),
        at=T0,
        algo_id="algo-1",
        desk="fx",
        signal_id="sig-1",
        **terms,
    )


def test_snapshot_at_every_step_of_an_order_in_memory(account, instrument):
    plan = OrderPlan.new(
        _draft(account, instrument, order_type="LIMIT", limit_price=Decimal("1.10010")),
        actor="system",
        recorded_at=T0,
    )
    _same(plan.order)
    for to in (OrderStatus.RISK_APPROVED, OrderStatus.SUBMITTED):
        plan.transition(OrderStep(to, T0 + timedelta(microseconds=10), broker_order_id="B-1"))
        _same(plan.order)
    plan.fill(FillDraft("D-1", Decimal("0.10"), Decimal("1.10004"), T0 + timedelta(microseconds=20)))
    _same(plan.order)
    plan.fill(FillDraft("D-2", Decimal("0.20"), Decimal("1.10002"), T0 + timedelta(microseconds=30)))
    _same(plan.order)
    assert plan.order.status == OrderStatus.FILLED
    payload = order_step_payload(plan.order, before=OrderStatus.SUBMITTED, reason="")
    assert payload == {**_through_attributes(plan.order), "from_status": OrderStatus.SUBMITTED, "reason": ""}
    assert list(payload)[-2:] == ["from_status", "reason"]


def test_snapshot_of_rows_read_back_with_and_without_deferred_fields(account, instrument):
    written = order_commit(
        draft=_draft(account, instrument),
        steps=[OrderStep(OrderStatus.REJECTED, T0 + timedelta(microseconds=5), reason="risk.limit")],
    )
    row = Order.objects.select_related("instrument").get(pk=written.order.pk)
    _same(row)
    assert order_snapshot(row) == order_snapshot(written.order)
    deferred = Order.objects.defer("desk", "average_fill_price", "closed_at").get(pk=written.order.pk)
    assert "desk" not in deferred.__dict__
    assert order_snapshot(deferred) == order_snapshot(row)  # the deferred fields loaded, not missing
