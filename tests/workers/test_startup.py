"""A restarted worker does not decide before market data has arrived, and never trips its breaker
on its own start-up (issue 19, finding 3): signals that come before the ticks and bars they were
made from are held, then traded once market data covers them; the broker's last quote seeds the
worker at start; a signal is refused for stale market data only when no market data came for
``market_data_wait`` of wall-clock time."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from tests.workers.conftest import T0, make_worker, signal, tick
from trading.brokers.paper import PaperBroker, PaperConfig
from trading.models import Order


def unquoted_broker(*instruments) -> PaperBroker:
    """A connected paper account that has seen no quote yet (a journalled paper account after a
    restart, a broker session opened before the market data)."""
    broker = PaperBroker.from_instruments(instruments, config=PaperConfig(balance=Decimal(100000)))
    broker.connect()
    return broker


def test_a_backlog_of_signals_before_any_market_data_is_held_then_traded(instrument, account):
    worker = make_worker(unquoted_broker(instrument), account).start()
    assert worker.stats.quotes_seeded == 0
    backlog = [signal(at=T0 + timedelta(seconds=i), side="BUY" if i % 2 else "SELL") for i in range(10)]
    for event in backlog:
        assert worker.handle(event) == []
    assert Order.objects.count() == 0, "nothing decided before market data"
    assert worker.holding == 10
    assert worker.risk.breakers.for_account(account.pk).state(T0) == "closed"

    worker.handle(tick(at=T0 + timedelta(seconds=9)))
    assert worker.holding == 0
    orders = list(Order.objects.order_by("created_at"))
    assert len(orders) == 10
    assert all(o.status == "FILLED" for o in orders), [(o.status, o.reject_reason) for o in orders]
    assert worker.risk.breakers.for_account(account.pk).state(T0 + timedelta(seconds=9)) == "closed"
    assert worker.stats.held_signals == 10


def test_the_last_quote_is_seeded_from_the_broker(broker, account):
    worker = make_worker(broker, account).start()  # the paper broker has quotes at T0; no tick fed
    assert worker.stats.quotes_seeded == 2
    worker.handle(signal(at=T0))
    order = Order.objects.get()
    assert order.status == "FILLED" and worker.holding == 0
    assert worker.risk.breakers.for_account(account.pk).state(T0) == "closed"


def test_a_signal_waits_for_market_data_that_covers_it(broker, account):
    """Market data older than the signal by more than ``stale_after`` (the feed's backlog is
    behind the predictions') does not decide it; newer market data does."""
    worker = make_worker(broker, account).start()  # quotes at T0
    late = signal(at=T0 + timedelta(minutes=5))
    worker.handle(late)
    assert worker.holding == 1 and Order.objects.count() == 0
    worker.handle(tick(at=T0 + timedelta(minutes=2)))  # still behind
    assert worker.holding == 1
    worker.handle(tick(at=T0 + timedelta(minutes=5)))
    assert worker.holding == 0
    assert Order.objects.get().status == "FILLED"
    assert worker.risk.breakers.for_account(account.pk).state(T0 + timedelta(minutes=5)) == "closed"


def test_signals_stay_in_arrival_order_while_held(instrument, account):
    worker = make_worker(unquoted_broker(instrument), account).start()
    first, second = signal(at=T0, signal_id="first"), signal(at=T0 + timedelta(seconds=1), signal_id="second")
    worker.handle(first)
    worker.handle(tick(at=T0 - timedelta(minutes=10)))  # too old for the first: both wait
    worker.handle(second)
    assert worker.holding == 2
    worker.handle(tick(at=T0 + timedelta(seconds=1)))
    orders = list(Order.objects.order_by("created_at"))
    assert [o.signal_id for o in orders] == ["first", "second"]


def test_no_market_data_within_the_wait_is_stale_market_data(instrument, account):
    """A feed that is really down: once ``market_data_wait`` of wall-clock time has passed the
    signal is decided as it stands, and refused for stale market data (not held for ever)."""
    worker = make_worker(unquoted_broker(instrument), account, market_data_wait=timedelta(seconds=30)).start()
    wall = [1000.0]
    worker._monotonic = lambda: wall[0]
    worker.handle(signal(at=T0))
    worker.idle()
    assert worker.holding == 1 and Order.objects.count() == 0
    wall[0] += 31
    worker.idle()
    assert worker.holding == 0
    order = Order.objects.get()
    assert order.status == "REJECTED"
    assert "risk.stale_market_data" in order.reject_reason and "risk.breaker_open" not in order.reject_reason
    # the instrument's feed, not the account's conduct
    assert str(worker.risk.breakers.for_account(account.pk).state(T0)) == "closed"


def test_the_runner_commits_nothing_while_signals_are_held(instrument, account):
    """Held signals are not acted on yet: their offsets are committed only once they are, so a
    crash while holding delivers them again."""
    from tradeops.bus.memory import MemoryBus
    from tradeops.bus.runner import StageRunner
    from tradeops.stages import stage_get

    stage = stage_get("execution")
    bus = MemoryBus()
    worker = make_worker(unquoted_broker(instrument), account).start()
    runner = StageRunner(stage=stage, handler=worker, bus=bus, subscription=bus.subscribe(stage.consumes, stage.group))
    bus.publish(signal(at=T0))
    runner.run_once(timeout=0)
    assert worker.holding == 1
    assert bus.lag(stage.group) == 1, "the held signal's offset is not committed"
    bus.publish(tick(at=T0))
    runner.run_once(timeout=0)
    assert worker.holding == 0 and Order.objects.get().status == "FILLED"
    assert bus.lag(stage.group) == 0
