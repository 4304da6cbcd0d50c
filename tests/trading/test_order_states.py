"""The order state machine: every allowed transition works, every other one is refused."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trading.order_states import (
    TERMINAL,
    TRANSITIONS,
    InvalidOrderTransition,
    OrderStatus,
    can_transition,
    check_transition,
)

ALL = list(OrderStatus)
PAIRS = [(a, b) for a in ALL for b in ALL]


@pytest.mark.parametrize(("current", "target"), PAIRS, ids=[f"{a}->{b}" for a, b in PAIRS])
def test_every_pair_is_allowed_exactly_when_listed(current, target):
    allowed = target in TRANSITIONS[current]
    assert can_transition(current, target) is allowed
    if allowed:
        assert check_transition(current, target) == target
    else:
        with pytest.raises(InvalidOrderTransition) as info:
            check_transition(current, target, "ORD-1")
        message = str(info.value)
        assert "ORD-1" in message and str(current) in message and str(target) in message


def test_terminal_states_have_no_way_out():
    assert {OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.EXPIRED, OrderStatus.REJECTED} == TERMINAL


def test_the_happy_path_and_the_partial_path():
    path = [OrderStatus.NEW, OrderStatus.RISK_APPROVED, OrderStatus.SUBMITTED, OrderStatus.PARTIALLY_FILLED]
    path += [OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED]
    for current, target in zip(path, path[1:], strict=False):
        check_transition(current, target)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(ALL), max_size=12))
def test_random_sequences_follow_the_table(targets):
    """Walk random requested moves: allowed ones change the state, refused ones leave it."""
    state = OrderStatus.NEW
    for target in targets:
        before = state
        try:
            state = check_transition(state, target)
        except InvalidOrderTransition:
            assert target not in TRANSITIONS[before]
            assert state == before
        else:
            assert target in TRANSITIONS[before]
        if before in TERMINAL:
            assert state == before
