"""The object id the audit trail files an ``alert.raised`` under (``tradeops.audit.objects``): a
market-data alert's is its flag, symbol and first finding's event time (until 2026-12-06 it ended
in an empty part, ``market_data.spike:EURUSD:``, the account a feed does not have), both ways
the audit-trail stage records an event agree, and the audit search finds the old records beside
the new ones without rewriting them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tradeops.audit.objects import alert_object_id, alert_object_id_searched
from tradeops.audit.services import _prepare_events, event_entry
from tradeops.events import Alert, Tick, make_event
from trading.marketdata.monitor import MarketMonitor, MonitorConfig

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday


def _tick(bid: int, seconds: float, symbol: str = "EURUSD"):
    payload = Tick(
        symbol=symbol,
        bid=Decimal(bid) / 100_000,
        ask=Decimal(bid + 10) / 100_000,
        ts=T0 + timedelta(seconds=seconds),
    )
    return make_event(payload, source="test", key=symbol)


def _spike_alert(symbol: str = "EURUSD", *, at: float = 200):
    """The real monitor's spike alert: 200 quiet ticks, then 30 pips in one."""
    monitor = MarketMonitor(MonitorConfig(spike_sigma=6))
    bid = 108_500
    for i in range(200):
        bid += (-1, 1)[i % 2]
        monitor.handle(_tick(bid, at - 200 + i, symbol))
    out = monitor.handle(_tick(bid + 300, at, symbol))
    [alert] = [e for e in out if e.type == "alert.raised"]
    return alert


def _both_ways(event) -> tuple[str, str]:
    prepared, _ = _prepare_events([event])
    return event_entry(event).object_id, prepared[0][7]


def test_a_market_data_alert_is_filed_under_its_flag_symbol_and_first_finding_time():
    alert = _spike_alert()
    assert alert.payload.account == ""  # a feed raised it: why the old id's last part was empty
    first = T0 + timedelta(seconds=200)
    assert _both_ways(alert) == ("market_data.spike:EURUSD:2026-03-02T10:03:20.000000Z",) * 2
    assert alert.payload.start == first
    # stable: the same alert gives the same id; another finding's alert another
    assert _both_ways(_spike_alert())[0] == _both_ways(alert)[0]
    assert _both_ways(_spike_alert(at=4000))[0] == "market_data.spike:EURUSD:2026-03-02T11:06:40.000000Z"


def test_a_collector_outage_of_several_symbols_is_filed_under_its_broker():
    from workers.collector import outage_alert

    event = outage_alert(None, broker="paper-eu", symbols=["EURUSD", "GBPUSD"], at=T0)
    assert _both_ways(event) == ("market_data.feed_restored:paper-eu:2026-03-02T10:00:00.000000Z",) * 2


def test_other_alerts_keep_their_id():
    spoof = make_event(Alert(alert_type="spoofing", symbol="EURUSD", account="7", ts=T0), source="s", key="7")
    assert _both_ways(spoof) == ("spoofing:EURUSD:7", "spoofing:EURUSD:7")
    assert alert_object_id(spoof.payload) == "spoofing:EURUSD:7"


SPIKE_OLD = ("market_data.spike:EURUSD:", "market_data.spike::")
ANOMALY_OLD = ("anomaly.latency:operations:", "anomaly.latency::")


@pytest.mark.parametrize(
    ("object_type", "object_id", "searched"),
    [
        ("alert", "market_data.spike:EURUSD:2026-03-02T10:03:20.000000Z", (SPIKE_OLD, "")),
        ("", "market_data.spike:EURUSD:2026-03-02T10:03:20.000000Z", (SPIKE_OLD, "")),
        ("alert", "market_data.spike:EURUSD:", ((), "market_data.spike:EURUSD:")),  # the old form
        ("alert", "market_data.spike:EURUSD", ((), "market_data.spike:EURUSD:")),
        ("alert", "market_data.spike", ((), "")),
        ("alert", "spoofing:EURUSD:7", ((), "")),
        ("order", "market_data.spike:EURUSD:", ((), "")),
        # alerts with no account other than the market data's (since wip/live50)
        ("alert", "anomaly.latency:operations:2026-03-02T10:00:00.000000Z", (ANOMALY_OLD, "")),
        ("alert", "anomaly.latency::", ((), "anomaly.latency:")),  # the old form: subject and last part empty
        ("alert", "anomaly.latency:operations", ((), "anomaly.latency:operations:")),
        ("alert", "model_drift:EURUSD:2026-03-02T10:00:00.000000Z", (("model_drift:EURUSD:", "model_drift::"), "")),
        ("alert", "model_drift:EURUSD:", ((), "model_drift:EURUSD:")),
        ("alert", "model_drift:EURUSD", ((), "")),  # not an operator alert: its type and symbol are no id
        ("", "EURUSD:2026-03-02T10:00:00.000000Z", ((), "")),  # a feature vector's id
        ("", "12:EURUSD", ((), "")),  # a position's
    ],
)
def test_what_a_search_by_object_id_also_matches(object_type, object_id, searched):
    assert alert_object_id_searched(object_type, object_id) == searched


@pytest.mark.django_db
def test_the_audit_search_finds_an_alerts_old_and_new_records_and_no_other_symbols(postgres):
    from tradeops.audit.models import AuditRecord
    from tradeops.audit.search import AuditQuery, audit_search
    from tradeops.audit.services import audit_append, audit_append_events

    # what the audit-trail stage wrote before 2026-12-06, left as it was
    old = audit_append(
        action="alert.raised",
        object_type="alert",
        object_id="market_data.spike:EURUSD:",
        occurred_at=T0,
        payload={"data": {"alert_type": "market_data.spike", "symbol": "EURUSD"}},
        actor="service:market-monitor",
        category="compliance",
    )
    new, other = _spike_alert(), _spike_alert("GBPUSD")
    assert audit_append_events(events=[new, other]) == 2
    new_id = AuditRecord.objects.get(event_id=new.event_id).object_id
    assert new_id == "market_data.spike:EURUSD:2026-03-02T10:03:20.000000Z"

    def found(**query) -> set[str]:
        return {r.object_id for r in audit_search(AuditQuery(**query)).records}

    both = {"market_data.spike:EURUSD:", new_id}
    assert found(object_type="alert", object_id=new_id) == both
    assert found(object_type="alert", object_id="market_data.spike:EURUSD:") == both
    assert found(object_id="market_data.spike:EURUSD") == both
    assert found(text="market_data.spike EURUSD") == both
    assert AuditRecord.objects.get(sequence=old.sequence).object_id == "market_data.spike:EURUSD:"  # untouched


def test_the_elasticsearch_request_matches_the_old_records_too():
    from tradeops.audit.search import AuditQuery
    from tradeops.audit.search_es import build_search

    one = build_search(AuditQuery(object_type="alert", object_id="market_data.gap:EURUSD:2026-03-02T10:00:00.000000Z"))
    ids = ["market_data.gap:EURUSD:2026-03-02T10:00:00.000000Z", "market_data.gap:EURUSD:", "market_data.gap::"]
    assert {"terms": {"object_id": ids}} in (one.to_dict()["query"]["bool"]["filter"])
    series = build_search(AuditQuery(object_type="alert", object_id="market_data.gap:EURUSD")).to_dict()
    assert "'prefix': {'object_id': 'market_data.gap:EURUSD:'}" in str(series)


def _anomaly_alert(at: datetime):
    """The anomaly detector's operator alert, as ``tradeops.observability.anomaly.alert_raise``
    puts it on the outbox: no symbol, no account."""
    payload = Alert(alert_type="anomaly.latency", severity="high", owner="operations", end=at, ts=at)
    return make_event(payload, source="anomaly-detector", key="anomaly.latency")


def test_alerts_with_no_account_are_filed_under_their_subject_and_first_finding_time():
    """Until wip/live50 an anomaly was ``anomaly.latency::`` and a model's drift
    ``model_drift:EURUSD:``: their last part empty, one object for every alert of them."""
    anomaly = _anomaly_alert(T0)
    assert _both_ways(anomaly) == ("anomaly.latency:operations:2026-03-02T10:00:00.000000Z",) * 2
    assert _both_ways(_anomaly_alert(T0))[0] == _both_ways(anomaly)[0]  # stable
    assert _both_ways(_anomaly_alert(T0 + timedelta(minutes=5)))[0] != _both_ways(anomaly)[0]
    drift = make_event(Alert(alert_type="model_drift", symbol="EURUSD", start=T0, ts=T0), source="ml", key="EURUSD")
    assert _both_ways(drift) == ("model_drift:EURUSD:2026-03-02T10:00:00.000000Z",) * 2
    # a surveillance alert of a history without accounts (the stage not recording returns it as is)
    owner_only = Alert(alert_type="wash_trade", symbol="EURUSD", owner="X", start=T0, ts=T0 + timedelta(seconds=4))
    assert (
        _both_ways(make_event(owner_only, source="surveillance", key="EURUSD"))
        == ("wash_trade:EURUSD:2026-03-02T10:00:00.000000Z",) * 2
    )
    for event in (anomaly, drift):
        assert not _both_ways(event)[0].endswith(":")


@pytest.mark.django_db
def test_the_audit_search_finds_an_anomalys_old_and_new_records(postgres):
    from tradeops.audit.models import AuditRecord
    from tradeops.audit.search import AuditQuery, audit_search
    from tradeops.audit.services import audit_append, audit_append_events

    old = audit_append(
        action="alert.raised",
        object_type="alert",
        object_id="anomaly.latency::",
        occurred_at=T0,
        payload={"data": {"alert_type": "anomaly.latency"}},
        actor="service:anomaly-detector",
        category="compliance",
    )
    new, later = _anomaly_alert(T0 + timedelta(hours=1)), _anomaly_alert(T0 + timedelta(hours=2))
    assert audit_append_events(events=[new, later]) == 2
    new_id = AuditRecord.objects.get(event_id=new.event_id).object_id
    later_id = AuditRecord.objects.get(event_id=later.event_id).object_id

    def found(**query) -> set[str]:
        return {r.object_id for r in audit_search(AuditQuery(**query)).records}

    assert found(object_type="alert", object_id=new_id) == {"anomaly.latency::", new_id}
    assert found(object_type="alert", object_id="anomaly.latency::") == {"anomaly.latency::", new_id, later_id}
    assert AuditRecord.objects.get(sequence=old.sequence).object_id == "anomaly.latency::"  # untouched
