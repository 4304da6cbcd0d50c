"""Headroom: the largest order the sizing limits leave, and the strategy sizing within it.

The unit tests pin the arithmetic of each limit; the properties drive random books (positions,
open orders on both sides, marks away from the order's price, every sizing limit at once) and
check the one promise that matters: an order of the headroom's size passes the gate's own risk
checks, one volume step more does not, and a strategy sized within the headroom never sends an
order the checks refuse for its size.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from tests.trading.risk.helpers import ACCOUNT, EURUSD, GBPUSD, T0, codes, decide, fill, gate_for, intent, manager
from tradeops.events import Signal
from trading.intents import Quote
from trading.risk import order_headroom
from trading.strategy import Strategy, StrategyConfig

SIZING_CODES = {
    "risk.max_position",
    "risk.max_gross_exposure",
    "risk.max_net_exposure",
    "risk.insufficient_margin",
    "risk.max_open_orders",
}
SPECS = {"EURUSD": EURUSD, "GBPUSD": GBPUSD}


def room(m, side="BUY", symbol="EURUSD", price="1.10001"):
    return order_headroom(m, account_id=ACCOUNT, symbol=symbol, side=side, price=Decimal(price), at=T0)


def sent(m, gate, side="BUY", qty="1", symbol="EURUSD", price="1.10001", filled=False):
    """An approved order, open at the broker (and filled when ``filled``)."""
    i = intent(side=side, qty=qty, symbol=symbol, price=price)
    assert decide(m, gate, i).approved
    if filled:
        fill(m, i)
    return i


# ---------------------------------------------------------------- max position


def test_position_room_is_the_limit_less_position_and_open_orders_on_the_same_side():
    m = manager(max_position_lots=Decimal(5), check_margin=False)
    gate = gate_for(m)
    sent(m, gate, qty="2", filled=True)
    sent(m, gate, qty="1.5")  # open, on the buy side
    sent(m, gate, side="SELL", qty="4")  # open, opposite side: may never fill, so it gives no room
    buy = room(m)
    assert buy.lots == Decimal("1.50") and buy.code == "risk.max_position"
    assert "position 2" in buy.detail and "open BUY orders 1.5" in buy.detail
    # SELL: position 2 + open sells -4 - q >= -5  =>  q <= 3
    assert room(m, side="SELL").lots == Decimal("3.00")


def test_a_short_position_leaves_room_to_buy_through_flat_to_the_limit_on_the_other_side():
    m = manager(max_position_lots=Decimal(5), check_margin=False)
    sent(m, gate_for(m), side="SELL", qty="4", filled=True)
    assert room(m).lots == Decimal("9.00")
    assert room(m, side="SELL").lots == Decimal("1.00")


def test_room_is_rounded_down_onto_the_volume_grid_and_a_full_book_has_none():
    m = manager(max_position_lots=Decimal("5"), check_margin=False)
    gate = gate_for(m)
    sent(m, gate, qty="3.337", filled=True)  # a broker fill off our grid
    assert room(m).lots == Decimal("1.66")  # 1.663 -> 1.66, never 1.67
    sent(m, gate, qty="1.66", filled=True)
    full = room(m)
    assert full.lots == 0 and not full.fits and full.code == "risk.max_position"
    assert "below the minimum volume 0.01" in full.detail


def test_instrument_maximum_binds_when_no_limit_does():
    m = manager(check_margin=False)
    unbounded = room(m)
    assert unbounded.lots == EURUSD.max_volume and unbounded.code == ""


# ---------------------------------------------------------------- exposure, margin, open orders


def test_gross_exposure_room_counts_every_instrument_in_the_account_currency():
    m = manager(max_gross_exposure=Decimal(400_000), check_margin=False)
    sent(m, gate_for(m), symbol="GBPUSD", side="SELL", qty="1", price="1.30000", filled=True)
    # GBPUSD short 1 lot marked at 1.30001 = 130,001; EURUSD at 1.1 leaves 269,999 / 110,000 = 2.45 lots
    gross = room(m, price="1.1")
    assert gross.lots == Decimal("2.45") and gross.code == "risk.max_gross_exposure"


def test_net_exposure_room_lets_an_opposite_order_offset_the_book():
    m = manager(max_net_exposure=Decimal(200_000), check_margin=False)
    sent(m, gate_for(m), symbol="GBPUSD", qty="1", price="1.30000", filled=True)
    # net long 130,001: buying EURUSD at 1.1 may add 69,999 (0.63 lots); selling may go to -200,000 (3.00)
    assert room(m, price="1.1").lots == Decimal("0.63")
    assert room(m, side="SELL", price="1.1").lots == Decimal("3.00")
    assert room(m, side="SELL", price="1.1").code == "risk.max_net_exposure"


def test_margin_room_is_free_margin_over_the_margin_of_one_lot_and_reducing_needs_none():
    m = manager(balance=Decimal(10_000))
    gate = gate_for(m)
    # one lot at 1.1 needs 110,000 x 0.0333 = 3,663 of margin
    assert room(m, price="1.1").lots == Decimal("2.73") and room(m, price="1.1").code == "risk.insufficient_margin"
    sent(m, gate, qty="2.73", price="1.1", filled=True)  # marked at 1.10001, it uses all the margin
    assert room(m, price="1.1").lots == 0
    # closing the position frees margin: selling up to the position needs none
    assert room(m, side="SELL", price="1.1").lots == Decimal("2.73")


def test_no_room_when_the_open_order_limit_is_reached():
    m = manager(max_open_orders=2, check_margin=False)
    gate = gate_for(m)
    sent(m, gate)
    assert room(m).fits
    sent(m, gate)
    full = room(m)
    assert full.lots == 0 and full.code == "risk.max_open_orders" and "2 orders open; limit 2" in full.detail


def test_the_tightest_limit_binds():
    m = manager(max_position_lots=Decimal(3), max_gross_exposure=Decimal(220_000), check_margin=False)
    assert room(m, price="1.1").code == "risk.max_gross_exposure"  # 2 lots of 110,000 before 3 lots
    assert room(m, price="1.1").lots == Decimal("2.00")


# ---------------------------------------------------------------- properties


book_steps = st.lists(
    st.tuples(
        st.sampled_from(["EURUSD", "GBPUSD"]),
        st.sampled_from(["BUY", "SELL"]),
        st.decimals(min_value=Decimal("0.01"), max_value=Decimal("4"), places=2),
        st.booleans(),  # filled (else left open)
        st.decimals(min_value=Decimal("0.9"), max_value=Decimal("1.5"), places=5),
    ),
    max_size=8,
)
limits = st.fixed_dictionaries(
    {
        "max_position_lots": st.one_of(st.none(), st.decimals(min_value=Decimal("0.5"), max_value=10, places=2)),
        "max_gross_exposure": st.one_of(st.none(), st.integers(50_000, 2_000_000).map(Decimal)),
        "max_net_exposure": st.one_of(st.none(), st.integers(50_000, 2_000_000).map(Decimal)),
        "max_open_orders": st.one_of(st.none(), st.integers(1, 10)),
        "check_margin": st.booleans(),
    }
)


def _book(limit_values, steps, balance, marks):
    """A manager with no limits while the book is built (so every step lands), then the limits."""
    m = manager(balance=balance, check_margin=False)
    gate = gate_for(m)
    for symbol, side, qty, filled, price in steps:
        i = intent(side=side, qty=str(qty), symbol=symbol, price=str(price))
        assert decide(m, gate, i).approved
        if filled:
            fill(m, i)
    for symbol, mark in marks.items():
        m.on_quote(Quote(symbol, mark, mark + Decimal("0.00002"), T0 + timedelta(seconds=1)))
    m.limits.set(account_id=ACCOUNT, symbol=None, **limit_values)
    return m


@settings(max_examples=300, deadline=None)
@given(
    limit_values=limits,
    steps=book_steps,
    balance=st.integers(2_000, 1_000_000).map(Decimal),
    marks=st.fixed_dictionaries(
        {s: st.decimals(min_value=Decimal("0.9"), max_value=Decimal("1.5"), places=5) for s in SPECS}
    ),
    symbol=st.sampled_from(["EURUSD", "GBPUSD"]),
    side=st.sampled_from(["BUY", "SELL"]),
    price=st.decimals(min_value=Decimal("0.9"), max_value=Decimal("1.5"), places=5),
    smaller=st.integers(0, 10_000),
)
def test_the_headroom_size_passes_the_checks_and_one_step_more_does_not(
    limit_values, steps, balance, marks, symbol, side, price, smaller
):
    m = _book(limit_values, steps, balance, marks)
    gate = gate_for(m)
    spec = SPECS[symbol]
    h = order_headroom(m, account_id=ACCOUNT, symbol=symbol, side=side, price=price, at=T0)
    event(f"binds: {h.code or 'instrument maximum'}; {'fits' if h.fits else 'nothing fits'}")

    def refused(lots):
        probe = intent(side=side, qty=str(lots), symbol=symbol, price=str(price))
        return codes(decide(m, gate, probe, send=False)) & SIZING_CODES

    if h.fits:
        assert refused(h.lots) == set(), h  # never a size the checks refuse
        # nor any smaller one: the strategy sizes anywhere in [minimum volume, headroom]
        assert refused(spec.min_volume) == set(), h
        below = spec.min_volume + spec.volume_step * (smaller % ((h.lots - spec.min_volume) / spec.volume_step + 1))
        assert refused(below) == set(), (below, h)
        assert spec.round_volume_down(h.lots) == h.lots  # on the grid
        more = h.lots + spec.volume_step
        if more <= spec.max_volume:
            assert refused(more), h  # and the largest such size
    else:
        assert refused(spec.min_volume), h  # nothing fits: even the minimum is refused
        assert h.code in SIZING_CODES


signals = st.lists(
    st.tuples(
        st.sampled_from(["signal", "fill", "cancel", "quote"]),
        st.sampled_from(["EURUSD", "GBPUSD"]),
        st.sampled_from(["BUY", "SELL"]),
        st.floats(min_value=0.0005, max_value=0.01),
        st.decimals(min_value=Decimal("1.0"), max_value=Decimal("1.4"), places=5),
        st.integers(0, 30),
    ),
    min_size=1,
    max_size=50,
)


@settings(max_examples=150, deadline=None)
@given(limit_values=limits, script=signals, balance=st.integers(5_000, 500_000).map(Decimal))
@example(  # a short EURUSD marked at 1.00001; a small BUY at 1.4 was refused by risk.max_net_exposure
    limit_values={
        "max_position_lots": None,
        "max_gross_exposure": None,
        "max_net_exposure": Decimal(50_000),
        "max_open_orders": None,
        "check_margin": False,
    },
    script=[
        ("quote", "EURUSD", "BUY", 0.001, Decimal("1.00000"), 0),
        ("signal", "EURUSD", "SELL", 0.001, Decimal("1.00000"), 0),  # 0.50 lots: the whole net room
        ("fill", "EURUSD", "SELL", 0.001, Decimal("1.00000"), 0),
        ("signal", "EURUSD", "BUY", 0.01, Decimal("1.40000"), 0),  # wants 0.05 lots, buying back
    ],
    balance=Decimal(5_000),
)
def test_a_strategy_sized_within_the_headroom_is_never_refused_for_its_size(limit_values, script, balance):
    m = manager(balance=balance, **limit_values)
    gate = gate_for(m)
    strategy = Strategy(
        instruments=SPECS,
        accounts=[ACCOUNT],
        equity_of=lambda a: m.account(a).equity(),
        headroom_of=lambda **kw: order_headroom(m, **kw),
        config=StrategyConfig(risk_fraction=Decimal("0.02")),  # greedy: asks for more than the limits leave
    )
    book = m.account(ACCOUNT)
    open_ids: list = []
    now = T0
    for n, (kind, symbol, side, atr, price, pick) in enumerate(script):
        now += timedelta(seconds=1)
        if kind == "signal":
            signal = Signal(
                signal_id=f"s{n}",
                symbol=symbol,
                ts=now,
                side=side,
                confidence=0.9,
                price=price,
                model_versions={},
                algo_id="a",
                atr=atr,
            )
            for i in strategy.on_signal(signal):
                decision = decide(m, gate, i)
                event(f"sent: {'refused ' + decision.reason if not decision.approved else 'approved'}")
                assert not (codes(decision) & SIZING_CODES), (i, decision.reason)
                open_ids.append(i)
            for skip in strategy.last_skips:
                event(f"skipped: {skip.code} {skip.limit_code}")
                assert skip.code in ("strategy.no_headroom", "strategy.below_min_volume")
                if skip.code == "strategy.no_headroom":
                    assert skip.limit_code in SIZING_CODES and skip.wanted > 0
        elif kind == "fill" and open_ids:
            i = open_ids[pick % len(open_ids)]
            if i.client_order_id in book.open_orders:
                fill(m, i, price=str(price), qty=str(book.open_orders[i.client_order_id].remaining), at=now)
        elif kind == "cancel" and open_ids:
            m.on_order_closed(ACCOUNT, open_ids[pick % len(open_ids)].client_order_id)
        elif kind == "quote":
            m.on_quote(Quote(symbol, price, price + Decimal("0.00002"), now))
