"""A REDUCING account: the worker's strategy reads the trading state from the risk manager's
memory, so growth signals are skipped and audited (``strategy.reduce_only``) instead of reaching
the gate to be refused as ``risk.reduce_only``, and a reducing signal closes at most the position.
The account gets there as it does in production, its drawdown limit breached by a falling price
(until 2026-12-07 the test set the state directly, which nothing in production could do), and
is halted by the kill switch on it."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from tests.workers.conftest import T0, make_worker, signal, tick
from tradeops.audit.models import AuditRecord
from tradeops.events import decode
from tradeops.outbox.models import Outbox
from trading.controls.services import kill_switch_engage
from trading.models import Order, Position
from trading.risk import RiskLimits

LIMITS = RiskLimits(max_drawdown=Decimal("0.005"), duplicate_window_ms=None)


def test_a_reducing_account_sends_no_growth_order_and_closes_at_most_its_position(broker, account):
    w = make_worker(broker, account, limits=LIMITS).start()
    w.handle(tick())
    w.handle(signal(signal_id="open"))  # ACTIVE: 2.50 lots bought
    assert Position.objects.get(account=account).net_quantity == Decimal("2.50")

    fell = T0 + timedelta(seconds=1)
    w.handle(tick(bid="1.09750", ask="1.09752", at=fell))  # -631: 0.63 % below the peak, limit 0.5 %
    assert w.status()["accounts"][account.pk]["trading_state"] == "REDUCING"
    for n in range(3):  # growth signals, as a model keeps sending them after a loss limit
        w.handle(signal(signal_id=f"grow-{n}", price="1.09751", at=fell + timedelta(seconds=1 + n)))
    assert not Order.objects.filter(signal_id__startswith="grow").exists()  # no refusal either
    assert not Order.objects.filter(status="REJECTED").exists()
    skips = AuditRecord.objects.filter(action="signal.skipped").order_by("occurred_at")
    assert [r.payload_data["code"] for r in skips] == ["strategy.reduce_only"] * 3
    assert {r.payload_data["limit_code"] for r in skips} == {"risk.reduce_only"}
    assert "REDUCING (drawdown 0.6" in skips[0].payload_data["reason"]

    w.handle(signal(side="SELL", signal_id="close", price="1.09751", atr=0.0005, at=fell + timedelta(seconds=5)))
    order = Order.objects.get(signal_id="close")  # the sizing wanted 5 lots: the position caps it
    assert order.quantity == Decimal("2.50") and order.status == "FILLED"
    assert Position.objects.get(account=account).net_quantity == 0

    kill_switch_engage(scope="account", scope_value=str(account.pk), actor="user:olga", reason="r", source="api")
    w.handle(decode(bytes(Outbox.objects.get(event_type="killswitch.changed").message)))
    w.handle(signal(side="SELL", signal_id="halted", price="1.09751", at=fell + timedelta(seconds=6)))
    assert not Order.objects.filter(signal_id="halted").exists()
    halted = AuditRecord.objects.get(action="signal.skipped", object_id__startswith="halted").payload_data
    assert (
        halted["code"] == "strategy.trading_halted"
        and f"kill switch engaged on account={account.pk}" in halted["reason"]
    )
