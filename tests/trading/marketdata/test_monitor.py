"""The market monitor (pure): crossed/locked quotes, order, gaps, spikes, staleness, throttled alerts."""

from __future__ import annotations

import ast
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from tradeops.events import Alert, Bar, Tick, Topic, make_event
from trading.marketdata.monitor import MarketMonitor, MonitorConfig
from trading.seed_data import FX_HOURS

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday


def tick(bid: str, ask: str, at: datetime | float, symbol: str = "EURUSD", received: datetime | None = None):
    ts = at if isinstance(at, datetime) else T0 + timedelta(seconds=at)
    payload = Tick(symbol=symbol, bid=Decimal(bid), ask=Decimal(ask), ts=ts, received_at=received)
    return make_event(payload, source="test", key=symbol)


def bar(
    close: str,
    at: datetime,
    symbol: str = "EURUSD",
    high: str = "1.2",
    low: str = "1.0",
    received_at: datetime | None = None,
):
    payload = Bar(
        symbol=symbol,
        timeframe="H1",
        ts=at,
        open=Decimal(close),
        high=Decimal(high),
        low=Decimal(low),
        close=Decimal(close),
        received_at=received_at,
    )
    return make_event(payload, source="test", key=symbol)


def split(events):
    data = [e for e in events if e.topic == Topic.MARKET_DATA]
    alerts = [e for e in events if e.topic == Topic.COMPLIANCE]
    return data, alerts


def test_clean_tick_passes_through_unflagged():
    monitor = MarketMonitor()
    [out] = monitor.handle(tick("1.08500", "1.08510", 0))
    assert out.payload.flags == () and out.key == "EURUSD"


def test_crossed_quote_is_quarantined_and_alerted_not_published():
    monitor = MarketMonitor()
    verdict = monitor.inspect(tick("1.08520", "1.08510", 0))
    assert verdict.quarantined and verdict.flags == ("crossed",)
    data, [alert] = split(monitor.handle(tick("1.08530", "1.08510", 1)) + list(verdict.alerts))
    assert data == []
    assert isinstance(alert.payload, Alert) and alert.payload.alert_type == "market_data.crossed"
    assert alert.payload.severity == "high" and alert.payload.evidence["action"] == "quarantined"
    assert alert.payload.evidence["bid"] == "1.08520"


def test_locked_quote_is_published_with_its_flag():
    data, alerts = split(MarketMonitor().handle(tick("1.08500", "1.08500", 0)))
    assert [e.payload.flags for e in data] == [("locked",)]
    assert [a.payload.alert_type for a in alerts] == ["market_data.locked"]


def test_out_of_order_tick_is_quarantined_and_does_not_move_the_clock():
    monitor = MarketMonitor()
    monitor.handle(tick("1.08500", "1.08510", 10))
    late = monitor.inspect(tick("1.08500", "1.08510", 5))
    assert late.quarantined and late.flags == ("out_of_order",)
    [ok] = monitor.handle(tick("1.08501", "1.08511", 11))
    assert ok.payload.flags == ()


def test_gap_in_session_is_flagged_but_a_weekend_is_not():
    monitor = MarketMonitor(MonitorConfig(trading_hours={"EURUSD": FX_HOURS}))
    monitor.handle(tick("1.08500", "1.08510", 0))
    data, _ = split(monitor.handle(tick("1.08500", "1.08510", 600)))
    assert data[0].payload.flags == ("gap",)
    friday = datetime(2026, 3, 6, 21, 50, tzinfo=UTC)
    monitor.handle(tick("1.08500", "1.08510", friday))
    [monday] = monitor.handle(tick("1.08500", "1.08510", friday + timedelta(days=2, hours=0, minutes=15)))
    assert monday.payload.flags == ()  # Sunday 22:05: only five minutes of session passed


def test_spike_beyond_n_sigma_is_flagged_once_and_the_estimate_survives_it():
    rng = random.Random(1)
    monitor = MarketMonitor(MonitorConfig(spike_sigma=6))
    bid = 108500
    for i in range(200):
        bid += rng.choice((-2, -1, 0, 1, 2))
        assert monitor.handle(tick(f"{bid / 1e5:.5f}", f"{(bid + 10) / 1e5:.5f}", i))[0].payload.flags == ()
    bid += 300  # 30 pips in one tick
    data, alerts = split(monitor.handle(tick(f"{bid / 1e5:.5f}", f"{(bid + 10) / 1e5:.5f}", 200)))
    assert data[0].payload.flags == ("spike",) and "sigma" in alerts[0].payload.evidence["reason"]
    bid += 1
    [after] = monitor.handle(tick(f"{bid / 1e5:.5f}", f"{(bid + 10) / 1e5:.5f}", 201))
    assert after.payload.flags == ()


def test_stale_quote_by_latency_when_configured():
    monitor = MarketMonitor(MonitorConfig(max_latency=timedelta(milliseconds=500)))
    late = T0 + timedelta(seconds=2)
    [out, alert] = monitor.handle(tick("1.08500", "1.08510", 0, received=late))
    assert out.payload.flags == ("stale",) and alert.payload.alert_type == "market_data.stale"
    [fresh] = monitor.handle(tick("1.08500", "1.08510", 3, received=T0 + timedelta(seconds=3.1)))
    assert fresh.payload.flags == ()


def test_silent_feed_raises_one_stale_feed_alert_until_it_ticks_again():
    monitor = MarketMonitor(MonitorConfig(feed_timeout=timedelta(seconds=60), max_gap=timedelta(hours=1)))
    monitor.handle(tick("1.26000", "1.26010", 0, symbol="GBPUSD"))
    alerts = []
    for second in range(0, 200, 5):
        alerts += split(monitor.handle(tick("1.08500", "1.08510", second)))[1]
    assert [(a.payload.alert_type, a.key) for a in alerts] == [("market_data.stale_feed", "GBPUSD")]
    monitor.handle(tick("1.26000", "1.26010", 200, symbol="GBPUSD"))
    later = []
    for second in range(205, 400, 5):
        later += split(monitor.handle(tick("1.08500", "1.08510", second)))[1]
    assert len(later) == 1


def test_alerts_are_throttled_per_symbol_and_flag_and_count_what_they_stand_for():
    monitor = MarketMonitor(MonitorConfig(alert_cooldown=timedelta(minutes=10)))
    alerts = []
    for minute in range(25):
        alerts += split(monitor.handle(tick("1.08500", "1.08500", minute * 60)))[1]
    assert len(alerts) == 3  # minutes 0, 10, 20
    assert [a.payload.evidence["similar_since_last_alert"] for a in alerts] == [0, 9, 9]
    other = split(monitor.handle(tick("1.26000", "1.26000", 25 * 60, symbol="GBPUSD")))[1]
    assert len(other) == 1


def test_bars_duplicates_quarantined_and_missing_bars_are_gaps():
    monitor = MarketMonitor(MonitorConfig(trading_hours={"EURUSD": FX_HOURS}))
    monitor.handle(bar("1.1", T0))
    assert monitor.inspect(bar("1.1", T0)).flags == ("duplicate",)
    assert monitor.inspect(bar("1.1", T0)).quarantined
    data, _ = split(monitor.handle(bar("1.1", T0 + timedelta(hours=3))))
    assert data[0].payload.flags == ("gap",)
    broken = monitor.inspect(bar("1.1", T0 + timedelta(hours=4), high="1.0", low="1.2"))
    assert broken.quarantined and "crossed" in broken.flags


def test_the_monitor_module_imports_neither_django_nor_a_transport():
    """(``tradeops/__init__`` loads the Celery app, so check the handler's own imports.)"""
    import trading.marketdata.monitor as module
    import trading.marketdata.sessions as sessions

    for source in (module, sessions):
        tree = ast.parse(Path(source.__file__).read_text())
        names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        names |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
        roots = {name.split(".")[0] for name in names}
        assert not roots & {"django", "confluent_kafka", "redis", "time"}, roots


def test_a_missing_trading_day_of_daily_stock_bars_is_a_gap_but_a_weekend_is_not():
    from trading.seed_data import NASDAQ_REGULAR

    monitor = MarketMonitor(MonitorConfig(trading_hours={"GOOG": NASDAQ_REGULAR}))

    def daily(day: int):
        payload = Bar(
            symbol="GOOG",
            timeframe="D1",
            ts=datetime(2026, 3, day, tzinfo=UTC),
            open=Decimal(100),
            high=Decimal(101),
            low=Decimal(99),
            close=Decimal(100),
        )
        return make_event(payload, source="test", key="GOOG")

    monitor.handle(daily(5))  # Thursday
    assert monitor.handle(daily(6))[0].payload.flags == ()  # Friday
    assert monitor.handle(daily(9))[0].payload.flags == ()  # Monday: the weekend is closed
    assert monitor.handle(daily(11))[0].payload.flags == ("gap",)  # Wednesday: Tuesday is missing


def test_a_bar_feed_that_delivers_every_bar_just_after_its_end_is_not_a_stale_feed():
    """A bar is known at its END (``ts`` is its open): measured from its open, a bar feed beside
    a tick stream looked a whole bar older than it was, and every bar published a moment after
    the next hour's first tick (a live feed) raised a high-severity stale_feed alert."""
    monitor = MarketMonitor(MonitorConfig(max_gap=timedelta(hours=1)))
    alerts = []
    for hour in range(6):
        start = T0 + timedelta(hours=hour)
        for minute in range(0, 60, 10):  # the hour's ticks; the next hour's first; then the bar
            at = start + timedelta(minutes=minute, seconds=30)
            alerts += split(monitor.handle(tick("1.08500", "1.08510", at)))[1]
        alerts += split(monitor.handle(tick("1.08500", "1.08510", start + timedelta(hours=1, seconds=20))))[1]
        alerts += split(monitor.handle(bar("1.1", start)))[1]
    assert [a.payload.alert_type for a in alerts] == []
    # a bar feed that really stops is still reported: two bar lengths after the last bar's end
    for minute in range(0, 200, 10):
        alerts += split(monitor.handle(tick("1.08500", "1.08510", T0 + timedelta(hours=7, minutes=minute))))[1]
    [stale] = alerts
    assert stale.payload.alert_type == "market_data.stale_feed"
    assert stale.payload.evidence["last_seen"] == (T0 + timedelta(hours=6)).isoformat()  # the last bar's end


def test_a_bar_finding_is_stamped_at_the_bar_end_and_spans_the_bar():
    """A spike in a bar's close happened by its end, not at its open: the alert's event time is
    the bar's end and its period is the bar (open to end)."""
    monitor = MarketMonitor()
    for hour in range(40):
        monitor.handle(bar("1.1000" if hour % 2 else "1.1001", T0 + timedelta(hours=hour)))
    opened = T0 + timedelta(hours=40)
    [_, alert] = monitor.handle(bar("1.2000", opened))
    assert alert.payload.alert_type == "market_data.spike"
    end = opened + timedelta(hours=1)
    assert (alert.payload.start, alert.payload.end, alert.payload.ts) == (opened, end, end)
    assert alert.payload.evidence["source_ts"] == opened.isoformat()  # the bar as its source names it


def test_a_bar_is_stale_by_its_latency_after_its_end_not_after_its_open():
    """A bar can only be received once it has ended: its latency is measured from its end. From
    its open, every H1 bar received on time (a second after its end) was flagged stale."""
    monitor = MarketMonitor(MonitorConfig(max_latency=timedelta(seconds=5)))
    on_time = bar("1.1", T0, received_at=T0 + timedelta(hours=1, seconds=1))
    assert monitor.inspect(on_time).flags == ()
    late = bar("1.1", T0 + timedelta(hours=1), received_at=T0 + timedelta(hours=2, seconds=9))
    verdict = monitor.inspect(late)
    assert verdict.flags == ("stale",) and "9.000s after" in verdict.reasons[0]


# ---------------------------------------------------------------- figures as fields (2026-12-06)


def _is_utc(text: str) -> bool:
    return datetime.fromisoformat(text).utcoffset() == timedelta(0)


def _one_alert(verdict, flag):
    [alert] = [a.payload for a in verdict.alerts if a.payload.alert_type == f"market_data.{flag}"]
    return alert.evidence


def test_a_gap_carries_its_seconds_limit_and_since_as_fields_beside_its_words():
    monitor = MarketMonitor(MonitorConfig(max_gap=timedelta(minutes=2)))
    monitor.handle(tick("1.08500", "1.08510", 0))
    verdict = monitor.inspect(tick("1.08500", "1.08510", 600))
    evidence = _one_alert(verdict, "gap")
    assert evidence["gap_seconds"] == 600.0 and evidence["gap_limit_seconds"] == 120.0
    assert evidence["since"] == T0.isoformat() and _is_utc(evidence["since"])
    assert evidence["reason"] == f"600s of session time without data since {T0.isoformat()}"  # as before
    assert verdict.figures == ({"gap_seconds": 600.0, "gap_limit_seconds": 120.0, "since": T0.isoformat()},)


def test_a_spike_carries_its_move_sigma_and_limit_as_numbers():
    monitor = MarketMonitor(MonitorConfig(spike_sigma=6))
    bid = 108500
    for i in range(200):
        bid += (-1, 1)[i % 2]
        monitor.handle(tick(f"{bid / 1e5:.5f}", f"{(bid + 10) / 1e5:.5f}", i))
    bid += 300
    evidence = _one_alert(monitor.inspect(tick(f"{bid / 1e5:.5f}", f"{(bid + 10) / 1e5:.5f}", 200)), "spike")
    assert evidence["price"] == "mid" and evidence["sigma_limit"] == 6.0
    assert isinstance(evidence["move_bp"], float) and 27 < evidence["move_bp"] < 28  # 30 pips of 1.085
    assert isinstance(evidence["sigma"], float) and evidence["sigma"] > evidence["sigma_limit"]
    assert evidence["reason"] == (
        f"mid moved {evidence['move_bp']:+.1f} bp, {evidence['sigma']:.1f} sigma (limit 6)"
    )  # the words as they were: the limit as configured


def test_a_stale_tick_and_bar_carry_their_delay_limit_and_times():
    monitor = MarketMonitor(MonitorConfig(max_latency=timedelta(milliseconds=500)))
    received = T0 + timedelta(seconds=2.25)
    evidence = _one_alert(monitor.inspect(tick("1.08500", "1.08510", 0, received=received)), "stale")
    assert (evidence["delay_seconds"], evidence["delay_limit_seconds"]) == (2.25, 0.5)
    assert evidence["known_at"] == T0.isoformat() and evidence["received_at"] == received.isoformat()
    bars = MarketMonitor(MonitorConfig(max_latency=timedelta(seconds=5)))
    late = bar("1.1", T0, received_at=T0 + timedelta(hours=1, seconds=9))
    evidence = _one_alert(bars.inspect(late), "stale")
    assert evidence["delay_seconds"] == 9.0 and evidence["known_at"] == (T0 + timedelta(hours=1)).isoformat()


def test_out_of_order_carries_the_previous_time_and_how_far_behind():
    monitor = MarketMonitor()
    monitor.handle(tick("1.08500", "1.08510", 10))
    evidence = _one_alert(monitor.inspect(tick("1.08500", "1.08510", 5.5)), "out_of_order")
    assert evidence["previous_ts"] == (T0 + timedelta(seconds=10)).isoformat() and evidence["behind_seconds"] == 4.5
    assert evidence["source_ts"] == (T0 + timedelta(seconds=5.5)).isoformat()


def test_a_stale_feed_carries_its_feed_seconds_limit_and_times():
    monitor = MarketMonitor(MonitorConfig(feed_timeout=timedelta(seconds=60), max_gap=timedelta(hours=1)))
    monitor.handle(tick("1.26000", "1.26010", 0, symbol="GBPUSD"))
    alerts = []
    for second in range(0, 200, 5):
        alerts += split(monitor.handle(tick("1.08500", "1.08510", second)))[1]
    [stale] = alerts
    evidence = stale.payload.evidence
    assert evidence["feed"] == "tick" and evidence["silent_limit_seconds"] == 60.0
    assert evidence["silent_seconds"] == (stale.payload.ts - T0).total_seconds() > 60
    assert evidence["newest"] == stale.payload.ts.isoformat() and evidence["last_seen"] == T0.isoformat()
    assert evidence["reason"].startswith(f"no tick data for {evidence['silent_seconds']:.0f}s while other feeds")


def test_crossed_locked_and_duplicate_findings_have_the_events_own_fields_and_no_more():
    monitor = MarketMonitor()
    crossed = monitor.inspect(tick("1.08520", "1.08510", 0))
    assert crossed.figures == ({},) and _one_alert(crossed, "crossed")["ask"] == "1.08510"
    locked = monitor.inspect(tick("1.08500", "1.08500", 1))
    assert locked.figures == ({},) and _one_alert(locked, "locked")["bid"] == "1.08500"
    bars = MarketMonitor()
    bars.handle(bar("1.1", T0))
    duplicate = bars.inspect(bar("1.1", T0))
    assert duplicate.figures == ({},) and _one_alert(duplicate, "duplicate")["timeframe"] == "H1"
    assert monitor.inspect(tick("1.08501", "1.08511", 2)).figures == ()  # a clean tick: none


def _regular(monitor, start: float, end: float, every: float = 10, bid: str = "1.08500", symbol: str = "EURUSD"):
    """Ticks every ``every`` seconds from ``start`` to ``end`` (inclusive); the alerts they raised."""
    alerts = []
    second = start
    while second <= end:
        alerts += split(monitor.handle(tick(bid, f"{float(bid) + 1e-4:.5f}", second, symbol=symbol)))[1]
        second += every
    return alerts


def test_the_next_gap_alert_carries_the_longest_gap_the_throttle_suppressed_and_their_span():
    """Four gaps in an hour, one alert: the next one says how many it stands for, from when to when,
    and the longest of them with its start (not only the first's figures)."""
    monitor = MarketMonitor(MonitorConfig(max_gap=timedelta(minutes=2), feed_timeout=None))
    alerts = _regular(monitor, 0, 0)
    alerts += _regular(monitor, 600, 700)  # a 600 s gap: alerted
    alerts += _regular(monitor, 1600, 1700)  # 900 s, suppressed
    alerts += _regular(monitor, 3700, 3800)  # 2,000 s, suppressed: the longest
    alerts += _regular(monitor, 4100, 4150)  # 300 s, suppressed
    assert len(alerts) == 1 and alerts[0].payload.evidence["similar_since_last_alert"] == 0
    assert "suppressed_from" not in alerts[0].payload.evidence  # nothing suppressed yet: no summary
    alerts += split(monitor.handle(tick("1.08500", "1.08510", 4400)))[1]  # 250 s, past the hour: alerted
    evidence = alerts[-1].payload.evidence
    assert evidence["gap_seconds"] == 250.0  # its own finding, as before
    assert evidence["similar_since_last_alert"] == 3
    at = lambda second: (T0 + timedelta(seconds=second)).isoformat()  # noqa: E731
    assert (evidence["suppressed_from"], evidence["suppressed_to"]) == (at(1600), at(4100))
    assert evidence["suppressed_worst"] == {"gap_seconds": 2000.0, "since": at(1700), "source_ts": at(3700)}


def test_the_largest_suppressed_spike_is_kept_by_its_size_whatever_its_sign():
    monitor = MarketMonitor(MonitorConfig(spike_sigma=6, feed_timeout=None, alert_cooldown=timedelta(hours=1)))
    bid, second, alerts = 108500, 0, []

    def move(points: int) -> None:
        nonlocal bid, second
        for _ in range(60):  # calm between the spikes, so each is judged against the same calm
            bid += (-1, 1)[second % 2]
            alerts.extend(split(monitor.handle(tick(f"{bid / 1e5:.5f}", f"{(bid + 10) / 1e5:.5f}", second)))[1])
            second += 1
        bid += points
        alerts.extend(split(monitor.handle(tick(f"{bid / 1e5:.5f}", f"{(bid + 10) / 1e5:.5f}", second)))[1])
        second += 1

    for points in (200, -150, -400, 300):  # the first alerted; the -400 the largest suppressed
        move(points)
    [first] = alerts
    monitor_alerts = split(monitor.handle(tick(f"{(bid + 500) / 1e5:.5f}", f"{(bid + 510) / 1e5:.5f}", 3 * 3600)))[1]
    spike = next(a.payload.evidence for a in monitor_alerts if a.payload.alert_type == "market_data.spike")
    assert spike["similar_since_last_alert"] == 3
    worst = spike["suppressed_worst"]
    assert set(worst) == {"move_bp", "sigma", "price", "source_ts"} and worst["price"] == "mid"
    assert -38 < worst["move_bp"] < -36 and worst["sigma"] > 6  # -400 points of ~1.08: signed as it moved
    assert worst["source_ts"] == (T0 + timedelta(seconds=3 * 61 - 1)).isoformat()
    assert first.payload.evidence["similar_since_last_alert"] == 0


def test_a_window_that_closes_on_a_clean_feed_raises_its_summary_alone_and_the_next_finding_at_once():
    """A bad half hour then a clean feed: the suppressed findings' summary is raised when the cool-
    down ends (not held until a finding that may never come), once; the next finding is not held."""
    monitor = MarketMonitor(MonitorConfig(max_gap=timedelta(minutes=2), feed_timeout=None))
    alerts = _regular(monitor, 0, 0) + _regular(monitor, 600, 650)  # alerted at 600
    alerts += _regular(monitor, 1000, 1050) + _regular(monitor, 1500, 4190)  # two gaps suppressed, then clean
    assert len(alerts) == 1
    closing = _regular(monitor, 4200, 4300)  # the hour since 600 is over at 4200
    [summary] = closing
    alert = summary.payload
    at = lambda second: (T0 + timedelta(seconds=second)).isoformat()  # noqa: E731
    assert alert.alert_type == "market_data.gap" and alert.symbol == "EURUSD" and alert.severity == "low"
    assert alert.start == T0 + timedelta(seconds=1000) and alert.ts == alert.end == T0 + timedelta(seconds=4200)
    evidence = alert.evidence
    assert evidence["window_closed"] is True and evidence["similar_since_last_alert"] == 2
    assert (evidence["suppressed_from"], evidence["suppressed_to"]) == (at(1000), at(1500))
    assert evidence["suppressed_worst"] == {"gap_seconds": 450.0, "since": at(1050), "source_ts": at(1500)}
    assert "source_ts" not in evidence and "gap_seconds" not in evidence  # no finding of its own
    assert evidence["reason"].startswith(f"2 more gap findings from {at(1000)} to {at(1500)}")
    assert _regular(monitor, 4310, 7200) == []  # raised once
    [next_gap] = _regular(monitor, 7500, 7500)  # a gap right after: raised at once, standing for itself
    assert next_gap.payload.evidence["similar_since_last_alert"] == 0
    assert "window_closed" not in next_gap.payload.evidence


def test_findings_without_a_measure_carry_their_span_and_no_worst():
    monitor = MarketMonitor(MonitorConfig(alert_cooldown=timedelta(minutes=10), feed_timeout=None))
    alerts = []
    for minute in range(11):
        alerts += split(monitor.handle(tick("1.08500", "1.08500", minute * 60)))[1]
    evidence = alerts[-1].payload.evidence
    assert evidence["similar_since_last_alert"] == 9 and "suppressed_worst" not in evidence
    assert evidence["suppressed_from"] == (T0 + timedelta(minutes=1)).isoformat()
    assert evidence["suppressed_to"] == (T0 + timedelta(minutes=9)).isoformat()
