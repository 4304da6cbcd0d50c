"""Fuzzing the event decoder (tradeops.events.decode, what every bus consumer calls): any bytes
give an Envelope or an EventDecodeError naming the reason, never another exception; a field of
any type in any payload is either valid (and then round-trips) or named in the error; valid
events round-trip exactly whatever text they carry."""

from __future__ import annotations

import json

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.tradeops.samples import sample_event
from tradeops.events import PAYLOADS, Envelope, EventDecodeError, decode, encode

REASONS = {"oversized", "malformed", "invalid_envelope", "unknown_schema", "invalid_payload"}

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)


def _decodes_or_names_the_reason(data: bytes) -> Envelope | None:
    try:
        event = decode(data)
    except EventDecodeError as exc:
        assert exc.reason in REASONS, exc.reason
        assert str(exc)
        return None
    assert decode(encode(event)) == event  # whatever was accepted round-trips
    return event


@given(st.binary(max_size=600))
@settings(max_examples=300, deadline=None)
def test_any_bytes_decode_or_give_a_named_reason(data):
    _decodes_or_names_the_reason(data)


@given(st.sampled_from(PAYLOADS), st.data())
@settings(max_examples=400, deadline=None)
def test_a_field_of_any_type_anywhere_is_accepted_or_named(payload_type, data):
    wire = json.loads(encode(sample_event(payload_type)))
    where = data.draw(st.sampled_from(["envelope", "payload"]))
    target = wire if where == "envelope" else wire["payload"]
    field = data.draw(st.sampled_from(sorted(target)))
    target[field] = data.draw(json_values)
    try:
        event = decode(json.dumps(wire, allow_nan=False).encode())
    except EventDecodeError as exc:
        assert exc.reason in REASONS
        if exc.reason != "unknown_schema":  # a changed type/version names the schema instead
            assert f"`{field}`" in str(exc) or f".{field}" in str(exc), (field, str(exc))
    else:  # the value happened to be valid for that field
        assert decode(encode(event)) == event


@given(st.sampled_from(PAYLOADS), st.data())
@settings(max_examples=300, deadline=None)
def test_valid_events_round_trip_whatever_text_they_carry(payload_type, data):
    event = sample_event(payload_type)
    texts = {
        name: data.draw(st.text(max_size=40), label=name)
        for name in payload_type.__struct_fields__
        if isinstance(getattr(event.payload, name), str)
    }
    payload = msgspec.structs.replace(event.payload, **texts)
    key = data.draw(st.text(max_size=20), label="key")
    event = msgspec.structs.replace(event, payload=payload, key=key, source=data.draw(st.text(max_size=20)))
    assert decode(encode(event)) == event
