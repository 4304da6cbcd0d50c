"""The streaming surveillance stage publishes what it records as ``surveil --record`` does
(``alerts_record_published``): one ``alert.raised`` per alert recorded or extended, with the id of
the alert's own audit record (so the audit trail holds one record per alert action, not two), and
one ``case.changed`` per case it opens or extends, through the outbox in the rows' transaction;
a redelivered order event publishes nothing again; an officer's open queue gets both live."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings

from compliance.consumers import SurveillanceConsumer
from compliance.models import Alert, Case
from tests.compliance.test_stream import market_order_events
from tradeops.audit.models import AuditRecord
from tradeops.audit.services import audit_append_events
from tradeops.events import Tick, decode, make_event
from tradeops.outbox.models import Outbox

T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


def _tick(t: float):
    tick = Tick(symbol="EURUSD", bid=Decimal("1.10000"), ask=Decimal("1.10010"), ts=T0 + timedelta(seconds=t))
    return make_event(tick, source="md", key="EURUSD")


def _market(t: float, cid: str, account_id: int, side: str, price: str) -> list:
    return market_order_events(T0 + timedelta(seconds=t), cid, account_id, side, 1, price)


def _wash_events(owner_start: float = 0) -> list:
    """A wash between two accounts of one owner, reported when its run ends (the tick 11 minutes on)."""
    t = owner_start
    return [
        _tick(t),
        *_market(t + 1, f"c1-{t}", 1, "BUY", "1.10010"),
        *_market(t + 3, f"c2-{t}", 2, "SELL", "1.10000"),
        _tick(t + 660),
    ]


def _consumer(owner: str = "OWNER-1") -> SurveillanceConsumer:
    return SurveillanceConsumer(owners={1: owner, 2: owner}, contract_sizes={"EURUSD": 100000.0})


def _unsent() -> list:
    return [decode(bytes(r.message)) for r in Outbox.objects.filter(sent_at__isnull=True).order_by("id")]


def _mark_sent() -> None:
    Outbox.objects.update(sent_at=datetime.now(UTC))


@pytest.mark.django_db
def test_the_live_stage_publishes_an_alert_and_its_new_case_once_and_audits_the_alert_once():
    consumer = _consumer()
    returned = [out for event in _wash_events() for out in consumer.handle(event)]
    assert returned == []  # nothing for the runner: the outbox has it, with the rows

    alert, case = Alert.objects.get(), Case.objects.get()
    events = _unsent()
    assert [e.type for e in events] == ["alert.raised", "case.changed"]
    raised, changed = events
    assert raised.source == changed.source == "surveillance"
    assert raised.payload.alert_type == "wash_trade" and raised.payload.owner == "OWNER-1"
    assert list(raised.payload.order_ids) == alert.order_ids
    assert raised.occurred_at == alert.end  # event time, as before
    assert raised.payload.evidence["episode"]["id"] == alert.evidence["episode"]["id"]
    assert (changed.payload.reference, changed.payload.action, changed.payload.status) == (
        case.reference,
        "opened",
        "new",
    )
    assert changed.payload.actor == "service:surveillance-stream"

    # one action, one record: the alert.raised carries its alert.recorded record's id, so the
    # audit-trail stage consuming both appends the case step only
    recorded = AuditRecord.objects.get(action="alert.recorded", object_id=str(alert.pk))
    assert raised.event_id == recorded.event_id
    assert audit_append_events(events=events) == 1
    assert not AuditRecord.objects.filter(action="alert.raised").exists()
    assert AuditRecord.objects.filter(object_type="alert").count() == 1  # one record for the one alert
    assert AuditRecord.objects.get(action="case.changed").object_id == case.reference
    assert audit_append_events(events=events) == 0  # a redelivery to the audit stage: nothing
    from tradeops.audit.search import AuditQuery, audit_search
    from tradeops.audit.verify import audit_verify

    assert audit_verify().ok  # the chain verifies
    found = {
        (r.action, r.object_id) for r in audit_search(AuditQuery(object_type="alert", object_id=str(alert.pk))).records
    }
    assert found == {("alert.recorded", str(alert.pk))}  # the alert's trail: its one record


@pytest.mark.django_db
def test_a_redelivered_order_event_publishes_nothing_again():
    """At-least-once: the bus delivers the batch again to a process that lost its windows (no
    snapshot), so the engine raises the same wash again: no alert changes, nothing is published;
    the runner's own dedupe covers a redelivery to the same process (tests/tradeops/bus)."""
    events = _wash_events()
    first = _consumer()
    for event in events:
        first.handle(event)
    assert len(_unsent()) == 2
    _mark_sent()
    again = _consumer()
    for event in events:
        assert again.handle(event) == []
    assert _unsent() == []
    assert Alert.objects.get().occurrences == 2  # raised again, seen again, changed in nothing
    assert Case.objects.count() == 1
    assert AuditRecord.objects.filter(object_type="alert").count() == 1


@pytest.mark.django_db
def test_a_second_alert_in_an_open_case_publishes_alert_added_and_an_extension_alert_extended():
    consumer = _consumer()
    for event in _wash_events():
        consumer.handle(event)
    case = Case.objects.get()
    _mark_sent()
    # the same owner washes again on the same symbol an hour later: a new alert in the open case
    for event in _wash_events(3600):
        consumer.handle(event)
    events = _unsent()
    assert [e.type for e in events] == ["alert.raised", "case.changed"]
    assert events[1].payload.reference == case.reference and events[1].payload.action == "alert_added"
    assert Case.objects.count() == 1 and case.alerts.count() == 2
    second = Alert.objects.order_by("pk").last()
    assert events[0].event_id == AuditRecord.objects.get(action="alert.recorded", object_id=str(second.pk)).event_id
    # every alert: its one audit record and no alert.raised one beside it
    assert audit_append_events(events=events) == 1
    for alert in Alert.objects.all():
        assert AuditRecord.objects.filter(object_type="alert", object_id=str(alert.pk)).count() == 1
    assert not AuditRecord.objects.filter(action="alert.raised").exists()


def wash_sighting(*orders: str, end_s: int, score: float, episode: str) -> dict:
    """A wash-trade alert of accounts 1 and 2 (one owner) on EURUSD, as the engine raises it, from
    10:00:00 to ``end_s`` seconds later: its episode id ties the sightings of one episode."""
    return {
        "alert_type": "wash_trade",
        "account": "1,2",
        "owner": "OWNER-1",
        "symbol": "EURUSD",
        "order_ids": list(orders),
        "score": score,
        "start": "2026-01-05T10:00:00Z",
        "end": f"2026-01-05T10:00:{end_s:02d}Z",
        "evidence": {"episode": {"id": episode}},
    }


@pytest.mark.django_db
def test_an_episode_that_grows_publishes_alert_extended_with_its_extension_records_id():
    """The engine raises an open episode again as it grows (``episodes="updates"``): the row is
    extended (audited ``alert.extended``) and published with that record's id, the case's step
    ``alert_extended``."""
    from compliance.services import alerts_record_published

    def record(end_s: int, *orders: str, cause: str) -> None:
        at = T0 + timedelta(seconds=end_s)
        alerts_record_published(
            sightings=[(at, [wash_sighting(*orders, end_s=end_s, score=0.5 + end_s / 100, episode="ep-1")])],
            source="surveillance-stream",
            event_source="surveillance",
            cause=cause,
        )

    record(10, "a1", "b1", cause="e1")
    _mark_sent()
    record(20, "a1", "b1", "a2", "b2", cause="e2")
    events = _unsent()
    assert [e.type for e in events] == ["alert.raised", "case.changed"]
    assert events[1].payload.action == "alert_extended"
    alert = Alert.objects.get()
    extended = AuditRecord.objects.get(action="alert.extended", object_id=str(alert.pk))
    assert events[0].event_id == extended.event_id
    assert audit_append_events(events=events) == 1
    assert AuditRecord.objects.filter(object_type="alert").count() == 2  # recorded, extended: one each


@pytest.mark.django_db
def test_two_events_at_one_instant_extending_one_case_publish_two_steps():
    """Two input events at the same event time that each extend the case: the ``case.changed``
    ids differ by their cause (the input event), so both are published (no duplicate outbox id)."""
    from compliance.services import alerts_record_published

    at = T0 + timedelta(seconds=10)
    for cause, orders, score in (("e0", ("a1",), 0.5), ("e1", ("a1", "b1"), 0.6), ("e2", ("a1", "b1", "c1"), 0.7)):
        alerts_record_published(
            sightings=[(at, [wash_sighting(*orders, end_s=10, score=score, episode="ep-2")])],
            source="surveillance-stream",
            cause=cause,
        )
    steps = [e for e in _unsent() if e.type == "case.changed"]
    assert [s.payload.action for s in steps] == ["opened", "alert_extended", "alert_extended"]
    assert len({s.event_id for s in steps}) == 3


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not settings.REDIS_URL, reason="needs Redis (REDIS_URL)")
def test_an_officers_open_queue_receives_the_live_stages_alert_and_case():
    """The desk's consumer (``/ws/live/``) pushes the stage's alert and the case it opened to an
    officer's open screen (until 2026-12-06 the case page and open case list did not move: the
    stage published no ``case.changed``); a trader's screen gets neither."""
    from channels.db import database_sync_to_async

    from tests.screens.world import live_connect, live_received, pump_live, world_build

    world = world_build()
    pump_live()

    def surveil() -> None:
        consumer = _consumer("OWNER-Z")  # an owner the screens' world has no open case for
        for event in _wash_events():
            consumer.handle(event)

    async def scenario():
        trader = await live_connect(world.users["trader"])
        officer = await live_connect(world.users["officer"])
        await database_sync_to_async(surveil)()
        assert await database_sync_to_async(pump_live)() == 2
        got = await live_received(officer, 2)
        by_type = {e["type"]: e["payload"] for e in got}
        assert set(by_type) == {"alert.raised", "case.changed"}
        assert by_type["alert.raised"]["alert_type"] == "wash_trade"
        case = await database_sync_to_async(Case.objects.get)(subject_owner="OWNER-Z")
        assert by_type["case.changed"]["reference"] == case.reference and by_type["case.changed"]["action"] == "opened"
        assert await trader.receive_nothing(timeout=0.5)
        await trader.disconnect()
        await officer.disconnect()

    async_to_sync(scenario)()
