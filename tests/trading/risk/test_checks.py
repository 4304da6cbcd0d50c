"""Each pre-trade risk check refuses with its stable code, and only when it should."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from tests.trading.risk.helpers import ACCOUNT, EURUSD, T0, codes, decide, fill, gate_for, intent, manager
from trading.intents import IntentAction, Quote
from trading.marketdata.sessions import compile_hours
from trading.risk import CODES, TradingState
from trading.risk.killswitch import KillScope


def test_clean_order_passes_every_check_and_the_decision_lists_them_all():
    m = manager(max_position_lots=Decimal(5))
    d = decide(m, gate_for(m), intent())
    assert d.approved
    assert {c.name for c in d.checks} == set(CODES)
    assert d.reason == ""


def test_max_position_counts_fills_and_pending_orders():
    m = manager(max_position_lots=Decimal(2))
    g = gate_for(m)
    first = intent(qty="1.5")
    assert decide(m, g, first).approved
    fill(m, first)
    # 1.5 filled + 0.4 pending = 1.9; another 0.2 would make 2.1
    assert decide(m, g, intent(qty="0.4")).approved
    d = decide(m, g, intent(qty="0.2"))
    assert codes(d) == {"risk.max_position"}
    assert "2.1" in d.reason
    # selling (reducing) is always allowed by this check
    assert decide(m, g, intent(side="SELL", qty="1")).approved


def test_max_position_per_instrument_overrides_account_default():
    m = manager(max_position_lots=Decimal(10))
    m.limits.set(account_id=ACCOUNT, symbol="GBPUSD", max_position_lots=Decimal("0.5"))
    g = gate_for(m)
    assert decide(m, g, intent(qty="3")).approved
    assert codes(decide(m, g, intent(symbol="GBPUSD", qty="0.6", price="1.3"))) == {"risk.max_position"}


def test_gross_and_net_exposure():
    m = manager(max_gross_exposure=Decimal(250000), max_net_exposure=Decimal(150000))
    g = gate_for(m)
    long_eur = intent(qty="1")  # 110,001 notional
    assert decide(m, g, long_eur).approved
    d = decide(m, g, intent(symbol="GBPUSD", qty="1", price="1.3"))  # gross 240k ok, net 240k > 150k
    assert codes(d) == {"risk.max_net_exposure"}
    d = decide(m, g, intent(symbol="GBPUSD", side="SELL", qty="1", price="1.3"))  # net 20k, gross 240k
    assert d.approved
    d = decide(m, g, intent(symbol="GBPUSD", side="SELL", qty="0.1", price="1.3"))  # gross 253k
    assert codes(d) == {"risk.max_gross_exposure"}


def test_exposure_counts_the_book_at_its_marks_and_only_the_order_at_its_price():
    m = manager(max_gross_exposure=Decimal(350_000), max_net_exposure=Decimal(350_000), check_margin=False)
    g = gate_for(m)
    long_eur = intent(qty="3", price="1.00000")
    assert decide(m, g, long_eur).approved
    fill(m, long_eur)
    m.on_quote(Quote("EURUSD", Decimal("1.00000"), Decimal("1.00002"), T0 + timedelta(seconds=1)))
    # held: 3 lots marked at 1.00001 = 300,003; an order priced at 1.4 does not re-price them
    book = m.account(ACCOUNT)
    exposure = book.order_exposure("EURUSD", Decimal("1.4"))
    assert exposure.gross() == book.exposures()[0] == Decimal("300003.00000")
    assert exposure.net(Decimal("-0.1")) == Decimal("286003.00000")
    # buying adds 140,000 a lot: 0.35 lots reach 349,003, 0.36 lots 350,403
    assert decide(m, g, intent(qty="0.35", price="1.4", at=T0 + timedelta(seconds=2)), send=False).approved
    d = decide(m, g, intent(qty="0.36", price="1.4", at=T0 + timedelta(seconds=2)), send=False)
    assert codes(d) == {"risk.max_gross_exposure", "risk.max_net_exposure"}
    # selling 0.1 of the long only reduces it (re-pricing the 3 lots at 1.4 made it 406,000: refused)
    assert decide(m, g, intent(side="SELL", qty="0.1", price="1.4", at=T0 + timedelta(seconds=2))).approved


def test_margin_available():
    m = manager(balance=Decimal(5000))  # margin 3.33% of 110k notional = ~3,663 per lot
    g = gate_for(m)
    assert decide(m, g, intent(qty="1")).approved
    d = decide(m, g, intent(qty="1"))
    assert codes(d) == {"risk.insufficient_margin"}
    assert "free margin" in d.reason


def test_daily_loss_limit_makes_the_account_reducing_and_blocks_increasing_orders():
    m = manager(daily_loss_limit=Decimal(1000))
    g = gate_for(m)
    buy = intent(qty="1")
    decide(m, g, buy)
    fill(m, buy, price="1.10000")
    m.on_quote(Quote("EURUSD", Decimal("1.08900"), Decimal("1.08902"), T0 + timedelta(minutes=5)))  # -1,099
    assert m.trading_state(ACCOUNT) == TradingState.REDUCING
    d = decide(m, g, intent(qty="0.1", at=T0 + timedelta(minutes=6)))
    assert codes(d) == {"risk.daily_loss_limit", "risk.reduce_only"}
    # closing the losing position is still allowed
    assert decide(m, g, intent(side="SELL", qty="1", at=T0 + timedelta(minutes=6), price="1.089")).approved


def test_daily_loss_resets_on_the_next_utc_day():
    m = manager(daily_loss_limit=Decimal(1000))
    g = gate_for(m)
    buy = intent(qty="1")
    decide(m, g, buy)
    fill(m, buy, price="1.10000")
    m.on_quote(Quote("EURUSD", Decimal("1.08900"), Decimal("1.08902"), T0 + timedelta(minutes=5)))
    next_day = T0 + timedelta(days=1)
    m.on_quote(Quote("EURUSD", Decimal("1.08900"), Decimal("1.08902"), next_day))
    assert decide(m, g, intent(qty="0.1", at=next_day)).approved


def test_max_drawdown_from_peak_equity():
    m = manager(balance=Decimal(10000), max_drawdown=Decimal("0.05"))
    g = gate_for(m)
    buy = intent(qty="0.5")
    decide(m, g, buy)
    fill(m, buy, price="1.10000")
    m.on_quote(Quote("EURUSD", Decimal("1.10400"), Decimal("1.10402"), T0 + timedelta(minutes=1)))  # +200: peak 10,200
    assert m.account(ACCOUNT).peak_equity == Decimal("10200.5")
    m.on_quote(Quote("EURUSD", Decimal("1.09300"), Decimal("1.09302"), T0 + timedelta(minutes=2)))  # -350 => 9,650
    d = decide(m, g, intent(qty="0.01", at=T0 + timedelta(minutes=3)))
    assert "risk.max_drawdown" in codes(d)
    assert m.trading_state(ACCOUNT) == TradingState.REDUCING


def test_submit_rate_limit_is_a_sliding_one_second_window():
    m = manager(max_submits_per_second=3)
    g = gate_for(m)
    for k in range(3):
        assert decide(m, g, intent(qty="0.01", at=T0 + timedelta(milliseconds=100 * k))).approved
    assert codes(decide(m, g, intent(qty="0.01", at=T0 + timedelta(milliseconds=900)))) == {"risk.submit_rate"}
    assert decide(m, g, intent(qty="0.01", at=T0 + timedelta(milliseconds=1001))).approved


def test_modify_rate_limit_counts_modifications_only():
    m = manager(max_modifies_per_second=1, max_submits_per_second=100)
    g = gate_for(m)
    assert decide(m, g, intent(action=IntentAction.MODIFY)).approved
    assert codes(decide(m, g, intent(action=IntentAction.MODIFY))) == {"risk.modify_rate"}
    assert decide(m, g, intent(qty="0.01")).approved


def test_max_open_orders():
    m = manager(max_open_orders=2)
    g = gate_for(m)
    first = intent(qty="0.01")
    assert decide(m, g, first).approved
    assert decide(m, g, intent(qty="0.02")).approved
    assert codes(decide(m, g, intent(qty="0.03"))) == {"risk.max_open_orders"}
    fill(m, first)  # filled orders are no longer open
    assert decide(m, g, intent(qty="0.03")).approved


def test_duplicate_order_guard():
    m = manager(duplicate_window_ms=1000)
    g = gate_for(m)
    first = intent(qty="0.5")
    assert decide(m, g, first).approved
    d = decide(m, g, intent(qty="0.5", at=T0 + timedelta(milliseconds=200)))
    assert codes(d) == {"risk.duplicate_order"}
    assert decide(m, g, intent(qty="0.5", at=T0 + timedelta(milliseconds=1200))).approved
    # the same client order id while it is open is a duplicate whatever its size
    assert "risk.duplicate_order" in codes(decide(m, g, intent(client_order_id=first.client_order_id, qty="0.7")))


def test_reducing_allows_only_orders_that_shrink_the_position_not_a_flip():
    m = manager(max_drawdown=Decimal("0.005"))
    g = gate_for(m)
    buy = intent(qty="1")
    decide(m, g, buy)
    fill(m, buy, price="1.10000")
    fell = T0 + timedelta(minutes=1)
    m.on_quote(Quote("EURUSD", Decimal("1.09400"), Decimal("1.09402"), fell))  # -600: 0.6 % under the peak
    assert m.trading_state(ACCOUNT) == TradingState.REDUCING
    assert "risk.reduce_only" in codes(decide(m, g, intent(qty="0.1", at=fell, price="1.094")))
    flip = decide(m, g, intent(side="SELL", qty="2", at=fell, price="1.094"))  # would turn the account short
    assert "risk.reduce_only" in codes(flip)
    assert decide(m, g, intent(side="SELL", qty="1", at=fell, price="1.094")).approved


def test_kill_switch_scopes_block_only_what_they_cover():
    m = manager()
    g = gate_for(m)
    m.kill_switch.engage(KillScope.INSTRUMENT, "GBPUSD")
    assert decide(m, g, intent(qty="0.1")).approved
    d = decide(m, g, intent(symbol="GBPUSD", qty="0.1", price="1.3"))
    assert codes(d) == {"risk.kill_switch_engaged"}
    assert "instrument=GBPUSD" in d.reason
    m.kill_switch.engage(KillScope.ALGO, "momentum-1")
    assert codes(decide(m, g, intent(qty="0.2", algo_id="momentum-1"))) == {"risk.kill_switch_engaged"}
    assert decide(m, g, intent(qty="0.2", algo_id="other")).approved
    m.kill_switch.engage(KillScope.ACCOUNT, str(ACCOUNT))
    assert m.trading_state(ACCOUNT) == TradingState.HALTED
    assert codes(decide(m, g, intent(qty="0.3"))) == {"risk.kill_switch_engaged", "risk.trading_halted"}
    assert decide(m, g, intent(action=IntentAction.CANCEL)).approved


def test_rejection_names_every_failing_check():
    m = manager(max_position_lots=Decimal(1), max_open_orders=0, balance=Decimal(100))
    d = decide(m, gate_for(m), intent(qty="2"))
    assert codes(d) == {"risk.max_position", "risk.insufficient_margin", "risk.max_open_orders"}
    for code in codes(d):
        assert code in d.reason


def test_signal_older_than_the_market_is_refused():
    m = manager()
    m.max_signal_age = timedelta(minutes=15)
    g = gate_for(m)
    m.on_quote(Quote("EURUSD", Decimal("1.10000"), Decimal("1.10002"), T0 + timedelta(minutes=20)))
    d = decide(m, g, intent(at=T0))
    assert codes(d) == {"risk.stale_signal"} and "1200 s before the latest quote" in d.reason
    assert decide(m, g, intent(at=T0 + timedelta(minutes=6))).approved


def test_market_hours_refuse_new_orders_outside_the_instruments_sessions_but_pass_cancels():
    weekdays = {day: [["00:00", "24:00"]] for day in ("mon", "tue", "wed", "thu")}
    closing = replace(EURUSD, trading_hours=compile_hours({**weekdays, "fri": [["00:00", "21:55"]]}))
    m = manager()
    m.add_instrument(closing)
    g = gate_for(m)
    friday = datetime(2017, 12, 8, 21, 54, tzinfo=UTC)
    assert decide(m, g, intent(at=friday)).approved
    d = decide(m, g, intent(at=friday + timedelta(minutes=6)))
    assert codes(d) == {"risk.market_closed"}
    assert "EURUSD is outside its trading hours at 2017-12-08T22:00:00+00:00" in d.reason
    assert codes(decide(m, g, intent(at=friday + timedelta(days=1)))) == {"risk.market_closed"}
    assert decide(m, g, intent(at=friday + timedelta(minutes=6), action=IntentAction.CANCEL)).approved
    # no sessions configured: always open (the instrument spec's default)
    assert decide(manager(), gate_for(manager()), intent(at=friday + timedelta(days=1))).approved
