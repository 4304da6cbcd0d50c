"""Reconciliation services without the execution worker: a paper broker and the system of record
disagree in each of the ways a crash, a lost reply or a manual edit leaves them, and
``order_reconcile`` (and ``reconciliation_mismatch_raise``) make them agree (RTS 6 Art. 17)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from tests.workers.conftest import T0, paper_broker
from tradeops.events import decode
from tradeops.outbox.models import Outbox
from trading.brokers import OrderRequest, OrderType
from trading.intents import magic_for
from trading.models import Execution, KillSwitch, Order, Position
from trading.order_states import OrderStatus
from trading.orders.plan import OrderDraft, OrderStep
from trading.orders.reconcile import order_reconcile, positions_compare, reconciliation_mismatch_raise
from trading.orders.services import order_commit

LOOKBACK = timedelta(hours=24)
GRACE = timedelta(seconds=30)


@pytest.fixture
def broker(instrument, gbpusd):
    return paper_broker(instrument, gbpusd)


def _reconcile(account, broker, instrument, gbpusd, *, now=T0 + timedelta(minutes=5), algo_by_magic=None):
    return order_reconcile(
        account=account,
        broker=broker,
        instruments={"EURUSD": instrument, "GBPUSD": gbpusd},
        now=now,
        lookback=LOOKBACK,
        unknown_grace=GRACE,
        algo_by_magic=algo_by_magic or {},
        actor="service:test",
    )


def _submitted(account, instrument, coid, *, at=T0, qty="0.50"):
    """An order we sent whose answer we never recorded (a lost reply)."""
    draft = OrderDraft(
        client_order_id=coid, account=account, instrument=instrument, side="BUY", quantity=Decimal(qty), at=at
    )
    steps = [
        OrderStep(OrderStatus.RISK_APPROVED, at),
        OrderStep(OrderStatus.SUBMITTED, at, "broker state unknown (TIMEOUT); reconciliation settles it"),
    ]
    return order_commit(draft=draft, steps=steps, actor="service:test").order


def test_an_order_filled_at_the_broker_and_never_recorded_is_recovered_once(account, instrument, gbpusd, broker):
    """The crash between the broker's fill and our commit: the broker has it, we have nothing."""
    result = broker.send_order(
        OrderRequest(
            client_order_id="CRASHED-1", symbol="EURUSD", side="BUY", volume=Decimal("0.70"), magic=magic_for("algo-9")
        )
    )
    (deal,) = result.deals
    report = _reconcile(account, broker, instrument, gbpusd, algo_by_magic={magic_for("algo-9"): "algo-9"})
    assert report.recovered_orders == ["CRASHED-1"] and report.recovered_fills == [deal.deal_id]
    order = Order.objects.get(client_order_id="CRASHED-1")
    assert order.status == OrderStatus.FILLED and order.quantity == Decimal("0.70") and order.algo_id == "algo-9"
    assert order.created_at == deal.ts and order.broker_order_id == deal.order_id  # the broker's times and ids
    fill = Execution.objects.get(order=order)
    assert fill.broker_deal_id == deal.deal_id and fill.executed_at == deal.ts
    assert Position.objects.get(account=account, instrument=instrument).net_quantity == Decimal("0.70")
    assert report.position_mismatches == {}

    again = _reconcile(account, broker, instrument, gbpusd)  # idempotent
    assert not again.changed and Order.objects.count() == 1 and Execution.objects.count() == 1


def test_a_lost_reply_whose_order_filled_gets_its_fill(account, instrument, gbpusd, broker):
    order = _submitted(account, instrument, "LOST-1")
    broker.send_order(OrderRequest(client_order_id="LOST-1", symbol="EURUSD", side="BUY", volume=Decimal("0.50")))
    report = _reconcile(account, broker, instrument, gbpusd)
    order.refresh_from_db()
    assert order.status == OrderStatus.FILLED and order.broker_order_id  # the broker's id, recorded
    assert report.recovered_fills and not report.recovered_orders
    assert Position.objects.get(account=account, instrument=instrument).net_quantity == Decimal("0.50")


def test_an_order_the_broker_never_saw_is_closed_after_the_grace_and_awaited_before(
    account, instrument, gbpusd, broker
):
    order = _submitted(account, instrument, "NEVER-1", at=T0)
    early = _reconcile(account, broker, instrument, gbpusd, now=T0 + timedelta(seconds=5))
    assert early.awaiting == ["NEVER-1"] and early.closed_orders == []
    order.refresh_from_db()
    assert order.status == OrderStatus.SUBMITTED
    late = _reconcile(account, broker, instrument, gbpusd, now=T0 + timedelta(seconds=31))
    assert late.closed_orders == ["NEVER-1"] and late.awaiting == []
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED and "no trace" in order.reject_reason + _last_reason(order)
    assert order.closed_at == T0 + timedelta(seconds=31)  # the event time reconciliation ran at


def _last_reason(order) -> str:
    events = [decode(bytes(m)) for m in Outbox.objects.order_by("id").values_list("message", flat=True)]
    mine = [e.payload for e in events if getattr(e.payload, "client_order_id", "") == order.client_order_id]
    return mine[-1].reason


def test_a_resting_order_at_the_broker_is_recovered_open(account, instrument, gbpusd, broker):
    broker.send_order(
        OrderRequest(
            client_order_id="REST-1",
            symbol="EURUSD",
            side="BUY",
            volume=Decimal("0.20"),
            order_type=OrderType.LIMIT,
            price=Decimal("1.09000"),
        )
    )
    report = _reconcile(account, broker, instrument, gbpusd)
    order = Order.objects.get(client_order_id="REST-1")
    assert report.recovered_orders == ["REST-1"]
    assert (
        order.status == OrderStatus.SUBMITTED and order.order_type == "LIMIT" and order.limit_price == Decimal("1.09")
    )
    assert order.broker_order_id and not Execution.objects.exists()


def test_positions_that_differ_raise_an_alert_and_engage_the_account_kill_switch(account, instrument, gbpusd, broker):
    broker.send_order(OrderRequest(client_order_id="P-1", symbol="EURUSD", side="BUY", volume=Decimal("0.50")))
    _reconcile(account, broker, instrument, gbpusd)
    assert positions_compare(account_id=account.pk, broker=broker) == {}
    Position.objects.filter(account=account).update(net_quantity=Decimal("0.80"))  # a manual edit
    mismatches = positions_compare(account_id=account.pk, broker=broker)
    assert mismatches == {"EURUSD": ("0.800000", "0.50")}
    killed = reconciliation_mismatch_raise(
        account_id=account.pk,
        mismatches=mismatches,
        at=T0 + timedelta(minutes=5),
        source="test",
        actor="service:test",
        auto_kill=True,
    )
    switch = KillSwitch.objects.get(engaged=True)
    assert killed.switch.pk == switch.pk and (switch.scope, switch.scope_value) == ("account", str(account.pk))
    assert switch.source == "automatic" and "EURUSD ours 0.800000 broker 0.50" in switch.engage_reason
    assert switch.engaged_at == T0 + timedelta(minutes=5)
    (alert,) = [decode(bytes(r.message)).payload for r in Outbox.objects.filter(event_type="alert.raised")]
    assert alert.alert_type == "reconciliation_position_mismatch" and alert.evidence["EURUSD"]["ours"] == "0.800000"
    assert alert.ts == T0 + timedelta(minutes=5)


def test_a_mismatch_without_auto_kill_only_alerts(account, instrument, gbpusd, broker):
    killed = reconciliation_mismatch_raise(
        account_id=account.pk, mismatches={"EURUSD": ("1", "0")}, at=T0, source="test", actor="x", auto_kill=False
    )
    assert killed is None and not KillSwitch.objects.exists()
    assert Outbox.objects.filter(event_type="alert.raised").count() == 1


def test_a_recovered_order_gets_a_decision_record_that_says_what_is_known(account, instrument, gbpusd, broker):
    """RTS 6 Art. 15 evidence for every order (issue 19, finding 5): the recovered order's write
    carries a ``risk.decision`` (approved by inference: it reached the broker) whose one check says
    the gate's results are not recoverable and names the broker's evidence; compliance keeps it as
    the order's pre-trade decision record."""
    from compliance.models import PreTradeDecision
    from compliance.services import pretrade_decision_record
    from tradeops.events import DECISION_NOT_RECOVERABLE

    result = broker.send_order(
        OrderRequest(
            client_order_id="CRASHED-2", symbol="EURUSD", side="SELL", volume=Decimal("0.30"), magic=magic_for("algo-9")
        )
    )
    (deal,) = result.deals
    _reconcile(account, broker, instrument, gbpusd, algo_by_magic={magic_for("algo-9"): "algo-9"})
    events = [
        decode(bytes(m)) for m in Outbox.objects.filter(event_type="risk.decision").values_list("message", flat=True)
    ]
    (event,) = events
    decision = event.payload
    assert decision.client_order_id == "CRASHED-2" and decision.account_id == account.pk and decision.approved
    (check,) = decision.checks
    assert check.code == DECISION_NOT_RECOVERABLE
    assert "decision not recoverable" in check.detail and deal.deal_id in check.detail and "algo-9" in check.detail
    assert decision.ts == deal.ts  # decided at or before the broker's first time for it

    row = pretrade_decision_record(event=event)
    assert row is not None and PreTradeDecision.objects.get().client_order_id == "CRASHED-2"
    assert row.approved and row.checks[0]["code"] == DECISION_NOT_RECOVERABLE
    assert "decision not recoverable" in row.reason and deal.deal_id in row.reason

    _reconcile(account, broker, instrument, gbpusd)  # idempotent: no second decision
    assert Outbox.objects.filter(event_type="risk.decision").count() == 1
