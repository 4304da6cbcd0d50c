"""The surveil line parser: property tests (hypothesis)."""

from __future__ import annotations

import msgspec
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from compliance.surveillance.batch import surveil_lines
from compliance.surveillance.engine import SurveillanceEngine
from compliance.surveillance.records import OrderMessage, field_of, record_decoder

FIELDS = ["ts", "action", "order_id", "account", "owner", "symbol", "side", "qty", "price", "order_type"]
GOOD = {
    "type": "order",
    "ts": "2026-01-05T10:00:00.123456Z",
    "action": "new",
    "order_id": "o1",
    "account": "A",
    "owner": "X",
    "symbol": "EURUSD",
    "side": "buy",
    "qty": "100000",
    "price": "1.1002",
    "order_type": "limit",
}


@given(st.sampled_from(FIELDS), st.one_of(st.integers(-5, 0), st.text(max_size=5), st.just([]), st.just({})))
@settings(max_examples=200, deadline=None)
def test_a_bad_field_is_named_in_the_error(field, value):
    row = dict(GOOD, **{field: value})
    try:
        rec = record_decoder.decode(orjson.dumps(row))
    except msgspec.ValidationError as exc:
        assert field_of(str(exc)) == field
    else:  # the value happened to be valid for that field
        assert isinstance(rec, OrderMessage)


@given(st.lists(st.binary(max_size=60), max_size=30))
@settings(max_examples=100, deadline=None)
def test_garbage_never_stops_the_batch(lines):
    good = orjson.dumps(GOOD)
    stats = surveil_lines([*lines, good], engine=SurveillanceEngine(), emit=lambda b: None)
    assert stats.records >= 1
    assert all(e.line >= 1 and e.field for e in stats.errors)


@given(st.decimals(min_value="0.0001", max_value="100000", places=5), st.sampled_from(["buy", "sell"]))
def test_prices_and_sides_round_trip(price, side):
    rec = record_decoder.decode(orjson.dumps(dict(GOOD, price=str(price), side=side)))
    assert repr(rec.price) == repr(float(str(price))) and rec.side == side
