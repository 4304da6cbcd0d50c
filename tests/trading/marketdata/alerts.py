"""A real alert of every market-data flag (the monitor's, on ticks and bars, and the collector's
feed outage and recovery), for the tests that hold every alert to a contract: the events schema
(tests/tradeops/api/test_schema.py) and the console's sentence (tests/trading/test_operator_alerts.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from tradeops.events import Alert, Bar, Tick, make_event
from trading.brokers.base import BrokerConnectionError
from trading.marketdata.monitor import MarketMonitor, MonitorConfig
from workers.collector import outage_alert


def every_market_data_alert() -> list[Alert]:
    """Every flag the monitor raises on a short day of EURUSD ticks and H1 bars (crossed,
    locked, out of order, stale, gap, spike, duplicate, a crossed bar, a bar feed falling
    silent), then the same day replayed on later days under a two-day cool-down: the alerts that
    summarise what the throttle suppressed (``suppressed_from``, ``suppressed_worst``) and the
    summaries raised alone when a window closed (``window_closed``); then the collector's
    feed_down and feed_restored."""
    t0 = datetime(2026, 3, 2, 10, tzinfo=UTC)

    def day(offset: timedelta) -> list:
        def tick(bid, ask, second, received=None):
            ts = t0 + offset + timedelta(seconds=second)
            received = received + offset if received is not None else None
            payload = Tick(symbol="EURUSD", bid=Decimal(bid), ask=Decimal(ask), ts=ts, received_at=received)
            return make_event(payload, source="t", key="EURUSD")

        def bar(close, hour, high="1.2", low="1.0"):
            ts = t0 + offset + timedelta(hours=hour)
            payload = Bar(symbol="EURUSD", timeframe="H1", ts=ts, open=Decimal(close), high=Decimal(high),
                          low=Decimal(low), close=Decimal(close))  # fmt: skip
            return make_event(payload, source="t", key="EURUSD")

        events = [tick("1.10000", "1.10002", 0), tick("1.10000", "1.10000", 1), tick("1.10003", "1.10001", 2)]
        events += [tick("1.10000", "1.10002", 1.5), tick("1.10000", "1.10002", 3, t0 + timedelta(seconds=30))]
        events += [tick(f"{1.1 + (i % 2) * 1e-5:.5f}", f"{1.1 + 2e-5 + (i % 2) * 1e-5:.5f}", 3 + i) for i in range(40)]
        events += [tick("1.12000", "1.12002", 600)]  # a gap and a spike
        events += [bar("1.1", 0), bar("1.1", 0), bar("1.1", 3, high="1.0", low="1.2")]
        events += [tick("1.12000", "1.12002", 3 * 3600 + s) for s in (0, 5 * 3600)]  # the bar feed falls silent
        return events

    monitor = MarketMonitor(
        MonitorConfig(max_latency=timedelta(seconds=5), feed_timeout=timedelta(minutes=5), spike_sigma=4)
    )
    alerts = [a.payload for e in day(timedelta(0)) for a in monitor.inspect(e).alerts]
    throttled = MarketMonitor(
        MonitorConfig(max_latency=timedelta(seconds=5), spike_sigma=4, alert_cooldown=timedelta(days=2))
    )
    for offset in (0, 1, 3, 7):  # day 1's findings suppressed, carried on day 3's; day 3's closing on day 7
        for event in day(timedelta(days=offset)):
            alerts += [
                a.payload
                for a in throttled.inspect(event).alerts
                if a.payload.alert_type != "market_data.stale_feed" and a.payload.evidence.get("suppressed_from")
            ]
    error = BrokerConnectionError("terminal gone")
    for down in (error, None):
        alerts.append(outage_alert(down, broker="mt5", symbols=["EURUSD"], at=t0).payload)
    return alerts
