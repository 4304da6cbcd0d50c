"""The PostgreSQL writer's one statement: the audit records it numbers and hashes in the database
are exactly what ``tradeops.audit.canonical`` would have made (``audit_verify`` recomputes them
in Python), and positions that moved under it are computed again, never overwritten."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import orjson
import pytest
from django.db import connection
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import requires_postgres
from tests.workers.conftest import T0
from tradeops.audit.canonical import chain_hash, record_header, record_header_parts, ts
from tradeops.audit.models import AuditRecord
from tradeops.audit.services import YEAR, AuditEntry, retention_years
from tradeops.audit.verify import audit_verify
from tradeops.bus.tracing import traceparent_parse
from tradeops.events import decode
from tradeops.outbox.models import Outbox
from tradeops.outbox.services import outbox_rows
from tradeops.recorder import recording
from trading.models import AccountRiskSnapshot, Position
from trading.order_states import OrderStatus
from trading.orders import write
from trading.orders.marks import AccountState, Mark, RiskFigures
from trading.orders.plan import FillDraft, OrderDraft, OrderStep
from trading.orders.services import account_state_save, order_commit

pytestmark = pytest.mark.django_db(transaction=True)
D = Decimal
texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30)


@settings(max_examples=200, deadline=None)
@given(
    event_id=st.uuids(),
    occurred=st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2999, 1, 1), timezones=st.just(UTC)),
    recorded=st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2999, 1, 1), timezones=st.just(UTC)),
    sequence=st.integers(min_value=1, max_value=2**62),
    fields=st.tuples(texts, texts, texts, texts, texts, texts),
    corrects=st.one_of(st.none(), st.uuids()),
)
def test_the_header_parts_are_the_header_but_for_what_the_database_fills_in(
    event_id, occurred, recorded, sequence, fields, corrects
):
    category, actor_type, actor_id, action, object_type, object_id = fields
    retain = recorded + timedelta(days=3)
    common = dict(
        event_id=event_id,
        occurred_at=occurred,
        category=category,
        actor_type=actor_type,
        actor_id=actor_id,
        action=action,
        object_type=object_type,
        object_id=object_id,
        corrects=corrects,
    )
    lead, rest = record_header_parts(**common)
    built = f'[{sequence},{lead},"{ts(recorded)}","{ts(retain)}",{rest}]'.encode()
    assert built == record_header(sequence=sequence, recorded_at=recorded, retain_until=retain, **common)


def _draft(account, instrument, coid, side="BUY", qty="0.30"):
    return OrderDraft(client_order_id=coid, account=account, instrument=instrument, side=side, quantity=D(qty), at=T0)


def _filled(coid: str, price="1.10002", qty="0.30"):
    sent = T0 + timedelta(microseconds=10)
    return {
        "steps": [
            OrderStep(OrderStatus.RISK_APPROVED, T0),
            OrderStep(OrderStatus.SUBMITTED, sent, broker_order_id="9"),
        ],
        "fills": [FillDraft(broker_deal_id=f"{coid}-d", quantity=D(qty), price=D(price), executed_at=sent)],
    }


def test_records_hashed_in_the_database_verify_in_python(postgres, account, instrument):
    """Awkward text everywhere (quotes, backslashes, newlines, non-ASCII, a line separator):
    each record's hash is SHA-256 over exactly the bytes canonical.py makes, and the chain head
    and retention are the Python writer's."""
    requires_postgres()
    odd = 'tab\t "quoted" back\\slash\nnewline é ☃ \u2028 \x01'
    with recording() as recorder:
        recorder.audit(
            AuditEntry(
                action=f"test.odd {odd}",
                object_type=odd,
                object_id=odd,
                occurred_at=T0,
                payload={"text": odd, "n": D("1.10"), odd: [1, 2]},
                actor=f"user:{odd}",
                corrects=uuid.uuid4(),
                category="compliance",
            )
        )
        written = order_commit(draft=_draft(account, instrument, "ODD-1"), **_filled("ODD-1"), recorder=recorder)
    assert written.one_statement
    order_commit(draft=_draft(account, instrument, "ODD-2", side="SELL"), **_filled("ODD-2"))  # outside a transaction
    records = list(AuditRecord.objects.order_by("sequence"))
    assert records[0].object_id == odd and records[0].payload_data["text"] == odd
    prev = "0" * 64
    for record in records:
        header = record_header(
            sequence=record.sequence,
            event_id=record.event_id,
            occurred_at=record.occurred_at,
            recorded_at=record.recorded_at,
            retain_until=record.retain_until,
            category=record.category,
            actor_type=record.actor_type,
            actor_id=record.actor_id,
            action=record.action,
            object_type=record.object_type,
            object_id=record.object_id,
            corrects=record.corrects,
        )
        assert record.prev_hash == prev and record.hash == chain_hash(prev, header, record.payload)
        assert record.retain_until == record.recorded_at + retention_years(record.category) * YEAR
        prev = record.hash
    recorded = [r.recorded_at for r in records]
    assert recorded == sorted(recorded)  # numbered under the lock: record time grows with the sequence
    assert audit_verify().ok


def test_a_position_moved_since_the_hint_is_computed_again_not_overwritten(postgres, account, instrument):
    requires_postgres()
    state = AccountState(account.pk)
    order_commit(draft=_draft(account, instrument, "H-1"), **_filled("H-1"), state=state)
    assert state.rows[instrument.pk].net_quantity == D("0.30")
    # someone else moves the position (a reconciliation in another process, say)
    Position.objects.filter(account=account).update(net_quantity=D("1.30"), average_price=D("1.2"))
    written = order_commit(draft=_draft(account, instrument, "H-2"), **_filled("H-2"), state=state)
    assert written.one_statement
    position = Position.objects.get(account=account)
    assert position.net_quantity == D("1.60")  # 1.30 as it stood + 0.30, not the hint's 0.30 + 0.30
    assert state.rows[instrument.pk].net_quantity == D("1.60")
    assert audit_verify().ok


def test_marks_and_the_risk_snapshot_go_out_with_the_fill_and_on_their_own(postgres, account, instrument):
    requires_postgres()
    state = AccountState(account.pk)
    order_commit(draft=_draft(account, instrument, "M-1"), **_filled("M-1"), state=state)
    marked_at = T0 + timedelta(minutes=1)
    state.mark(instrument.pk, Mark(D("1.10102"), marked_at))
    figures = RiskFigures(
        balance=D(100000),
        equity=D("100029.40"),
        unrealised_pnl=D("30"),
        peak_equity=D("100029.40"),
        drawdown=D(0),
        daily_pnl=D("29.40"),
        used_margin=D("1100"),
        trading_state="ACTIVE",
        breaker_state="closed",
        as_of=marked_at,
    )
    state.figures_set(figures)
    account_state_save(state=state)
    position = Position.objects.get(account=account)
    assert position.mark_price == D("1.10102") and position.unrealised_pnl == D("30") and position.as_of == marked_at
    snapshot = AccountRiskSnapshot.objects.get(account=account)
    assert snapshot.equity == D("100029.40") and snapshot.as_of == marked_at
    assert not state.dirty
    # a fill carries the pending mark and figures in its own write
    later = marked_at + timedelta(minutes=1)
    state.mark(instrument.pk, Mark(D("1.10202"), later))
    state.figures_set(dataclasses.replace(figures, equity=D("100059.40"), as_of=later))
    order_commit(
        draft=_draft(account, instrument, "M-2", side="SELL", qty="0.10"), **_filled("M-2", qty="0.10"), state=state
    )
    position.refresh_from_db()
    assert position.mark_price == D("1.10202") and position.net_quantity == D("0.20")
    assert AccountRiskSnapshot.objects.get(account=account).equity == D("100059.40")
    assert not state.dirty


def test_outbox_messages_are_stored_as_the_bytes_encoded(postgres, account, instrument, monkeypatch):
    """The one statement carries the outbox messages beside its jsonb, in binary (trading 0008):
    the rows hold exactly the bytes ``tradeops.events.encode`` made, in the order of the events,
    awkward text included; a message sent inside the jsonb as text (the writer of before 0008) or
    as hex (before 0005) is stored as the same bytes too; a count of messages that is not the
    count of rows refuses the write."""
    requires_postgres()
    encoded: list[bytes] = []

    def rows_seen(events):  # the real rows, their messages noted before they are sent
        rows = outbox_rows(events)
        encoded.extend(row["message"] for row in rows)
        return rows

    monkeypatch.setattr(write, "outbox_rows", rows_seen)
    odd = 'tab\t "quoted" back\\slash\nnewline é ☃ \u2028 \x01 \\u0000'
    filled = _filled("MSG-1")
    filled["steps"][0] = OrderStep(OrderStatus.RISK_APPROVED, T0, reason=odd)
    written = order_commit(draft=_draft(account, instrument, "MSG-1"), **filled)
    assert written.one_statement and len(encoded) == len(written.events) > 1
    stored = [bytes(m) for m in Outbox.objects.order_by("id").values_list("message", flat=True)]
    assert stored == encoded
    assert [decode(m).event_id for m in stored] == [e.event_id for e in written.events]
    assert odd in [decode(m).payload.reason for m in stored if decode(m).type == "order.lifecycle"]

    row = rows_seen(written.events[:1])[0]
    event_id = uuid.uuid4()
    row.update(event_id=event_id, message="\\x" + row["message"].hex())
    statement = orjson.dumps({"account_id": account.pk, "positions": [], "outbox": [row]}, default=str).decode()
    with connection.cursor() as cursor:
        cursor.execute("SELECT trading_order_write(%s::jsonb)", [statement])
    assert bytes(Outbox.objects.get(event_id=event_id).message) == encoded[-1]

    row = rows_seen(written.events[:1])[0]
    event_id = uuid.uuid4()
    row.update(event_id=event_id, message=row["message"].decode())
    statement = orjson.dumps({"account_id": account.pk, "positions": [], "outbox": [row]}, default=str).decode()
    with connection.cursor() as cursor:
        cursor.execute("SELECT trading_order_write(%s::jsonb)", [statement])
    assert bytes(Outbox.objects.get(event_id=event_id).message) == encoded[-1]

    rows = rows_seen(written.events[:2])
    messages = [row.pop("message") for row in rows]
    for row in rows:
        row["event_id"] = uuid.uuid4()
    statement = orjson.dumps({"account_id": account.pk, "positions": [], "outbox": rows}, default=str).decode()
    with pytest.raises(Exception, match="tradeops:outbox_messages"), connection.cursor() as cursor:
        cursor.execute("SELECT trading_order_write(%s::jsonb, %b::bytea[])", [statement, messages[:1]])
    assert not Outbox.objects.filter(event_id__in=[row["event_id"] for row in rows]).exists()


def _skip_entry(n: int, event_id: uuid.UUID) -> AuditEntry:
    return AuditEntry(
        action="signal.skipped",
        object_type="signal",
        object_id=f"sig-{n}:1",
        occurred_at=T0 + timedelta(hours=n),
        payload={"code": "strategy.no_headroom", "n": n, "wanted": "0.10", "text": 'é "q"'},
        actor="service:execution",
        event_id=event_id,
    )


def test_statements_append_writes_each_event_id_once_as_audit_append_many_would(db):
    """The skipped signals' records (``audit_append_statements``): a redelivered event id, or one
    repeated in the batch, is written once; every record is what ``audit_append_many`` writes
    for the same entry (same columns but the ids and times of writing) and the chain verifies."""
    from django.db import transaction

    from tradeops.audit.services import audit_append_many

    ids = [uuid.uuid4() for _ in range(4)]
    with transaction.atomic():
        (reference,) = audit_append_many(entries=[_skip_entry(0, ids[0])])  # the head exists from here on
    with transaction.atomic():
        first = write.audit_append_statements(
            entries=[_skip_entry(1, ids[1]), _skip_entry(2, ids[2]), _skip_entry(2, ids[2])]
        )
    with transaction.atomic():
        again = write.audit_append_statements(
            entries=[_skip_entry(0, ids[0]), _skip_entry(1, ids[1]), _skip_entry(3, ids[3])]
        )
    with transaction.atomic():
        assert write.audit_append_statements(entries=[_skip_entry(3, ids[3])]) == []

    assert first == [reference.sequence + 1, reference.sequence + 2]
    assert again == [reference.sequence + 3]
    records = list(AuditRecord.objects.order_by("sequence"))
    assert [r.event_id for r in records] == ids
    for record in records:
        assert record.recorded_at <= record.retain_until
        assert (record.retain_until - record.recorded_at) == (reference.retain_until - reference.recorded_at)
        for name in ("category", "actor_type", "actor_id", "action", "object_type"):
            assert getattr(record, name) == getattr(reference, name)
    assert [orjson.loads(r.payload)["n"] for r in records] == [0, 1, 2, 3]
    assert audit_verify().ok


def test_statements_append_needs_the_event_ids(db):
    from django.db import transaction

    entry = dataclasses.replace(_skip_entry(0, uuid.uuid4()), event_id=None)
    with pytest.raises(write.OrderWriteError), transaction.atomic():
        write.audit_append_statements(entries=[entry])


@pytest.mark.parametrize("one_statement", [True, False], ids=["one statement", "statements writer"])
def test_an_order_written_outside_any_trace_carries_one_trace(
    postgres, account, instrument, monkeypatch, one_statement
):
    """No trace in hand (a script, the bench's ``execute``): every event of the order continues
    ONE new trace, so a tracing user finds the whole order under one trace id (before 2026-12-05
    each of its events started a trace of its own); the next order starts another."""
    requires_postgres()
    if not one_statement:
        monkeypatch.setattr(write, "one_statement_available", lambda: False)
    traces = []
    for n, side in ((1, "BUY"), (2, "SELL")):
        seen = Outbox.objects.order_by("-id").values_list("id", flat=True).first() or 0
        order_commit(draft=_draft(account, instrument, f"TR-{n}", side=side), **_filled(f"TR-{n}"))
        rows = Outbox.objects.filter(id__gt=seen).order_by("id").values_list("message", "traceparent")
        events = [decode(bytes(message)) for message, _ in rows]
        assert len(events) > 2 and [e.traceparent for e in events] == [tp for _, tp in rows]  # the relay's header
        traces.append({traceparent_parse(e.traceparent)[0] for e in events})
    assert [len(ids) for ids in traces] == [1, 1]  # each order: one trace id on all its events
    assert traces[0] != traces[1]  # the next order: another trace
