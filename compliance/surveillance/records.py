"""The surveillance input records: the ``surveil`` JSONL line kinds, decoded with msgspec.

Pure: no Django. One decoder turns a line into one of four frozen structs (``Quote``,
``OrderMessage``, ``FillRecord``, ``ClosePrint``); a bad line raises ``msgspec.ValidationError``
or ``DecodeError`` whose message names the field (``at `$.bid```).

Prices and quantities are decoded into binary floats on purpose: detectors compute heuristics
(ratios, bps, z-scores) on hundreds of thousands of events per second and never book money, so
Decimal's exactness buys nothing here while costing most of the throughput. ``repr`` of a float
parsed from a price string gives back the same digits, so evidence shows the prices as input.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

UtcDatetime = Annotated[datetime, msgspec.Meta(tz=True)]
PositiveFloat = Annotated[float, msgspec.Meta(gt=0)]
NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]


class Quote(msgspec.Struct, tag="quote", tag_field="type", frozen=True):
    ts: UtcDatetime
    symbol: NonEmpty
    bid: PositiveFloat
    ask: PositiveFloat


class OrderMessage(msgspec.Struct, tag="order", tag_field="type", frozen=True):
    """A submission (``new``), modification or cancellation: each is one RTS 9 'order'."""

    ts: UtcDatetime
    action: Literal["new", "modify", "cancel"]
    order_id: NonEmpty
    account: NonEmpty
    owner: NonEmpty
    symbol: NonEmpty
    side: Literal["buy", "sell"]
    qty: PositiveFloat
    price: PositiveFloat | None = None
    # ioc/fok are limits that trade at once or never; a stop rests off the book until triggered.
    order_type: Literal["limit", "market", "ioc", "fok", "stop", "stop_limit"] = "limit"
    algo: str = ""
    # Why a cancel happened; RTS 9 excludes kill-switch and lost-connectivity cancellations.
    reason: str = ""


class FillRecord(msgspec.Struct, tag="fill", tag_field="type", frozen=True):
    ts: UtcDatetime
    order_id: NonEmpty
    account: NonEmpty
    owner: NonEmpty
    symbol: NonEmpty
    side: Literal["buy", "sell"]
    qty: PositiveFloat
    price: PositiveFloat


class ClosePrint(msgspec.Struct, tag="close", tag_field="type", frozen=True):
    """A session close or fixing print (marking the close)."""

    ts: UtcDatetime
    symbol: NonEmpty
    price: PositiveFloat


Record = Quote | OrderMessage | FillRecord | ClosePrint

# strict=False lets "1.10012" (a JSON string, the documented format) decode into a float.
record_decoder = msgspec.json.Decoder(Record, strict=False)


def field_of(message: str) -> str:
    """The field a msgspec error names (``$.bid`` -> ``bid``), or ``line`` when it names none."""
    marker = "at `$."
    start = message.rfind(marker)
    if start < 0:
        return "type" if "tag" in message.lower() else "line"
    return message[start + len(marker) :].rstrip("`")
