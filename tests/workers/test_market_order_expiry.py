"""A market order is immediate or cancel: one the broker accepted without executing it, or whose
answer was lost, is never left SUBMITTED for ever. After ``market_order_timeout`` of wall clock
the worker asks the broker (reconciliation) and expires it with the reason, in the order, its
audit record, its event, the API and the order's story; a replay that ended (its clock stopped,
no event coming) included."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from compliance.story import order_story
from tests.workers.conftest import T0, make_worker, paper_broker, signal, tick
from tradeops.audit.models import AuditRecord
from tradeops.core.clock import ReplayClock
from tradeops.events import decode
from tradeops.outbox.models import Outbox
from trading.brokers import OrderOutcome
from trading.models import Order
from trading.risk import RiskLimits


def _wall(worker, start=1000.0):
    """The worker's wall clock, moved by hand (the market-order timeout is wall-clock time)."""
    now = [start]
    worker._monotonic = lambda: now[0]
    return now


def test_a_market_order_accepted_but_never_executed_expires_with_its_reason(worker, broker, account):
    wall = _wall(worker)
    broker.inject(OrderOutcome.PLACED, message="accepted, no price to execute at")  # no deal, nothing rests
    worker.handle(signal(signal_id="no-price"))
    order = Order.objects.get(signal_id="no-price")
    assert order.status == "SUBMITTED"
    wall[0] += 29
    worker.idle()
    order.refresh_from_db()
    assert order.status == "SUBMITTED"  # inside the timeout: the broker may still execute it
    wall[0] += 2
    worker.idle()  # nothing else came: the runner's idle turn is enough
    order.refresh_from_db()
    assert order.status == "EXPIRED" and order.closed_at is not None
    assert "market order not executed within 31 s" in order.reject_reason
    assert "broker PLACED: accepted, no price to execute at" in order.reject_reason
    assert worker.stats.market_orders_expired == 1
    record = AuditRecord.objects.get(
        object_type="order", object_id__in=[str(order.pk), order.client_order_id], action="order.expired"
    )
    assert "market order not executed" in record.payload
    lifecycle = [decode(bytes(r.message)).payload for r in Outbox.objects.filter(event_type="order.lifecycle")]
    assert any(e.client_order_id == order.client_order_id and e.status == "EXPIRED" for e in lifecycle)
    story = order_story(client_order_id=order.client_order_id)
    assert any(s.action == "order.expired" and "market order not executed" in s.detail for s in story.steps)
    # the order no longer counts as open: the next one goes through
    worker.handle(signal(signal_id="next", at=T0 + timedelta(seconds=1)))
    assert Order.objects.get(signal_id="next").status == "FILLED"


def test_after_a_replay_ended_an_unanswered_market_order_expires_and_the_account_trades_again(instrument, account):
    """The replay clock stops with the feed, so reconciliation's grace (event time) never ends:
    before, the order stayed SUBMITTED and every later order was refused as
    ``execution.reconciliation_pending``. The wall-clock timeout settles it."""
    clock = ReplayClock()
    worker = make_worker(
        paper_broker(instrument, clock=clock), account, limits=RiskLimits(duplicate_window_ms=None), clock=clock
    ).start()
    wall = _wall(worker)
    worker.handle(tick(at=T0))  # the replay's last quote
    worker.brokers[account.pk].inject(OrderOutcome.TIMEOUT)  # the answer lost; the order never reached the book
    worker.handle(signal(signal_id="lost", at=T0))
    order = Order.objects.get(signal_id="lost")
    assert order.status == "SUBMITTED" and account.pk in worker._needs_reconcile
    wall[0] += 31
    worker.idle()
    order.refresh_from_db()
    assert order.status == "EXPIRED" and "TIMEOUT" in order.reject_reason
    assert order.closed_at == T0  # event time: the replayed market time, not today
    assert account.pk not in worker._needs_reconcile
    worker.handle(signal(signal_id="again", at=T0))
    assert Order.objects.get(signal_id="again").status == "FILLED"


def test_a_market_order_that_filled_is_never_tracked_and_a_refused_one_is_final(worker, broker):
    broker.inject(OrderOutcome.PRICE_OFF, message="no quotes")  # refused by the broker: final at once
    worker.handle(signal(signal_id="refused"))
    refused = Order.objects.get(signal_id="refused")
    assert refused.status == "REJECTED" and "broker PRICE_OFF: no quotes" in refused.reject_reason
    worker.handle(signal(signal_id="filled", at=T0 + timedelta(seconds=1)))
    assert Order.objects.get(signal_id="filled").status == "FILLED"
    assert worker._unsettled_market == {}


def test_the_timeout_is_a_setting(settings):
    from workers.execution import ExecutionConfig

    settings.EXECUTION_MARKET_ORDER_TIMEOUT_SECONDS = 5
    assert ExecutionConfig().market_order_timeout == timedelta(seconds=5)
    assert Decimal(ExecutionConfig().market_order_timeout.total_seconds()) == 5


def _return_only_worker(instrument, account, gbpusd=None):
    """A replay worker whose paper broker fills at most 0.20 lots at the touch and offers EURUSD
    with the RETURN filling mode only (as MT5 does for a symbol in Exchange execution): a 0.50
    lot market order fills 0.20 and its rest, 0.30, keeps working at the broker."""
    from dataclasses import replace

    from trading.brokers import FillingMode, Quote
    from trading.brokers.paper import PaperBroker, PaperConfig

    clock = ReplayClock()
    broker = PaperBroker.from_instruments(
        [instrument], config=PaperConfig(size_at_touch=Decimal("0.20")), clock=clock.now
    )
    broker._specs["EURUSD"] = replace(broker._specs["EURUSD"], filling_modes=frozenset({FillingMode.RETURN}))
    broker.connect()
    broker.update_quote(Quote("EURUSD", Decimal("1.10000"), Decimal("1.10002"), T0))
    worker = make_worker(broker, account, clock=clock).start()
    wall = _wall(worker)
    worker.handle(tick(at=T0))
    return worker, broker, wall


def _api_market_order(worker, account, cid, quantity="0.50"):
    from django.contrib.auth import get_user_model

    from trading.orders.requests import order_request

    user, _ = get_user_model().objects.get_or_create(username="api-trader")
    order_request(
        requested_by=user, client_order_id=cid, account=account, instrument="EURUSD", side="BUY",
        quantity=Decimal(quantity),
    )  # fmt: skip
    row = Outbox.objects.filter(event_type="order.requested").order_by("-id").first()
    worker.handle(decode(bytes(row.message)))
    return Order.objects.get(client_order_id=cid)


def test_the_rest_of_a_return_market_order_left_working_after_a_replay_ended_expires(instrument, account):
    """MetaQuotes' RETURN: the rest of a market order filled in part is not cancelled but keeps
    working at the broker. After the replay ended no quote will execute it: after the timeout the
    rest is cancelled at the broker and the order closed EXPIRED with the 0.20 lots it executed
    kept (its fill and position untouched), and the reason says so."""
    worker, broker, wall = _return_only_worker(instrument, account)
    order = _api_market_order(worker, account, "API-RET-1")
    assert order.status == "PARTIALLY_FILLED" and order.filled_quantity == Decimal("0.20")
    [rest] = broker.open_orders()
    assert rest.comment == "API-RET-1" and rest.volume_current == Decimal("0.30")
    wall[0] += 29
    worker.idle()
    order.refresh_from_db()
    assert order.status == "PARTIALLY_FILLED"  # inside the timeout: the rest may still execute
    wall[0] += 2
    worker.idle()
    order.refresh_from_db()
    assert order.status == "EXPIRED" and order.filled_quantity == Decimal("0.20")
    assert order.closed_at == T0  # event time: the replay's last market time
    assert "market order 0.2 of 0.5 lots executed; the rest, 0.3 lots, not executed within 31 s" in (
        order.reject_reason
    )
    assert f"cancelled at the broker (order {rest.ticket})" in order.reject_reason
    assert broker.open_orders() == []
    assert order.executions.count() == 1
    assert broker.positions()[0].volume == Decimal("0.20")
    assert worker.stats.market_orders_expired == 1
    record = AuditRecord.objects.get(
        object_type="order", object_id__in=[str(order.pk), order.client_order_id], action="order.expired"
    )
    assert "the rest, 0.3 lots" in record.payload
    # nothing of it counts as open any more: the next order goes
    assert _api_market_order(worker, account, "API-RET-2", quantity="0.10").status == "FILLED"


def test_the_rest_of_a_return_market_order_executed_in_time_is_not_expired(instrument, account):
    worker, broker, wall = _return_only_worker(instrument, account)
    order = _api_market_order(worker, account, "API-RET-3", quantity="0.40")
    assert order.status == "PARTIALLY_FILLED"
    wall[0] += 5
    worker.handle(tick(at=T0 + timedelta(seconds=5)))  # the next quote executes the rest at its touch
    order.refresh_from_db()
    assert order.status == "FILLED" and order.filled_quantity == Decimal("0.40")
    assert worker._unsettled_market == {}
    wall[0] += 60
    worker.idle()
    order.refresh_from_db()
    assert order.status == "FILLED" and worker.stats.market_orders_expired == 0
