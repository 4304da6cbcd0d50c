"""The tick path's quotes and marks set their slots directly (``tradeops.core.frozen``): each must
be the instance its generated frozen dataclass ``__init__`` would have built."""

from __future__ import annotations

import copy
import dataclasses
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from trading.brokers.base import Quote as BrokerQuote
from trading.intents import Quote
from trading.orders.marks import Mark

TS = datetime(2017, 4, 19, 9, 20, tzinfo=UTC)


def twin(cls: type) -> type:
    """The same fields under a generated ``__init__`` (what the class was before)."""
    fields = [
        (f.name, f.type, dataclasses.field(default=f.default) if f.default is not dataclasses.MISSING else None)
        for f in dataclasses.fields(cls)
    ]
    return dataclasses.make_dataclass(
        cls.__name__, [(n, t) if d is None else (n, t, d) for n, t, d in fields], frozen=True, slots=True
    )


CASES = [
    (Quote, ("EURUSD", Decimal("1.06123"), Decimal("1.06131"), TS), {}),
    (BrokerQuote, ("EURUSD", Decimal("1.06123"), Decimal("1.06131"), TS), {}),
    (
        BrokerQuote,
        ("EURUSD", Decimal("1.06123"), Decimal("1.06131"), TS),
        {"last": Decimal("1.0613"), "volume": Decimal("2.5")},
    ),
    (Mark, (Decimal("1.06127"), TS), {}),
]


@pytest.mark.parametrize(("cls", "args", "kwargs"), CASES)
def test_a_tick_path_value_is_the_instance_its_generated_init_builds(cls, args, kwargs):
    built = cls(*args, **kwargs)
    reference = twin(cls)(*args, **kwargs)
    assert dataclasses.astuple(built) == dataclasses.astuple(reference)
    assert repr(built) == repr(reference)
    assert hash(built) == hash(reference)
    names = [f.name for f in dataclasses.fields(cls)]
    assert built == cls(**dict(zip(names, dataclasses.astuple(built), strict=True)))  # by keyword too
    assert dataclasses.replace(built) == built
    assert copy.copy(built) == built and copy.deepcopy(built) == built
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(built, names[0], None)
    with pytest.raises(TypeError):
        cls(*args, *args)  # too many, as the generated __init__ refuses


def test_a_broker_quotes_defaults_are_the_fields_defaults():
    quote = BrokerQuote("EURUSD", Decimal("1.1"), Decimal("1.2"), TS)
    defaults = {f.name: f.default for f in dataclasses.fields(BrokerQuote) if f.default is not dataclasses.MISSING}
    assert defaults == {"last": None, "volume": Decimal(0)}
    assert quote.last is None and quote.volume is defaults["volume"]
