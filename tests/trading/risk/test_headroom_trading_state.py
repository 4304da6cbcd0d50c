"""The sizing reads the account's trading state: while REDUCING a signal that would open or grow a
position is skipped (``strategy.reduce_only``) and one that shrinks it is sized to at most the
position; while HALTED nothing is sent (``strategy.trading_halted``). The gate keeps its own
``TradingStateCheck`` (defence in depth); the property drives a random day of signals, fills,
quotes that breach the loss limits and a kill switch engaged and released, and checks that the
gate never has to refuse a sized order for the state. Each state comes about as in production
(a breached limit, the kill switch); until 2026-12-07 the tests set it on the risk manager.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from hypothesis import event, given, settings
from hypothesis import strategies as st

from tests.trading.risk.helpers import ACCOUNT, EURUSD, GBPUSD, T0, codes, decide, fill, gate_for, intent, manager
from tradeops.events import Signal
from trading.intents import Quote
from trading.risk import BreakerBook, TradingState, order_headroom
from trading.risk.killswitch import KillScope
from trading.risk.state import is_reducing
from trading.strategy import Strategy, StrategyConfig

SPECS = {"EURUSD": EURUSD, "GBPUSD": GBPUSD}
STATE_CODES = {"risk.reduce_only", "risk.trading_halted"}


def room(m, side="BUY", symbol="EURUSD", price="1.10001"):
    return order_headroom(m, account_id=ACCOUNT, symbol=symbol, side=side, price=Decimal(price), at=T0)


def long_position(m, qty="2", open_qty=None):
    gate = gate_for(m)
    i = intent(qty=qty)
    assert decide(m, gate, i).approved
    fill(m, i)
    if open_qty:
        assert decide(m, gate, intent(qty=open_qty)).approved  # open, not filled


def reducing(m):
    """REDUCING as it comes about: the firm-wide daily loss limit of 100 breached by a price 50
    pips under the long position's fills (0.30 lots: -150)."""
    m.limits.set(account_id=None, symbol=None, daily_loss_limit=Decimal(100))
    m.on_quote(Quote("EURUSD", Decimal("1.09500"), Decimal("1.09502"), T0))
    assert m.trading_state(ACCOUNT, T0) is TradingState.REDUCING


def halted(m, scope=KillScope.ACCOUNT):
    """HALTED as an operator does it: the kill switch on the account (or on everything)."""
    m.kill_switch.engage(scope, str(ACCOUNT))
    assert m.trading_state(ACCOUNT, T0) is TradingState.HALTED


def strategy_for(m, **config):
    return Strategy(
        instruments=SPECS,
        accounts=[ACCOUNT],
        equity_of=lambda a: m.account(a).equity(),
        headroom_of=lambda **kw: order_headroom(m, **kw),
        config=StrategyConfig(**{"risk_fraction": Decimal("0.02"), **config}),
    )


def signal(signal_id, side="BUY", at=T0, symbol="EURUSD", price="1.10001", atr=0.001):
    return Signal(
        signal_id=signal_id,
        symbol=symbol,
        ts=at,
        side=side,
        confidence=0.9,
        price=Decimal(price),
        model_versions={},
        algo_id="a",
        atr=atr,
    )


# ---------------------------------------------------------------- headroom


def test_reducing_leaves_no_room_to_open_or_grow_and_the_position_to_shrink():
    m = manager(check_margin=False)
    long_position(m, qty="2")
    reducing(m)
    grow = room(m)
    assert not grow.fits and grow.code == "risk.reduce_only"
    assert "REDUCING" in grow.detail and "would grow it" in grow.detail
    shrink = room(m, side="SELL")
    assert shrink.lots == Decimal("2.00") and shrink.code == "risk.reduce_only"
    opening = room(m, symbol="GBPUSD", price="1.30001")  # flat on GBPUSD: a buy would open it
    assert not opening.fits and "would open it" in opening.detail


def test_reducing_counts_open_orders_as_the_gate_does():
    m = manager(check_margin=False)
    long_position(m, qty="2", open_qty="0.5")  # 2 held + 0.5 to buy: up to 2.5 may be sold
    reducing(m)
    assert room(m, side="SELL").lots == Decimal("2.50")


def test_a_tighter_limit_still_binds_while_reducing():
    m = manager(max_position_lots=Decimal(5), check_margin=False)
    long_position(m, qty="4")
    m.limits.set(account_id=ACCOUNT, symbol=None, max_position_lots=Decimal(5), max_open_orders=1)
    reducing(m)
    assert room(m, side="SELL").lots == Decimal("4.00")


def test_halted_leaves_no_room_on_either_side():
    m = manager(check_margin=False)
    long_position(m)
    halted(m, KillScope.ALL)  # every account
    for side in ("BUY", "SELL"):
        h = room(m, side=side)
        assert not h.fits and h.code == "risk.trading_halted"
        assert "kill switch engaged on all" in h.detail


def test_a_breached_daily_loss_makes_the_headroom_reduce_only_without_an_operator():
    m = manager(daily_loss_limit=Decimal(500), check_margin=False)
    long_position(m, qty="2")
    m.on_quote(Quote("EURUSD", Decimal("1.09700"), Decimal("1.09702"), T0 + timedelta(seconds=1)))  # -600
    assert m.trading_state(ACCOUNT, T0) is TradingState.REDUCING
    assert room(m).code == "risk.reduce_only" and not room(m).fits
    assert room(m, side="SELL").lots == Decimal("2.00")


# ---------------------------------------------------------------- strategy


def test_the_strategy_skips_growth_and_sizes_a_reducing_signal_to_the_position():
    m = manager(check_margin=False)
    long_position(m, qty="0.30")
    reducing(m)
    strategy = strategy_for(m)
    assert strategy.on_signal(signal("grow")) == []
    (skip,) = strategy.last_skips
    assert skip.code == "strategy.reduce_only" and skip.limit_code == "risk.reduce_only"
    assert skip.wanted > Decimal("0.30") and skip.account_id == ACCOUNT
    assert "REDUCING" in skip.reason
    (sell,) = strategy.on_signal(signal("shrink", side="SELL"))
    assert sell.quantity == Decimal("0.30")  # the sizing asked for more: the position caps it
    assert strategy.shrunk == 1
    assert decide(m, gate_for(m), sell).approved


def test_the_strategy_sends_nothing_while_halted():
    m = manager(check_margin=False)
    long_position(m)
    halted(m)
    strategy = strategy_for(m)
    assert strategy.on_signal(signal("b")) == [] and strategy.on_signal(signal("s", side="SELL")) == []
    assert [s.code for s in strategy.skipped] == ["strategy.trading_halted"] * 2


# ---------------------------------------------------------------- property: a random day

script = st.lists(
    st.tuples(
        st.sampled_from(["signal", "signal", "fill", "cancel", "quote", "kill switch"]),
        st.sampled_from(["EURUSD", "GBPUSD"]),
        st.sampled_from(["BUY", "SELL"]),
        st.floats(min_value=0.0005, max_value=0.01),
        st.decimals(min_value=Decimal("1.0"), max_value=Decimal("1.4"), places=5),
        st.integers(0, 30),
        st.sampled_from(list(TradingState)),
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(
    steps=script,
    balance=st.integers(5_000, 500_000).map(Decimal),
    max_position=st.one_of(st.none(), st.decimals(min_value=Decimal("0.5"), max_value=10, places=2)),
    daily_loss=st.one_of(st.none(), st.integers(50, 5_000).map(Decimal)),
    max_drawdown=st.one_of(st.none(), st.decimals(min_value=Decimal("0.001"), max_value=Decimal("0.05"), places=3)),
)
def test_no_order_the_strategy_sizes_is_refused_for_the_trading_state(
    steps, balance, max_position, daily_loss, max_drawdown
):
    m = manager(
        balance=balance,
        max_position_lots=max_position,
        daily_loss_limit=daily_loss,
        max_drawdown=max_drawdown,
        check_margin=False,
    )
    gate = gate_for(m)
    strategy = strategy_for(m)
    book = m.account(ACCOUNT)
    open_ids: list = []
    now = T0
    for n, (kind, symbol, side, atr, price, pick, state) in enumerate(steps):
        now += timedelta(seconds=1)
        if kind == "signal":
            held = book.position(symbol) + book.pending(symbol)
            before = m.trading_state(ACCOUNT, now)
            for i in strategy.on_signal(signal(f"s{n}", side=side, at=now, symbol=symbol, price=str(price), atr=atr)):
                if before is TradingState.REDUCING:
                    assert is_reducing(held, i.signed_quantity), (held, i)
                assert before is not TradingState.HALTED
                decision = decide(m, gate, i)
                event(f"{before}: sent, {'refused ' + decision.reason if not decision.approved else 'approved'}")
                assert not (codes(decision) & (STATE_CODES | {"risk.max_position", "risk.daily_loss_limit"})), (
                    i,
                    decision.reason,
                )
                open_ids.append(i)
            for skip in strategy.last_skips:
                event(f"{before}: skipped {skip.code}")
                if skip.code == "strategy.reduce_only":  # it would open or grow the position
                    sign = 1 if side == "BUY" else -1
                    assert before is TradingState.REDUCING and held * sign >= 0, (held, skip)
                if skip.code == "strategy.trading_halted":
                    assert before is TradingState.HALTED
        elif kind == "fill" and open_ids:
            i = open_ids[pick % len(open_ids)]
            if i.client_order_id in book.open_orders:
                fill(m, i, price=str(price), qty=str(book.open_orders[i.client_order_id].remaining), at=now)
        elif kind == "cancel" and open_ids:
            m.on_order_closed(ACCOUNT, open_ids[pick % len(open_ids)].client_order_id)
        elif kind == "quote":
            m.on_quote(Quote(symbol, price, price + Decimal("0.00002"), now))
        elif kind == "kill switch":  # HALTED as an operator does it; REDUCING comes of the limits
            if state is TradingState.HALTED:
                m.kill_switch.engage(KillScope.ACCOUNT, str(ACCOUNT))
            else:
                m.kill_switch.release(KillScope.ACCOUNT, str(ACCOUNT))


def test_while_the_breakers_trial_is_out_the_strategy_skips_naming_it_and_the_gate_keeps_its_check():
    """Half-open with its one trial order out, the account is not HALTED, yet nothing else may go:
    the sizing skips (``strategy.breaker_trial``, the trial's id in the reason) where until
    2026-12-07 every signal was sized and refused by the gate (``risk.breaker_open``)."""
    m = manager(breakers=BreakerBook(failure_threshold=1, cool_down=timedelta(seconds=30)), check_margin=False)
    gate = gate_for(m)
    breaker = m.breakers.for_account(ACCOUNT)
    breaker.record_failure("REJECT", now=T0)
    later = T0 + timedelta(seconds=31)  # the cool-down is over: half-open, one trial may go
    trial = intent(at=later, client_order_id="trial-1")
    assert decide(m, gate, trial).approved  # sent: the trial is out
    assert breaker.trial_out(later) and m.trading_state(ACCOUNT, later) is not TradingState.HALTED

    h = order_headroom(m, account_id=ACCOUNT, symbol="EURUSD", side="SELL", price=Decimal("1.10001"), at=later)
    assert not h.fits and h.code == "risk.breaker_open"
    assert "half-open" in h.detail and "trial order trial-1 is still out" in h.detail
    strategy = strategy_for(m)
    assert strategy.on_signal(signal("during-trial", at=later)) == []
    (skip,) = strategy.last_skips
    assert skip.code == "strategy.breaker_trial" and skip.limit_code == "risk.breaker_open"
    assert "trial-1" in skip.reason
    assert codes(decide(m, gate, intent(at=later))) == {"risk.breaker_open"}  # the gate keeps its check

    breaker.record_success(now=later)  # the trial filled: closed, the sizing sizes again
    assert not breaker.trial_out(later) and breaker.trial_order_id == ""
    assert strategy.on_signal(signal("after-trial", at=later + timedelta(seconds=1)))
