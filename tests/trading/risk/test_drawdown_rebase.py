"""A drawdown that made an account REDUCING ends only when a risk manager re-bases its peak
equity (``RiskManager.peak_equity_rebase``): a flat account cannot earn it back, so until
2026-12-07 it stayed REDUCING, every signal a ``strategy.reduce_only`` skip, short of a change
of the limit. The re-base moves the peak to the equity now (drawdown 0), the limit counts afresh
from there, and the daily loss, the day's own, is left to end with the day (event time, UTC)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from tests.trading.risk.helpers import ACCOUNT, T0, decide, fill, gate_for, intent, manager
from trading.intents import Quote
from trading.risk import TradingState, order_headroom


def quote(m, bid: str, at):
    m.on_quote(Quote("EURUSD", Decimal(bid), Decimal(bid) + Decimal("0.00002"), at))


def lose_and_go_flat(m, *, drop_to="1.09400"):
    """Buy 2 lots at 1.10001, let the price fall, sell them at the fall: flat, with a loss."""
    gate = gate_for(m)
    buy = intent(qty="2")
    assert decide(m, gate, buy).approved
    fill(m, buy)
    at = T0 + timedelta(seconds=10)
    quote(m, drop_to, at)
    sell = intent(side="SELL", qty="2", at=at, price=drop_to)
    assert decide(m, gate, sell).approved
    fill(m, sell, price=drop_to)
    assert m.account(ACCOUNT).position("EURUSD") == 0
    return at


def test_a_flat_account_in_drawdown_stays_reducing_until_its_peak_is_rebased():
    m = manager(max_drawdown=Decimal("0.01"), check_margin=False)
    at = lose_and_go_flat(m)  # -1,202.00 on 100,000: 1.2 % below the peak
    book = m.account(ACCOUNT)
    assert m.trading_state(ACCOUNT, at) is TradingState.REDUCING
    for later in (at + timedelta(hours=1), at + timedelta(days=3)):  # flat: nothing brings it back
        quote(m, "1.12000", later)
        assert m.trading_state(ACCOUNT, later) is TradingState.REDUCING
    why = m.reducing_reason(ACCOUNT)
    assert why == "drawdown 1.2020% of peak equity 100000.00 >= limit 1.00%"
    room = order_headroom(m, account_id=ACCOUNT, symbol="EURUSD", side="BUY", price=Decimal("1.12001"), at=at)
    assert room.code == "risk.reduce_only" and why in room.detail  # the skip says which limit, with its figure

    before, after = m.peak_equity_rebase(ACCOUNT)
    assert (before, after) == (Decimal("100000.00000"), book.equity()) and after == Decimal("98798.00000")
    assert book.drawdown() == 0 and book.peak_equity == after
    assert m.reducing_reason(ACCOUNT) == ""
    assert m.trading_state(ACCOUNT, at) is TradingState.ACTIVE
    assert order_headroom(m, account_id=ACCOUNT, symbol="EURUSD", side="BUY", price=Decimal("1.12001"), at=at).fits


def test_after_a_rebase_the_drawdown_limit_counts_from_the_new_peak():
    m = manager(max_drawdown=Decimal("0.01"), check_margin=False)
    at = lose_and_go_flat(m)
    m.peak_equity_rebase(ACCOUNT)
    gate = gate_for(m)
    buy = intent(qty="2", at=at + timedelta(seconds=1), price="1.09402")
    assert decide(m, gate, buy).approved
    fill(m, buy)
    quote(m, "1.09000", at + timedelta(seconds=2))  # -802: 0.81 % of the new peak, under the limit
    assert m.trading_state(ACCOUNT, at) is TradingState.ACTIVE
    quote(m, "1.08900", at + timedelta(seconds=3))  # -1,002: 1.01 % of the new peak
    assert m.trading_state(ACCOUNT, at) is TradingState.REDUCING
    assert m.reducing_reason(ACCOUNT).startswith("drawdown 1.0142% of peak equity 98798.00")


def test_a_rebase_leaves_the_daily_loss_which_ends_with_the_day_on_event_time():
    m = manager(max_drawdown=Decimal("0.01"), daily_loss_limit=Decimal(1000), check_margin=False)
    at = lose_and_go_flat(m)
    assert m.reducing_reason(ACCOUNT) == (
        "drawdown 1.2020% of peak equity 100000.00 >= limit 1.00%; "
        "daily loss 1202.00 since 2026-03-02 00:00 UTC >= limit 1000.00"
    )
    m.peak_equity_rebase(ACCOUNT)
    assert m.trading_state(ACCOUNT, at) is TradingState.REDUCING  # the day's loss still stands
    assert m.reducing_reason(ACCOUNT).startswith("daily loss 1202.00 ")
    next_day = T0.replace(hour=0) + timedelta(days=1, seconds=1)  # the next UTC day of EVENT time
    quote(m, "1.09400", next_day)  # a quote of the new day rolls it (a replay's market time alike)
    assert m.trading_state(ACCOUNT, next_day) is TradingState.ACTIVE
