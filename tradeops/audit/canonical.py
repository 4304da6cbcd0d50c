"""Canonical JSON and the chain hash. Pure: no Django, no I/O, no clock.

The hash of record ``n`` is ``SHA-256(prev_hash || "\\n" || header || "\\n" || payload)`` where
``header`` is the canonical JSON array of the record's fields (sequence first, so a record's
position is part of what is signed) and ``payload`` is the canonical JSON text exactly as stored.
The payload is stored as text, never re-serialised, so verification recomputes the hash from the
bytes in the table (a jsonb column would reorder keys and normalise numbers).

Canonical JSON: keys sorted, no whitespace, UTF-8, Decimals as strings (exact), datetimes as
RFC 3339 UTC with microseconds (RTS 25), UUIDs in their hyphenated form, sets sorted.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

import orjson
from msgspec import Struct
from msgspec.structs import asdict as _asdict

GENESIS_HASH = "0" * 64  # prev_hash of the first record ever written

_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME


_TS_TEXT: dict[datetime, str] = {}  # ts's answers for aware UTC datetimes, by value (bounded)
_TS_TEXT_MAX = 4096


def ts(value: datetime) -> str:
    """A timestamp as hashed and exported: UTC, always six fractional digits.

    Remembered by value for an exact ``datetime`` in ``UTC`` (a replayed bar's time is formatted
    for its feature vector, both predictions and the signal, each in the header and the payload):
    two such datetimes are equal exactly when they are the same instant, which is what the text
    says. Other zones are not remembered (two ``zoneinfo`` times of one zone compare equal across
    a DST fold although they are an hour apart)."""
    if value.tzinfo is UTC and type(value) is datetime:
        text = _TS_TEXT.get(value)
        if text is None:
            if len(_TS_TEXT) >= _TS_TEXT_MAX:
                _TS_TEXT.clear()
            # isoformat of a UTC time ends in "+00:00": the same text as _ts, one object less
            text = _TS_TEXT[value] = value.isoformat(timespec="microseconds")[:-6] + "Z"
        return text
    return _ts(value)


def _ts(value: datetime) -> str:
    if value.tzinfo is not UTC:
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} refused: audit timestamps are aware UTC")
        value = value.astimezone(UTC)
    # isoformat is C and ~10x faster than strftime; same text: 2026-11-26T08:00:00.000000Z
    return value.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _default(value: Any) -> Any:
    kind = type(value)  # the common exact types first, then the general checks (same results)
    if kind is datetime:
        return ts(value)
    if kind is Decimal or kind is uuid.UUID:
        return str(value)
    fields = getattr(kind, "__struct_fields__", None)
    if fields is not None:  # a msgspec Struct (event payload): its fields by name, not recursed
        return _asdict(value) if isinstance(value, Struct) else {name: getattr(value, name) for name in fields}
    if isinstance(value, datetime):
        return ts(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(f"cannot put {type(value).__name__} into an audit payload: {value!r}")


# For a writer that calls orjson itself (the audit sink: tradeops.audit.services._prepare_events):
# canonical JSON is ``orjson.dumps(value, default=canonical_default, option=CANONICAL_OPTIONS)``.
canonical_default = _default
CANONICAL_OPTIONS = _OPTIONS


def canonical_json(value: Any) -> str:
    """Deterministic JSON text for ``value`` (the same input always gives the same bytes)."""
    return orjson.dumps(value, default=_default, option=_OPTIONS).decode()


def canonical_bytes(value: Any) -> bytes:
    """``canonical_json`` as its UTF-8 bytes (what the chain hashes), not decoded."""
    return orjson.dumps(value, default=_default, option=_OPTIONS)


def record_header(
    *,
    sequence: int,
    event_id: uuid.UUID | str,
    occurred_at: datetime,
    recorded_at: datetime,
    retain_until: datetime,
    category: str,
    actor_type: str,
    actor_id: str,
    action: str,
    object_type: str,
    object_id: str,
    corrects: uuid.UUID | str | None,
) -> bytes:
    """The canonical bytes of every field of a record except the payload and the hashes."""
    return orjson.dumps(
        [
            sequence,
            str(event_id),
            ts(occurred_at),
            ts(recorded_at),
            ts(retain_until),
            category,
            actor_type,
            actor_id,
            action,
            object_type,
            object_id,
            str(corrects) if corrects else None,
        ]
    )


def record_header_parts(
    *,
    event_id: uuid.UUID | str,
    occurred_at: datetime,
    category: str,
    actor_type: str,
    actor_id: str,
    action: str,
    object_type: str,
    object_id: str,
    corrects: uuid.UUID | str | None,
) -> tuple[str, str]:
    """``record_header`` but for the three fields a writer that numbers records in the database
    fills in there (sequence, recorded_at, retain_until): the JSON text between them, so that
    ``record_header(...) == b'[%d,%s,"%s","%s",%s]' % (sequence, lead, ts(recorded_at),
    ts(retain_until), rest)`` (tests/trading/orders/test_write.py checks it)."""
    lead, rest = header_parts(
        event_id, ts(occurred_at), category, actor_type, actor_id, action, object_type, object_id, corrects
    )
    return lead.decode(), rest.decode()


def header_parts(
    event_id: uuid.UUID | str,
    occurred_ts: str,
    category: str,
    actor_type: str,
    actor_id: str,
    action: str,
    object_type: str,
    object_id: str,
    corrects: uuid.UUID | str | None,
) -> tuple[bytes, bytes]:
    """``record_header_parts`` as bytes, with the occurrence time already formatted (``ts``)."""
    lead = orjson.dumps([str(event_id), occurred_ts])[1:-1]
    rest = orjson.dumps(
        [category, actor_type, actor_id, action, object_type, object_id, str(corrects) if corrects else None]
    )[1:-1]
    return lead, rest


def header_middle(recorded_at: datetime, retain_until: datetime) -> bytes:
    """The header's text between ``lead`` and ``rest`` (``header_parts``): the two times an
    appender stamps under the chain-head lock, the same for a whole batch (per category)."""
    return orjson.dumps([ts(recorded_at), ts(retain_until)])[1:-1]


def header_join(sequence: int, lead: bytes, middle: bytes, rest: bytes) -> bytes:
    """``record_header``'s bytes from its parts: ``record_header(...) == header_join(sequence,
    *header_parts(...)[:1], header_middle(...), header_parts(...)[1])`` (tests/tradeops/audit)."""
    return b"[%d,%s,%s,%s]" % (sequence, lead, middle, rest)


def chain_hash_parts(prev_hash: str, sequence: int, lead: bytes, middle: bytes, rest: bytes, payload: bytes) -> str:
    """``chain_hash(prev_hash, header_join(sequence, lead, middle, rest), payload.decode())`` in one
    format and one SHA-256 call over the same bytes (the audit sink's hot path, one call per
    record; the payload as ``canonical_bytes`` gives it)."""
    record = b"%s\n[%d,%s,%s,%s]\n%s" % (prev_hash.encode(), sequence, lead, middle, rest, payload)
    return hashlib.sha256(record).hexdigest()


def chain_hash(prev_hash: str, header: bytes, payload: str) -> str:
    """SHA-256 over the previous record's hash and this record's canonical form (hex)."""
    digest = hashlib.sha256(prev_hash.encode())
    digest.update(b"\n")
    digest.update(header)
    digest.update(b"\n")
    digest.update(payload.encode())
    return digest.hexdigest()
