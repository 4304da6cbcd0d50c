"""A REDUCING account: the worker's strategy reads the trading state from the risk manager's
memory, so growth signals are skipped and audited (``strategy.reduce_only``) instead of reaching
the gate to be refused as ``risk.reduce_only``, and a reducing signal closes at most the position."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from tests.workers.conftest import T0, make_worker, signal, tick
from tradeops.audit.models import AuditRecord
from trading.models import Order, Position
from trading.risk import TradingState


def test_a_reducing_account_sends_no_growth_order_and_closes_at_most_its_position(broker, account):
    w = make_worker(broker, account).start()
    w.handle(tick())
    w.handle(signal(signal_id="open"))  # ACTIVE: 2.50 lots bought
    assert Position.objects.get(account=account).net_quantity == Decimal("2.50")

    w.risk.set_trading_state(TradingState.REDUCING, account.pk)
    for n in range(3):  # growth signals, as a model keeps sending them after a loss limit
        w.handle(signal(signal_id=f"grow-{n}", at=T0 + timedelta(seconds=1 + n)))
    assert not Order.objects.filter(signal_id__startswith="grow").exists()  # no refusal either
    assert not Order.objects.filter(status="REJECTED").exists()
    skips = AuditRecord.objects.filter(action="signal.skipped").order_by("occurred_at")
    assert [r.payload_data["code"] for r in skips] == ["strategy.reduce_only"] * 3
    assert {r.payload_data["limit_code"] for r in skips} == {"risk.reduce_only"}
    assert "REDUCING" in skips[0].payload_data["reason"]

    w.handle(signal(side="SELL", signal_id="close", atr=0.0005, at=T0 + timedelta(seconds=5)))  # wants 5 lots
    order = Order.objects.get(signal_id="close")
    assert order.quantity == Decimal("2.50") and order.status == "FILLED"
    assert Position.objects.get(account=account).net_quantity == 0

    w.risk.set_trading_state(TradingState.HALTED, account.pk)
    w.handle(signal(side="SELL", signal_id="halted", at=T0 + timedelta(seconds=6)))
    assert not Order.objects.filter(signal_id="halted").exists()
    assert AuditRecord.objects.get(action="signal.skipped", object_id__startswith="halted").payload_data["code"] == (
        "strategy.trading_halted"
    )
