"""The console's operator alerts (trading/console/alerts.py): which audit records are listed,
their bounds and order, event time beside record time; the panel per role; the home tile."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from tests.screens.world import world_build
from tradeops.audit.services import audit_append_events
from tradeops.core.clock import utcnow
from tradeops.core.operator_alerts import alert_is_operator, operator_alert_explanation
from tradeops.events import Alert, make_event
from trading.console.alerts import operator_alerts_high_count, operator_alerts_recent
from trading.console.selectors import attention_for, live_catch_up

pytestmark = pytest.mark.django_db

REPLAYED = datetime(2017, 3, 1, 9, 30, 0, 250000, tzinfo=UTC)  # a replay's market time


def _raise(alert_type: str, *, severity: str = "high", ts=REPLAYED, source="execution", **fields):
    event = make_event(Alert(alert_type=alert_type, severity=severity, ts=ts, **fields), source=source, key=alert_type)
    assert audit_append_events(events=[event]) == 1
    return event


def test_the_operator_alert_types_are_an_allow_list():
    for kind in ("reconciliation_position_mismatch", "trading_breaker_open", "model_drift", "model_drift_cleared"):
        assert alert_is_operator(kind)
    assert alert_is_operator("market_data.spike") and alert_is_operator("anomaly.consumer_lag")
    for kind in ("spoofing", "wash_trade", "layering", "", "market_data", "anomalyx"):
        assert not alert_is_operator(kind)


def test_recent_operator_alerts_newest_recorded_first_with_both_times_and_without_surveillance():
    _raise("reconciliation_position_mismatch", account="7", evidence={"EURUSD": {"ours": "1.0", "broker": "0"}})
    _raise("spoofing", account="7", symbol="EURUSD", source="surveillance")  # the desk's, never here
    _raise(
        "anomaly.consumer_lag",
        source="anomaly-detector",
        evidence={"explanation": "The largest consumer lag is 40 times its usual"},
    )
    _raise("model_drift", severity="high", symbol="EURUSD", source="ml", evidence={"action": "signals withheld"})
    rows = operator_alerts_recent()
    assert [r.alert_type for r in rows] == ["model_drift", "anomaly.consumer_lag", "reconciliation_position_mismatch"]
    assert [r.sequence for r in rows] == sorted((r.sequence for r in rows), reverse=True)
    mismatch = rows[-1]
    assert mismatch.occurred_at == REPLAYED  # event time: the replayed market time
    assert utcnow() - mismatch.recorded_at < timedelta(minutes=1)  # recorded: the wall clock
    assert mismatch.explanation == "Positions differ from the broker: EURUSD ours 1.0 broker 0"
    assert mismatch.subject == "account 7 · execution"
    assert rows[1].explanation == "The largest consumer lag is 40 times its usual"
    assert rows[0].subject == "EURUSD · ml" and rows[0].explanation.startswith("signals withheld")


def test_the_panel_is_bounded_by_record_time_and_count():
    for _ in range(3):
        _raise("market_data.spike", symbol="EURUSD", source="collector", evidence={"reason": "a jump"})
    assert len(operator_alerts_recent(limit=2)) == 2
    assert len(operator_alerts_recent()) == 3
    assert operator_alerts_recent(now=utcnow() + timedelta(hours=25)) == []  # older than 24 h: gone
    assert len(operator_alerts_recent(now=utcnow() + timedelta(hours=23))) == 3


def test_the_high_count_takes_high_and_critical_of_the_last_hour():
    _raise("market_data.feed_down", severity="high", source="collector", evidence={"error": "no route"})
    _raise("market_data.gap", severity="critical", symbol="EURUSD", source="collector")
    _raise("market_data.feed_restored", severity="low", source="collector")
    _raise("spoofing", severity="critical", source="surveillance")
    assert operator_alerts_high_count() == 2
    assert operator_alerts_high_count(now=utcnow() + timedelta(hours=2)) == 0


def test_the_explanation_falls_back_on_the_flag():
    assert operator_alert_explanation("market_data.stale_feed", {"flag": "stale_feed"}) == "stale feed"
    assert operator_alert_explanation("trading_breaker_open", {"reason": "loss_threshold"}) == "loss_threshold"
    assert operator_alert_explanation("anomaly.x", None) == ""


# ---------------------------------------------------------------- the screens


@pytest.fixture
def world(db):
    return world_build()


def _get(user, url="/console/"):
    client = Client()
    client.force_login(user)
    return client.get(url)


def test_the_panel_shows_operator_alerts_to_every_console_role_and_the_403s_stay(world):
    _raise("trading_breaker_open", evidence={"reason": "loss_threshold 2.5 %"})
    _raise("spoofing", account="7000001", source="surveillance", evidence={"reason": "layered orders"})
    for role in ("trader", "risk", "officer", "auditor", "admin"):
        page = _get(world.users[role])
        assert page.status_code == 200, role
        html = page.content.decode()
        assert 'id="operator-alerts"' in html and "trading_breaker_open" in html, role
        assert "loss_threshold 2.5 %" in html and "the last 24 h, newest 50 at most" in html
        assert "layered orders" not in html, role  # surveillance's alert is never on the console
        fragment = _get(world.users[role], "/console/?fragment=alerts").content.decode()
        assert "trading_breaker_open" in fragment and "<html" not in fragment
    assert _get(world.users["nobody"]).status_code == 403
    assert _get(world.users["nobody"], "/console/?fragment=alerts").status_code == 403


def test_the_home_tile_counts_high_operator_alerts_for_risk_managers(world):
    _raise("reconciliation_position_mismatch", account="7", evidence={"EURUSD": {"ours": "1", "broker": "0"}})
    _raise("market_data.feed_restored", severity="low", source="collector")
    tiles = {i.title: i for i in attention_for(world.users["risk"])}
    tile = tiles["Operator alerts of high severity in the last hour"]
    assert tile.count == 1 and tile.url == "/console/#operator-alerts" and tile.level == "urgent"
    assert "Operator alerts of high severity in the last hour" not in {
        i.title for i in attention_for(world.users["trader"])
    }
    home = _get(world.users["risk"], "/").content.decode()
    assert "Operator alerts of high severity in the last hour" in home and "/console/#operator-alerts" in home


def test_a_trading_screens_catch_up_has_operator_alerts_and_never_surveillances(world):
    since = utcnow() - timedelta(seconds=1)
    _raise("model_drift", symbol="EURUSD", source="ml", evidence={"action": "signals withheld"})
    _raise("spoofing", account="7000001", source="surveillance")
    events = [e for e in live_catch_up(user=world.users["trader"], since=since) if e["type"] == "alert.raised"]
    assert [e["payload"]["alert_type"] for e in events] == ["model_drift"]
    assert events[0]["occurred_at"] == REPLAYED.isoformat()
