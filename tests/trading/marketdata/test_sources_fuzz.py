"""Fuzzing the MT5 export parsers (read_mt5_bars, read_mt5_ticks): bars and ticks written in the
terminal's format read back exactly, in any server time zone; arbitrary bytes after the header
cost only their own rows (each row yielded or quarantined with a reason, never an exception);
a file whose header is not the MT5 header raises FileFormatError naming line 1."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trading.marketdata.quarantine import FileFormatError, Quarantine
from trading.marketdata.sources import MT5_BAR_HEADER, MT5_TICK_HEADER, read_mt5_bars, read_mt5_ticks

BAR_HEADER = "\t".join(MT5_BAR_HEADER)
TICK_HEADER = "\t".join(MT5_TICK_HEADER)
POINT = Decimal("0.00001")
START = datetime(2024, 1, 2, tzinfo=UTC)
prices = st.decimals(min_value=Decimal("0.00001"), max_value=Decimal(100000), places=5)
# Fixed server offsets (GMT+2, GMT+3, GMT-5): in a zone with summer time, the hour repeated when
# the clocks go back is ambiguous in the export itself (it carries no offset).
zones = st.sampled_from(
    [UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=3)), timezone(timedelta(hours=-5))]
)


def _server(ts: datetime, tz) -> datetime:
    return ts.astimezone(tz) if tz is not UTC else ts


@st.composite
def bar_rows(draw):
    """Rows in time order (strictly increasing, whole seconds), valid OHLC, integer volumes."""
    gaps = draw(st.lists(st.integers(1, 86_400 * 3), min_size=1, max_size=25))
    rows, ts = [], START
    for gap in gaps:
        ts += timedelta(seconds=gap)
        a, b, c, d = sorted(draw(st.lists(prices, min_size=4, max_size=4)))
        o, close = draw(st.permutations([b, c]))
        rows.append((ts, o, d, a, close, draw(st.integers(0, 10**6)), draw(st.integers(0, 500))))
    return rows


@given(bar_rows(), zones)
@settings(max_examples=150, deadline=None)
def test_bars_written_in_the_mt5_format_read_back_exactly(rows, tz):
    lines = [BAR_HEADER]
    for ts, o, h, low, c, volume, spread in rows:
        local = _server(ts, tz)
        lines.append(f"{local:%Y.%m.%d}\t{local:%H:%M:%S}\t{o}\t{h}\t{low}\t{c}\t{volume}\t0\t{spread}")
    quarantine = Quarantine()
    source = io.StringIO("\n".join(lines) + "\n")
    bars = list(read_mt5_bars(source, symbol="EURUSD", timeframe="H1", point=POINT, tz=tz, quarantine=quarantine))
    assert not list(quarantine)
    read = [(b.ts, b.open, b.high, b.low, b.close, b.volume, b.spread) for b in bars]
    assert read == [(ts, o, h, low, c, volume, spread * POINT) for ts, o, h, low, c, volume, spread in rows]


@st.composite
def tick_rows(draw):
    """Ticks in time order (equal times allowed), millisecond times, distinct rows."""
    gaps = draw(st.lists(st.integers(0, 5_000_000), min_size=1, max_size=25))
    rows, ts = [], START
    for gap in gaps:
        ts += timedelta(milliseconds=gap)
        bid = draw(prices)
        rows.append((ts, bid, bid + draw(prices), draw(st.integers(0, 1000))))
    return rows


@given(tick_rows())
@settings(max_examples=150, deadline=None)
def test_ticks_written_in_the_mt5_format_read_back_exactly(rows):
    lines = [TICK_HEADER]
    for ts, bid, ask, volume in rows:
        lines.append(f"{ts:%Y.%m.%d}\t{ts:%H:%M:%S}.{ts.microsecond // 1000:03d}\t{bid}\t{ask}\t\t{volume}\t6")
    quarantine = Quarantine()
    ticks = list(read_mt5_ticks(io.StringIO("\n".join(lines) + "\n"), symbol="EURUSD", quarantine=quarantine))
    distinct = list(dict.fromkeys(rows))  # an identical repeated row is quarantined as a duplicate
    assert [(t.ts, t.bid, t.ask, t.volume) for t in ticks] == distinct
    assert len(quarantine) == len(rows) - len(distinct)


@given(st.sampled_from(["bars", "ticks"]), st.lists(st.binary(max_size=80), max_size=20))
@settings(max_examples=300, deadline=None)
def test_any_bytes_after_the_header_cost_only_their_rows(kind, rows):
    header = BAR_HEADER if kind == "bars" else TICK_HEADER
    data = header.encode() + b"\n" + b"\n".join(rows) + b"\n"
    quarantine = Quarantine()
    if kind == "bars":
        parsed = list(read_mt5_bars(io.BytesIO(data), symbol="X", timeframe="H1", quarantine=quarantine))
    else:
        parsed = list(read_mt5_ticks(io.BytesIO(data), symbol="X", quarantine=quarantine))
    data_rows = sum(1 for line in data.decode("utf-8", "surrogateescape").splitlines()[1:] if line.strip())
    assert len(parsed) + len(quarantine) == data_rows
    assert all(row.reason for row in quarantine)
    assert all(a.ts <= b.ts for a, b in zip(parsed, parsed[1:], strict=False))


@given(st.binary(max_size=200))
@settings(max_examples=300, deadline=None)
def test_a_file_without_the_mt5_header_is_refused_as_a_whole(data):
    for read in (
        lambda: list(read_mt5_bars(io.BytesIO(data), symbol="X", timeframe="H1", quarantine=Quarantine())),
        lambda: list(read_mt5_ticks(io.BytesIO(data), symbol="X", quarantine=Quarantine())),
    ):
        try:
            read()
        except FileFormatError as exc:
            assert exc.line == 1 and "header" in str(exc)


def test_a_bom_and_crlf_file_from_the_terminal_reads_the_same():
    rows = "2024.01.02\t10:00:00\t1.1\t1.2\t1.0\t1.15\t5\t0\t3"
    utf16 = (BAR_HEADER + "\r\n" + rows + "\r\n").encode("utf-16")
    [bar] = read_mt5_bars(io.BytesIO(utf16), symbol="EURUSD", timeframe="H1")
    assert bar.ts == datetime(2024, 1, 2, 10, tzinfo=UTC) and bar.close == Decimal("1.15")
    with pytest.raises(FileFormatError):
        list(read_mt5_bars(io.BytesIO(b"<DATE>,<TIME>\n"), symbol="EURUSD", timeframe="H1"))
