"""Strategy: signals to sized intents with ATR stops, one per signal id."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tests.trading.risk.helpers import EURUSD, T0
from tradeops.events import Signal, make_event
from trading.intents import client_order_id_for
from trading.marketdata.sessions import compile_hours
from trading.strategy import SKIP_CODES, Strategy, StrategyConfig


def signal(
    signal_id="s1", side="BUY", price="1.10000", atr=0.0010, volatility=None, confidence=0.8, algo="algo-1", ts=T0
):
    return Signal(
        signal_id=signal_id,
        symbol="EURUSD",
        ts=ts,
        side=side,
        confidence=confidence,
        price=Decimal(price),
        model_versions={"gbm": "3"},
        algo_id=algo,
        atr=atr,
        volatility=volatility,
    )


def strategy(equity="100000", **cfg):
    return Strategy(
        instruments={"EURUSD": EURUSD},
        accounts=[1, 2],
        equity_of=lambda a: Decimal(equity) * a,
        config=StrategyConfig(**cfg),
    )


def test_volatility_sizing_risks_the_fraction_to_the_stop_and_rounds_down():
    s = strategy(risk_fraction=Decimal("0.005"), sl_atr=Decimal(2), tp_atr=Decimal(3))
    intents = s.handle(make_event(signal(), source="t", key="EURUSD"))
    assert [i.account_id for i in intents] == [1, 2]
    one, two = intents
    # 500 at risk / (2 x 0.0010 x 100,000 = 200 per lot) = 2.5 lots; account 2 has twice the equity
    assert one.quantity == Decimal("2.50") and two.quantity == Decimal("5.00")
    assert one.stop_loss == Decimal("1.09800") and one.take_profit == Decimal("1.10300")
    assert one.client_order_id == client_order_id_for(signal_id="s1", account_id=1)
    assert len(one.client_order_id) <= 27
    assert one.algo_id == "algo-1" and one.signal_id == "s1"


def test_wider_atr_trades_smaller_and_sell_stops_are_above():
    s = strategy()
    (i,) = [x for x in s.on_signal(signal(side="SELL", atr=0.0033)) if x.account_id == 1]
    assert i.quantity == Decimal("0.75")  # 500 / 660 = 0.7575... rounded down to the step
    assert i.stop_loss > Decimal("1.1") > i.take_profit


def test_volatility_stands_in_for_atr_and_no_volatility_means_no_order():
    s = strategy()
    assert s.on_signal(signal("a", atr=None, volatility=0.001))[0].quantity == Decimal("2.27")
    assert s.on_signal(signal("b", atr=None, volatility=None)) == []
    assert "ATR" in s.skipped[-1].reason


def test_fixed_fraction_of_equity():
    s = strategy(sizing="fixed_fraction", notional_fraction=Decimal("0.5"))
    (one, _) = s.on_signal(signal(atr=None))
    assert one.quantity == Decimal("0.45")  # 50,000 / 110,000 = 0.4545...
    assert one.stop_loss is None


def test_sizes_stay_within_instrument_limits():
    s = strategy(equity="1000000000")
    assert all(i.quantity == EURUSD.max_volume for i in s.on_signal(signal()))
    tiny = strategy(equity="10")
    assert tiny.on_signal(signal("t")) == []
    assert "below the minimum" in tiny.skipped[-1].reason
    capped = strategy(max_lots=Decimal("0.333"))
    assert capped.on_signal(signal("c"))[0].quantity == Decimal("0.33")


def test_same_signal_twice_gives_one_intent_per_account():
    s = strategy()
    assert len(s.on_signal(signal("dup"))) == 2
    assert s.on_signal(signal("dup")) == []


@pytest.mark.parametrize(
    "kwargs,why",
    [
        ({"side": "HOLD"}, "neither"),
        ({"confidence": 0.1}, "confidence"),
        ({"algo": "unknown"}, "not traded"),
    ],
)
def test_refused_signals_say_why(kwargs, why):
    s = strategy(min_confidence=0.5, algo_ids=frozenset({"algo-1"}))
    assert s.on_signal(signal(**kwargs)) == []
    assert why in s.skipped[-1].reason


def test_unknown_sizing_mode_is_refused():
    with pytest.raises(ValueError, match="sizing"):
        StrategyConfig(sizing="martingale")


def test_a_signal_of_a_closed_market_is_skipped_with_its_code():
    """The Friday 22:00 bar of a replay: FX closes at 21:55 UTC; no order is sized for the venue
    to refuse. Inside the session the same signal trades."""
    weekdays = {day: [["00:00", "24:00"]] for day in ("mon", "tue", "wed", "thu")}
    hours = compile_hours({**weekdays, "fri": [["00:00", "21:55"]]})
    s = Strategy(
        instruments={"EURUSD": replace(EURUSD, trading_hours=hours)},
        accounts=[1],
        equity_of=lambda a: Decimal(100000),
    )
    friday_close = datetime(2017, 12, 8, 22, 0, tzinfo=UTC)
    assert s.on_signal(signal("closed", ts=friday_close)) == []
    (skip,) = s.last_skips
    assert skip.code == "strategy.market_closed" and skip.code in SKIP_CODES
    assert skip.ts == friday_close and "outside its trading hours" in skip.reason
    assert len(s.on_signal(signal("open", ts=friday_close - timedelta(hours=1)))) == 1
