"""The collector runner (workers/collector.py): stamping, keys, flags, quarantine, the bus, replay."""

from __future__ import annotations

import sys
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command

from tests.trading.brokers import fake_mt5
from tradeops.bus.memory import MemoryBus
from tradeops.events import Tick, Topic, decode
from trading.brokers import BrokerUnavailable, Quote
from trading.marketdata.quarantine import Quarantine
from trading.marketdata.sources import backtesting_bars
from workers.collector import Collector, embedded_source, live_quotes, outage_alert

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
RECEIVED = datetime(2026, 3, 2, 10, 0, 0, 250000, tzinfo=UTC)


def ticks():
    return [
        Tick(symbol="EURUSD", bid=Decimal("1.08500"), ask=Decimal("1.08510"), ts=T0),
        Tick(symbol="GBPUSD", bid=Decimal("1.26000"), ask=Decimal("1.26000"), ts=T0),  # locked
        Tick(symbol="EURUSD", bid=Decimal("1.08530"), ask=Decimal("1.08510"), ts=T0 + timedelta(seconds=1)),  # crossed
        Quote("EURUSD", Decimal("1.08501"), Decimal("1.08511"), T0 + timedelta(seconds=2)),  # a broker quote
    ]


def test_collector_stamps_keys_flags_and_quarantines_without_dropping():
    published = []
    quarantine = Quarantine()
    collector = Collector(publish=published.append, quarantine=quarantine, clock=lambda: RECEIVED)
    stats = collector.run(ticks())
    data = [e for e in published if e.topic == Topic.MARKET_DATA]
    alerts = [e for e in published if e.topic == Topic.COMPLIANCE]
    assert [(e.key, e.payload.flags) for e in data] == [("EURUSD", ()), ("GBPUSD", ("locked",)), ("EURUSD", ())]
    assert all(e.payload.received_at == RECEIVED and e.occurred_at == e.payload.ts for e in data)
    assert sorted(a.payload.alert_type for a in alerts) == ["market_data.crossed", "market_data.locked"]
    [row] = quarantine
    assert row.code == "crossed" and decode(row.raw.encode()).payload.bid == Decimal("1.08530")
    assert (stats.received, stats.published, stats.quarantined, stats.flagged) == (4, 3, 1, 1)


def test_quarantined_ticks_reach_the_dead_letter_topic_of_a_bus():
    bus = MemoryBus()
    sub = bus.subscribe([Topic.MARKET_DATA, Topic.COMPLIANCE], "test-collector")
    Collector(publish=bus, clock=lambda: RECEIVED).run(ticks())
    records = sub.poll(max_records=100, timeout=0)
    assert sorted(r.event.type for r in records) == ["alert.raised"] * 2 + ["market.tick"] * 3
    [letter] = bus.dead_letters(Topic.MARKET_DATA)
    assert letter.reason == "market_monitor.crossed" and letter.key == "EURUSD"


def test_live_quotes_yield_only_changes():
    class Feed:
        def __init__(self):
            self.quotes = iter(
                [
                    Quote("EURUSD", Decimal("1.1"), Decimal("1.2"), T0),
                    Quote("EURUSD", Decimal("1.1"), Decimal("1.2"), T0),
                    Quote("EURUSD", Decimal("1.1"), Decimal("1.3"), T0 + timedelta(seconds=1)),
                ]
            )

        def quote(self, symbol):
            return next(self.quotes)

    calls = []
    source = live_quotes(Feed(), ["EURUSD"], sleep=calls.append, should_stop=lambda: len(calls) >= 3)
    assert [q.ask for q in source] == [Decimal("1.2"), Decimal("1.3")]


def test_live_quotes_survive_an_outage_and_report_it():
    class Flaky:
        def __init__(self):
            self.calls = 0

        def quote(self, symbol):
            self.calls += 1
            if self.calls in (2, 3):
                raise BrokerUnavailable("circuit 'mt5' is open")
            return Quote("EURUSD", Decimal("1.1"), Decimal("1.2") + Decimal(self.calls) / 100, T0)

    outages = []
    sleeps = []
    source = live_quotes(
        Flaky(), ["EURUSD"], sleep=sleeps.append, should_stop=lambda: len(sleeps) >= 5, on_outage=outages.append
    )
    assert len(list(source)) == 3  # calls 1, 4, 5
    assert [type(o).__name__ for o in outages] == ["BrokerUnavailable", "NoneType"]
    alert = outage_alert(outages[0], broker="mt5", symbols=["EURUSD"], at=T0)
    assert alert.topic == Topic.COMPLIANCE and alert.payload.alert_type == "market_data.feed_down"


def test_collect_command_against_the_mt5_stand_in(settings, capsys, tmp_path):
    name = f"fake_MetaTrader5_{uuid.uuid4().hex[:8]}"
    fake_mt5.install(name)
    settings.MT5_MODULE = name
    try:
        call_command(
            "collect", "--broker", "mt5", "--symbols", "EURUSD", "--duration", "0.3", "--bus", "memory",
            "--quarantine-file", str(tmp_path / "q.jsonl"),
        )  # fmt: skip
    finally:
        sys.modules.pop(name, None)
    out = capsys.readouterr().out
    # the stand-in's clock is in March 2026: received long after its source time, so flagged stale
    assert "1 received, 1 published (1 flagged: stale 1)" in out
    from prometheus_client import REGISTRY  # the live loop's heartbeat: once per poll of the broker

    assert REGISTRY.get_sample_value("tradeops_heartbeat_timestamp_seconds", {"process": "collector"}) > 0


def test_embedded_source_replays_the_real_data(monkeypatch, tmp_path):
    monkeypatch.setenv("REPLAY_LIMIT", "120")
    monkeypatch.setenv("REPLAY_QUARANTINE", str(tmp_path / "q.jsonl"))
    events = list(embedded_source())
    bars = [e for e in events if e.type == "market.bar"]
    ticks_ = [e for e in events if e.type == "market.tick"]
    assert len(bars) == 120 and len(ticks_) == 480
    real = list(backtesting_bars("EURUSD"))[:120]
    assert [b.payload.close for b in bars] == [b.close for b in real]


def test_replay_command_on_the_memory_bus(tmp_path, capsys):
    from prometheus_client import REGISTRY

    def count(outcome: str) -> float:
        labels = {"source": "collector", "outcome": outcome}
        return REGISTRY.get_sample_value("tradeops_collector_events_total", labels) or 0.0

    before = {outcome: count(outcome) for outcome in ("received", "published", "quarantined")}
    call_command("replay", "--limit", "300", "--bus", "memory", "--quarantine-file", str(tmp_path / "q.jsonl"))
    out = capsys.readouterr().out
    assert "300 received, 300 published" in out and "nothing quarantined" in out
    # the collector's counts are this process's metrics, read when scraped
    assert count("received") - before["received"] == 300
    assert count("published") - before["published"] == 300
    assert count("quarantined") == before["quarantined"]


def test_replay_command_reports_bad_rows_of_an_mt5_file(tmp_path, capsys):
    path = tmp_path / "ticks.csv"
    path.write_text(
        "<DATE>\t<TIME>\t<BID>\t<ASK>\t<LAST>\t<VOLUME>\t<FLAGS>\n"
        "2026.03.02\t10:00:00.000\t1.08500\t1.08510\t\t\t6\n"
        "2026.03.02\t10:00:00.100\t-1\t1.08510\t\t\t6\n"
        "2026.03.02\t10:00:00.200\t1.08520\t1.08510\t\t\t6\n"
    )
    qfile = tmp_path / "q.jsonl"
    call_command("replay", "--source", "mt5-ticks", "--file", str(path), "--quarantine-file", str(qfile))
    out = capsys.readouterr().out
    assert "3 received" not in out and "2 received, 1 published" in out
    assert "line 3: non_positive_price" in out and "crossed" in out
    assert len(qfile.read_text().splitlines()) == 2


@pytest.mark.kafka
def test_replay_real_bars_into_kafka_and_read_them_back(collector_kafka_bus):
    kafka_bus = collector_kafka_bus
    group = f"collector-test-{uuid.uuid4().hex[:6]}"
    stats = Collector(publish=kafka_bus).run(list(backtesting_bars("EURUSD"))[:400])
    assert kafka_bus.flush(30) == 0
    seen = []
    with kafka_bus.subscribe([Topic.MARKET_DATA], group) as sub:
        for _ in range(60):
            seen += sub.poll(max_records=1000, timeout=1.0)
            if len(seen) >= stats.published:
                break
    assert len(seen) == stats.published == 400
    assert {r.key for r in seen} == {"EURUSD"} and len({r.partition for r in seen}) == 1
    in_order = [r.event.payload.ts for r in sorted(seen, key=lambda r: r.offset)]
    assert in_order == sorted(in_order)


def test_a_quarantined_event_keeps_its_findings_figures_as_fields_in_the_file_and_the_dead_letter(tmp_path):
    """The quarantine record and the dead letter carry each finding's figures as fields beside
    the words (2026-12-06): nobody reading them parses ``reason``. A parser's row is as before."""
    import json

    from trading.marketdata.quarantine import QuarantinedRow

    bus = MemoryBus()
    quarantine = Quarantine(tmp_path / "q.jsonl")
    collector = Collector(publish=bus, quarantine=quarantine, clock=lambda: RECEIVED)
    late = T0 + timedelta(seconds=4, milliseconds=500)
    collector.run(
        [
            Tick(symbol="EURUSD", bid=Decimal("1.08500"), ask=Decimal("1.08510"), ts=T0 + timedelta(seconds=10)),
            Tick(symbol="EURUSD", bid=Decimal("1.08530"), ask=Decimal("1.08510"), ts=late),  # crossed, out of order
        ]
    )
    quarantine.add(QuarantinedRow(source="bars.csv", line=3, reason="nan_price: close is NaN", raw="x"))
    quarantine.close()
    [row, parsed] = quarantine
    assert [f["flag"] for f in row.findings] == ["crossed", "out_of_order"]
    crossed, behind = row.findings
    assert crossed == {"flag": "crossed", "reason": "bid 1.08530 above ask 1.08510"}
    assert behind["previous_ts"] == (T0 + timedelta(seconds=10)).isoformat() and behind["behind_seconds"] == 5.5
    assert row.reason == f"crossed: {crossed['reason']}; out_of_order: {behind['reason']}"  # the words as before
    lines = [json.loads(line) for line in (tmp_path / "q.jsonl").read_text().splitlines()]
    assert lines[0]["findings"] == [crossed, behind]
    assert "findings" not in lines[1] and lines[1]["reason"] == "nan_price: close is NaN"
    [letter] = bus.dead_letters(Topic.MARKET_DATA)
    assert letter.reason == "market_monitor.crossed" and json.loads(letter.headers["dlq.findings"]) == [crossed, behind]
