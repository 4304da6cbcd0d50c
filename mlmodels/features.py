"""Streaming features and their batch twin. Pure: no Django, no I/O, no clock.

One ``SymbolFeatureState`` per symbol consumes completed bars and keeps O(1) state per bar
(fixed-size windows with running sums, exponential averages), so the cost of an update does
not grow with the length of the stream. ``batch_features`` computes the same columns with
pandas over a whole history; the training sets are built with it, and the tests prove both
agree to floating tolerance on the shipped real EURUSD bars, so training and serving cannot
drift apart.

Every feature at bar t uses bars <= t only (no look-ahead; a test perturbs the future and
checks the past does not move). A feature vector is stamped with the bar's *close* time, the
moment its information exists.

Spread and tick rate: a bar carries the mean spread and the tick count of its period (MT5
``tick_volume``; the tick aggregator below fills both when bars are built from ticks). When
a source has no spread the spread features are 0 / 1 (neutral).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np

from tradeops.events import BAR_SECONDS

if TYPE_CHECKING:  # pandas only for the batch twin (training, tests): serving never loads it (~0.6 s)
    import pandas as pd

RETURN_HORIZONS = (1, 4, 12, 24)
VOL_WINDOW = 24
RSI_PERIOD = 14
MACD_FAST, MACD_SLOW, MACD_SIGNAL = 12, 26, 9
ATR_PERIOD = 14
BOLL_WINDOW = 20
ACTIVITY_WINDOW = 24  # spread and tick-rate baselines
# A vector is only emitted once every window is full and the EMAs have had time to settle.
WARMUP_BARS = 50

FEATURE_NAMES: tuple[str, ...] = (
    *(f"ret_{h}" for h in RETURN_HORIZONS),
    f"vol_{VOL_WINDOW}",
    f"rsi_{RSI_PERIOD}",
    "macd_rel",
    "macd_hist_rel",
    f"atr_{ATR_PERIOD}_rel",
    f"boll_z_{BOLL_WINDOW}",
    "spread_bps",
    "spread_ratio",
    "tick_rate",
    "tick_rate_rel",
    "tod_sin",
    "tod_cos",
)
FEATURE_SET = "bars-v1"
# The names as ``update`` writes them, formatted once rather than on every bar.
# The four returns ``fold`` writes: each one's name and the index of the close it looks back to.
(_RET_A, _LAG_A), (_RET_B, _LAG_B), (_RET_C, _LAG_C), (_RET_D, _LAG_D) = ((f"ret_{h}", -1 - h) for h in RETURN_HORIZONS)
_VOL, _RSI, _ATR, _BOLL = f"vol_{VOL_WINDOW}", f"rsi_{RSI_PERIOD}", f"atr_{ATR_PERIOD}_rel", f"boll_z_{BOLL_WINDOW}"

# The timeframes the feature set is defined on (no weekly bars).
TIMEFRAMES: dict[str, timedelta] = {
    name: timedelta(seconds=BAR_SECONDS[name]) for name in ("M1", "M5", "M15", "M30", "H1", "H4", "D1")
}


def timeframe_delta(timeframe: str) -> timedelta:
    try:
        return TIMEFRAMES[timeframe]
    except KeyError:
        raise ValueError(f"unknown timeframe {timeframe!r}; known: {', '.join(TIMEFRAMES)}") from None


# ---------------------------------------------------------------- O(1) building blocks


class RollingMoments:
    """Mean and variance over the last ``n`` values, updated in O(1) (Welford's sliding update).

    The running sums are recomputed from the window every ``50 * n`` updates (amortised O(1))
    so rounding error cannot accumulate over a long stream."""

    __slots__ = ("n", "values", "mean", "m2", "_since_exact")

    def __init__(self, n: int):
        self.n = n
        self.values: deque[float] = deque(maxlen=n)
        self.mean = 0.0
        self.m2 = 0.0
        self._since_exact = 0

    def push(self, x: float) -> None:
        values = self.values
        if len(values) < self.n:
            values.append(x)
            k = len(values)
            delta = x - self.mean
            self.mean += delta / k
            self.m2 += delta * (x - self.mean)
            return
        old = values[0]
        values.append(x)  # evicts ``old``
        old_mean = self.mean
        self.mean = old_mean + (x - old) / self.n
        self.m2 += (x - old) * (x - self.mean + old - old_mean)
        self._since_exact += 1
        if self._since_exact >= 50 * self.n:
            self._since_exact = 0
            self.mean = math.fsum(values) / self.n
            self.m2 = math.fsum((v - self.mean) ** 2 for v in values)

    @property
    def full(self) -> bool:
        return len(self.values) == self.n

    def std(self, ddof: int) -> float:
        return math.sqrt(max(self.m2, 0.0) / (self.n - ddof))


class Ewm:
    """pandas ``ewm(alpha=..., adjust=False)`` seeded with the first value."""

    __slots__ = ("alpha", "value")

    def __init__(self, *, alpha: float):
        self.alpha = alpha
        self.value: float | None = None

    def push(self, x: float) -> float:
        self.value = x if self.value is None else self.value + self.alpha * (x - self.value)
        return self.value


# ---------------------------------------------------------------- streaming


@dataclass(frozen=True, slots=True)
class BarInput:
    """A completed bar as the feature state sees it (floats: features are statistics)."""

    open_time: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float = 0.0  # tick count of the period
    spread: float = 0.0  # mean spread in price units; 0 when unknown


@dataclass(slots=True)
class SymbolFeatureState:
    """Incremental feature state for one symbol and timeframe. ``update`` is O(1) per bar."""

    timeframe_minutes: float
    bars: int = 0
    closes: deque = field(default_factory=lambda: deque(maxlen=max(RETURN_HORIZONS) + 1))
    rets: RollingMoments = field(default_factory=lambda: RollingMoments(VOL_WINDOW))
    boll: RollingMoments = field(default_factory=lambda: RollingMoments(BOLL_WINDOW))
    gain: Ewm = field(default_factory=lambda: Ewm(alpha=1 / RSI_PERIOD))
    loss: Ewm = field(default_factory=lambda: Ewm(alpha=1 / RSI_PERIOD))
    ema_fast: Ewm = field(default_factory=lambda: Ewm(alpha=2 / (MACD_FAST + 1)))
    ema_slow: Ewm = field(default_factory=lambda: Ewm(alpha=2 / (MACD_SLOW + 1)))
    ema_signal: Ewm = field(default_factory=lambda: Ewm(alpha=2 / (MACD_SIGNAL + 1)))
    atr: Ewm = field(default_factory=lambda: Ewm(alpha=1 / ATR_PERIOD))
    volume: RollingMoments = field(default_factory=lambda: RollingMoments(ACTIVITY_WINDOW))
    spread: RollingMoments = field(default_factory=lambda: RollingMoments(ACTIVITY_WINDOW))

    def update(self, bar: BarInput) -> dict[str, float] | None:
        """Fold one completed bar in; return the feature vector, or None while warming up."""
        return self.fold(bar.open_time, bar.high, bar.low, bar.close, bar.volume, bar.spread)

    def fold(
        self, open_time: datetime, high: float, low: float, close: float, volume: float, spread: float
    ) -> dict[str, float] | None:
        """``update`` on the bar's fields (the open is not a feature's input): what the feature
        stage calls with a bar event's values, without building a ``BarInput`` for each.

        The exponential averages are pushed inline (``Ewm.push``'s expression on the same floats)
        and the vector is one dict display in ``FEATURE_NAMES`` order: each expression is the
        one it replaces, so every value is the same float (``tests/mlmodels/test_features.py``
        holds the stream to the batch twin, and the shipped bars' vectors were compared as hex)."""
        closes = self.closes
        prev_close = closes[-1] if closes else None
        closes.append(close)
        self.bars += 1
        if prev_close is not None:
            self.rets.push(math.log(close / prev_close))
            delta = close - prev_close
            gain = self.gain
            x = delta if delta > 0 else 0.0
            gain.value = x if gain.value is None else gain.value + gain.alpha * (x - gain.value)
            loss = self.loss
            x = -delta if delta < 0 else 0.0
            loss.value = x if loss.value is None else loss.value + loss.alpha * (x - loss.value)
            true_range = max(high - low, abs(high - prev_close), abs(low - prev_close))
        else:
            true_range = high - low
        atr = self.atr
        atr.value = true_range if atr.value is None else atr.value + atr.alpha * (true_range - atr.value)
        ema = self.ema_fast
        fast = ema.value = close if ema.value is None else ema.value + ema.alpha * (close - ema.value)
        ema = self.ema_slow
        slow = ema.value = close if ema.value is None else ema.value + ema.alpha * (close - ema.value)
        macd = fast - slow
        ema = self.ema_signal
        signal = ema.value = macd if ema.value is None else ema.value + ema.alpha * (macd - ema.value)
        boll = self.boll
        boll.push(close)
        activity = self.volume
        activity.push(volume)
        spreads = self.spread
        spreads.push(spread)
        if self.bars < WARMUP_BARS:
            return None

        gain, loss = self.gain.value, self.loss.value
        std = boll.std(ddof=0)
        spread_mean = spreads.mean
        day_fraction = (open_time.hour * 60 + open_time.minute) / 1440.0
        return {
            _RET_A: math.log(close / closes[_LAG_A]),
            _RET_B: math.log(close / closes[_LAG_B]),
            _RET_C: math.log(close / closes[_LAG_C]),
            _RET_D: math.log(close / closes[_LAG_D]),
            _VOL: self.rets.std(ddof=1),
            _RSI: 50.0 if gain + loss == 0 else 100.0 * gain / (gain + loss),
            "macd_rel": macd / close,
            "macd_hist_rel": (macd - signal) / close,
            _ATR: atr.value / close,
            _BOLL: 0.0 if std == 0 else (close - boll.mean) / std,
            "spread_bps": spread / close * 1e4,
            "spread_ratio": spread / spread_mean if spread_mean > 0 else 1.0,
            "tick_rate": volume / self.timeframe_minutes,
            "tick_rate_rel": math.log((volume + 1.0) / (activity.mean + 1.0)),
            "tod_sin": math.sin(2 * math.pi * day_fraction),
            "tod_cos": math.cos(2 * math.pi * day_fraction),
        }


@dataclass(slots=True)
class TickBarAggregator:
    """Builds bars of one timeframe from ticks (mid prices) for one symbol.

    ``push`` returns the bar that a tick in a new period closed, or None. Ticks older than the
    open period are ignored (the market monitor flags them; a bar is never reopened)."""

    period: timedelta
    start: datetime | None = None
    open: float = 0.0
    high: float = 0.0
    low: float = 0.0
    close: float = 0.0
    ticks: int = 0
    spread_sum: float = 0.0

    def _floor(self, ts: datetime) -> datetime:
        seconds = int(self.period.total_seconds())
        epoch = int(ts.timestamp())
        return datetime.fromtimestamp(epoch - epoch % seconds, tz=ts.tzinfo)

    def push(self, ts: datetime, mid: float, spread: float) -> BarInput | None:
        bucket = self._floor(ts)
        closed = None
        if self.start is not None and bucket < self.start:
            return None
        if self.start is not None and bucket > self.start:
            closed = self.flush()
        if self.start is None:
            self.start, self.open, self.high, self.low = bucket, mid, mid, mid
            self.ticks, self.spread_sum = 0, 0.0
        self.high = max(self.high, mid)
        self.low = min(self.low, mid)
        self.close = mid
        self.ticks += 1
        self.spread_sum += spread
        return closed

    def flush(self) -> BarInput | None:
        if self.start is None:
            return None
        bar = BarInput(
            open_time=self.start,
            open=self.open,
            high=self.high,
            low=self.low,
            close=self.close,
            volume=float(self.ticks),
            spread=self.spread_sum / self.ticks,
        )
        self.start = None
        return bar


# ---------------------------------------------------------------- batch twin


def batch_features(bars: pd.DataFrame, *, timeframe: str = "H1") -> pd.DataFrame:
    """The batch twin of ``SymbolFeatureState``: one row per bar after the warm-up.

    ``bars``: indexed by bar open time (ascending), columns Open, High, Low, Close and
    optionally Volume (tick count) and Spread (price units). Returns a frame indexed like the
    input (minus the first ``WARMUP_BARS - 1`` rows) with ``FEATURE_NAMES`` as columns.
    Row t uses rows <= t only."""
    import pandas as pd

    close = bars["Close"].astype(float)
    high = bars["High"].astype(float)
    low = bars["Low"].astype(float)
    volume = bars["Volume"].astype(float) if "Volume" in bars else pd.Series(0.0, index=bars.index)
    spread = bars["Spread"].astype(float).fillna(0.0) if "Spread" in bars else pd.Series(0.0, index=bars.index)
    minutes = timeframe_delta(timeframe).total_seconds() / 60.0

    out = pd.DataFrame(index=bars.index)
    log_close = np.log(close)
    for h in RETURN_HORIZONS:
        out[f"ret_{h}"] = log_close - log_close.shift(h)
    r1 = log_close - log_close.shift(1)
    out[f"vol_{VOL_WINDOW}"] = r1.rolling(VOL_WINDOW).std(ddof=1)
    delta = close.diff()
    gain = delta.clip(lower=0).ewm(alpha=1 / RSI_PERIOD, adjust=False).mean()
    loss = (-delta).clip(lower=0).ewm(alpha=1 / RSI_PERIOD, adjust=False).mean()
    total = gain + loss
    out[f"rsi_{RSI_PERIOD}"] = np.where(total == 0, 50.0, 100.0 * gain / total.where(total != 0, 1.0))
    macd = close.ewm(span=MACD_FAST, adjust=False).mean() - close.ewm(span=MACD_SLOW, adjust=False).mean()
    signal = macd.ewm(span=MACD_SIGNAL, adjust=False).mean()
    out["macd_rel"] = macd / close
    out["macd_hist_rel"] = (macd - signal) / close
    prev_close = close.shift(1)
    true_range = pd.concat([high - low, (high - prev_close).abs(), (low - prev_close).abs()], axis=1).max(axis=1)
    out[f"atr_{ATR_PERIOD}_rel"] = true_range.ewm(alpha=1 / ATR_PERIOD, adjust=False).mean() / close
    mean = close.rolling(BOLL_WINDOW).mean()
    std = close.rolling(BOLL_WINDOW).std(ddof=0)
    out[f"boll_z_{BOLL_WINDOW}"] = np.where(std == 0, 0.0, (close - mean) / std.where(std != 0, 1.0))
    out["spread_bps"] = spread / close * 1e4
    spread_mean = spread.rolling(ACTIVITY_WINDOW).mean()
    out["spread_ratio"] = np.where(spread_mean > 0, spread / spread_mean.where(spread_mean > 0, 1.0), 1.0)
    out["tick_rate"] = volume / minutes
    out["tick_rate_rel"] = np.log((volume + 1.0) / (volume.rolling(ACTIVITY_WINDOW).mean() + 1.0))
    index = pd.DatetimeIndex(bars.index)
    day_fraction = (index.hour * 60 + index.minute) / 1440.0
    out["tod_sin"] = np.sin(2 * np.pi * day_fraction)
    out["tod_cos"] = np.cos(2 * np.pi * day_fraction)
    return out.iloc[WARMUP_BARS - 1 :][list(FEATURE_NAMES)]


def stream_features(bars: pd.DataFrame, *, timeframe: str = "H1") -> pd.DataFrame:
    """Run the streaming state over a frame (tests and the benchmark compare it with the batch twin)."""
    import pandas as pd

    state = SymbolFeatureState(timeframe_minutes=timeframe_delta(timeframe).total_seconds() / 60.0)
    has_volume, has_spread = "Volume" in bars, "Spread" in bars
    rows, index = [], []
    for ts, row in zip(bars.index, bars.itertuples(index=False), strict=True):
        bar = BarInput(
            open_time=ts.to_pydatetime(),
            open=float(row.Open),
            high=float(row.High),
            low=float(row.Low),
            close=float(row.Close),
            volume=float(row.Volume) if has_volume else 0.0,
            spread=float(row.Spread) if has_spread and row.Spread == row.Spread else 0.0,
        )
        values = state.update(bar)
        if values is not None:
            rows.append([values[name] for name in FEATURE_NAMES])
            index.append(ts)
    return pd.DataFrame(rows, index=pd.DatetimeIndex(index, name=bars.index.name), columns=list(FEATURE_NAMES))
