"""The paper broker: fills, partials, rejects, resting orders, and an account that reconciles."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trading.brokers import (
    BrokerConnectionError,
    FillingMode,
    OrderOutcome,
    OrderRequest,
    OrderType,
    Quote,
)
from trading.brokers.mt5 import RETCODES
from trading.brokers.paper import PaperBroker, PaperConfig, PaperFault, paper_faults_parse, spec_from_instrument
from trading.position_math import PositionState, apply_fill, unrealised_pnl
from trading.seed_data import INSTRUMENTS

MONDAY = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
SATURDAY = datetime(2026, 3, 7, 10, 0, tzinfo=UTC)
SPECS = {row["symbol"]: spec_from_instrument(row) for row in INSTRUMENTS}


class Clock:
    def __init__(self, now: datetime = MONDAY):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def make(config: PaperConfig | None = None, clock: Clock | None = None, symbols=("EURUSD", "USDJPY", "XAUUSD")):
    clock = clock or Clock()
    broker = PaperBroker([SPECS[s] for s in symbols], config=config or PaperConfig(), clock=clock)
    broker.connect()
    broker.update_quote(Quote("EURUSD", Decimal("1.08500"), Decimal("1.08510"), clock.now))
    broker.update_quote(Quote("USDJPY", Decimal("150.000"), Decimal("150.010"), clock.now))
    broker.update_quote(Quote("XAUUSD", Decimal("2300.00"), Decimal("2300.30"), clock.now))
    return broker, clock


def order(side="BUY", volume="1", symbol="EURUSD", cid="C1", **kw) -> OrderRequest:
    return OrderRequest(client_order_id=cid, symbol=symbol, side=side, volume=Decimal(volume), **kw)


def test_market_buy_fills_at_the_ask_and_sell_at_the_bid():
    broker, _ = make()
    bought = broker.send_order(order("BUY"))
    assert bought.outcome is OrderOutcome.DONE and bought.retcode == 10009
    assert bought.price == Decimal("1.08510") and bought.filled_volume == 1
    sold = broker.send_order(order("SELL", cid="C2"))
    assert sold.price == Decimal("1.08500")
    # the round trip lost the spread: 1 lot x 100,000 x 0.0001 = 10 USD
    assert broker.account_info().balance == Decimal("99990.00")
    assert [d.entry for d in broker.deals_since(MONDAY)] == ["IN", "OUT"]


def test_slippage_is_adverse_and_beyond_the_deviation_is_a_requote():
    broker, _ = make(PaperConfig(slippage_points=3))
    assert broker.send_order(order("BUY", deviation_points=5)).price == Decimal("1.08513")
    assert broker.send_order(order("SELL", cid="C2", deviation_points=5)).price == Decimal("1.08497")
    requote = broker.send_order(order("BUY", cid="C3", deviation_points=2))
    assert requote.outcome is OrderOutcome.REQUOTE and requote.filled_volume == 0


def test_latency_delays_the_fill_time():
    broker, clock = make(PaperConfig(latency=timedelta(milliseconds=40)))
    result = broker.send_order(order())
    assert result.deals[0].ts == clock.now + timedelta(milliseconds=40)


def test_size_beyond_the_touch_partially_fills_with_ioc_and_rests_with_return():
    broker, _ = make(PaperConfig(size_at_touch=Decimal("2")))
    ioc = broker.send_order(order(volume="5", filling=FillingMode.IOC))
    assert ioc.outcome is OrderOutcome.DONE_PARTIAL and ioc.filled_volume == 2 and ioc.remaining_volume == 3
    assert broker.open_orders() == []
    ret = broker.send_order(order(volume="5", cid="C2", filling=FillingMode.RETURN))
    assert ret.outcome is OrderOutcome.DONE_PARTIAL
    [rest] = broker.open_orders()
    # MetaQuotes' RETURN: the rest is the same market order, still working (not a limit order)
    assert rest.volume_current == 3 and rest.order_type == OrderType.MARKET and rest.ticket == ret.broker_order_id
    fok = broker.send_order(order(volume="5", cid="C3", filling=FillingMode.FOK))
    assert fok.outcome is OrderOutcome.REJECT and fok.filled_volume == 0


def test_rejects_outside_trading_hours_and_on_insufficient_margin():
    broker, clock = make()
    clock.now = SATURDAY
    closed = broker.send_order(order())
    assert closed.outcome is OrderOutcome.MARKET_CLOSED and closed.retcode == 10018
    clock.now = MONDAY
    # 40 lots of EURUSD: notional 4.34m USD x 3.3333% = ~144,700 USD margin > 100,000 equity
    broke = broker.send_order(order(volume="40"))
    assert broke.outcome is OrderOutcome.NO_MONEY and broke.retcode == 10019
    assert broker.positions() == []


def test_reducing_a_position_is_allowed_even_when_margin_is_tight():
    broker, _ = make(PaperConfig(balance=Decimal(4000)))
    assert broker.send_order(order(volume="1")).outcome is OrderOutcome.DONE  # ~3,617 USD margin
    assert broker.send_order(order(volume="1", cid="C2")).outcome is OrderOutcome.NO_MONEY
    assert broker.send_order(order("SELL", volume="0.5", cid="C3")).outcome is OrderOutcome.DONE


@pytest.mark.parametrize(
    ("request_kwargs", "outcome"),
    [
        ({"volume": "0.015"}, OrderOutcome.INVALID_VOLUME),
        ({"volume": "500"}, OrderOutcome.INVALID_VOLUME),
        ({"symbol": "NOPE"}, OrderOutcome.INVALID),
        ({"stop_loss": Decimal("1.09")}, OrderOutcome.INVALID_STOPS),
        ({"take_profit": Decimal("1.08")}, OrderOutcome.INVALID_STOPS),
        ({"order_type": OrderType.LIMIT, "price": Decimal("1.09000")}, OrderOutcome.INVALID_PRICE),
        ({"order_type": OrderType.LIMIT, "price": Decimal("1.080005")}, OrderOutcome.INVALID_PRICE),
        ({"order_type": OrderType.STOP, "price": Decimal("1.08000")}, OrderOutcome.INVALID_PRICE),
    ],
)
def test_invalid_requests_get_the_mt5_outcome(request_kwargs, outcome):
    broker, _ = make()
    result = broker.send_order(order(**request_kwargs))
    assert result.outcome is outcome
    assert RETCODES[result.retcode][1] is outcome


def test_no_quote_or_a_stale_quote_is_price_off():
    broker, clock = make(PaperConfig(max_quote_age=timedelta(seconds=5)), symbols=("EURUSD", "GBPUSD"))
    assert broker.send_order(order(symbol="GBPUSD")).outcome is OrderOutcome.PRICE_OFF
    clock.now += timedelta(seconds=6)
    assert broker.send_order(order()).outcome is OrderOutcome.PRICE_OFF


def test_disabled_symbol_and_rate_limit():
    specs = [replace(SPECS["EURUSD"], trade_allowed=False), SPECS["GBPUSD"]]
    broker = PaperBroker(specs, config=PaperConfig(max_orders_per_second=2), clock=Clock())
    broker.connect()
    broker.update_quote(Quote("GBPUSD", Decimal("1.26000"), Decimal("1.26010"), MONDAY))
    assert broker.send_order(order()).outcome is OrderOutcome.TRADE_DISABLED
    assert broker.send_order(order(symbol="GBPUSD", cid="C2")).outcome is OrderOutcome.DONE
    assert broker.send_order(order(symbol="GBPUSD", cid="C3")).outcome is OrderOutcome.TOO_MANY_REQUESTS


def test_limit_and_stop_orders_rest_then_fill_when_the_market_reaches_them():
    broker, clock = make()
    limit = broker.send_order(order(order_type=OrderType.LIMIT, price=Decimal("1.08400")))
    stop = broker.send_order(order("SELL", cid="C2", order_type=OrderType.STOP, price=Decimal("1.08300")))
    assert (limit.outcome, stop.outcome) == (OrderOutcome.PLACED, OrderOutcome.PLACED)
    assert broker.update_quote(Quote("EURUSD", Decimal("1.08450"), Decimal("1.08460"), clock.now)) == []
    deals = broker.update_quote(Quote("EURUSD", Decimal("1.08380"), Decimal("1.08390"), clock.now))
    assert [(d.side, d.price) for d in deals] == [("BUY", Decimal("1.08390"))]
    deals = broker.update_quote(Quote("EURUSD", Decimal("1.08290"), Decimal("1.08300"), clock.now))
    assert [(d.side, d.price, d.entry) for d in deals] == [("SELL", Decimal("1.08290"), "OUT")]
    assert broker.positions() == [] and broker.open_orders() == []


def test_modify_and_cancel_resting_orders():
    broker, _ = make()
    placed = broker.send_order(order(order_type=OrderType.LIMIT, price=Decimal("1.08000")))
    modified = broker.modify_order(placed.broker_order_id, price=Decimal("1.07900"))
    assert modified.outcome is OrderOutcome.DONE and broker.open_orders()[0].price == Decimal("1.07900")
    assert broker.modify_order(placed.broker_order_id, price=Decimal("1.07900")).outcome is OrderOutcome.NO_CHANGES
    assert broker.cancel_order(placed.broker_order_id).outcome is OrderOutcome.DONE
    assert broker.cancel_order(placed.broker_order_id).outcome is OrderOutcome.INVALID


def test_injected_outcomes_and_a_lost_reply_after_execution():
    broker, _ = make()
    broker.inject(OrderOutcome.TIMEOUT)
    timed_out = broker.send_order(order())
    assert timed_out.outcome is OrderOutcome.TIMEOUT and timed_out.state_unknown and broker.positions() == []
    broker.inject(OrderOutcome.CONNECTION, executed=True)
    lost = broker.send_order(order(cid="C2"))
    assert lost.outcome is OrderOutcome.CONNECTION and lost.deals == ()
    # ... but the deal is there for reconciliation, found by its comment (the client order id)
    assert [d.comment for d in broker.deals_since(MONDAY)] == ["C2"]
    assert broker.send_order(order(cid="C3")).outcome is OrderOutcome.DONE


def test_a_fault_drill_is_parsed_and_answers_the_next_sends_in_order():
    faults = paper_faults_parse(" reject*2, TIMEOUT:executed ,")
    assert faults == [PaperFault(OrderOutcome.REJECT, 2), PaperFault(OrderOutcome.TIMEOUT, 1, True)]
    assert paper_faults_parse("") == []
    for bad in ("NOPE", "REJECT*0", "REJECT*x", "TIMEOUT:lost"):
        with pytest.raises(ValueError, match="paper broker fault"):
            paper_faults_parse(bad)
    broker, _ = make()
    for fault in faults:
        broker.inject(fault.outcome, times=fault.times, executed=fault.executed)
    answers = [broker.send_order(order(cid=f"C{i}")) for i in range(4)]
    assert [a.outcome for a in answers] == ["REJECT", "REJECT", "TIMEOUT", "DONE"]
    assert [d.comment for d in broker.deals_since(MONDAY)] == ["C2", "C3"]  # the lost reply's order filled


def test_every_outcome_the_mt5_adapter_can_produce_is_possible_on_paper():
    broker, _ = make()
    for outcome in {o for _, o in RETCODES.values()}:
        broker.inject(outcome)
        assert broker.send_order(order()).outcome is outcome


def test_calls_need_a_connection():
    broker, _ = make()
    broker.disconnect()
    with pytest.raises(BrokerConnectionError):
        broker.send_order(order())


def test_jpy_pnl_is_converted_to_the_account_currency():
    broker, _ = make()
    broker.send_order(order(symbol="USDJPY", volume="1"))
    broker.send_order(order("SELL", symbol="USDJPY", volume="1", cid="C2"))
    # spread 0.010 JPY x 100,000 = 1,000 JPY, at a mid of 150.005 = 6.67 USD
    assert broker.account_info().balance == Decimal("99993.33")


# ---------------------------------------------------------------- the property

STEP = st.tuples(
    st.sampled_from(["EURUSD", "XAUUSD"]),
    st.sampled_from(["BUY", "SELL"]),
    st.integers(min_value=1, max_value=300),  # hundredths of a lot
    st.integers(min_value=-40, max_value=40),  # quote move, in ticks x 10
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(STEP, min_size=1, max_size=25), commission=st.sampled_from(["0", "3.5"]))
def test_positions_rebuilt_from_fills_reconcile_with_the_account(steps, commission):
    broker, clock = make(PaperConfig(commission_per_lot=Decimal(commission), size_at_touch=Decimal("2")))
    for i, (symbol, side, hundredths, move) in enumerate(steps):
        quote = broker.quote(symbol)
        spec = SPECS[symbol]
        shift = spec.tick_size * move * 10
        if quote.bid + shift > 0:
            clock.now += timedelta(seconds=1)
            broker.update_quote(Quote(symbol, quote.bid + shift, quote.ask + shift, clock.now))
        broker.send_order(order(side, f"{hundredths / 100:.2f}", symbol, cid=f"C{i}", filling=FillingMode.IOC))

    deals = broker.deals_since(MONDAY)
    books: dict[str, PositionState] = {}
    for deal in deals:
        signed = deal.volume if deal.side == "BUY" else -deal.volume
        books[deal.symbol] = apply_fill(
            books.get(deal.symbol, PositionState()),
            signed_quantity=signed,
            price=deal.price,
            contract_size=SPECS[deal.symbol].contract_size,
        )
    reported = {p.symbol: p for p in broker.positions()}
    for symbol, state in books.items():
        if state.net_quantity == 0:
            assert symbol not in reported
            continue
        position = reported[symbol]
        assert position.signed_volume == state.net_quantity
        assert position.price_open == state.average_price
    account = broker.account_info()
    assert account.balance == PaperConfig().balance + sum(d.profit + d.fee for d in deals)
    # Realised P&L per deal is rounded to cents, as MT5 books it; the rebuild is exact.
    realised = sum(state.realised_pnl for state in books.values())
    assert abs(sum(d.profit for d in deals) - realised) <= Decimal("0.005") * len(deals)
    unrealised = Decimal(0)
    for symbol, state in books.items():
        if state.net_quantity:
            quote = broker.quote(symbol)
            mark = quote.bid if state.net_quantity > 0 else quote.ask
            unrealised += unrealised_pnl(state, mark_price=mark, contract_size=SPECS[symbol].contract_size)
    assert abs(account.equity - (account.balance + unrealised)) <= Decimal("0.005")
    assert account.margin_free == account.equity - account.margin


def test_an_older_quote_does_not_move_the_price_back():
    broker, clock = make()
    broker.update_quote(Quote("EURUSD", Decimal("1.09000"), Decimal("1.09010"), clock.now + timedelta(seconds=5)))
    assert broker.update_quote(Quote("EURUSD", Decimal("1.08000"), Decimal("1.08010"), clock.now)) == []
    assert broker.quote("EURUSD").bid == Decimal("1.09000")


def test_market_order_stops_are_judged_against_the_closing_side_as_mt5_does():
    broker, _ = make()  # EURUSD 1.08500 / 1.08510
    # a buy closes at the bid: a stop loss between bid and ask is already hit
    assert broker.send_order(order(stop_loss=Decimal("1.08505"))).outcome is OrderOutcome.INVALID_STOPS
    assert broker.send_order(order(cid="C2", take_profit=Decimal("1.08505"))).outcome is OrderOutcome.DONE


def test_tick_history_serves_ticks_since_a_time():
    broker, clock = make(PaperConfig(tick_history=3))
    for i in range(1, 5):
        broker.update_quote(
            Quote(
                "EURUSD",
                Decimal("1.08500") + i * Decimal("0.00001"),
                Decimal("1.08600"),
                clock.now + timedelta(seconds=i),
            )
        )
    ticks = broker.ticks("EURUSD", since=clock.now + timedelta(seconds=2), count=10)
    assert [t.bid for t in ticks] == [Decimal("1.08502"), Decimal("1.08503"), Decimal("1.08504")]
    assert len(broker.ticks("EURUSD", since=clock.now, count=2)) == 2


def test_without_a_rate_into_the_account_currency_an_order_is_price_off_not_an_exception():
    broker, clock = make(symbols=("GER40",))
    broker.update_quote(Quote("GER40", Decimal("18000.0"), Decimal("18001.0"), clock.now))
    result = broker.send_order(order(symbol="GER40", volume="1"))
    assert result.outcome is OrderOutcome.PRICE_OFF and "EURUSD" in result.message


def test_the_rest_of_a_return_market_order_keeps_executing_at_the_next_touches():
    """MetaQuotes (ENUM_ORDER_TYPE_FILLING, ORDER_FILLING_RETURN): "a market or limit order with
    the remaining volume is not canceled but processed further". The rest executes at the touch
    of the following quotes, wherever the market went (a limit at the first fill's price, as the
    paper broker left it before 2026-12-06, never filled once the market moved away), at most
    ``size_at_touch`` at a time; cancelling it removes what is left."""
    broker, clock = make(PaperConfig(size_at_touch=Decimal("2")))
    first = broker.send_order(order(volume="5", filling=FillingMode.RETURN))
    assert first.filled_volume == 2 and first.remaining_volume == 3
    clock.now += timedelta(seconds=1)
    up = Quote("EURUSD", Decimal("1.08600"), Decimal("1.08602"), clock.now)  # the market moved up, away
    [deal] = broker.update_quote(up)
    assert deal.volume == 2 and deal.price == Decimal("1.08602") and deal.order_id == first.broker_order_id
    [rest] = broker.open_orders()
    assert rest.volume_current == 1 and rest.volume_initial == 5
    clock.now += timedelta(seconds=1)
    [last] = broker.update_quote(Quote("EURUSD", Decimal("1.08610"), Decimal("1.08612"), clock.now))
    assert last.volume == 1 and last.price == Decimal("1.08612")
    assert broker.open_orders() == []
    assert broker.positions()[0].volume == 5
    # a rest cancelled before it executes is gone
    again = broker.send_order(order(volume="5", cid="C9", filling=FillingMode.RETURN))
    assert broker.cancel_order(again.broker_order_id).outcome is OrderOutcome.DONE
    assert broker.open_orders() == []
    clock.now += timedelta(seconds=1)
    assert broker.update_quote(Quote("EURUSD", Decimal("1.08620"), Decimal("1.08622"), clock.now)) == []
