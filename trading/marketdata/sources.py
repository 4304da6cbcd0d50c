"""Market data sources: real historical bars, MT5 CSV exports, a seeded synthetic feed, pacing.

Every source yields ``tradeops.events.Tick`` or ``Bar`` payloads (Decimal prices, aware UTC
timestamps) in time order. Parsers never stop at a bad row: the row goes to the ``Quarantine``
with its line number and the reason (``nan_price``, ``non_positive_price``, ``high_below_low``,
``duplicate_timestamp``, ``out_of_order``, ``bad_number``, ``bad_timestamp``, ``column_count``,
``bad_encoding`` for a byte that is not UTF-8 text...)
and the good rows around it are kept. A file that is unusable as a whole (missing or wrong
header) raises ``FileFormatError`` naming the line.

Real data (demo only): the ``backtesting`` package, pinned in ``requirements/demo.txt`` and NOT in
the runtime requirements (it is AGPL-3.0 and pulls bokeh, tornado and pillow), ships
``backtesting/test/EURUSD.csv`` (5,000 real EURUSD hourly bars, April 2017 to February 2018) and
``GOOG.csv`` (daily GOOG bars, 2004-2013);
``backtesting_bars("EURUSD")`` finds them through ``importlib.resources``. The files carry no
time zone; we read them as UTC. Without the package, ``backtesting_path`` raises ``DemoDataMissing``
saying what to install.

MT5 exports: the terminal's tab-separated files, bars
``<DATE> <TIME> <OPEN> <HIGH> <LOW> <CLOSE> <TICKVOL> <VOL> <SPREAD>`` (daily and longer bars may
have no ``<TIME>``) and ticks ``<DATE> <TIME> <BID> <ASK> <LAST> <VOLUME> <FLAGS>`` (an empty
BID or ASK means unchanged: carried forward). Times are the trade server's clock: pass ``tz``
(e.g. ``ZoneInfo("Europe/Athens")`` for the common EET servers); UTC is the default. ``SPREAD``
is in points: pass ``point`` to turn it into price units. UTF-16 files (as some terminal builds
write) are detected by their byte-order mark.
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import io
import random
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO, TypeVar

from tradeops.events import BAR_SECONDS, Bar, Tick
from trading.marketdata.quarantine import FileFormatError, Quarantine, QuarantinedRow
from trading.marketdata.sessions import compile_hours, is_open

T = TypeVar("T")
ZERO = Decimal(0)

BACKTESTING_DATASETS = {
    # name: (file, symbol, timeframe)
    "EURUSD": ("EURUSD.csv", "EURUSD", "H1"),
    "GOOG": ("GOOG.csv", "GOOG", "D1"),
}
MT5_BAR_HEADER = ("<DATE>", "<TIME>", "<OPEN>", "<HIGH>", "<LOW>", "<CLOSE>", "<TICKVOL>", "<VOL>", "<SPREAD>")
MT5_TICK_HEADER = ("<DATE>", "<TIME>", "<BID>", "<ASK>", "<LAST>", "<VOLUME>", "<FLAGS>")


class RowError(ValueError):
    """One row is bad; ``str()`` starts with a stable code."""


# ---------------------------------------------------------------- reading helpers


def _open_text(source: str | Path | IO[str] | IO[bytes]) -> tuple[str, Iterator[str]]:
    """(name, lines) for a path or an open file; UTF-16 detected by its byte-order mark."""
    if hasattr(source, "read"):
        name = getattr(source, "name", "<stream>")
        stream = source
        if isinstance(stream, io.TextIOBase):
            return str(name), iter(stream)
        data = stream.read()
    else:
        name = str(source)
        data = Path(source).read_bytes()
    if isinstance(data, str):
        return name, iter(data.splitlines())
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        text = data.decode("utf-16")
    else:
        # A byte that is not UTF-8 costs its row, not the file: it is kept as a lone surrogate
        # (surrogateescape) and ``_check_text`` quarantines the row that carries it.
        text = data.decode("utf-8-sig", errors="surrogateescape")
    return name, iter(text.splitlines())


_NOT_UTF8 = re.compile("[\udc80-\udcff]")


def _check_text(raw: str) -> None:
    """A row with a byte that is not UTF-8 text is bad input: refuse it, naming the byte."""
    bad = _NOT_UTF8.search(raw)
    if bad is not None:
        byte = ord(bad.group()) - 0xDC00
        raise RowError(f"bad_encoding: byte 0x{byte:02x} at column {bad.start() + 1} is not UTF-8 text")


def _printable(raw: str) -> str:
    """The row as text a person (and a JSON file) can hold: undecodable bytes as ``\\xNN``."""
    try:
        raw.encode("utf-8")
        return raw
    except UnicodeEncodeError:
        return raw.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _price(text: str, column: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise RowError(f"bad_number: {column} {text!r} is not a number") from None
    if not value.is_finite():
        raise RowError(f"nan_price: {column} is {text!r}")
    if value <= 0:
        raise RowError(f"non_positive_price: {column} {text} must be positive")
    return value


def _volume(text: str, column: str) -> Decimal:
    if text == "":
        return ZERO
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise RowError(f"bad_number: {column} {text!r} is not a number") from None
    if not value.is_finite() or value < 0:
        raise RowError(f"bad_volume: {column} {text!r} must be a finite number >= 0")
    return value


def _timestamp(date: str, clock: str, tz: tzinfo) -> datetime:
    """'2024.01.02' or '2024-01-02', and '10:00', '10:00:00' or '10:00:00.123' (or empty)."""
    try:
        year, month, day = int(date[0:4]), int(date[5:7]), int(date[8:10])
        if len(date) != 10 or date[4] != date[7] or date[4] not in ".-/":
            raise ValueError
        hour = minute = second = micro = 0
        if clock:
            hms, _, frac = clock.partition(".")
            parts = hms.split(":")
            if len(parts) not in (2, 3):
                raise ValueError
            hour, minute = int(parts[0]), int(parts[1])
            second = int(parts[2]) if len(parts) == 3 else 0
            if frac:
                micro = int(frac.ljust(6, "0")[:6])
        when = datetime(year, month, day, hour, minute, second, micro, tzinfo=tz)
    except (ValueError, IndexError):
        raise RowError(f"bad_timestamp: {(date + ' ' + clock).strip()!r} is not a date and time") from None
    return when.astimezone(UTC) if tz is not UTC else when


@dataclass
class _Order:
    """Tracks time order across rows: duplicates and out-of-order rows are quarantined."""

    previous: datetime | None = None
    previous_line: int = 0

    def check(self, ts: datetime, line: int, *, allow_equal: bool = False) -> None:
        if self.previous is not None:
            if ts == self.previous and not allow_equal:
                raise RowError(f"duplicate_timestamp: {ts.isoformat()} already on line {self.previous_line}")
            if ts < self.previous:
                raise RowError(
                    f"out_of_order: {ts.isoformat()} is before {self.previous.isoformat()} on line {self.previous_line}"
                )
        self.previous, self.previous_line = ts, line


def _check_ohlc(o: Decimal, h: Decimal, low: Decimal, c: Decimal) -> None:
    if h < low:
        raise RowError(f"high_below_low: high {h} < low {low}")
    if not (low <= o <= h and low <= c <= h):
        raise RowError(f"outside_range: open {o} or close {c} outside [low {low}, high {h}]")


def _quarantine(quarantine: Quarantine | None, name: str, line: int, error: Exception, raw: str) -> None:
    if quarantine is not None:
        quarantine.add(QuarantinedRow(source=name, line=line, reason=str(error), raw=_printable(raw)))


# ---------------------------------------------------------------- OHLC CSV (backtesting's format)


def read_ohlc_csv(
    source: str | Path | IO,
    *,
    symbol: str,
    timeframe: str,
    quarantine: Quarantine | None = None,
    tz: tzinfo = UTC,
) -> Iterator[Bar]:
    """Bars from a CSV with header ``,Open,High,Low,Close,Volume`` (a pandas-written frame with a
    datetime index: ``2017-04-19 09:00:00`` or ``2004-08-19``), as the backtesting package ships."""
    name, lines = _open_text(source)
    header = next(lines, None)
    columns = [c.strip().lower() for c in (header or "").split(",")]
    if columns[1:6] != ["open", "high", "low", "close", "volume"]:
        raise FileFormatError(name, 1, f"expected header ',Open,High,Low,Close,Volume', got {header!r}")
    order = _Order()
    for number, raw in enumerate(lines, start=2):
        if not raw.strip():
            continue
        try:
            _check_text(raw)
            cells = raw.split(",")
            if len(cells) != 6:
                raise RowError(f"column_count: expected 6 columns, got {len(cells)}")
            stamp = cells[0].strip()
            ts = _timestamp(stamp[:10], stamp[11:], tz)
            o, h = _price(cells[1], "Open"), _price(cells[2], "High")
            low, c = _price(cells[3], "Low"), _price(cells[4], "Close")
            _check_ohlc(o, h, low, c)
            volume = _volume(cells[5].strip(), "Volume")
            order.check(ts, number)
        except RowError as exc:
            _quarantine(quarantine, name, number, exc, raw)
            continue
        yield Bar(symbol=symbol, timeframe=timeframe, ts=ts, open=o, high=h, low=low, close=c, volume=volume)


class DemoDataMissing(FileNotFoundError):
    """The demo market data (the ``backtesting`` package's CSV files) is not installed."""


DEMO_DATA_HINT = (
    "the demo market data (real EURUSD/GOOG bars) comes from the `backtesting` package (AGPL-3.0), "
    "which is not part of the runtime requirements: pip install -r requirements/demo.txt "
    "(scripts/run.sh and requirements/dev.txt include it), or replay your own data with "
    "--source mt5-bars/mt5-ticks --file ... or --source synthetic"
)


def backtesting_path(dataset: str = "EURUSD"):
    """The packaged CSV of the ``backtesting`` distribution (a Traversable), pinned in
    ``requirements/demo.txt``. Raises ``DemoDataMissing`` (saying what to install) without it."""
    try:
        filename = BACKTESTING_DATASETS[dataset.upper()][0]
    except KeyError:
        raise ValueError(f"unknown dataset {dataset!r}; known: {', '.join(BACKTESTING_DATASETS)}") from None
    spec = importlib.util.find_spec("backtesting")
    if spec is None:
        raise DemoDataMissing(DEMO_DATA_HINT)
    # An unexecuted module object is enough for importlib.resources; importing backtesting itself
    # would pull in bokeh and pandas plotting (about 2 s) just to find a CSV file.
    return importlib.resources.files(importlib.util.module_from_spec(spec)).joinpath("test", filename)


def backtesting_bars(dataset: str = "EURUSD", *, quarantine: Quarantine | None = None) -> Iterator[Bar]:
    """The real bars the ``backtesting`` package ships: EURUSD H1 (2017-2018) or GOOG D1 (2004-2013)."""
    _, symbol, timeframe = BACKTESTING_DATASETS[dataset.upper()]
    with backtesting_path(dataset).open("rb") as handle:
        yield from read_ohlc_csv(handle, symbol=symbol, timeframe=timeframe, quarantine=quarantine)


@dataclass(frozen=True)
class DatasetRead:
    """A dataset's bars read once, in order, and the rows its reader set aside (``set_aside``,
    to be added to the quarantine of whoever replays them: none is lost by reading once)."""

    dataset: str
    bars: tuple[Bar, ...]
    set_aside: tuple[QuarantinedRow, ...] = ()


def backtesting_bars_read(dataset: str = "EURUSD") -> DatasetRead:
    """``backtesting_bars(dataset)`` read whole, once (~20-25 ms and 5,000 ``Bar`` for EURUSD), for
    callers that each need it: the embedded run's replay plan, its features' warm-up and its source
    (``workers.replay_checkpoint``; until 2026-12-06 each parsed the file again)."""
    aside = Quarantine(keep=1 << 30)  # in memory, every row: the caller's quarantine gets them all
    bars = tuple(backtesting_bars(dataset, quarantine=aside))
    return DatasetRead(dataset=dataset.upper(), bars=bars, set_aside=tuple(aside.rows))


# ---------------------------------------------------------------- MT5 exports


def _split_header(name: str, header: str | None, expected: tuple[str, ...], kind: str) -> list[str]:
    header = _printable(header) if header is not None else None
    columns = (header or "").strip().split("\t")
    if columns == list(expected) or (kind == "bars" and columns == [c for c in expected if c != "<TIME>"]):
        return columns
    raise FileFormatError(name, 1, f"expected the MT5 {kind} header {' '.join(expected)}, got {header!r}")


def read_mt5_bars(
    source: str | Path | IO,
    *,
    symbol: str,
    timeframe: str,
    point: Decimal | None = None,
    tz: tzinfo = UTC,
    quarantine: Quarantine | None = None,
) -> Iterator[Bar]:
    """Bars from an MT5 bar export (tab-separated, server time ``tz``)."""
    name, lines = _open_text(source)
    columns = _split_header(name, next(lines, None), MT5_BAR_HEADER, "bars")
    has_time = "<TIME>" in columns
    width = len(columns)
    order = _Order()
    for number, raw in enumerate(lines, start=2):
        if not raw.strip():
            continue
        try:
            _check_text(raw)
            cells = raw.rstrip("\r\n").split("\t")
            if len(cells) != width:
                raise RowError(f"column_count: expected {width} tab-separated columns, got {len(cells)}")
            if not has_time:
                cells.insert(1, "")
            ts = _timestamp(cells[0], cells[1], tz)
            o, h = _price(cells[2], "<OPEN>"), _price(cells[3], "<HIGH>")
            low, c = _price(cells[4], "<LOW>"), _price(cells[5], "<CLOSE>")
            _check_ohlc(o, h, low, c)
            tick_volume = _volume(cells[6], "<TICKVOL>")
            spread_points = _volume(cells[8], "<SPREAD>")
            order.check(ts, number)
        except RowError as exc:
            _quarantine(quarantine, name, number, exc, raw)
            continue
        yield Bar(
            symbol=symbol,
            timeframe=timeframe,
            ts=ts,
            open=o,
            high=h,
            low=low,
            close=c,
            volume=tick_volume,
            spread=spread_points * point if point is not None else None,
        )


def read_mt5_ticks(
    source: str | Path | IO,
    *,
    symbol: str,
    tz: tzinfo = UTC,
    quarantine: Quarantine | None = None,
) -> Iterator[Tick]:
    """Ticks from an MT5 tick export. Empty BID/ASK carry the previous value forward; a row
    before the first full quote, or identical to the previous row, is quarantined."""
    name, lines = _open_text(source)
    _split_header(name, next(lines, None), MT5_TICK_HEADER, "ticks")
    order = _Order()
    bid = ask = None
    previous_cells: list[str] | None = None
    for number, raw in enumerate(lines, start=2):
        if not raw.strip():
            continue
        try:
            _check_text(raw)
            cells = raw.rstrip("\r\n").split("\t")
            if len(cells) != 7:
                raise RowError(f"column_count: expected 7 tab-separated columns, got {len(cells)}")
            ts = _timestamp(cells[0], cells[1], tz)
            new_bid = _price(cells[2], "<BID>") if cells[2] else bid
            new_ask = _price(cells[3], "<ASK>") if cells[3] else ask
            last = _price(cells[4], "<LAST>") if cells[4] else None
            volume = _volume(cells[5], "<VOLUME>")
            if new_bid is None or new_ask is None:
                raise RowError("no_quote_yet: bid and ask are not both known before this row")
            if cells == previous_cells:
                raise RowError(f"duplicate_row: identical to line {order.previous_line}")
            order.check(ts, number, allow_equal=True)  # several ticks in one millisecond are normal
        except RowError as exc:
            _quarantine(quarantine, name, number, exc, raw)
            continue
        previous_cells = cells
        bid, ask = new_bid, new_ask
        yield Tick(symbol=symbol, bid=bid, ask=ask, ts=ts, last=last, volume=volume)


# ---------------------------------------------------------------- bars as ticks


def bars_as_ticks(bars: Iterable[Bar], *, spread: Decimal) -> Iterator[Tick]:
    """Four ticks per bar: the open at the bar's start, the extreme the bar more likely reached
    first at one third, the other extreme at two thirds, and the close one second before the
    bar ends (it is the last price of the bar); bid = price, ask = price + ``spread``. A
    stand-in for a tick stream when only bars exist; say so wherever the result is shown."""
    offsets_cache: dict[str, tuple[timedelta, ...]] = {}
    for bar in bars:
        offsets = offsets_cache.get(bar.timeframe)
        if offsets is None:
            length = BAR_SECONDS[bar.timeframe]
            offsets = (timedelta(0), timedelta(seconds=length / 3), timedelta(seconds=2 * length / 3))
            offsets = offsets_cache.setdefault(bar.timeframe, (*offsets, timedelta(seconds=length - 1)))
        if bar.close >= bar.open:  # an up bar more likely dipped first
            path = (bar.open, bar.low, bar.high, bar.close)
        else:
            path = (bar.open, bar.high, bar.low, bar.close)
        volume = bar.volume / 4
        for offset, price in zip(offsets, path, strict=True):
            yield Tick(symbol=bar.symbol, bid=price, ask=price + spread, ts=bar.ts + offset, volume=volume)


# ---------------------------------------------------------------- synthetic


@dataclass(frozen=True)
class Regime:
    name: str
    volatility_points: float  # standard deviation of the mid's move per tick, in points
    drift_points: float = 0.0  # mean move per tick, in points
    spread_points: int = 8
    mean_interval: float = 0.5  # seconds between ticks
    persistence: float = 0.999  # probability of staying in the regime at each tick


DEFAULT_REGIMES = (
    Regime("calm", volatility_points=1.5, spread_points=8, mean_interval=0.8),
    Regime("trending_up", volatility_points=2.0, drift_points=0.4, spread_points=9, mean_interval=0.4),
    Regime("trending_down", volatility_points=2.0, drift_points=-0.4, spread_points=9, mean_interval=0.4),
    Regime("volatile", volatility_points=6.0, spread_points=20, mean_interval=0.2, persistence=0.995),
)


def synthetic_ticks(
    symbol: str = "EURUSD",
    *,
    seed: int = 0,
    count: int = 10_000,
    start: datetime = datetime(2026, 1, 5, 0, 0, tzinfo=UTC),
    price: Decimal = Decimal("1.10000"),
    digits: int = 5,
    regimes: tuple[Regime, ...] = DEFAULT_REGIMES,
    gap_probability: float = 0.0005,
    gap_seconds: tuple[float, float] = (60.0, 1800.0),
    gap_jump_sigmas: float = 8.0,
    trading_hours: dict | None = None,
) -> Iterator[Tick]:
    """A seeded random walk with regime switching (calm, trending, volatile: volatility, drift,
    spread and tick rate change together) and gaps (the feed goes silent for a while and the
    price jumps when it returns). Outside ``trading_hours`` no ticks are produced (weekends).
    The same seed always yields the same ticks."""
    if price <= 0:
        raise ValueError("price must be positive")
    rng = random.Random(seed)  # noqa: S311 - a seeded synthetic feed, the same for the same seed
    hours = compile_hours(trading_hours or {})
    scale = 10**digits
    mid = float(price) * scale  # in points
    regime = regimes[0]
    ts = start
    produced = 0
    while produced < count:
        if rng.random() > regime.persistence:
            regime = rng.choice(regimes)
        step = rng.expovariate(1.0 / regime.mean_interval)
        move = rng.gauss(regime.drift_points, regime.volatility_points)
        if rng.random() < gap_probability:
            step += rng.uniform(*gap_seconds)
            move += rng.choice((-1, 1)) * gap_jump_sigmas * regime.volatility_points
        ts = ts + timedelta(microseconds=max(1, int(step * 1e6)))
        if hours and not is_open(hours, ts):
            ts = ts + timedelta(minutes=5)  # walk through the closed session without ticking
            continue
        mid = max(mid + move, 10 * regime.spread_points)
        half = regime.spread_points / 2
        bid_points = int(mid - half)
        yield Tick(
            symbol=symbol,
            bid=Decimal(bid_points).scaleb(-digits),
            ask=Decimal(bid_points + regime.spread_points).scaleb(-digits),
            ts=ts,
            volume=Decimal(rng.randint(1, 10)),
        )
        produced += 1


def synthetic_bars(ticks: Iterable[Tick], *, timeframe: str = "M1") -> Iterator[Bar]:
    """Aggregate ticks (mid prices) into bars of ``timeframe``; empty periods produce no bar."""
    seconds = BAR_SECONDS[timeframe]
    current: list | None = None
    for tick in ticks:
        epoch = int(tick.ts.timestamp())
        bucket = datetime.fromtimestamp(epoch - epoch % seconds, UTC)
        mid = (tick.bid + tick.ask) / 2
        if current is None or current[0] != bucket:
            if current is not None:
                yield _bar_of(current, timeframe)
            current = [bucket, tick.symbol, mid, mid, mid, mid, ZERO]
        else:
            current[3] = max(current[3], mid)
            current[4] = min(current[4], mid)
            current[5] = mid
        current[6] += tick.volume
    if current is not None:
        yield _bar_of(current, timeframe)


def _bar_of(row: list, timeframe: str) -> Bar:
    ts, symbol, o, h, low, c, volume = row
    return Bar(symbol=symbol, timeframe=timeframe, ts=ts, open=o, high=h, low=low, close=c, volume=volume)


# ---------------------------------------------------------------- pacing


def paced(
    items: Iterable[T],
    *,
    speed: float | None,
    ts: Callable[[T], datetime] = lambda item: item.ts,
    monotonic: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    max_sleep: float = 5.0,
) -> Iterator[T]:
    """Replay at ``speed`` times real time (1.0 = as it happened); None or 0 = as fast as possible.

    Sleeps are capped at ``max_sleep`` seconds so a weekend in the data does not stall a demo."""
    if not speed:
        yield from items
        return
    origin_source = origin_wall = None
    for item in items:
        when = ts(item)
        if origin_source is None:
            origin_source, origin_wall = when, monotonic()
        due = (when - origin_source).total_seconds() / speed
        delay = due - (monotonic() - origin_wall)
        if delay > 0:
            sleep(min(delay, max_sleep))
            if delay > max_sleep:
                origin_wall -= delay - max_sleep  # skip the rest of a long silence
        yield item
