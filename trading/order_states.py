"""The order lifecycle as an explicit state machine. Pure: no Django, no clock.

    NEW ──► RISK_APPROVED ──► SUBMITTED ──► PARTIALLY_FILLED ──► FILLED
     │           │               │  │  │          │  │  │
     └► REJECTED ◄┘──────────────┘  │  └► EXPIRED ◄┘  │  └(more partial fills)
                 └──► CANCELLED ◄───┘─────────────────┘

FILLED, CANCELLED, EXPIRED and REJECTED are terminal. A RISK_APPROVED order may be
cancelled before it reaches the broker (kill switch, RTS 6 Art. 12).
"""

from __future__ import annotations

from enum import StrEnum


class OrderStatus(StrEnum):
    NEW = "NEW"
    RISK_APPROVED = "RISK_APPROVED"
    REJECTED = "REJECTED"
    SUBMITTED = "SUBMITTED"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"


S = OrderStatus

TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    S.NEW: frozenset({S.RISK_APPROVED, S.REJECTED}),
    S.RISK_APPROVED: frozenset({S.SUBMITTED, S.REJECTED, S.CANCELLED}),
    S.SUBMITTED: frozenset({S.PARTIALLY_FILLED, S.FILLED, S.CANCELLED, S.EXPIRED, S.REJECTED}),
    S.PARTIALLY_FILLED: frozenset({S.PARTIALLY_FILLED, S.FILLED, S.CANCELLED, S.EXPIRED}),
    S.FILLED: frozenset(),
    S.CANCELLED: frozenset(),
    S.EXPIRED: frozenset(),
    S.REJECTED: frozenset(),
}

TERMINAL = frozenset(status for status, targets in TRANSITIONS.items() if not targets)
# Orders the kill switch must cancel: anything not yet executed in full and not final.
UNEXECUTED = frozenset({S.NEW, S.RISK_APPROVED, S.SUBMITTED, S.PARTIALLY_FILLED})


class InvalidOrderTransition(ValueError):
    """Raised for a transition the lifecycle does not allow; the order is left unchanged."""

    code = "invalid_order_transition"

    def __init__(self, current: OrderStatus | str, target: OrderStatus | str, order_ref: str = ""):
        self.current = OrderStatus(current)
        self.target = OrderStatus(target)
        allowed = ", ".join(sorted(TRANSITIONS[self.current])) or "none (terminal)"
        ref = f"order {order_ref}: " if order_ref else ""
        super().__init__(
            f"{ref}cannot move from {self.current} to {self.target}; allowed from {self.current}: {allowed}"
        )


def can_transition(current: OrderStatus | str, target: OrderStatus | str) -> bool:
    return OrderStatus(target) in TRANSITIONS[OrderStatus(current)]


def check_transition(current: OrderStatus | str, target: OrderStatus | str, order_ref: str = "") -> OrderStatus:
    """Return the target status, or raise InvalidOrderTransition naming both states."""
    if not can_transition(current, target):
        raise InvalidOrderTransition(current, target, order_ref)
    return OrderStatus(target)
