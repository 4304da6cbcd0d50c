"""The execution worker end to end on the paper broker: one transaction per order, idempotency,
rejections, broker refusals and the breaker, marks, limits reloaded by events."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from tests.workers.conftest import T0, make_worker, signal, tick
from tradeops.audit.models import AuditRecord
from tradeops.events import OrderEvent, RiskDecision, decode, make_event
from tradeops.outbox.models import Outbox
from trading.brokers import OrderOutcome
from trading.intents import client_order_id_for
from trading.models import AccountRiskSnapshot, Execution, Order, Position
from trading.risk import RiskLimits


def outbox_types(coid: str | None = None) -> list[str]:
    return list(Outbox.objects.order_by("id").values_list("event_type", flat=True))


def test_signal_becomes_one_filled_order_with_fill_position_and_events(worker, broker, account):
    event = signal()
    worker.handle(event)
    coid = client_order_id_for(signal_id=event.payload.signal_id, account_id=account.pk)
    order = Order.objects.get(client_order_id=coid)
    assert order.status == "FILLED"
    assert order.quantity == Decimal("2.50")  # 500 at risk / (2 ATR x 100k) per lot
    assert order.algo_id == "algo-1" and order.signal_id == event.payload.signal_id
    # 2 and 3 ATRs from the ask it buys at (1.10002), not from the signal price (1.10001)
    assert order.stop_loss == Decimal("1.09802") and order.take_profit == Decimal("1.10302")
    assert order.decided_at <= order.submitted_at <= order.closed_at
    (fill,) = Execution.objects.filter(order=order)
    assert fill.price == Decimal("1.10002") and fill.broker_deal_id == broker.deals_since(T0)[0].deal_id
    assert fill.arrival_mid == Decimal("1.10001")
    # the touch it arrived on, kept with the fill: it bought at the ask (the report's reference)
    assert (fill.arrival_bid, fill.arrival_ask) == (Decimal("1.10000"), Decimal("1.10002"))
    fill_event = decode(bytes(Outbox.objects.get(event_type="execution.fill").message)).payload
    assert (fill_event.arrival_bid, fill_event.arrival_ask) == (fill.arrival_bid, fill.arrival_ask)
    position = Position.objects.get(account=account, instrument__symbol="EURUSD")
    assert position.net_quantity == Decimal("2.50")
    types = outbox_types()
    assert types.count("risk.decision") == 1 and types.count("execution.fill") == 1
    assert types.count("position.changed") == 1 and "order.lifecycle" in types
    decision = Outbox.objects.get(event_type="risk.decision")
    assert b'"approved":true' in bytes(decision.message)
    assert worker.risk.account(account.pk).position("EURUSD") == Decimal("2.50")


def test_the_same_signal_twice_makes_one_order(worker, broker, account):
    event = signal(signal_id="twice")
    worker.handle(event)
    worker.handle(event)
    worker.strategy._seen.clear()  # as after a restart: the strategy forgot, the worker still knows
    worker.handle(event)
    assert Order.objects.filter(signal_id="twice").count() == 1
    assert len(broker.deals_since(T0)) == 1
    assert worker.stats.duplicates == 1


def test_rejected_order_is_recorded_with_every_failing_check_and_never_sent(broker, account):
    w = make_worker(broker, account, limits=RiskLimits(max_position_lots=Decimal(1), max_open_orders=0)).start()
    w.strategy.headroom_of = None  # a strategy blind to the limits: the checks still stop it (defence in depth)
    w.handle(tick())
    w.handle(signal())
    order = Order.objects.get()
    assert order.status == "REJECTED"
    assert "risk.max_position" in order.reject_reason and "risk.max_open_orders" in order.reject_reason
    assert broker.deals_since(T0) == []
    decision = Outbox.objects.get(event_type="risk.decision")
    assert b'"approved":false' in bytes(decision.message)


def test_broker_refusals_reject_the_order_and_consecutive_ones_open_the_breaker(broker, account):
    w = make_worker(broker, account, breaker_failures=2).start()
    w.handle(tick())
    broker.inject(OrderOutcome.REJECT, times=2, message="dealer says no")
    w.handle(signal(at=T0))
    w.handle(signal(at=T0 + timedelta(seconds=1)))
    first, second = Order.objects.order_by("created_at")
    assert first.status == second.status == "REJECTED"
    assert first.reject_reason == "broker REJECT: dealer says no"
    assert w.risk.breakers.for_account(account.pk).state(T0 + timedelta(seconds=1)) == "open"
    w.handle(tick(at=T0 + timedelta(seconds=2)))
    w.handle(signal(signal_id="while-open", at=T0 + timedelta(seconds=2)))
    # the account is HALTED while its breaker is open: the strategy sends nothing and says why
    assert Order.objects.count() == 2
    skip = AuditRecord.objects.get(action="signal.skipped", object_id=f"while-open:{account.pk}")
    assert skip.payload_data["code"] == "strategy.trading_halted"
    assert len(broker.deals_since(T0)) == 0
    # after the cool-down one trial goes through and closes it
    later = T0 + timedelta(seconds=40)
    w.handle(tick(at=later))
    w.handle(signal(at=later))
    assert Order.objects.order_by("created_at").last().status == "FILLED"
    assert w.risk.breakers.for_account(account.pk).state(later) == "closed"


def test_lost_reply_after_execution_is_settled_by_reconciliation(worker, broker, account):
    broker.inject(OrderOutcome.TIMEOUT, executed=True)
    worker.handle(signal(signal_id="lost-reply"))
    order = Order.objects.get(signal_id="lost-reply")
    assert order.status == "FILLED"  # reconciled straight after the unknown answer
    assert Execution.objects.filter(order=order).count() == 1
    assert worker.stats.unknown_state == 1 and worker.stats.reconciled_fills == 1


def test_quotes_mark_positions_in_memory_and_the_cadence_and_shutdown_write_them(broker, account):
    """No database write per tick: marks and the risk snapshot go out with a fill, at most once
    per wall-clock interval otherwise, and at shutdown."""
    w = make_worker(broker, account, snapshot_interval=timedelta(hours=1)).start()
    w.handle(tick())
    w.handle(signal())
    position = Position.objects.get(account=account, instrument__symbol="EURUSD")
    assert position.as_of == Execution.objects.get().executed_at  # written with the fill, at its event time
    writes = w.stats.state_writes
    for n in range(1, 50):  # a feed far faster than the interval
        w.handle(tick(bid="1.09900", ask="1.09902", at=T0 + timedelta(seconds=n)))
    assert w.stats.state_writes == writes  # nothing written per tick
    position.refresh_from_db()
    assert position.mark_price != Decimal("1.09901")
    book = w.risk.account(account.pk)
    assert book.equity() == Decimal("99747.50")  # in memory: 2.5 lots x 100k x (1.09901 - 1.10002)

    w.close()  # shutdown writes what is pending
    position.refresh_from_db()
    assert position.mark_price == Decimal("1.09901")
    assert position.unrealised_pnl == Decimal("-252.50")
    assert position.as_of == T0 + timedelta(seconds=49)
    snapshot = AccountRiskSnapshot.objects.get(account=account)
    assert snapshot.equity == Decimal("99747.50")
    assert snapshot.peak_equity == Decimal("100000")
    assert snapshot.drawdown == Decimal("0.002525")
    assert snapshot.trading_state == "ACTIVE"


def test_the_cadence_writes_marks_once_its_wall_clock_interval_has_passed(broker, account):
    w = make_worker(broker, account, snapshot_interval=timedelta(0)).start()
    w.handle(tick())
    w.handle(signal())
    w.handle(tick(bid="1.09900", ask="1.09902", at=T0 + timedelta(seconds=5)))
    position = Position.objects.get(account=account, instrument__symbol="EURUSD")
    assert position.mark_price == Decimal("1.09901") and position.as_of == T0 + timedelta(seconds=5)
    assert AccountRiskSnapshot.objects.get(account=account).equity == Decimal("99747.50")


def test_an_idle_worker_writes_the_marks_still_pending_once_they_are_due(broker, account):
    """The feed stops (a replay ended): what the last ticks marked reaches the dashboard without
    waiting for another tick or for the shutdown."""
    import time

    w = make_worker(broker, account, snapshot_interval=timedelta(milliseconds=50)).start()
    w.handle(tick())
    w.handle(signal())
    w.handle(tick(bid="1.09900", ask="1.09902", at=T0 + timedelta(seconds=5)))  # within the interval: pending
    w.idle()
    position = Position.objects.get(account=account, instrument__symbol="EURUSD")
    assert position.mark_price != Decimal("1.09901")
    time.sleep(0.06)
    w.idle()
    position.refresh_from_db()
    assert position.mark_price == Decimal("1.09901") and position.as_of == T0 + timedelta(seconds=5)


def test_limit_change_is_audited_and_reloaded_from_its_event(worker, account, instrument):
    from tradeops.audit.models import AuditRecord
    from trading.controls.services import risk_limit_save

    limit = risk_limit_save(actor="user:rita", account=account, instrument=instrument, max_position_lots=Decimal(1))
    risk_limit_save(actor="user:rita", limit=limit, max_position_lots=Decimal("0.5"), reason="tighter")
    record = AuditRecord.objects.filter(action="risk_limit.changed").get()
    data = record.payload_data
    assert Decimal(data["before"]["max_position_lots"]) == 1
    assert Decimal(data["after"]["max_position_lots"]) == Decimal("0.5")
    assert data["reason"] == "tighter" and record.actor_id == "rita"
    from tradeops.events import decode

    changed = decode(bytes(Outbox.objects.filter(event_type="risk.limit_changed").last().message))
    worker.handle(changed)
    worker.handle(signal())
    assert Order.objects.get().quantity == Decimal("0.50")  # 2.50 wanted; the reloaded limit leaves 0.50


def test_partial_fill_with_remainder_cancelled_keeps_order_and_position_consistent(instrument, gbpusd, account):
    from tests.workers.conftest import paper_broker
    from trading.brokers.paper import PaperConfig

    broker = paper_broker(instrument, gbpusd)
    broker.config = PaperConfig(size_at_touch=Decimal(1))
    w = make_worker(broker, account).start()
    w.handle(tick())
    w.handle(signal())
    order = Order.objects.get()
    # the paper broker prefers FOK: a size above the touch is refused as a whole
    assert order.status == "REJECTED" and "fill or kill" in order.reject_reason
    assert Position.objects.filter(account=account).count() == 0


def test_order_event_payloads_decode(worker):
    worker.handle(signal())
    from tradeops.events import decode

    events = [decode(bytes(row.message)) for row in Outbox.objects.all()]
    kinds = {type(e.payload) for e in events}
    assert OrderEvent in kinds and RiskDecision in kinds
    assert all(e.key for e in events)
    assert make_event  # imported for readers: events are built with make_event


def test_unanswered_order_blocks_the_account_until_the_broker_settles_it(worker, broker, account):
    from dataclasses import replace

    broker.inject(OrderOutcome.TIMEOUT)  # no answer, and the order never reached the book
    worker.handle(signal(signal_id="unanswered"))
    order = Order.objects.get(signal_id="unanswered")
    assert order.status == "SUBMITTED"  # unknown: neither filled nor refused
    worker.handle(signal(signal_id="meanwhile", at=T0 + timedelta(seconds=1)))
    assert "execution.reconciliation_pending" in Order.objects.get(signal_id="meanwhile").reject_reason
    worker.config = replace(worker.config, unknown_grace=timedelta(0))  # the grace period is over
    report = worker.reconcile(account.pk)
    order.refresh_from_db()
    assert order.status == "CANCELLED" and report.closed_orders == [order.client_order_id]
    worker.handle(signal(signal_id="after", at=T0 + timedelta(seconds=2)))
    assert Order.objects.get(signal_id="after").status == "FILLED"


def test_lost_connection_blocks_the_account_then_reconnect_reconciles(broker, account):
    from datetime import timedelta as td

    w = make_worker(broker, account, unknown_grace=td(0)).start()
    w.handle(tick())
    broker.disconnect()  # the terminal went away
    w.handle(signal(signal_id="while-down"))
    down = Order.objects.get(signal_id="while-down")
    assert down.status == "SUBMITTED"
    from tradeops.events import decode

    submitted = [
        e.payload
        for e in (decode(bytes(r.message)) for r in Outbox.objects.filter(event_type="order.lifecycle"))
        if e.payload.client_order_id == down.client_order_id and e.payload.status == "SUBMITTED"
    ]
    assert "broker state unknown (broker_connection" in submitted[0].reason
    assert account.pk in w._needs_reconcile
    broker.connect()  # it comes back; the next event reconnects and reconciles before trading
    w.handle(tick(at=T0 + td(seconds=1)))
    w.handle(signal(signal_id="after-reconnect", at=T0 + td(seconds=1)))
    down.refresh_from_db()
    assert down.status == "CANCELLED"  # the broker never saw it
    assert Order.objects.get(signal_id="after-reconnect").status == "FILLED"
    assert len(broker.deals_since(T0)) == 1


def test_position_mismatch_at_reconciliation_engages_the_account_kill_switch(worker, broker, account):
    from trading.models import KillSwitch

    worker.handle(signal(signal_id="before"))
    assert Order.objects.get(signal_id="before").status == "FILLED"
    # our record drifts from the broker's (a fill booked elsewhere, a manual edit): 2.50 vs 3.00
    Position.objects.filter(account=account, instrument__symbol="EURUSD").update(net_quantity=Decimal("3.00"))
    report = worker.reconcile(account.pk)
    assert {s: tuple(map(Decimal, v)) for s, v in report.position_mismatches.items()} == {
        "EURUSD": (Decimal(3), Decimal("2.5"))
    }
    switch = KillSwitch.objects.get(scope="account", scope_value=str(account.pk), engaged=True)
    assert switch.source == "automatic" and "positions differ from the broker's" in switch.engage_reason
    assert "EURUSD ours 3" in switch.engage_reason and "broker 2.5" in switch.engage_reason
    assert Outbox.objects.filter(event_type="alert.raised").exists()
    worker.handle(signal(signal_id="after", at=T0 + timedelta(seconds=1)))
    assert not Order.objects.filter(signal_id="after").exists()  # the account is HALTED: nothing sized
    skip = AuditRecord.objects.get(action="signal.skipped", object_id=f"after:{account.pk}")
    assert skip.payload_data["code"] == "strategy.trading_halted"
    assert len(broker.deals_since(T0)) == 1  # nothing more reached the broker
    # the gate still refuses what reaches it (defence in depth): an order the strategy did not size
    worker.strategy.headroom_of = None
    worker.handle(signal(signal_id="unsized", at=T0 + timedelta(seconds=2)))
    refused = Order.objects.get(signal_id="unsized")
    assert refused.status == "REJECTED" and "kill_switch" in refused.reject_reason


@pytest.mark.django_db(transaction=True)
def test_on_postgresql_the_worker_writes_each_order_in_one_statement(postgres, broker, account):
    """Outside a test transaction (as in production) the worker's order path is order_commit's
    one-statement write; what it leaves is what the ORM writer leaves (tests/trading/orders/test_commit.py)."""
    from tradeops.audit.verify import audit_verify

    w = make_worker(broker, account).start()
    w.handle(tick())
    w.handle(signal(signal_id="pipelined"))
    w.handle(signal(side="SELL", signal_id="pipelined-2", at=T0 + timedelta(seconds=1)))
    assert w.stats.one_statement_commits == 2
    orders = Order.objects.filter(signal_id__startswith="pipelined").order_by("created_at")
    assert [o.status for o in orders] == ["FILLED", "FILLED"]
    bought, sold = orders[0].filled_quantity, orders[1].filled_quantity
    net = Position.objects.get(account=account, instrument__symbol="EURUSD").net_quantity
    assert net == bought - sold == w.risk.account(account.pk).position("EURUSD")
    assert outbox_types().count("execution.fill") == 2
    assert audit_verify().ok


def test_settle_heap_takes_the_started_worker_out_of_garbage_collection(worker):
    """What run_execution_worker does after start: the worker's hot state (and everything else
    alive then) is frozen, so full collections do not walk it again."""
    import gc

    from tradeops.bus.runner import settle_heap

    try:
        frozen = settle_heap()
        assert frozen == gc.get_freeze_count() > 0
        collected = {id(o) for o in gc.get_objects()}  # the generations a collection walks
        assert id(worker) not in collected and id(worker.gate) not in collected
        since = {"allocated": ["after", "the", "freeze"]}
        assert any(o is since for o in gc.get_objects())  # what comes later is collected as usual
    finally:
        gc.unfreeze()


def test_a_bar_without_its_spread_quotes_its_close_with_the_last_quotes_spread(worker, broker, account):
    """The shipped bars carry no spread: the close of a bar that ends after the last tick becomes
    the quote, and a buy on it pays the spread the ticks had (not the bid)."""
    from tradeops.events import Bar

    worker.handle(tick(bid="1.10100", ask="1.10108", at=T0 + timedelta(minutes=59, seconds=59)))
    bar = Bar(
        symbol="EURUSD",
        timeframe="H1",
        ts=T0,
        open=Decimal("1.10000"),
        high=Decimal("1.10200"),
        low=Decimal("1.09900"),
        close=Decimal("1.10110"),
    )
    worker.handle(make_event(bar, source="test", key="EURUSD", occurred_at=T0 + timedelta(hours=1)))
    quote = worker.risk.quotes["EURUSD"]
    assert (quote.bid, quote.ask, quote.ts) == (Decimal("1.10110"), Decimal("1.10118"), T0 + timedelta(hours=1))
    event = signal(price="1.10114", at=T0 + timedelta(hours=1))
    worker.handle(event)
    order = Order.objects.get(
        client_order_id=client_order_id_for(signal_id=event.payload.signal_id, account_id=account.pk)
    )
    assert order.status == "FILLED"
    assert Execution.objects.get(order=order).price == Decimal("1.10118")


def test_the_worker_says_which_payloads_it_has_nothing_to_do_with(broker, account):
    """The embedded dispatcher skips what the worker declines (``wants``): the predictions that
    share the signals' topic, unless a gate check acts on them; before ``start``, everything."""
    from tradeops.events import Bar, Fill, Prediction, Signal, Tick

    w = make_worker(broker, account)
    assert w.wants(Prediction)  # not started: no gate to ask yet
    w.start()
    assert all(w.wants(kind) for kind in (Tick, Bar, Signal, Fill, OrderEvent))
    assert not w.wants(Prediction)

    class SeesPredictions:
        name, event_types = "sees_predictions", (Prediction,)

        def __call__(self, intent, context):
            return None

        def on_event(self, event):
            pass

    w.gate.add(SeesPredictions())
    assert w.wants(Prediction)
