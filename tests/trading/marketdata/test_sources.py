"""Sources: the real packaged data, MT5 exports (good and malformed), synthetic feed, pacing."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trading.marketdata.quarantine import FileFormatError, Quarantine
from trading.marketdata.sources import (
    backtesting_bars,
    bars_as_ticks,
    paced,
    read_mt5_bars,
    read_mt5_ticks,
    read_ohlc_csv,
    synthetic_bars,
    synthetic_ticks,
)
from trading.seed_data import FX_HOURS

BAR_HEADER = "<DATE>\t<TIME>\t<OPEN>\t<HIGH>\t<LOW>\t<CLOSE>\t<TICKVOL>\t<VOL>\t<SPREAD>"
TICK_HEADER = "<DATE>\t<TIME>\t<BID>\t<ASK>\t<LAST>\t<VOLUME>\t<FLAGS>"


def tsv(*rows: str) -> io.StringIO:
    return io.StringIO("\n".join(rows) + "\n")


def test_real_eurusd_hourly_bars_from_the_backtesting_package():
    quarantine = Quarantine()
    bars = list(backtesting_bars("EURUSD", quarantine=quarantine))
    assert len(bars) == 5000 and len(quarantine) == 0
    first = bars[0]
    assert (first.symbol, first.timeframe, first.ts) == ("EURUSD", "H1", datetime(2017, 4, 19, 9, tzinfo=UTC))
    assert (first.open, first.high, first.low, first.close) == (
        Decimal("1.0716"),
        Decimal("1.0722"),
        Decimal("1.07083"),
        Decimal("1.07219"),
    )
    assert all(a.ts < b.ts for a, b in zip(bars, bars[1:], strict=False))


def test_real_goog_daily_bars():
    bars = list(backtesting_bars("GOOG"))
    assert bars[0].timeframe == "D1" and bars[0].ts == datetime(2004, 8, 19, tzinfo=UTC) and len(bars) > 2000


def test_mt5_bar_export_is_parsed_in_server_time():
    rows = tsv(BAR_HEADER, "2024.01.02\t00:00:00\t1.10450\t1.10470\t1.10400\t1.10420\t812\t0\t9")
    [bar] = read_mt5_bars(rows, symbol="EURUSD", timeframe="H1", point=Decimal("0.00001"), tz=ZoneInfo("EET"))
    assert bar.ts == datetime(2024, 1, 1, 22, 0, tzinfo=UTC)  # 00:00 EET is 22:00 UTC the day before
    assert bar.spread == Decimal("0.00009") and bar.volume == 812


def test_mt5_daily_export_without_a_time_column():
    rows = tsv(BAR_HEADER.replace("<TIME>\t", ""), "2024.01.02\t1.1\t1.2\t1.0\t1.15\t100\t0\t5")
    [bar] = read_mt5_bars(rows, symbol="EURUSD", timeframe="D1")
    assert bar.ts == datetime(2024, 1, 2, tzinfo=UTC)


def test_malformed_bar_rows_are_quarantined_with_line_numbers_and_good_rows_kept():
    rows = tsv(
        BAR_HEADER,
        "2024.01.02\t00:00:00\t1.1\t1.2\t1.0\t1.15\t100\t0\t5",  # line 2: good
        "2024.01.02\t01:00:00\tnan\t1.2\t1.0\t1.15\t100\t0\t5",  # 3: NaN
        "2024.01.02\t02:00:00\t1.1\t1.2\t-1.0\t1.15\t100\t0\t5",  # 4: negative
        "2024.01.02\t03:00:00\t1.1\t1.2\t0\t1.15\t100\t0\t5",  # 5: zero
        "2024.01.02\t04:00:00\t1.1\t1.0\t1.2\t1.15\t100\t0\t5",  # 6: high below low
        "2024.01.02\t05:00:00\t1.1\t1.2\t1.0",  # 7: short row
        "2024.01.02\t06:00:00\t1.1\t1.2\t1.0\t1.15\t100\t0\t5",  # 8: good
        "2024.01.02\t06:00:00\t1.1\t1.2\t1.0\t1.15\t100\t0\t5",  # 9: duplicate
        "2024.01.02\t05:30:00\t1.1\t1.2\t1.0\t1.15\t100\t0\t5",  # 10: out of order
        "2024.13.02\t07:00:00\t1.1\t1.2\t1.0\t1.15\t100\t0\t5",  # 11: no 13th month
        "2024.01.02\t08:00:00\t1.1x\t1.2\t1.0\t1.15\t100\t0\t5",  # 12: not a number
        "2024.01.02\t09:00:00\t1.1\t1.2\t1.0\t1.15\t100\t0\t5",  # 13: good
    )
    quarantine = Quarantine()
    bars = list(read_mt5_bars(rows, symbol="EURUSD", timeframe="H1", quarantine=quarantine))
    assert [b.ts.hour for b in bars] == [0, 6, 9]
    found = {row.line: row.code for row in quarantine}
    assert found == {
        3: "nan_price",
        4: "non_positive_price",
        5: "non_positive_price",
        6: "high_below_low",
        7: "column_count",
        9: "duplicate_timestamp",
        10: "out_of_order",
        11: "bad_timestamp",
        12: "bad_number",
    }
    duplicate = next(row for row in quarantine if row.line == 9)
    assert "already on line 8" in duplicate.reason and str(duplicate).startswith("<stream>, line 9:")


def test_ticks_carry_bid_and_ask_forward_and_keep_milliseconds():
    rows = tsv(
        TICK_HEADER,
        "2024.01.02\t10:00:00.125\t1.10450\t1.10460\t\t\t6",
        "2024.01.02\t10:00:00.125\t1.10451\t\t\t\t2",  # same millisecond: allowed
        "2024.01.02\t10:00:01.007\t\t1.10470\t\t\t4",
    )
    ticks = list(read_mt5_ticks(rows, symbol="EURUSD"))
    assert [(t.bid, t.ask) for t in ticks] == [
        (Decimal("1.10450"), Decimal("1.10460")),
        (Decimal("1.10451"), Decimal("1.10460")),
        (Decimal("1.10451"), Decimal("1.10470")),
    ]
    assert ticks[0].ts == datetime(2024, 1, 2, 10, 0, 0, 125000, tzinfo=UTC)


def test_malformed_tick_rows():
    rows = tsv(
        TICK_HEADER,
        "2024.01.02\t10:00:00.000\t\t1.10460\t\t\t4",  # 2: no bid yet
        "2024.01.02\t10:00:00.100\t1.10450\t1.10460\t\t\t6",  # 3: good
        "2024.01.02\t10:00:00.100\t1.10450\t1.10460\t\t\t6",  # 4: duplicate row
        "2024.01.02\t09:59:59.000\t1.10450\t1.10461\t\t\t6",  # 5: out of order
        "2024.01.02\t10:00:00.200\tNaN\t1.10461\t\t\t6",  # 6: NaN
        "2024.01.02\t10:00:00.300\t1.10452\t1.10462\t\t-5\t6",  # 7: negative volume
        "2024.01.02\t10:00:00.400\t1.10453\t1.10463\t\t\t6",  # 8: good
    )
    quarantine = Quarantine()
    ticks = list(read_mt5_ticks(rows, symbol="EURUSD", quarantine=quarantine))
    assert [t.bid for t in ticks] == [Decimal("1.10450"), Decimal("1.10453")]
    assert {r.line: r.code for r in quarantine} == {
        2: "no_quote_yet",
        4: "duplicate_row",
        5: "out_of_order",
        6: "nan_price",
        7: "bad_volume",
    }


def test_wrong_header_is_a_file_error_naming_line_1():
    with pytest.raises(FileFormatError, match="line 1"):
        list(read_mt5_ticks(tsv(BAR_HEADER), symbol="EURUSD"))
    with pytest.raises(FileFormatError, match="line 1"):
        list(read_ohlc_csv(io.StringIO("Date,Price\n"), symbol="X", timeframe="D1"))


def test_utf16_export_and_quarantine_file(tmp_path):
    path = tmp_path / "ticks.csv"
    text = "\r\n".join([TICK_HEADER, "2024.01.02\t10:00:00.000\t1.1\t1.2\t\t\t6", "bad"]) + "\r\n"
    path.write_bytes(text.encode("utf-16"))
    quarantine = Quarantine(tmp_path / "q" / "bad.jsonl")
    assert len(list(read_mt5_ticks(path, symbol="EURUSD", quarantine=quarantine))) == 1
    quarantine.close()
    line = (tmp_path / "q" / "bad.jsonl").read_text().strip()
    assert '"line": 3' in line and "column_count" in line


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.tuples(st.integers(0, 23), st.decimals(min_value="0.5", max_value="2", places=5)),
            st.text(alphabet="0123456789.\t-naN", max_size=40),
        ),
        max_size=30,
    )
)
def test_parser_never_loses_a_row(rows):
    """Every data row is either yielded or quarantined, whatever it contains."""
    lines = [BAR_HEADER]
    for row in rows:
        if isinstance(row, tuple):
            hour, price = row
            lines.append(f"2024.01.02\t{hour:02d}:00:00\t{price}\t{price}\t{price}\t{price}\t1\t0\t5")
        else:
            lines.append(row)
    data_rows = sum(1 for line in lines[1:] if line.strip())
    quarantine = Quarantine()
    bars = list(read_mt5_bars(tsv(*lines), symbol="EURUSD", timeframe="H1", quarantine=quarantine))
    assert len(bars) + len(quarantine) == data_rows
    assert all(a.ts < b.ts for a, b in zip(bars, bars[1:], strict=False))


def test_synthetic_feed_is_seeded_has_regimes_gaps_and_respects_sessions():
    a = list(synthetic_ticks(seed=3, count=3000, gap_probability=0.01))
    b = list(synthetic_ticks(seed=3, count=3000, gap_probability=0.01))
    assert a == b and a != list(synthetic_ticks(seed=4, count=3000, gap_probability=0.01))
    assert all(t.bid < t.ask and t.bid > 0 for t in a)
    spreads = {t.ask - t.bid for t in a}
    assert len(spreads) > 1  # regimes change the spread
    gaps = [(y.ts - x.ts).total_seconds() for x, y in zip(a, a[1:], strict=False)]
    assert max(gaps) >= 60
    friday = datetime(2026, 1, 9, 21, 0, tzinfo=UTC)
    weekend = list(synthetic_ticks(seed=1, count=500, start=friday, trading_hours=FX_HOURS))
    assert not any(t.ts.weekday() == 5 for t in weekend)
    bars = list(synthetic_bars(a, timeframe="M1"))
    assert all(bar.low <= bar.open <= bar.high for bar in bars)


def test_bars_as_ticks_walk_the_bar():
    [bar] = list(
        read_ohlc_csv(
            io.StringIO(",Open,High,Low,Close,Volume\n2017-01-02 10:00:00,1.1,1.3,1.0,1.2,8\n"),
            symbol="X",
            timeframe="H1",
        )
    )
    ticks = list(bars_as_ticks([bar], spread=Decimal("0.0001")))
    assert [t.bid for t in ticks] == [Decimal("1.1"), Decimal("1.0"), Decimal("1.3"), Decimal("1.2")]
    assert [(t.ts.minute, t.ts.second) for t in ticks] == [(0, 0), (20, 0), (40, 0), (59, 59)]


def test_pacing_sleeps_in_proportion_to_source_time():
    now = [0.0]
    slept = []

    def sleep(seconds):
        slept.append(round(seconds, 6))
        now[0] += seconds

    start = datetime(2026, 1, 5, tzinfo=UTC)
    items = [type("I", (), {"ts": start + timedelta(seconds=s)})() for s in (0, 10, 20, 1000)]
    out = list(paced(items, speed=10, monotonic=lambda: now[0], sleep=sleep, max_sleep=5))
    assert len(out) == 4 and slept == [1.0, 1.0, 5]
    assert list(paced(items, speed=None, sleep=sleep)) == items and len(slept) == 3


def test_without_the_demo_data_package_the_replay_says_what_to_install(monkeypatch, tmp_path):
    """backtesting (AGPL-3.0) is demo data, not a runtime requirement: without it the error names
    requirements/demo.txt instead of an ImportError or a bare missing file."""
    import sys

    from django.core.management import CommandError, call_command

    from trading.marketdata.sources import DemoDataMissing

    monkeypatch.setitem(sys.modules, "backtesting", None)  # importlib.util.find_spec -> None
    with pytest.raises(DemoDataMissing, match=r"pip install -r requirements/demo\.txt"):
        list(backtesting_bars("EURUSD"))
    with pytest.raises(CommandError, match=r"requirements/demo\.txt"):
        call_command("replay", "--source", "backtesting", "--quarantine-file", str(tmp_path / "q.jsonl"))


def test_runtime_and_production_requirements_leave_the_demo_data_out():
    from pathlib import Path

    root = Path(__file__).resolve().parents[3] / "requirements"
    for name in ("base.txt", "prod.txt"):
        assert "backtesting" not in (root / name).read_text()
    assert "backtesting==" in (root / "demo.txt").read_text()
    assert "-r demo.txt" in (root / "dev.txt").read_text()
