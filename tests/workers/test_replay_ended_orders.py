"""The demo's sequence (wip/fix45): the replay of real bars has ended, so event time has stopped;
an order is asked for over the API on a symbol with no quote at all, then one on the quoted
symbol. Before 2026-12-06 the first opened the trading breaker (``stale_market_data:none``),
whose cool-down counted only event time, so it never closed and every later order of the
account was refused ``risk.breaker_open``. Now the unquoted symbol's order is refused for that
instrument only, and a breaker opened after the replay ended closes on the wall clock."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.workers.conftest import T0, make_worker, tick
from tradeops.core.clock import ReplayClock
from tradeops.events import decode
from tradeops.outbox.models import Outbox
from trading.brokers import OrderOutcome, Quote
from trading.brokers.paper import PaperBroker, PaperConfig
from trading.models import Order
from trading.orders.requests import order_request


@pytest.fixture
def trader(django_user_model):
    return django_user_model.objects.create_user(username="demo-trader", password="x")


@pytest.fixture
def ended_replay(instrument, gbpusd, account):
    """A worker on a replay clock whose feed has ended at T0: EURUSD quoted (the replayed bars),
    GBPUSD loaded but never quoted; the worker's wall clock moved by hand."""
    clock = ReplayClock()
    broker = PaperBroker.from_instruments([instrument, gbpusd], config=PaperConfig(), clock=clock.now)
    broker.connect()
    broker.update_quote(Quote("EURUSD", Decimal("1.10000"), Decimal("1.10002"), T0))
    worker = make_worker(broker, account, clock=clock).start()
    wall = [1000.0]
    worker._monotonic = lambda: wall[0]
    worker.handle(tick(at=T0))  # the replay's last bar; nothing comes after it
    return worker, wall


def _api_order(worker, trader, account, cid: str, symbol: str) -> Order | None:
    order_request(
        requested_by=trader,
        client_order_id=cid,
        account=account,
        instrument=symbol,
        side="BUY",
        quantity=Decimal("0.10"),
    )
    row = Outbox.objects.filter(event_type="order.requested").order_by("-id").first()
    worker.handle(decode(bytes(row.message)))
    return Order.objects.filter(client_order_id=cid).first()


def test_an_unquoted_symbol_is_refused_alone_and_the_account_trades_on(ended_replay, trader, account):
    worker, _wall = ended_replay
    gbp = _api_order(worker, trader, account, "API-GBP-1", "GBPUSD")
    assert gbp.status == "REJECTED"
    assert "risk.stale_market_data" in gbp.reject_reason and "no market data for GBPUSD" in gbp.reject_reason
    assert "risk.breaker_open" not in gbp.reject_reason
    status = worker.status()
    assert status["breaker"] == "closed"
    eur = _api_order(worker, trader, account, "API-EUR-1", "EURUSD")
    assert eur.status == "FILLED", eur.reject_reason
    assert eur.submitted_at == T0  # event time: the replay's last market time
    # the unquoted symbol stays refused on its own, as often as it is asked for
    again = _api_order(worker, trader, account, "API-GBP-2", "GBPUSD")
    assert again.status == "REJECTED" and "risk.stale_market_data" in again.reject_reason
    assert _api_order(worker, trader, account, "API-EUR-2", "EURUSD").status == "FILLED"


def test_a_breaker_opened_after_the_replay_ended_closes_on_the_wall_clock(ended_replay, trader, account):
    """Broker refusals open the breaker after the feed stopped: event time will never move 30 s,
    so the cool-down ends on the wall clock, the next order is the trial, and its fill closes it."""
    worker, wall = ended_replay
    broker = worker.brokers[account.pk]
    broker.inject(OrderOutcome.REJECT, times=5, message="drill")
    for n in range(5):
        assert _api_order(worker, trader, account, f"API-REJ-{n}", "EURUSD").status == "REJECTED"
    assert worker.status()["breaker"] == "open"
    wall[0] += 29
    refused = _api_order(worker, trader, account, "API-EUR-WAIT", "EURUSD")
    assert refused.status == "REJECTED" and "risk.breaker_open" in refused.reject_reason
    wall[0] += 1
    trial = _api_order(worker, trader, account, "API-EUR-TRIAL", "EURUSD")
    assert trial.status == "FILLED", trial.reject_reason
    assert worker.status()["breaker"] == "closed"
    assert _api_order(worker, trader, account, "API-EUR-NEXT", "EURUSD").status == "FILLED"
