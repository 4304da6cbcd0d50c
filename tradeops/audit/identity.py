"""Event ids that the audit trail and the outbox agree on, so one action is recorded once.

A service records an action in the audit trail and appends its event to the outbox in the same
transaction; the audit consumer later reads that event from trading-events. If both carry the
same ``event_id`` the consumer's append is a no-op (``event_id`` is unique in the trail). The id
is derived from what both sides receive (``trading.orders.records``: action, object, payload, time),
so neither hook needs to hand the other anything: call ``recorded_event_id`` with the same
arguments on both sides. Pure: no Django, no clock.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime

from tradeops.audit.canonical import canonical_bytes, ts
from tradeops.core.frozen import uuid5_of_digest

# Fixed namespace for tradeops' derived event ids (uuid5 of it and the action's identity).
NAMESPACE = uuid.UUID("6f1c2d4e-8a0b-5c3d-9e7f-a1b2c3d4e5f6")
# uuid5 hashes with SHA-1 (RFC 4122: an identifier, not a security use); the namespace fed in once
_NAMESPACE_SHA1 = hashlib.sha1(NAMESPACE.bytes, usedforsecurity=False)


def _uuid5(name: str) -> uuid.UUID:
    """``uuid.uuid5(NAMESPACE, name)`` (the same id) without hashing the namespace again and
    without ``UUID.__init__``: the order path derives ~6 ids per order
    (tests/tradeops/audit/test_identity.py)."""
    digest = _NAMESPACE_SHA1.copy()
    digest.update(name.encode())
    return uuid5_of_digest(digest.digest())


def object_label(obj) -> tuple[str, str]:
    """(object_type, object_id) of a model instance: ``("order", "42")``."""
    meta = getattr(obj, "_meta", None)
    object_type = meta.model_name if meta is not None else type(obj).__name__.lower()
    return object_type, str(getattr(obj, "pk", obj))


def recorded_event_id(
    *, action: str, obj, payload: dict, at: datetime, cause: str = "", canonical: bytes | None = None
) -> uuid.UUID:
    """The event id of one recorded action: a UUIDv5 over action, object, time, payload and,
    when given, ``cause``.

    Deterministic: the same arguments always give the same id, on the audit side and the outbox
    side. Two different actions on one object at the same microsecond differ in action or payload,
    except a position update: two fills at one instant (a replay on the distributed topology, where
    the quotes run ahead of the signals) can net a position back to figures it had, so its records
    name the fill that caused them (``cause``; empty: the id is as it always was).

    ``canonical``: ``canonical_bytes(payload)`` when the caller has it already (the order path
    stores the same bytes as the audit payload), so the payload is serialised once."""
    object_type, object_id = object_label(obj)
    body = hashlib.sha256(canonical_bytes(payload) if canonical is None else canonical).hexdigest()
    suffix = f"|{cause}" if cause else ""
    return _uuid5(f"{action}|{object_type}|{object_id}|{ts(at)}|{body}{suffix}")
