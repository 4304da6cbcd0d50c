"""Alerts and case steps keep two times: event time (a replay's market time) and record time (the
wall clock), and a live screen catches up by record time, so a replay's alerts are not missed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from compliance import services
from compliance.desk.selectors import live_catch_up
from compliance.models import Alert, CaseAction
from tests.compliance.helpers import alert_dict
from tradeops.core.clock import utcnow

MARKET = datetime(2017, 7, 21, 8, 0, tzinfo=UTC)


def _alert(**over):
    window = {"start": "2017-07-21T07:59:50.000000Z", "end": "2017-07-21T07:59:55.000000Z"}
    return alert_dict(**(window | over))


def test_an_alert_raised_at_market_time_is_recorded_at_the_wall_clock(db):
    before = utcnow()
    (alert,) = services.alerts_record(alerts=[_alert()], at=MARKET)
    alert.refresh_from_db()
    assert alert.first_seen == alert.last_seen == MARKET
    assert before <= alert.recorded_at <= utcnow()
    assert alert.updated_at == alert.recorded_at
    step = CaseAction.objects.get(case=alert.case, action="alert_added")
    assert step.at == MARKET and before <= step.recorded_at <= utcnow()


def test_extending_an_alert_moves_its_event_time_and_its_record_time(db):
    (alert,) = services.alerts_record(alerts=[_alert()], at=MARKET)
    later = MARKET + timedelta(seconds=30)
    services.alerts_record(alerts=[_alert(order_ids=["o1", "o2", "o3"], end="2017-07-21T08:00:20.000000Z")], at=later)
    row = Alert.objects.get(pk=alert.pk)
    assert row.occurrences == 2 and row.first_seen == MARKET and row.last_seen == later
    assert row.updated_at >= row.recorded_at > MARKET + timedelta(days=365)


def test_a_screen_opened_during_a_replay_catches_up_on_its_alerts(db, alice):
    page_rendered = utcnow()
    services.alerts_record(alerts=[_alert()], at=MARKET)
    caught = live_catch_up(user=alice, since=page_rendered)
    raised = [e for e in caught if e["type"] == "alert.raised"]
    assert len(raised) == 1
    assert raised[0]["occurred_at"].startswith("2017-07-21T07:59:55")  # shown in event time
    assert any(e["type"] == "case.changed" for e in caught)
    # and nothing recorded before the page was rendered is sent again
    assert live_catch_up(user=alice, since=utcnow() + timedelta(minutes=1)) == []
