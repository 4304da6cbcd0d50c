"""The worker's strategy sizes within the headroom the limits leave: orders shrink to fit, a
signal with no room is recorded in the audit trail with the limit that left none, and nothing
bound to be refused reaches the gate."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from tests.workers.conftest import T0, make_worker, signal, tick
from tradeops.audit.models import AuditRecord
from trading.models import Order, Position
from trading.risk import RiskLimits


def test_orders_shrink_to_the_position_room_then_a_full_book_is_skipped_and_audited(broker, account):
    w = make_worker(broker, account, limits=RiskLimits(max_position_lots=Decimal(4), duplicate_window_ms=None)).start()
    w.handle(tick())
    w.handle(signal(signal_id="first"))  # wants 2.50
    w.handle(signal(signal_id="second", at=T0 + timedelta(seconds=1)))  # wants 2.50, 1.50 left
    w.handle(signal(signal_id="third", at=T0 + timedelta(seconds=2)))  # nothing left
    orders = {o.signal_id: o for o in Order.objects.all()}
    assert set(orders) == {"first", "second"}
    assert orders["first"].quantity == Decimal("2.50") and orders["second"].quantity == Decimal("1.50")
    assert {o.status for o in orders.values()} == {"FILLED"}
    assert Position.objects.get(account=account).net_quantity == Decimal("4.00")

    record = AuditRecord.objects.get(action="signal.skipped")
    data = record.payload_data
    assert data["code"] == "strategy.no_headroom" and data["limit_code"] == "risk.max_position"
    assert data["signal_id"] == "third" and data["account_id"] == account.pk
    assert Decimal(data["wanted"]) == Decimal("2.49")  # equity is down the spread paid on 4 lots
    assert "room for 0" in data["reason"]
    assert record.occurred_at == T0 + timedelta(seconds=2)  # the signal's time, not the wall clock
    assert record.object_id == f"third:{account.pk}" and record.actor_id == "execution-worker"

    # the other side still has room: a sell goes out whole
    w.handle(signal(side="SELL", signal_id="fourth", at=T0 + timedelta(seconds=3)))
    assert Order.objects.get(signal_id="fourth").quantity == Decimal("2.49")  # all it wanted


def test_a_redelivered_skipped_signal_is_recorded_once(broker, account):
    w = make_worker(broker, account, limits=RiskLimits(max_open_orders=0, duplicate_window_ms=None)).start()
    w.handle(tick())
    event = signal(signal_id="again")
    w.handle(event)
    w.strategy._seen.clear()  # as after a restart
    w.handle(event)
    assert Order.objects.count() == 0
    (record,) = AuditRecord.objects.filter(action="signal.skipped")
    assert record.payload_data["limit_code"] == "risk.max_open_orders"


def test_signals_the_strategy_refuses_are_recorded_with_their_code(worker):
    worker.handle(signal(signal_id="no-atr", atr=None))
    (record,) = AuditRecord.objects.filter(action="signal.skipped")
    assert record.payload_data["code"] == "strategy.no_volatility" and record.object_id == "no-atr"
    assert record.payload_data["account_id"] is None
