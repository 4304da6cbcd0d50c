"""``model_new`` builds what ``Model.__init__`` builds (tradeops/core/instances.py), field by field."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db.models import signals

from tradeops.core.instances import model_new
from trading.models import Execution, Instrument, Order, Position, TradingAccount

AT = datetime(2017, 3, 1, 12, 0, tzinfo=UTC)


def same(a, b) -> None:
    """Same class, same attributes (every field's value, and nothing else), same state."""
    assert type(a) is type(b)
    left = {k: v for k, v in a.__dict__.items() if k != "_state"}
    right = {k: v for k, v in b.__dict__.items() if k != "_state"}
    assert left == right
    assert {k: type(v) for k, v in left.items()} == {k: type(v) for k, v in right.items()}
    assert (a._state.adding, a._state.db) == (b._state.adding, b._state.db)
    assert a._state.fields_cache == b._state.fields_cache
    assert a._state is not b._state


def world():
    account = TradingAccount(pk=7, name="a", mt5_login=1, mt5_server="paper")
    instrument = Instrument(pk=3, symbol="EURUSD", contract_size=Decimal(100000))
    return account, instrument


def order_values(account, instrument) -> dict:
    return {
        "client_order_id": "C1",
        "account": account,
        "instrument": instrument,
        "side": "BUY",
        "order_type": "MARKET",
        "quantity": Decimal("0.10"),
        "limit_price": None,
        "algo_id": "algo",
        "trader": None,
        "signal_id": "s1",
        "status": "NEW",
        "created_at": AT,
        "recorded_at": AT,
        "updated_at": AT,
    }


def test_an_order_is_the_same_as_init_builds():
    account, instrument = world()
    other_account, other_instrument = world()  # the related objects get their _state.db: compare too
    built = model_new(Order, **order_values(account, instrument))
    reference = Order(**order_values(other_account, other_instrument))
    same(built, reference)
    assert (account._state.db, instrument._state.db) == (other_account._state.db, other_instrument._state.db)
    assert account._state.db is not None
    assert built.account is account and built.instrument_id == 3 and built.trader_id is None
    assert built.filled_quantity == Decimal(0) and built.time_in_force == "GTC" and built.pk is None


def test_an_execution_and_a_position_by_object_and_by_id():
    account, instrument = world()
    order = model_new(Order, **order_values(account, instrument))
    fill = {
        "order": order,
        "account_id": account.pk,
        "instrument": instrument,
        "side": "SELL",
        "quantity": Decimal("0.10"),
        "price": Decimal("1.1"),
        "broker_deal_id": "D1",
        "executed_at": AT,
        "recorded_at": AT,
    }
    same(model_new(Execution, **fill), Execution(**fill))
    position = {"account_id": account.pk, "instrument": instrument, "updated_at": AT, "as_of": None}
    same(model_new(Position, **position), Position(**position))
    same(model_new(Position), Position())


def test_refusals_are_init_s():
    account, instrument = world()
    with pytest.raises(TypeError, match="unexpected keyword"):
        model_new(Order, no_such_field=1)
    with pytest.raises(ValueError, match="must be a"):
        model_new(Order, account=instrument)
    with pytest.raises(ValueError, match="must be a"):
        Order(account=instrument)


def test_a_listener_on_init_gets_init():
    seen = []

    def listener(sender, instance, **kwargs):
        seen.append(instance)

    signals.post_init.connect(listener, sender=Position)
    try:
        position = model_new(Position, account_id=1, instrument_id=2)
    finally:
        signals.post_init.disconnect(listener, sender=Position)
    assert seen == [position]
    same(model_new(Position, account_id=1, instrument_id=2), Position(account_id=1, instrument_id=2))
