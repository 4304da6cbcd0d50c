"""The console's operator alerts (trading/console/alerts.py): which audit records are listed,
their bounds and order, event time beside record time; the panel per role; the home tile."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from tests.screens.world import world_build
from tradeops.audit.services import audit_append_events
from tradeops.core.clock import utcnow
from tradeops.core.operator_alerts import alert_is_operator, market_data_sentence, operator_alert_explanation
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
    assert operator_alert_explanation("market_data.gap", {"flag": "gap", "reason": "odd words"}) == "odd words"
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


def test_the_home_tile_counts_high_operator_alerts_for_risk_managers_and_traders(world):
    """Traders act on the same alerts (a breaker, a reconciliation mismatch stops their trading):
    the tile is theirs too (2026-12-06); compliance and auditors read the console's panel."""
    _raise("reconciliation_position_mismatch", account="7", evidence={"EURUSD": {"ours": "1", "broker": "0"}})
    _raise("market_data.feed_restored", severity="low", source="collector")
    for role in ("risk", "trader"):
        tiles = {i.title: i for i in attention_for(world.users[role])}
        tile = tiles["Operator alerts of high severity in the last hour"]
        assert tile.count == 1 and tile.url == "/console/#operator-alerts" and tile.level == "urgent", role
        home = _get(world.users[role], "/").content.decode()
        assert "Operator alerts of high severity in the last hour" in home and "/console/#operator-alerts" in home
    for role in ("officer", "auditor"):
        assert "Operator alerts of high severity in the last hour" not in {
            i.title for i in attention_for(world.users[role])
        }, role


def test_a_trading_screens_catch_up_has_operator_alerts_and_never_surveillances(world):
    since = utcnow() - timedelta(seconds=1)
    _raise("model_drift", symbol="EURUSD", source="ml", evidence={"action": "signals withheld"})
    _raise("spoofing", account="7000001", source="surveillance")
    events = [e for e in live_catch_up(user=world.users["trader"], since=since) if e["type"] == "alert.raised"]
    assert [e["payload"]["alert_type"] for e in events] == ["model_drift"]
    assert events[0]["occurred_at"] == REPLAYED.isoformat()


GAP = {
    "flag": "gap",
    "reason": "3600s of session time without data since 2017-03-02T09:00:00+00:00",
    "action": "published_with_flag",
    "event_type": "bar",
    "source_ts": "2017-03-02T11:00:00+00:00",
    "timeframe": "H1",
    "similar_since_last_alert": 0,
    "cooldown_seconds": 3600.0,
}


@pytest.mark.parametrize(
    "alert_type, evidence, sentence",
    [
        (
            "market_data.gap",
            GAP,
            "No EURUSD data for 1 h of session time since 2017-03-02 09:00:00 UTC: gap before the H1 bar at "
            "2017-03-02 11:00:00 UTC; published with the flag.",
        ),
        (
            "market_data.gap",
            {**GAP, "reason": "5415s of session time without data since 2017-03-02T09:00:00+00:00"},
            "No EURUSD data for 1 h 30 min of session time since 2017-03-02 09:00:00 UTC: gap before the H1 bar "
            "at 2017-03-02 11:00:00 UTC; published with the flag.",
        ),
        (
            "market_data.spike",
            {
                **GAP,
                "flag": "spike",
                "reason": "close moved +35.2 bp, 6.1 sigma (limit 5.0)",
                "similar_since_last_alert": 3,
            },
            "EURUSD close moved +35.2 bp on the H1 bar at 2017-03-02 11:00:00 UTC, 6.1 sigma of its recent moves "
            "(limit 5.0 sigma); published with the flag. 3 more like it since the last alert (one alert per 1 h).",
        ),
        (
            "market_data.crossed",
            {
                "flag": "crossed",
                "reason": "bid 1.2 above ask 1.1",
                "action": "quarantined",
                "event_type": "tick",
                "source_ts": "2017-03-02T11:00:00.250000+00:00",
            },
            "EURUSD tick at 2017-03-02 11:00:00.250 UTC crossed: bid 1.2 above ask 1.1; quarantined (kept aside, "
            "not published).",
        ),
        (
            "market_data.out_of_order",
            {
                "flag": "out_of_order",
                "reason": "2017-03-02T10:00:00+00:00 is before the previous 2017-03-02T11:00:00+00:00",
                "action": "quarantined",
                "event_type": "tick",
                "source_ts": "2017-03-02T10:00:00+00:00",
            },
            "EURUSD tick at 2017-03-02 10:00:00 UTC out of order: 2017-03-02 10:00:00 UTC is before the previous "
            "2017-03-02 11:00:00 UTC; quarantined (kept aside, not published).",
        ),
        (
            "market_data.stale",
            {
                "flag": "stale",
                "reason": "received 2.345s after its source time",
                "action": "published_with_flag",
                "event_type": "tick",
                "source_ts": "2017-03-02T11:00:00+00:00",
            },
            "EURUSD tick at 2017-03-02 11:00:00 UTC received 2.345 s after its source time; published with the flag.",
        ),
        (
            "market_data.stale_feed",
            {
                "flag": "stale_feed",
                "feed": "H1",
                "reason": "no H1 data for 7200s while other feeds reached 2017-03-02T13:00:00+00:00",
                "last_seen": "2017-03-02T11:00:00+00:00",
            },
            "No EURUSD H1 data for 2 h while other feeds reached 2017-03-02 13:00:00 UTC (last at 2017-03-02 "
            "11:00:00 UTC).",
        ),
        (
            "market_data.feed_down",
            {"broker": "mt5", "symbols": ["EURUSD"], "error": "terminal gone", "code": "x"},
            "Market data from mt5 stopped for EURUSD: terminal gone.",
        ),
    ],
)
def test_market_data_alerts_read_as_sentences_with_units_and_utc_times(alert_type, evidence, sentence):
    """Records of before 2026-12-06: their figures are in the monitor's words alone (the regex
    fallback: ``_GAP``, ``_SPIKE``, ``_STALE``, ``_STALE_FEED``, ``_ISO``); the audit trail keeps
    them as they were, so they must read as they always have."""
    assert operator_alert_explanation(alert_type, evidence, symbol="EURUSD") == sentence


REWORDED = "words a later monitor chose"  # the figures are read from the fields, never from these

TICK = {
    "reason": REWORDED,
    "action": "published_with_flag",
    "event_type": "market.tick",
    "source_ts": "2017-03-02T11:00:00+00:00",
    "bid": "1.10000",
    "ask": "1.10002",
    "similar_since_last_alert": 0,
    "cooldown_seconds": 3600.0,
}


@pytest.mark.parametrize(
    "flag, evidence, sentence",
    [
        (
            "gap",
            {
                **GAP,
                "reason": REWORDED,
                "gap_seconds": 5415.2,
                "gap_limit_seconds": 5400.0,
                "since": "2017-03-02T09:00:00+00:00",
            },
            "No EURUSD data for 1 h 30 min of session time since 2017-03-02 09:00:00 UTC: gap before the H1 bar "
            "at 2017-03-02 11:00:00 UTC; published with the flag.",
        ),
        (
            "spike",
            {
                **TICK,
                "price": "mid",
                "move_bp": 35.2149,
                "sigma": 6.0833,
                "sigma_limit": 5.0,
                "similar_since_last_alert": 3,
            },
            "EURUSD mid moved +35.2 bp on the tick at 2017-03-02 11:00:00 UTC, 6.1 sigma of its recent moves "
            "(limit 5.0 sigma); published with the flag. 3 more like it since the last alert (one alert per 1 h).",
        ),
        (
            "spike",
            {**GAP, "reason": "", "price": "close", "move_bp": -12.04, "sigma": 9.96, "sigma_limit": 8},
            "EURUSD close moved -12.0 bp on the H1 bar at 2017-03-02 11:00:00 UTC, 10.0 sigma of its recent moves "
            "(limit 8.0 sigma); published with the flag.",
        ),
        (
            "stale",
            {
                **TICK,
                "delay_seconds": 2.345,
                "delay_limit_seconds": 0.5,
                "known_at": "2017-03-02T11:00:00+00:00",
                "received_at": "2017-03-02T11:00:02.345000+00:00",
            },
            "EURUSD tick at 2017-03-02 11:00:00 UTC received 2.345 s after its source time; published with the flag.",
        ),
        (
            "stale_feed",
            {
                "flag": "stale_feed",
                "feed": "H1",
                "reason": REWORDED,
                "silent_seconds": 7230.5,
                "silent_limit_seconds": 7200.0,
                "last_seen": "2017-03-02T11:00:00+00:00",
                "newest": "2017-03-02T13:00:30.500000+00:00",
            },
            "No EURUSD H1 data for 2 h while other feeds reached 2017-03-02 13:00:30.500 UTC (last at 2017-03-02 "
            "11:00:00 UTC).",
        ),
        (
            "out_of_order",
            {
                **TICK,
                "action": "quarantined",
                "source_ts": "2017-03-02T10:00:00+00:00",
                "previous_ts": "2017-03-02T11:00:00+00:00",
                "behind_seconds": 3600.0,
            },
            "EURUSD tick at 2017-03-02 10:00:00 UTC out of order: 2017-03-02 10:00:00 UTC is before the previous "
            "2017-03-02 11:00:00 UTC; quarantined (kept aside, not published).",
        ),
        (
            "crossed",
            {**TICK, "action": "quarantined", "bid": "1.2", "ask": "1.1"},
            "EURUSD tick at 2017-03-02 11:00:00 UTC crossed: bid 1.2 above ask 1.1; quarantined (kept aside, "
            "not published).",
        ),
        (
            "crossed",
            {**GAP, "reason": REWORDED, "action": "quarantined", "high": "1.0", "low": "1.2"},
            "EURUSD H1 bar at 2017-03-02 11:00:00 UTC crossed: high 1.0 below low 1.2; quarantined (kept aside, "
            "not published).",
        ),
        (
            "locked",
            TICK,
            "EURUSD tick at 2017-03-02 11:00:00 UTC locked: bid equals ask at 1.10000; published with the flag.",
        ),
        (
            "duplicate",
            {**GAP, "reason": REWORDED, "action": "quarantined"},
            "EURUSD H1 bar at 2017-03-02 11:00:00 UTC duplicate: a second H1 bar opening at 2017-03-02 11:00:00 "
            "UTC; quarantined (kept aside, not published).",
        ),
        (
            "feed_restored",
            {"broker": "mt5", "symbols": ["EURUSD", "GBPUSD"], "error": "", "code": ""},
            "Market data from mt5 flows again for EURUSD, GBPUSD.",
        ),
    ],
)
def test_market_data_alerts_read_their_figures_from_fields_whatever_the_words(flag, evidence, sentence):
    """Alerts raised since 2026-12-06 carry their figures as fields: the sentence reads those, so
    rewording the monitor's ``reason`` no longer turns it off (it returned "" and the raw words
    showed)."""
    assert operator_alert_explanation(f"market_data.{flag}", evidence, symbol="EURUSD") == sentence


def test_without_a_symbol_the_sentence_still_reads():
    """An alert that names no symbol (a feed-wide finding) reads "No data ..." and "The instrument
    ...", not "No the instrument data ..." or a sentence that starts in lower case."""
    gap = {**GAP, "gap_seconds": 3600.0, "since": "2017-03-02T09:00:00+00:00"}
    assert market_data_sentence("gap", gap).startswith("No data for 1 h of session time since 2017-03-02 09:00:00 UTC")
    stale_feed = {"flag": "stale_feed", "feed": "H1", "silent_seconds": 7230.5, "newest": "2017-03-02T13:00:30+00:00"}
    assert market_data_sentence("stale_feed", stale_feed).startswith("No H1 data for 2 h while other feeds")
    assert market_data_sentence("locked", TICK).startswith("The instrument tick at 2017-03-02 11:00:00 UTC locked")


def test_a_field_that_is_not_a_figure_falls_back_on_the_words_then_on_nothing():
    """A malformed field is not read (a string of seconds, a bool, an infinity, a time that is not
    one): the words of the time are, for a record of before; with neither, no sentence."""
    old = GAP["reason"]
    for bad in ({"gap_seconds": "3600"}, {"gap_seconds": True}, {"gap_seconds": float("inf")}, {"since": "soon"}):
        evidence = {**GAP, "gap_seconds": 3600.0, "since": "2017-03-02T09:00:00+00:00", **bad}
        assert operator_alert_explanation("market_data.gap", evidence, symbol="EURUSD").startswith(
            "No EURUSD data for 1 h of session time"
        ), bad
        assert market_data_sentence("gap", {**evidence, "reason": REWORDED}) == "", bad
    assert old == GAP["reason"]


def test_every_market_data_alert_the_monitor_raises_reads_as_a_sentence():
    """The monitor's own alerts (not hand-written evidence): a gap, a spike and a quarantine."""
    from decimal import Decimal

    from tradeops.events import Tick
    from trading.marketdata.monitor import MarketMonitor, MonitorConfig

    monitor = MarketMonitor(MonitorConfig(max_gap=timedelta(minutes=5), spike_sigma=4.0))
    t = datetime(2017, 3, 1, 10, 0, tzinfo=UTC)
    alerts = []
    mid = Decimal("1.10000")
    for i in range(40):
        mid += Decimal("0.00001") * (1 if i % 2 else -1)
        tick = Tick(symbol="EURUSD", bid=mid, ask=mid + Decimal("0.00002"), ts=t + timedelta(seconds=i))
        alerts += monitor.inspect(make_event(tick, source="t", key="EURUSD")).alerts
    late = t + timedelta(minutes=30)  # a gap, and a jump: a spike
    for tick in (
        Tick(symbol="EURUSD", bid=Decimal("1.12000"), ask=Decimal("1.12002"), ts=late),
        Tick(symbol="EURUSD", bid=Decimal("1.12003"), ask=Decimal("1.12001"), ts=late + timedelta(seconds=1)),
    ):
        alerts += monitor.inspect(make_event(tick, source="t", key="EURUSD")).alerts
    by_type = {a.payload.alert_type: a.payload for a in alerts}
    assert {"market_data.gap", "market_data.spike", "market_data.crossed"} <= set(by_type)
    for alert in by_type.values():
        text = operator_alert_explanation(alert.alert_type, alert.evidence, symbol=alert.symbol)
        assert text.startswith(("EURUSD", "No EURUSD")) and text.endswith(".") and "UTC" in text, text
        assert "T1" not in text and "+00:00" not in text, text  # no raw ISO time
        flag = alert.alert_type.removeprefix("market_data.")
        reworded = {**alert.evidence, "reason": REWORDED}  # the monitor's words changed: the same sentence
        assert market_data_sentence(flag, reworded, symbol=alert.symbol) == text, flag
    crossed = by_type["market_data.crossed"]  # its event_type is the payload's TYPE, market.tick: a tick
    assert operator_alert_explanation(crossed.alert_type, crossed.evidence, symbol="EURUSD").startswith(
        "EURUSD tick at 2017-03-01 10:30:01 UTC crossed: bid 1.12003 above ask 1.12001"
    )


def test_every_flag_the_monitor_and_collector_raise_reads_from_its_fields_whatever_its_words():
    """The monitor's and the collector's real alerts, one of every flag: the sentence is the
    same with the monitor's words replaced (the figures come from the fields) and with no words
    at all; the monitor can reword ``reason`` without turning a sentence off."""
    from tests.trading.marketdata.alerts import every_market_data_alert

    for alert in every_market_data_alert():
        flag = alert.alert_type.removeprefix("market_data.")
        sentence = market_data_sentence(flag, alert.evidence, symbol=alert.symbol)
        assert sentence.endswith(".") and "+00:00" not in sentence, (flag, sentence)
        for words in (REWORDED, ""):
            assert market_data_sentence(flag, {**alert.evidence, "reason": words}, symbol=alert.symbol) == sentence


def test_a_throttled_gap_alert_reads_how_many_gaps_it_stands_for_since_when_and_the_longest():
    """'... and 12 more gaps since 09:00, the longest 6 h': what the throttle suppressed reaches
    the desk in the sentence, not only the count."""
    evidence = {
        "flag": "gap",
        "event_type": "market.tick",
        "source_ts": "2017-03-02T15:00:00+00:00",
        "action": "published_with_flag",
        "gap_seconds": 900.0,
        "since": "2017-03-02T14:45:00+00:00",
        "similar_since_last_alert": 12,
        "cooldown_seconds": 3600.0,
        "suppressed_from": "2017-03-02T09:00:00+00:00",
        "suppressed_to": "2017-03-02T13:30:00+00:00",
        "suppressed_worst": {
            "gap_seconds": 21600.0,
            "since": "2017-03-02T09:10:00+00:00",
            "source_ts": "2017-03-02T15:10:00+00:00",
        },
    }
    assert market_data_sentence("gap", evidence, symbol="EURUSD") == (
        "No EURUSD data for 15 min of session time since 2017-03-02 14:45:00 UTC: gap before the tick at "
        "2017-03-02 15:00:00 UTC; published with the flag. 12 more gaps since the last alert (one alert per "
        "1 h), from 2017-03-02 09:00:00 UTC to 2017-03-02 13:30:00 UTC; the longest 6 h of session time "
        "since 2017-03-02 09:10:00 UTC."
    )
    old = {k: v for k, v in evidence.items() if not k.startswith("suppressed_")}  # an alert of before
    assert market_data_sentence("gap", old, symbol="EURUSD").endswith(
        " 12 more like it since the last alert (one alert per 1 h)."
    )


def test_a_window_closed_summary_reads_as_what_was_suppressed_and_the_largest_spike():
    evidence = {
        "flag": "spike",
        "reason": "3 more spike findings ...",
        "window_closed": True,
        "similar_since_last_alert": 3,
        "cooldown_seconds": 3600.0,
        "suppressed_from": "2017-03-02T09:00:00+00:00",
        "suppressed_to": "2017-03-02T09:40:00+00:00",
        "suppressed_worst": {
            "move_bp": -41.25,
            "sigma": 11.04,
            "price": "mid",
            "source_ts": "2017-03-02T09:20:00+00:00",
        },
    }
    assert operator_alert_explanation("market_data.spike", evidence, symbol="EURUSD") == (
        "EURUSD: 3 more spikes since the last alert (one alert per 1 h), from 2017-03-02 09:00:00 UTC to "
        "2017-03-02 09:40:00 UTC; the largest -41.2 bp (11.0 sigma) at 2017-03-02 09:20:00 UTC; raised as "
        "the alert's window closed."
    )


def test_one_suppressed_spike_reads_its_figures_once_without_a_superlative():
    """'1 more spike ..., at T; the largest +61.8 bp ... at T' said the time twice and called the
    only finding the largest (seen on the embedded run's console, 2026-12-06)."""
    evidence = {
        "flag": "spike",
        "window_closed": True,
        "similar_since_last_alert": 1,
        "cooldown_seconds": 3600.0,
        "suppressed_from": "2017-08-25T14:00:00+00:00",
        "suppressed_to": "2017-08-25T14:00:00+00:00",
        "suppressed_worst": {"move_bp": 61.8, "sigma": 8.3, "price": "mid", "source_ts": "2017-08-25T14:00:00+00:00"},
    }
    assert operator_alert_explanation("market_data.spike", evidence, symbol="EURUSD") == (
        "EURUSD: 1 more spike since the last alert (one alert per 1 h): +61.8 bp (8.3 sigma) at "
        "2017-08-25 14:00:00 UTC; raised as the alert's window closed."
    )
