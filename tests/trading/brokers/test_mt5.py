"""MT5Broker against the stand-in MetaTrader5 module: retcodes, requotes, fills, reconnects, breaker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tests.trading.brokers import fake_mt5
from tradeops.breaker import BreakerState, CircuitBreaker
from trading.brokers import (
    BrokerConnectionError,
    BrokerNotConfigured,
    BrokerProtocolError,
    BrokerRequestError,
    BrokerUnavailable,
    FillingMode,
    OrderOutcome,
    OrderRequest,
    OrderType,
    SymbolNotFound,
)
from trading.brokers.mt5 import RETCODES, MT5Broker


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock():
    return FakeTime()


@pytest.fixture
def terminal():
    return fake_mt5.FakeTerminal()


@pytest.fixture
def broker(terminal, clock):
    breaker = CircuitBreaker("mt5-test", fail_max=2, reset_timeout=30, clock=clock.monotonic)
    b = MT5Broker(
        login=7000001,
        password="secret",
        server="Demo-Server",
        module=fake_mt5.make_module(terminal),
        breaker=breaker,
        monotonic=clock.monotonic,
        sleep=clock.sleep,
        wall_clock=lambda: terminal.now,
        poll_interval=0.05,
        poll_timeout=1.0,
    )
    b.connect()
    return b


def buy(volume: str = "0.10", **kw) -> OrderRequest:
    cid = "T0123456789abcdef0123"  # 21 characters, like trading.intents.client_order_id_for
    return OrderRequest(client_order_id=cid, symbol="EURUSD", side="BUY", volume=Decimal(volume), **kw)


def test_account_symbol_and_tick_are_typed_decimals_in_utc(broker):
    account = broker.account_info()
    assert account.login == 7000001 and account.margin_mode == "NETTING"
    assert account.balance == Decimal("10000.0")
    spec = broker.symbol_spec("EURUSD")
    assert spec.digits == 5 and spec.point == Decimal("0.00001") and spec.contract_size == Decimal("100000.0")
    assert spec.filling_modes == {FillingMode.FOK, FillingMode.IOC}  # flags 1|2, market execution: no RETURN
    quote = broker.quote("EURUSD")
    assert (quote.bid, quote.ask) == (Decimal("1.08501"), Decimal("1.08512"))
    assert quote.ts.tzinfo is UTC


def test_unknown_symbol_is_a_clear_error(broker):
    with pytest.raises(SymbolNotFound, match="XXXYYY"):
        broker.symbol_spec("XXXYYY")


@pytest.mark.parametrize("retcode", sorted(RETCODES))
def test_every_documented_retcode_maps_to_an_outcome(broker, terminal, retcode):
    broker.max_requotes = 0
    terminal.script(retcode)
    result = broker.send_order(buy())
    name, outcome = RETCODES[retcode]
    assert result.retcode == retcode
    assert result.outcome is outcome
    assert name in result.message
    if outcome is OrderOutcome.DONE:
        assert result.filled_volume == Decimal("0.10") and len(result.deals) == 1
        assert result.deals[0].comment == "T0123456789abcdef0123"
    elif outcome is OrderOutcome.DONE_PARTIAL:
        assert result.filled_volume == Decimal("0.05") and result.remaining_volume == Decimal("0.05")
    else:
        assert result.filled_volume == 0 and not result.deals


def test_an_undocumented_retcode_is_refused_not_guessed(broker, terminal):
    terminal.script(10099)
    with pytest.raises(BrokerProtocolError, match="10099"):
        broker.send_order(buy())


def test_request_carries_documented_fields_and_symbol_filling(broker, terminal):
    broker.send_order(buy(magic=42, deviation_points=15))
    sent = terminal.requests[-1]
    assert sent["action"] == fake_mt5.C.TRADE_ACTION_DEAL and sent["type"] == fake_mt5.C.ORDER_TYPE_BUY
    assert sent["price"] == 1.08512 and sent["volume"] == 0.1 and sent["deviation"] == 15
    assert sent["type_filling"] == fake_mt5.C.ORDER_FILLING_FOK and sent["magic"] == 42
    assert sent["comment"] == "T0123456789abcdef0123"


def test_ioc_only_symbol_gets_ioc_and_a_disallowed_mode_is_not_sent(broker, terminal):
    terminal.filling_mode = 2
    broker._specs.clear()
    broker.send_order(buy())
    assert terminal.requests[-1]["type_filling"] == fake_mt5.C.ORDER_FILLING_IOC
    sent_before = len(terminal.requests)
    result = broker.send_order(buy(filling=FillingMode.FOK))
    assert result.outcome is OrderOutcome.INVALID_FILL and len(terminal.requests) == sent_before


def test_comment_longer_than_27_characters_is_refused_before_sending():
    with pytest.raises(BrokerRequestError, match="27"):
        buy(comment="x" * 28)


def test_requote_inside_deviation_is_retried_at_the_new_price(broker, terminal):
    terminal.script(fake_mt5.C.TRADE_RETCODE_REQUOTE, fake_mt5.C.TRADE_RETCODE_DONE)
    result = broker.send_order(buy(deviation_points=10))
    assert result.outcome is OrderOutcome.DONE and result.attempts == 2
    assert [r["price"] for r in terminal.requests] == [1.08512, 1.08514]


def test_requote_beyond_deviation_is_not_chased(broker, terminal):
    terminal.requote_shift_points = 25
    terminal.script(fake_mt5.C.TRADE_RETCODE_REQUOTE, fake_mt5.C.TRADE_RETCODE_DONE)
    result = broker.send_order(buy(deviation_points=10))
    assert result.outcome is OrderOutcome.REQUOTE and result.attempts == 1 and len(terminal.requests) == 1


def test_requote_retries_are_bounded(broker, terminal):
    broker.max_requotes = 3
    terminal.requote_shift_points = 1
    terminal.script(*[fake_mt5.C.TRADE_RETCODE_PRICE_CHANGED] * 10)
    result = broker.send_order(buy(deviation_points=50))
    assert result.outcome is OrderOutcome.PRICE_CHANGED and result.attempts == 4


def test_fills_are_found_by_polling_the_deal_history(broker, terminal, clock):
    terminal.deal_delay_polls = 3
    result = broker.send_order(buy())
    assert result.deals_confirmed and len(result.deals) == 1 and len(clock.sleeps) == 3
    deal = result.deals[0]
    assert deal.price == Decimal("1.08512") and deal.fee == Decimal("-0.35") and deal.ts.tzinfo is UTC


def test_fills_not_visible_before_the_poll_timeout_are_marked_unconfirmed(broker, terminal):
    terminal.deal_delay_polls = 10_000
    result = broker.send_order(buy())
    assert result.outcome is OrderOutcome.DONE and not result.deals_confirmed
    assert result.filled_volume == Decimal("0.1") and result.deals == ()


def test_positions_deals_pending_orders_and_cancel(broker, terminal):
    broker.send_order(buy())
    [position] = broker.positions()
    assert position.side == "BUY" and position.volume == Decimal("0.1")
    deals = broker.deals_since(terminal.now - timedelta(minutes=1), terminal.now + timedelta(minutes=1))
    assert [d.side for d in deals] == ["BUY"]
    terminal.script(fake_mt5.C.TRADE_RETCODE_PLACED)
    placed = broker.send_order(buy(order_type=OrderType.LIMIT, price=Decimal("1.08000")))
    assert placed.outcome is OrderOutcome.PLACED
    [pending] = broker.open_orders()
    assert pending.order_type is OrderType.LIMIT and pending.price == Decimal("1.08")
    assert terminal.requests[-1]["type"] == fake_mt5.C.ORDER_TYPE_BUY_LIMIT
    assert broker.cancel_order(placed.broker_order_id).outcome is OrderOutcome.DONE
    assert broker.open_orders() == []


def test_history_and_naive_datetimes(broker):
    since = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    ticks = broker.ticks("EURUSD", since=since, count=3)
    assert [t.ts for t in ticks] == [since + timedelta(seconds=i, milliseconds=250) for i in range(3)]
    with pytest.raises(ValueError, match="naive"):
        broker.ticks("EURUSD", since=datetime(2026, 3, 2, 9, 0), count=3)
    bars = broker.bars("EURUSD", timeframe="H1", count=2)
    assert len(bars) == 2 and bars[0].spread == Decimal("0.00011") and bars[0].close == Decimal("1.0855")
    with pytest.raises(BrokerRequestError):
        broker.bars("EURUSD", timeframe="H7", count=2)


def test_lost_connection_on_a_read_reconnects_and_retries_once(broker, terminal):
    terminal.initialized = False  # the terminal restarted behind our back
    calls = terminal.initialize_calls
    assert broker.quote("EURUSD").bid == Decimal("1.08501")
    assert terminal.initialize_calls == calls + 1 and broker.connected


def test_order_send_on_a_lost_link_reports_unknown_state_and_is_not_resent(broker, terminal):
    broker.symbol_spec("EURUSD")
    broker.quote("EURUSD")
    terminal.initialized = False
    original = terminal.order_send
    sent = []

    def send_then_fail(request):
        sent.append(request)
        return original(request)

    terminal_module = broker.mt5
    terminal_module.order_send = send_then_fail
    terminal_module.symbol_info_tick = lambda symbol: fake_mt5.Tick(0, 1.08501, 1.08512, 0.0, 0, 1, 6, 0.0)
    result = broker.send_order(buy())
    # _ensure_connected saw a live session flag, so the send went out and failed on the link:
    assert result.outcome is OrderOutcome.CONNECTION and result.state_unknown
    assert len(sent) == 1 and not broker.connected


def test_breaker_opens_after_failures_refuses_fast_and_closes_after_a_good_trial(broker, terminal, clock):
    terminal.drop()
    with pytest.raises(BrokerConnectionError):
        broker.account_info()  # call fails, reconnect fails: two failures
    assert broker.breaker.state is BreakerState.OPEN
    calls = terminal.initialize_calls
    with pytest.raises(BrokerUnavailable, match="open"):
        broker.account_info()
    assert terminal.initialize_calls == calls  # refused without touching the terminal
    terminal.restore()
    clock.now += 31  # past reset_timeout: one trial is let through
    assert broker.breaker.state is BreakerState.HALF_OPEN
    assert broker.account_info().login == 7000001
    assert broker.breaker.state is BreakerState.CLOSED


def test_failed_trial_reopens_the_breaker(broker, terminal, clock):
    terminal.drop()
    with pytest.raises(BrokerConnectionError):
        broker.account_info()
    clock.now += 31
    with pytest.raises(BrokerConnectionError):
        broker.account_info()
    assert broker.breaker.state is BreakerState.OPEN


def test_initialize_failure_names_the_terminal_error(terminal, clock):
    terminal.drop()
    b = MT5Broker(module=fake_mt5.make_module(terminal), monotonic=clock.monotonic, sleep=clock.sleep)
    with pytest.raises(BrokerConnectionError, match="-10003"):
        b.connect()


def test_missing_package_says_how_to_run_it():
    b = MT5Broker(module_name="MetaTrader5_not_installed_here")
    with pytest.raises(BrokerNotConfigured, match="Windows"):
        b.connect()


def test_unknown_margin_mode_is_a_protocol_error(broker, terminal):
    original = terminal.account_info
    broker.mt5.account_info = lambda: original()._replace(margin_mode=9)
    with pytest.raises(BrokerProtocolError, match="margin_mode"):
        broker.account_info()


def test_server_clock_times_are_converted_to_utc_both_ways(terminal, clock):
    from zoneinfo import ZoneInfo

    athens = MT5Broker(
        module=fake_mt5.make_module(terminal),
        server_tz=ZoneInfo("Europe/Athens"),  # EET, UTC+2 in early March
        monotonic=clock.monotonic,
        sleep=clock.sleep,
    )
    athens.connect()
    # the terminal's clock reads 10:00 (server time): that is 08:00 UTC
    assert athens.quote("EURUSD").ts == datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    since = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    ticks = athens.ticks("EURUSD", since=since, count=1)
    assert ticks[0].ts == since + timedelta(milliseconds=250)  # asked for 10:00 server time, got it back as 08:00 UTC


@pytest.mark.parametrize(
    ("exemode", "flags", "modes"),
    [
        (2, 1 | 2, {FillingMode.FOK, FillingMode.IOC}),  # market execution: the flags only
        (2, 2, {FillingMode.IOC}),
        (3, 2, {FillingMode.IOC, FillingMode.RETURN}),  # exchange execution adds Return
        (1, 0, {FillingMode.FOK}),  # instant execution fills market orders FOK
        (0, 0, {FillingMode.FOK}),  # request execution too
    ],
)
def test_filling_modes_follow_the_flags_and_the_execution_mode(broker, terminal, exemode, flags, modes):
    terminal.trade_exemode, terminal.filling_mode = exemode, flags
    broker._specs.clear()
    assert broker.symbol_spec("EURUSD").filling_modes == modes


def test_pending_orders_rest_with_return_even_where_market_orders_cannot(broker, terminal):
    terminal.script(fake_mt5.C.TRADE_RETCODE_PLACED)
    result = broker.send_order(buy(order_type=OrderType.LIMIT, price=Decimal("1.08000")))
    assert result.outcome is OrderOutcome.PLACED
    assert terminal.requests[-1]["type_filling"] == fake_mt5.C.ORDER_FILLING_RETURN


@pytest.mark.parametrize("bid, ask", [(0.0, 0.0), (1.08501, 0.0)])
def test_a_market_order_without_a_quote_is_refused_price_off_and_never_sent(broker, terminal, bid, ask):
    """Immediate or cancel: a terminal with no price for the symbol (a tick of zeros) answers the
    order as the server would (TRADE_RETCODE_PRICE_OFF, 10021), without sending it at price 0 or
    raising an error the worker would read as an unknown state."""
    terminal.bid, terminal.ask = bid, ask
    sent_before = len(terminal.requests)
    result = broker.send_order(buy())
    assert result.outcome == OrderOutcome.PRICE_OFF and result.retcode == 10021
    assert not result.accepted and not result.state_unknown and not result.deals
    assert "no quote for EURUSD" in result.message
    assert len(terminal.requests) == sent_before


def test_a_market_order_whose_tick_read_fails_is_refused_price_off(broker, terminal, monkeypatch):
    monkeypatch.setattr(broker.mt5, "symbol_info_tick", lambda symbol: terminal._fail(fake_mt5.NOT_FOUND))
    result = broker.send_order(buy())
    assert result.outcome == OrderOutcome.PRICE_OFF and not result.state_unknown


@pytest.mark.parametrize(
    ("exemode", "filling", "rests"),
    [
        (3, FillingMode.RETURN, True),  # exchange execution: the rest keeps working
        (2, FillingMode.IOC, False),  # immediate or cancel: the rest is cancelled at once
    ],
)
def test_a_market_order_filled_in_part_leaves_its_rest_working_only_under_return(
    broker, terminal, exemode, filling, rests
):
    """MetaQuotes: under ORDER_FILLING_RETURN "a market or limit order with the remaining volume is
    not canceled but processed further". The rest is the same order (its ticket), listed by
    ``open_orders`` with what is left, until it executes or is removed; the worker's market order
    expiry (docs/execution-worker.md) reconciles and cancels it through ``cancel_order``."""
    terminal.trade_exemode, terminal.filling_mode = exemode, 2
    broker._specs.clear()
    terminal.script(fake_mt5.C.TRADE_RETCODE_DONE_PARTIAL)
    result = broker.send_order(buy(filling=filling))
    assert terminal.requests[-1]["type_filling"] == getattr(fake_mt5.C, f"ORDER_FILLING_{filling.name}")
    assert result.outcome is OrderOutcome.DONE_PARTIAL and result.filled_volume == Decimal("0.05")
    [deal] = result.deals
    assert deal.volume == Decimal("0.05") and deal.comment == "T0123456789abcdef0123"
    if not rests:
        assert broker.open_orders() == []
        return
    [rest] = broker.open_orders()
    assert rest.ticket == result.broker_order_id and rest.order_type is OrderType.MARKET and rest.side == "BUY"
    assert rest.volume_initial == Decimal("0.10") and rest.volume_current == Decimal("0.05")
    assert rest.comment == "T0123456789abcdef0123"
    assert broker.cancel_order(rest.ticket).outcome is OrderOutcome.DONE
    assert broker.open_orders() == []
    [position] = broker.positions()
    assert position.volume == Decimal("0.05")  # what executed stays executed
