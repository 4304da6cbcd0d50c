"""Fixtures for the execution worker: a second instrument, a paper broker per account, event builders."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tests.mlmodels.conftest import real_bars, trained  # noqa: F401 - fixtures (a replay through the models)
from tradeops.events import Signal, Tick, make_event
from trading.brokers import Quote
from trading.brokers.paper import PaperBroker, PaperConfig
from trading.risk import RiskLimits
from trading.strategy import StrategyConfig
from workers.execution import ExecutionConfig, ExecutionWorker

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
_ids = itertools.count(1)


@pytest.fixture
def gbpusd(db):
    from trading.models import Instrument

    return Instrument.objects.create(
        symbol="GBPUSD",
        asset_class="FX",
        currency="GBP",
        quote_currency="USD",
        digits=5,
        tick_size=Decimal("0.00001"),
        contract_size=Decimal(100000),
        venue_mic="XOFF",
    )


def tick(symbol="EURUSD", bid="1.10000", ask="1.10002", at=T0):
    return make_event(
        Tick(symbol=symbol, bid=Decimal(bid), ask=Decimal(ask), ts=at), source="test", key=symbol, occurred_at=at
    )


def signal(side="BUY", symbol="EURUSD", price="1.10001", atr=0.0010, at=T0, signal_id=None, algo="algo-1"):
    payload = Signal(
        signal_id=signal_id or f"sig-{next(_ids)}",
        symbol=symbol,
        ts=at,
        side=side,
        confidence=0.8,
        price=Decimal(price),
        model_versions={"gbm": "1"},
        algo_id=algo,
        atr=atr,
    )
    return make_event(payload, source="test", key=symbol)


def paper_broker(*instruments, balance=Decimal(100000), clock=None) -> PaperBroker:
    """A connected paper account quoted at T0; ``clock``: the worker's ``Clock`` (a replay's)."""
    kwargs = {"clock": clock.now} if clock is not None else {}
    broker = PaperBroker.from_instruments(instruments, config=PaperConfig(balance=balance), **kwargs)
    broker.connect()
    for inst in instruments:
        price = Decimal("1.10000") if inst.symbol == "EURUSD" else Decimal("1.30000")
        broker.update_quote(Quote(inst.symbol, price, price + Decimal("0.00002"), T0))
    return broker


def make_worker(
    broker, account, *, limits: RiskLimits | None = None, crash_hook=None, clock=None, **config
) -> ExecutionWorker:
    cfg = ExecutionConfig(
        strategy=config.pop("strategy", StrategyConfig(risk_fraction=Decimal("0.005"))),
        default_limits=limits or RiskLimits(duplicate_window_ms=None),
        stale_after=config.pop("stale_after", timedelta(seconds=30)),
        **config,
    )
    return ExecutionWorker(brokers={account.pk: broker}, config=cfg, crash_hook=crash_hook, clock=clock)


@pytest.fixture
def broker(instrument, gbpusd):
    return paper_broker(instrument, gbpusd)


@pytest.fixture
def worker(broker, account):
    w = make_worker(broker, account).start()
    w.handle(tick())
    w.handle(tick("GBPUSD", "1.30000", "1.30002"))
    return w
