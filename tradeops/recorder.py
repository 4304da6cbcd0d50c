"""One transaction, one recorder: the audit entries and outbox events a transaction produces.

A service that changes the system of record takes the transaction's ``Recorder`` (keyword
``recorder``) and hands it the audit entries and events of what it did; the recorder writes them
at the end of the transaction, in the order they came, with one chain-head lock and one INSERT
for the audit trail and one for the outbox (``audit_append_many``, ``outbox_append_many``).
Nothing is global: what a service writes depends only on its arguments, never on a
thread-local batch open somewhere up the stack.

    with recording() as recorder:        # transaction.atomic; writes the records at the end
        order_transition(order=o, to="CANCELLED", actor=..., recorder=recorder)
        kill_switch_row_save(..., recorder=recorder)

A service called without a recorder opens its own ``recording()``: the same writes, in a
transaction of its own. A writer that writes rows and records in one statement (the order path
on PostgreSQL, ``trading.orders.write``) takes the records over with ``drain``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from django.db import connection, transaction

from tradeops.audit.models import Category
from tradeops.audit.services import AuditEntry, audit_append_many
from tradeops.core.errors import ApplicationError
from tradeops.events import Envelope
from tradeops.outbox.services import outbox_append_many


class RecorderError(ApplicationError):
    code = "recorder_error"


class Recorder:
    """The audit entries and outbox events of one transaction, in order, until written.

    ``written_events`` keeps every event written so far (for in-process consumers: the execution
    worker hands its own events to the pre-trade gate at once)."""

    __slots__ = ("entries", "events", "written_events", "audit_sequences")

    def __init__(self) -> None:
        self.entries: list[AuditEntry] = []
        self.events: list[Envelope] = []
        self.written_events: list[Envelope] = []
        self.audit_sequences: list[int] = []

    def audit(self, entry: AuditEntry) -> None:
        """An audit record to append (``tradeops.audit``)."""
        self.entries.append(entry)

    def event(self, event: Envelope) -> None:
        """An event to publish through the outbox (``tradeops.outbox``)."""
        self.events.append(event)

    def change(
        self,
        *,
        action: str,
        actor: str,
        object_type: str,
        object_id: str,
        before: Mapping[str, Any] | None,
        after: Mapping[str, Any] | None,
        at: datetime,
        reason: str = "",
        category: str = Category.COMPLIANCE,
        event_id: uuid.UUID | None = None,
    ) -> None:
        """A change with its content before and after (limits, kill switch, breaker, rules):
        2017/565 Art. 72. ``at`` is when the change happened (event time)."""
        self.audit(
            AuditEntry(
                action=action,
                object_type=object_type,
                object_id=str(object_id),
                occurred_at=at,
                payload={"before": before, "after": after, "reason": reason},
                actor=actor,
                event_id=event_id,
                category=category,
            )
        )

    def drain(self) -> tuple[list[AuditEntry], list[Envelope]]:
        """Hand over everything collected so far to a writer that writes it itself (in the same
        transaction); the recorder is empty afterwards."""
        entries, events = self.entries, self.events
        self.entries, self.events = [], []
        return entries, events

    def written(self, events: list[Envelope], sequences: list[int]) -> None:
        """Note what a writer that drained the recorder wrote."""
        self.written_events.extend(events)
        self.audit_sequences.extend(sequences)

    def flush(self) -> None:
        """Write what was collected (audit records first, then the outbox rows). Precondition:
        inside the transaction the records describe."""
        if not connection.in_atomic_block:
            raise RecorderError(
                "a recorder writes inside the transaction it records (use tradeops.recorder.recording())",
                code="recorder_outside_transaction",
            )
        entries, events = self.drain()
        if entries:
            self.audit_sequences.extend(r.sequence for r in audit_append_many(entries=entries))
        if events:
            outbox_append_many(events=events)
            self.written_events.extend(events)


@contextmanager
def recording(recorder: Recorder | None = None) -> Iterator[Recorder]:
    """The transaction a service writes in, with its recorder.

    Without ``recorder``: a new ``transaction.atomic`` (a savepoint when nested) and a new
    recorder, written at the end of the block, inside the transaction. With the caller's
    ``recorder``: the caller's transaction (it must be open) and the caller writes the records;
    no savepoint, so a failure rolls back the caller's whole transaction (all or nothing)."""
    if recorder is not None:
        if not connection.in_atomic_block:
            raise RecorderError(
                "a recorder passed in belongs to an open transaction (tradeops.recorder.recording())",
                code="recorder_outside_transaction",
            )
        with transaction.atomic(savepoint=False):
            yield recorder
        return
    with transaction.atomic():
        recorder = Recorder()
        yield recorder
        recorder.flush()
