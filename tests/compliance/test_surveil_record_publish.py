"""``surveil --record`` publishes what it records to the compliance desk's open screens: one
``alert.raised`` per alert and one ``case.changed`` per case it touched, through the outbox in the
rows' transaction, nothing on a re-run, and nothing the audit-trail stage records twice."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import orjson
import pytest
from asgiref.sync import async_to_sync
from django.conf import settings
from django.core.management import call_command

from tests.compliance.helpers import market, q


def _wash_book(tmp_path, *, owner="X", start=0):
    rows = [
        q(start, "1.10000", "1.10010"),
        *market(start + 1, f"a{start}", "A", "buy", 100_000, "1.10010", owner=owner),
        *market(start + 4, f"b{start}", "B", "sell", 100_000, "1.10000", owner=owner),
    ]
    src = tmp_path / f"book-{owner}-{start}.jsonl"
    src.write_bytes(b"\n".join(orjson.dumps(r) for r in rows))
    return src


def _surveil_record(tmp_path, src) -> None:
    call_command("surveil", str(src), "--output", str(tmp_path / "alerts.jsonl"), "--record", stderr=io.StringIO())


def _unsent():
    from tradeops.events import decode
    from tradeops.outbox.models import Outbox

    return [decode(bytes(row.message)) for row in Outbox.objects.filter(sent_at__isnull=True).order_by("id")]


@pytest.mark.django_db
def test_a_recorded_alert_and_its_new_case_are_published_once_and_audited_once(tmp_path):
    from compliance.models import Alert, Case
    from tradeops.audit.models import AuditRecord
    from tradeops.audit.services import audit_append_events
    from tradeops.events import Topic
    from tradeops.outbox.models import Outbox

    _surveil_record(tmp_path, _wash_book(tmp_path))

    alert, case = Alert.objects.get(), Case.objects.get()
    events = _unsent()
    assert [e.type for e in events] == ["alert.raised", "case.changed"]
    raised, changed = events
    assert {e.topic for e in events} == {Topic.COMPLIANCE}
    assert raised.payload.alert_type == "wash_trade" and raised.payload.owner == "X"
    assert list(raised.payload.order_ids) == alert.order_ids
    assert raised.occurred_at == alert.end  # event time, as the streaming stage's alert.raised
    assert changed.payload.reference == case.reference and changed.payload.case_id == case.pk
    assert changed.payload.action == "opened" and changed.payload.status == "new"
    assert changed.payload.actor == "service:surveil-batch"
    assert changed.occurred_at == alert.first_seen  # the book's time when surveillance raised it

    # the alert.raised carries the id of the service's own audit record of the same action
    recorded = AuditRecord.objects.get(action="alert.recorded", object_id=str(alert.pk))
    assert raised.event_id == recorded.event_id
    before = AuditRecord.objects.count()
    # the audit-trail stage consumes both: the alert is recorded already, the case step once ...
    assert audit_append_events(events=events) == 1
    step = AuditRecord.objects.get(action="case.changed")
    assert (step.object_type, step.object_id, step.event_id) == ("case", case.reference, changed.event_id)
    # ... and a redelivery records nothing
    assert audit_append_events(events=events) == 0
    assert AuditRecord.objects.count() == before + 1

    # a re-run over the same book changes no alert and publishes nothing more
    Outbox.objects.update(sent_at=datetime.now(UTC))
    _surveil_record(tmp_path, _wash_book(tmp_path))
    assert _unsent() == [] and Alert.objects.get().occurrences == 2


@pytest.mark.django_db
def test_one_event_per_alert_and_case_touched_however_many_sightings():
    """An alert seen at three instants of one run (recorded, then extended twice) and a second
    alert joining its case: two ``alert.raised`` (each alert's last state) and one ``case.changed``."""
    from compliance.models import Alert, Case
    from compliance.services import alerts_record_published
    from tradeops.audit.models import AuditRecord

    def seen(end_s: int, *orders: str, alert_type: str = "wash_trade") -> dict:
        return {
            "alert_type": alert_type,
            "account": "1,2",
            "owner": "X",
            "symbol": "EURUSD",
            "order_ids": list(orders),
            "score": 0.5 + end_s / 100,
            "start": "2026-01-05T10:00:00Z",
            "end": f"2026-01-05T10:00:{end_s:02d}Z",
            "evidence": {"episode": {"id": f"{alert_type}-ep-1"}},
        }

    def at(s: int) -> datetime:
        return datetime(2026, 1, 5, 10, 0, s, tzinfo=UTC)

    published = alerts_record_published(
        sightings=[
            (at(10), [seen(10, "a1", "b1")]),
            (at(20), [seen(20, "a1", "b1", "a2", "b2")]),
            (at(30), [seen(30, "a1", "b1", "a2", "b2", "a3", "b3"), seen(30, "s1", alert_type="spoofing")]),
        ]
    )
    assert len(published.created) == 2 and Alert.objects.count() == 2 and Case.objects.count() == 1
    events = _unsent()
    # what it says it wrote to the outbox is what the outbox holds
    assert [e.event_id for e in published.events] == [e.event_id for e in events]
    assert [e.type for e in events] == ["alert.raised", "alert.raised", "case.changed"]
    wash = Alert.objects.get(alert_type="wash_trade")
    assert events[0].payload.order_ids == ("a1", "b1", "a2", "b2", "a3", "b3") and wash.occurrences == 3
    # the wash alert's last audit record (its second extension) and its event share one id
    last = AuditRecord.objects.filter(object_type="alert", object_id=str(wash.pk)).order_by("-sequence").first()
    assert last.action == "alert.extended" and last.event_id == events[0].event_id
    assert events[2].payload.action == "opened" and events[2].occurred_at == at(30)


@pytest.mark.django_db
def test_no_row_without_its_event(tmp_path, monkeypatch):
    """The outbox refusing the events rolls the alerts and cases back with them."""
    from compliance.models import Alert, Case
    from tradeops.outbox import services as outbox

    def refuse(*, events):
        raise RuntimeError("outbox unavailable")

    monkeypatch.setattr(outbox, "outbox_append_many", refuse)
    with pytest.raises(RuntimeError, match="outbox unavailable"):
        _surveil_record(tmp_path, _wash_book(tmp_path))
    assert not Alert.objects.exists() and not Case.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not settings.REDIS_URL, reason="needs Redis (REDIS_URL)")
def test_an_officers_open_queue_receives_what_surveil_record_recorded(tmp_path):
    """The desk's consumer (``/ws/live/``) pushes the batch's alert and case to an officer's open
    screen, as it does the streaming stage's; a trader's screen gets neither."""
    from channels.db import database_sync_to_async

    from compliance.models import Case
    from tests.screens.world import live_connect, live_received, pump_live, world_build

    world = world_build()
    pump_live()
    src = _wash_book(tmp_path, owner="Z")

    async def scenario():
        trader = await live_connect(world.users["trader"])
        officer = await live_connect(world.users["officer"])
        await database_sync_to_async(_surveil_record)(tmp_path, src)
        assert await database_sync_to_async(pump_live)() == 2
        got = await live_received(officer, 2)
        by_type = {e["type"]: e["payload"] for e in got}
        assert set(by_type) == {"alert.raised", "case.changed"}
        assert by_type["alert.raised"]["alert_type"] == "wash_trade" and by_type["alert.raised"]["owner"] == "Z"
        case = await database_sync_to_async(Case.objects.get)(subject_owner="Z")
        assert by_type["case.changed"]["reference"] == case.reference
        assert by_type["case.changed"]["action"] == "opened"
        assert await trader.receive_nothing(timeout=0.5)
        await trader.disconnect()
        await officer.disconnect()

    async_to_sync(scenario)()
