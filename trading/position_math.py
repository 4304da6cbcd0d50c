"""Netting position arithmetic. Pure and exact (Decimal): one function every writer uses.

Quantities are signed lots (buy +, sell -). Money is in the instrument's quote currency:
P&L = lots x contract size x price difference.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class PositionState:
    net_quantity: Decimal = ZERO
    average_price: Decimal = ZERO
    realised_pnl: Decimal = ZERO


def apply_fill(
    state: PositionState, *, signed_quantity: Decimal, price: Decimal, contract_size: Decimal, fee: Decimal = ZERO
) -> PositionState:
    """Apply one fill. Reducing trades realise P&L against the average price; a fill that
    crosses through zero closes the old position and opens the remainder at the fill price.
    Fees are charged to realised P&L."""
    if signed_quantity == 0:
        raise ValueError("a fill must have a non-zero quantity")
    if price <= 0:
        raise ValueError(f"a fill price must be positive, got {price}")
    net, avg, realised = state.net_quantity, state.average_price, state.realised_pnl - fee
    if net == 0 or (net > 0) == (signed_quantity > 0):
        new_net = net + signed_quantity
        new_avg = (avg * abs(net) + price * abs(signed_quantity)) / abs(new_net)
        return PositionState(new_net, new_avg, realised)
    closing = min(abs(signed_quantity), abs(net))
    direction = 1 if net > 0 else -1
    realised += closing * contract_size * (price - avg) * direction
    new_net = net + signed_quantity
    if new_net == 0:
        return PositionState(ZERO, ZERO, realised)
    if (new_net > 0) == (net > 0):
        return PositionState(new_net, avg, realised)
    return PositionState(new_net, price, realised)


def unrealised_pnl(state: PositionState, *, mark_price: Decimal, contract_size: Decimal) -> Decimal:
    if state.net_quantity == 0:
        return ZERO
    return state.net_quantity * contract_size * (mark_price - state.average_price)
