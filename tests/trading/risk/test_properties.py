"""Property: random signals, partial fills, cancels and quotes through strategy + gate + risk
manager never leave a position above its limit, and P&L always agrees with a recomputation from
the fills by cash flows (independent of the average-cost arithmetic the book uses)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.trading.risk.helpers import ACCOUNT, EURUSD, GBPUSD, T0, manager
from tradeops.events import Signal
from trading.gate import PreTradeGate
from trading.intents import Quote
from trading.risk import risk_checks
from trading.strategy import Strategy, StrategyConfig

LIMITS = {"EURUSD": Decimal("3"), "GBPUSD": Decimal("1.5")}
SPECS = {"EURUSD": EURUSD, "GBPUSD": GBPUSD}

prices = st.decimals(min_value=Decimal("1.00000"), max_value=Decimal("1.40000"), places=5)
steps = st.one_of(
    st.tuples(
        st.just("signal"),
        st.sampled_from(["EURUSD", "GBPUSD"]),
        st.sampled_from(["BUY", "SELL"]),
        st.floats(min_value=0.005, max_value=0.05),
        prices,
    ),
    st.tuples(st.just("fill"), st.integers(0, 50), st.integers(1, 100), prices),
    st.tuples(st.just("cancel"), st.integers(0, 50)),
    st.tuples(st.just("quote"), st.sampled_from(["EURUSD", "GBPUSD"]), prices),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(steps, min_size=1, max_size=60))
# a buy resting, then a larger sell: netting the two hides that the sell alone breaches the limit
@example(
    [
        ("signal", "EURUSD", "BUY", 0.0125, Decimal("1.1")),
        ("signal", "EURUSD", "SELL", 0.006, Decimal("1.1")),
        ("fill", 1, 100, Decimal("1.1")),
    ]
)
def test_positions_stay_within_limits_and_pnl_matches_the_fills(script):
    m = manager(balance=Decimal(10_000_000), check_margin=False)
    for symbol, limit in LIMITS.items():
        m.limits.set(account_id=ACCOUNT, symbol=symbol, max_position_lots=limit)
    gate = PreTradeGate(risk_checks(m))
    strategy = Strategy(
        instruments=SPECS,
        accounts=[ACCOUNT],
        equity_of=lambda a: m.account(a).equity(),
        config=StrategyConfig(risk_fraction=Decimal("0.0005")),
    )
    book = m.account(ACCOUNT)
    fills: list[tuple[str, Decimal, Decimal]] = []  # (symbol, signed lots, price)
    now = T0
    for n, step in enumerate(script):
        now += timedelta(seconds=1)
        kind = step[0]
        if kind == "signal":
            _, symbol, side, atr, price = step
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
            for intent in strategy.on_signal(signal):
                ctx = m.context(intent)
                if gate.evaluate(intent, ctx).approved:
                    gate.on_sent(intent, ctx)
                    m.on_order_sent(intent)
        elif kind == "fill" and book.open_orders:
            _, pick, percent, price = step
            order = list(book.open_orders.values())[pick % len(book.open_orders)]
            spec = SPECS[order.symbol]
            qty = spec.round_volume_down(order.remaining * percent / 100) or order.remaining
            signed = qty if order.side == "BUY" else -qty
            m.on_fill(
                account_id=ACCOUNT,
                client_order_id=order.client_order_id,
                symbol=order.symbol,
                side=order.side,
                quantity=qty,
                price=price,
                now=now,
            )
            fills.append((order.symbol, signed, price))
        elif kind == "cancel" and book.open_orders:
            order = list(book.open_orders.values())[step[1] % len(book.open_orders)]
            m.on_order_closed(ACCOUNT, order.client_order_id)
        elif kind == "quote":
            _, symbol, price = step
            m.on_quote(Quote(symbol, price, price + Decimal("0.00002"), now))

        for symbol, limit in LIMITS.items():
            assert abs(book.position(symbol)) <= limit, (symbol, book.position(symbol))
            # the worst case of the open orders on either side also stays within it
            assert book.position(symbol) + book.pending(symbol, side="BUY") <= limit
            assert book.position(symbol) + book.pending(symbol, side="SELL") >= -limit

        total = Decimal(0)
        for symbol, spec in SPECS.items():
            cash = -sum((q * p for s, q, p in fills if s == symbol), Decimal(0))
            net = sum((q for s, q, _ in fills if s == symbol), Decimal(0))
            assert book.position(symbol) == net
            mark = book.marks.get(symbol, Decimal(0))
            total += (cash + net * mark) * spec.contract_size
        # exact up to the average price's 28-digit division: far below a millionth of a unit of money
        assert abs(book.realised_since_load + book.unrealised() - total) < Decimal("1E-9")
