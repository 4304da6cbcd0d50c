"""Appending: a gap-free hash chain, one writer, idempotent by event_id; coverage hooks."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tests.tradeops.audit.conftest import T0, entries
from tradeops.audit.canonical import GENESIS_HASH, chain_hash, record_header
from tradeops.audit.models import AuditRecord, ChainHead
from tradeops.audit.services import AuditEntry, audit_append, audit_append_many, audit_correct, audit_record_change
from tradeops.audit.verify import audit_verify


def test_records_form_a_gap_free_chain_that_verifies(chain):
    rows = list(AuditRecord.objects.order_by("sequence"))
    assert [r.sequence for r in rows] == list(range(1, 11))
    assert rows[0].prev_hash == GENESIS_HASH
    for prev, row in zip(rows, rows[1:], strict=False):
        assert row.prev_hash == prev.hash
    head = ChainHead.objects.get()
    assert (head.last_sequence, head.last_hash) == (10, rows[-1].hash)
    report = audit_verify()
    assert report.ok and report.checked == 10


def test_hash_covers_every_field_and_microseconds(db):
    record = audit_append(
        action="order.created",
        object_type="order",
        object_id="CO-1",
        occurred_at=T0,
        payload={"price": Decimal("1.08345"), "at": T0},
        actor="user:alice",
    )
    assert record.occurred_at == T0  # microseconds kept (RTS 25)
    assert record.payload == '{"at":"2026-03-02T09:30:00.123456Z","price":"1.08345"}'
    header = record_header(
        sequence=1,
        event_id=record.event_id,
        occurred_at=T0,
        recorded_at=record.recorded_at,
        retain_until=record.retain_until,
        category="trading",
        actor_type="user",
        actor_id="alice",
        action="order.created",
        object_type="order",
        object_id="CO-1",
        corrects=None,
    )
    assert record.hash == chain_hash(GENESIS_HASH, header, record.payload)
    stored = AuditRecord.objects.get(pk=record.pk)
    assert stored.recorded_at == record.recorded_at and stored.hash == record.hash


def test_retention_is_five_years_and_seven_for_compliance(db):
    trading = audit_append(action="a", object_type="o", object_id="1", occurred_at=T0, category="trading")
    compliance = audit_append(action="a", object_type="o", object_id="2", occurred_at=T0, category="compliance")
    assert (trading.retain_until - trading.recorded_at).days == 5 * 365 + 1
    assert (compliance.retain_until - compliance.recorded_at).days == 7 * 365 + 1


def test_same_event_id_is_recorded_once(db):
    event_id = uuid.uuid4()
    first = audit_append(action="a", object_type="o", object_id="1", occurred_at=T0, event_id=event_id)
    again = audit_append(action="a", object_type="o", object_id="1", occurred_at=T0, event_id=event_id)
    assert first is not None and again is None
    batch = entries(3)
    created = audit_append_many(entries=[*batch, batch[0], batch[1]])
    assert len(created) == 3
    assert audit_append_many(entries=batch) == []
    assert AuditRecord.objects.count() == 4
    assert audit_verify().ok


def test_correction_references_the_original_and_keeps_it_visible(chain):
    original = chain[3]
    fix = audit_correct(
        corrects=original.event_id, actor="user:officer", reason="wrong quantity keyed", corrected={"quantity": "0.20"}
    )
    assert fix.corrects == original.event_id
    data = fix.payload_data
    assert data["before"]["quantity"] == "0.10" and data["after"] == {"quantity": "0.20"}
    assert AuditRecord.objects.get(pk=original.pk).payload == original.payload  # untouched
    assert audit_verify().ok


def test_change_helper_records_before_and_after(db):
    record = audit_record_change(
        action="risk_limit.changed",
        actor="user:risk",
        object_type="risk_limit",
        object_id="7",
        before={"max_order_value": "100000"},
        after={"max_order_value": "50000"},
        reason="tighter after review",
    )
    assert record.category == "compliance"
    assert record.payload_data == {
        "before": {"max_order_value": "100000"},
        "after": {"max_order_value": "50000"},
        "reason": "tighter after review",
    }


def test_consumer_records_trading_and_compliance_events_once(db):
    from tradeops.audit.consumers import AuditTrailConsumer
    from tradeops.events import KillSwitchChanged, OrderEvent, decode, encode, make_event

    order = make_event(
        OrderEvent(
            client_order_id="CO-9",
            account_id=1,
            symbol="EURUSD",
            side="BUY",
            order_type="MARKET",
            quantity=Decimal("0.10"),
            status="FILLED",
            ts=T0,
        ),
        source="execution-worker",
        key="1",
    )
    kill = make_event(
        KillSwitchChanged(scope="all", engaged=True, actor="alice", reason="runaway algo", ts=T0),
        source="dashboard",
        key="all",
    )
    consumer = AuditTrailConsumer()
    for event in (order, kill, decode(encode(order)), kill):  # redelivered, once through the wire
        assert consumer.handle(event) == []
    rows = {r.action: r for r in AuditRecord.objects.all()}
    assert set(rows) == {"order.lifecycle", "killswitch.changed"}
    assert rows["order.lifecycle"].event_id == order.event_id
    assert (rows["order.lifecycle"].object_type, rows["order.lifecycle"].object_id) == ("order", "CO-9")
    assert rows["order.lifecycle"].actor == "service:execution-worker"
    assert rows["order.lifecycle"].category == "trading"
    assert rows["killswitch.changed"].category == "compliance"
    assert rows["killswitch.changed"].actor == "user:alice"
    assert rows["order.lifecycle"].payload_data["data"]["quantity"] == "0.10"


def test_audit_stage_is_registered():
    from django.utils.module_loading import import_string

    from tradeops.events import Topic
    from tradeops.stages import stage_get

    stage = stage_get("audit-trail")
    # trading and compliance events, and the decision inputs of orders (features, predictions, signals)
    assert set(stage.consumes) == {Topic.TRADING, Topic.COMPLIANCE, Topic.FEATURES, Topic.PREDICTIONS}
    assert hasattr(import_string(stage.factory)(), "handle")


def test_trading_services_write_the_audit_trail(db, account, instrument):
    from tradeops.audit.identity import recorded_event_id
    from trading.orders.services import order_create

    order, created = order_create(
        client_order_id="CO-AUDIT-1", account=account, instrument=instrument, side="BUY", quantity=Decimal("0.10")
    )
    record = AuditRecord.objects.get(action="order.created")
    assert (record.object_type, record.object_id) == ("order", str(order.pk))
    assert record.payload_data["client_order_id"] == "CO-AUDIT-1"
    # the id the outbox side can derive from the same call, so the consumed event dedupes
    assert record.event_id == recorded_event_id(
        action="order.created", obj=order, payload=record.payload_data, at=record.occurred_at
    )


def test_a_failed_trading_write_leaves_no_audit_record(db, account, instrument):
    from trading.orders.services import order_create

    with pytest.raises(Exception):  # noqa: B017 - any refusal; the point is the rollback
        order_create(
            client_order_id="CO-BAD", account=account, instrument=instrument, side="BUY", quantity=Decimal("-1")
        )
    assert not AuditRecord.objects.exists()


def test_logins_and_failed_logins_are_audited(db, client):
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_user(username="officer", password="a-long-enough-password")
    assert not client.login(username="officer", password="wrong-password-123")
    assert client.login(username="officer", password="a-long-enough-password")
    actions = list(AuditRecord.objects.order_by("sequence").values_list("action", "actor_id", "category"))
    assert actions == [("auth.login_failed", "officer", "security"), ("auth.login", "officer", "security")]
    assert "wrong-password" not in AuditRecord.objects.first().payload


def test_naive_timestamps_are_refused(db):
    with pytest.raises(ValueError, match="naive"):
        audit_append_many(
            entries=[AuditEntry(action="a", object_type="o", object_id="1", occurred_at=datetime(2026, 1, 1))]
        )
    assert not AuditRecord.objects.exists()
    _ = UTC


def test_a_large_batch_takes_the_bulk_path_and_verifies(db):
    created = audit_append_many(entries=entries(150))  # COPY on PostgreSQL
    assert [r.sequence for r in created] == list(range(1, 151))
    stored = AuditRecord.objects.get(sequence=77)
    assert (stored.hash, stored.occurred_at, stored.payload) == (
        created[76].hash,
        created[76].occurred_at,
        created[76].payload,
    )
    assert audit_verify().ok


def test_the_outbox_event_of_an_audited_action_is_not_recorded_twice(db, account, instrument):
    from tradeops.audit.consumers import AuditTrailConsumer
    from tradeops.events import decode
    from tradeops.outbox.models import Outbox
    from trading.orders.services import order_create

    order_create(
        client_order_id="CO-DEDUP-1", account=account, instrument=instrument, side="BUY", quantity=Decimal("0.10")
    )
    before = AuditRecord.objects.count()
    messages = [decode(bytes(row.message)) for row in Outbox.objects.order_by("id")]
    assert messages, "the trading write appended its event to the outbox"
    for event in messages:  # what the audit-trail stage receives from trading-events
        AuditTrailConsumer().handle(event)
    assert AuditRecord.objects.count() == before
    assert AuditRecord.objects.filter(event_id=messages[0].event_id, action="order.created").exists()


def test_audit_stage_runs_on_the_memory_bus_through_the_stage_runner(db):
    """The registered stage, built from its factory, consumes both topics; a replayed batch is a no-op."""
    from tradeops.bus.memory import MemoryBus
    from tradeops.bus.runner import stage_run
    from tradeops.events import Alert, OrderEvent, make_event
    from tradeops.stages import stage_get

    bus = MemoryBus()
    events = [
        make_event(
            OrderEvent(
                client_order_id=f"CO-{i}",
                account_id=1,
                symbol="EURUSD",
                side="BUY",
                order_type="MARKET",
                quantity=Decimal("0.10"),
                status="NEW",
                ts=T0,
            ),
            source="execution-worker",
            key="1",
        )
        for i in range(5)
    ] + [make_event(Alert(alert_type="spoofing", symbol="EURUSD", ts=T0), source="surveillance", key="EURUSD")]
    for event in events + events[:2]:  # two redelivered
        bus.publish(event)
    stats = stage_run(stage_get("audit-trail"), bus=bus, max_events=len(events) + 2, idle_exit=0.5, poll_timeout=0.1)
    assert stats.consumed == len(events) + 2
    assert AuditRecord.objects.count() == 6
    assert AuditRecord.objects.get(action="alert.raised").category == "compliance"
    assert audit_verify().ok
