"""Derived event ids and payloads serialised once: the order path's shortcuts must give exactly
the ids and records the plain computation gives (an id that moved would record an action twice:
once from the order write, once from the audit-trail stage reading its event)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from tradeops.audit.canonical import canonical_bytes, canonical_json
from tradeops.audit.identity import NAMESPACE, _uuid5, recorded_event_id
from tradeops.audit.services import AuditEntry, _prepare

AT = datetime(2017, 4, 23, 21, 0, 0, 123456, tzinfo=UTC)
PAYLOAD = {"quantity": Decimal("0.100000"), "status": "FILLED", "closed_at": AT, "reason": "é ✓", "n": None}


@settings(max_examples=300, deadline=None)
@given(name=st.text(max_size=200))
def test_the_derived_uuid5_is_the_standard_one(name):
    got, standard = _uuid5(name), uuid.uuid5(NAMESPACE, name)
    assert got == standard
    # built without UUID.__init__: every slot and what is read from it as the standard one's
    assert (got.int, got.is_safe, got.version, got.variant, str(got), hash(got)) == (
        standard.int,
        standard.is_safe,
        standard.version,
        standard.variant,
        str(standard),
        hash(standard),
    )


def test_an_event_id_from_the_callers_canonical_bytes_is_the_same_id():
    class Order:
        pk = 42

    plain = recorded_event_id(action="order.filled", obj=Order(), payload=PAYLOAD, at=AT, cause="deal:1:7")
    given_bytes = recorded_event_id(
        action="order.filled", obj=Order(), payload=PAYLOAD, at=AT, cause="deal:1:7", canonical=canonical_bytes(PAYLOAD)
    )
    assert plain == given_bytes
    assert canonical_bytes(PAYLOAD) == canonical_json(PAYLOAD).encode()


def test_an_entry_carrying_its_canonical_bytes_prepares_the_same_record():
    common = dict(
        action="order.filled",
        object_type="order",
        object_id="42",
        occurred_at=AT,
        payload=PAYLOAD,
        actor="service:execution-worker",
        event_id=uuid.uuid4(),
    )
    plain = AuditEntry(**common)
    carried = AuditEntry(**common, canonical=canonical_bytes(PAYLOAD))
    assert plain == carried  # not part of the entry's identity
    assert _prepare([carried]) == _prepare([plain])
