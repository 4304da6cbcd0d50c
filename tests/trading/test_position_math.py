from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trading.position_math import PositionState, apply_fill, unrealised_pnl

CS = D(100000)


def test_open_add_reduce_flip_and_close():
    s = apply_fill(PositionState(), signed_quantity=D("1"), price=D("1.10000"), contract_size=CS)
    s = apply_fill(s, signed_quantity=D("1"), price=D("1.10200"), contract_size=CS)
    assert s.net_quantity == 2 and s.average_price == D("1.10100")
    s = apply_fill(s, signed_quantity=D("-0.5"), price=D("1.10300"), contract_size=CS)
    assert s.realised_pnl == D("0.5") * CS * D("0.00200")  # 100
    s = apply_fill(s, signed_quantity=D("-2.5"), price=D("1.10000"), contract_size=CS)
    assert s.net_quantity == -1 and s.average_price == D("1.10000")
    assert s.realised_pnl == D(100) + D("1.5") * CS * D("-0.00100")  # 100 - 150
    s = apply_fill(s, signed_quantity=D("1"), price=D("1.09900"), contract_size=CS, fee=D("3"))
    assert s.net_quantity == 0 and s.average_price == 0
    assert s.realised_pnl == D(-50) + D(100) - D(3)


def test_refuses_zero_quantity_and_bad_price():
    with pytest.raises(ValueError):
        apply_fill(PositionState(), signed_quantity=D(0), price=D(1), contract_size=CS)
    with pytest.raises(ValueError):
        apply_fill(PositionState(), signed_quantity=D(1), price=D(0), contract_size=CS)


fills = st.lists(
    st.tuples(
        st.integers(min_value=-500, max_value=500).filter(bool).map(lambda n: D(n) / 100),
        st.integers(min_value=90000, max_value=130000).map(lambda n: D(n) / 100000),
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(fills, st.integers(min_value=90000, max_value=130000).map(lambda n: D(n) / 100000))
def test_total_pnl_equals_cash_flow_recomputation(seq, mark):
    """Realised + unrealised equals the cash-flow P&L of all fills marked at ``mark``."""
    state = PositionState()
    cash = D(0)
    for qty, price in seq:
        state = apply_fill(state, signed_quantity=qty, price=price, contract_size=CS)
        cash -= qty * price * CS
    assert state.net_quantity == sum(q for q, _ in seq)
    total = state.realised_pnl + unrealised_pnl(state, mark_price=mark, contract_size=CS)
    expected = cash + state.net_quantity * mark * CS
    assert abs(total - expected) < D("1e-12")
