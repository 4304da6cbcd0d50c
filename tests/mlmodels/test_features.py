"""Streaming features equal their batch twin; no feature ever sees the future."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlmodels.features import FEATURE_NAMES, WARMUP_BARS, batch_features, stream_features
from mlmodels.handlers import FeatureHandler
from mlmodels.training import training_set_build, walk_forward_splits
from tradeops.events import Bar, Features, Tick, make_event


@pytest.fixture(scope="module")
def both(real_bars_with_spread):
    return batch_features(real_bars_with_spread), stream_features(real_bars_with_spread)


@pytest.mark.parametrize("name", FEATURE_NAMES)
def test_streaming_equals_batch_on_real_eurusd(both, name):
    batch, stream = both
    assert len(batch) == len(stream) == 5000 - WARMUP_BARS + 1
    assert (batch.index == stream.index).all()
    assert batch[name].notna().all()
    assert batch[name].std() > 0, f"{name} is constant on real data: the comparison would prove nothing"
    np.testing.assert_allclose(stream[name].to_numpy(), batch[name].to_numpy(), rtol=1e-7, atol=1e-12)


def _random_bars(seed: int, n: int, flat: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    steps = np.zeros(n) if flat else rng.normal(0, 0.001, n)
    close = 1.1 * np.exp(np.cumsum(steps))
    open_ = np.r_[close[0], close[:-1]]
    wiggle = np.abs(rng.normal(0, 0.0005, n))
    index = pd.date_range("2024-01-01 00:00", periods=n, freq="h", tz="UTC")
    return pd.DataFrame(
        {
            "Open": open_,
            "High": np.maximum(open_, close) + wiggle,
            "Low": np.minimum(open_, close) - wiggle,
            "Close": close,
            "Volume": rng.integers(0, 500, n).astype(float),
            "Spread": rng.choice([0.0, 0.0001, 0.0002], n),
        },
        index=index,
    )


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(WARMUP_BARS, 140), flat=st.booleans())
def test_streaming_equals_batch_on_any_bar_sequence(seed, n, flat):
    """Including flat markets (zero variance, zero RSI denominators) and zero spreads/volumes."""
    bars = _random_bars(seed, n, flat)
    batch, stream = batch_features(bars), stream_features(bars)
    assert batch.shape == stream.shape == (n - WARMUP_BARS + 1, len(FEATURE_NAMES))
    np.testing.assert_allclose(stream.to_numpy(), batch.to_numpy(), rtol=1e-7, atol=1e-9)


def test_no_feature_sees_the_future(real_bars_with_spread):
    """Scramble everything after bar t: the features of bars <= t do not move (batch and streaming)."""
    bars = real_bars_with_spread.iloc[:400]
    t = 250
    scrambled = bars.astype(float)
    rng = np.random.default_rng(11)
    for column in scrambled.columns:
        scrambled.iloc[t + 1 :, scrambled.columns.get_loc(column)] *= rng.uniform(0.5, 1.5, len(bars) - t - 1)
    cut = bars.index[t]
    for compute in (batch_features, stream_features):
        original, changed = compute(bars), compute(scrambled)
        pd.testing.assert_frame_equal(original.loc[:cut], changed.loc[:cut])
        assert not original.loc[cut:].iloc[1:].equals(changed.loc[cut:].iloc[1:])  # the scramble did bite


def test_training_rows_use_only_the_past_and_label_only_the_future(real_bars):
    data = training_set_build(real_bars.iloc[:300], horizon=3)
    close = real_bars["Close"]
    for i in (0, 57, len(data.y) - 1):
        t = data.times[i]
        prefix = batch_features(real_bars.loc[:t])  # features recomputed with nothing after t
        np.testing.assert_array_equal(data.X[i], prefix.iloc[-1].to_numpy())
        pos = close.index.get_loc(t)
        assert data.y[i] == int(close.iloc[pos + 3] > close.iloc[pos])
    assert data.times[-1] <= close.index[300 - 1 - 3]  # rows without a known future are left out


@pytest.mark.parametrize("n_folds,gap", [(3, 1), (5, 4)])
def test_walk_forward_folds_train_strictly_before_test(n_folds, gap):
    splits = list(walk_forward_splits(1000, n_folds=n_folds, gap=gap))
    assert len(splits) == n_folds
    previous_end = None
    for train, test in splits:
        assert train.max() + gap < test.min()
        assert previous_end is None or test.min() == previous_end
        previous_end = test.max() + 1
    assert previous_end == 1000


def _bar_events(bars: pd.DataFrame):
    for ts, row in bars.iterrows():
        bar = Bar(
            symbol="EURUSD",
            timeframe="H1",
            ts=ts.to_pydatetime(),
            open=Decimal(str(row.Open)),
            high=Decimal(str(row.High)),
            low=Decimal(str(row.Low)),
            close=Decimal(str(row.Close)),
            volume=Decimal(int(row.Volume)),
        )
        yield make_event(bar, source="test", key="EURUSD")


def test_feature_handler_on_bars_matches_batch_and_stamps_the_close_time(real_bars):
    bars = real_bars.iloc[:120]
    handler = FeatureHandler(timeframe="H1")
    out = [e for event in _bar_events(bars) for e in handler.handle(event)]
    batch = batch_features(bars)
    assert len(out) == len(batch)
    first = out[0].payload
    assert isinstance(first, Features) and out[0].topic == "feature-events" and out[0].key == "EURUSD"
    assert first.ts == batch.index[0].to_pydatetime() + timedelta(hours=1)  # known at the bar's close
    assert first.price == Decimal(str(bars["Close"].iloc[WARMUP_BARS - 1]))
    got = np.array([[e.payload.values[n] for n in FEATURE_NAMES] for e in out])
    np.testing.assert_allclose(got, batch.to_numpy(), rtol=1e-7, atol=1e-12)
    m5 = make_event(
        Bar(
            symbol="EURUSD",
            timeframe="M5",
            ts=datetime(2024, 1, 1, tzinfo=UTC),
            open=Decimal(1),
            high=Decimal(1),
            low=Decimal(1),
            close=Decimal(1),
        ),
        source="test",
        key="EURUSD",
    )
    assert handler.handle(m5) == []  # other timeframes are not this stage's


def test_a_handler_warmed_with_the_bars_before_gives_what_one_handler_for_all_of_them_gives(real_bars):
    """A replay that resumes (workers.replay_checkpoint) folds the bars earlier runs replayed into
    a fresh handler: its vectors from the next bar on equal a single handler's."""
    events = list(_bar_events(real_bars.iloc[:150]))
    single = [out.payload for out in _all(FeatureHandler(timeframe="H1"), events)]
    warmed = FeatureHandler(timeframe="H1")
    assert warmed.warm(event.payload for event in events[:100]) == 100
    resumed = [out.payload for out in _all(warmed, events[100:])]
    assert len(resumed) == 50 and resumed == single[-50:]


def _all(handler, events):
    return [out for event in events for out in handler.handle(event)]


def test_ticks_build_the_same_bars_and_features_as_batch():
    """Ticks -> bars (mid, tick count, mean spread) -> features == batch twin of those bars;
    flagged ticks never enter a bar."""
    rng = np.random.default_rng(5)
    handler = FeatureHandler(timeframe="M5")
    start = datetime(2024, 3, 4, tzinfo=UTC)
    rows, out, mid = [], [], Decimal("1.08000")
    for bar_no in range(80):
        bar_start = start + timedelta(minutes=5 * bar_no)
        n_ticks = int(rng.integers(2, 6))
        mids, spreads = [], []
        for k in range(n_ticks):
            mid += Decimal(int(rng.integers(-20, 21))) / Decimal(100000)
            spread = Decimal(int(rng.integers(1, 4))) / Decimal(100000)
            ts = bar_start + timedelta(seconds=30 * k + 1)
            tick = Tick(symbol="EURUSD", bid=mid - spread / 2, ask=mid + spread / 2, ts=ts)
            out += handler.handle(make_event(tick, source="test", key="EURUSD"))
            bad = Tick(symbol="EURUSD", bid=mid * 2, ask=mid * 2, ts=ts, flags=("spike",))
            out += handler.handle(make_event(bad, source="test", key="EURUSD"))
            mids.append(float(mid))
            spreads.append(float(spread))
        rows.append((bar_start, mids[0], max(mids), min(mids), mids[-1], float(n_ticks), float(np.mean(spreads))))
    bars = pd.DataFrame(rows, columns=["ts", "Open", "High", "Low", "Close", "Volume", "Spread"]).set_index("ts")
    batch = batch_features(bars.iloc[:-1], timeframe="M5")  # the last bar is still open
    assert len(out) == len(batch)
    got = np.array([[e.payload.values[n] for n in FEATURE_NAMES] for e in out])
    np.testing.assert_allclose(got, batch.to_numpy(), rtol=1e-7, atol=1e-12)
    assert out[-1].payload.ts == bars.index[-1].to_pydatetime()  # the close of the last completed bar


def _update_by_blocks(state, bar):
    """``SymbolFeatureState.update`` as it was written before its pushes were inlined: every
    average through ``Ewm.push``, the vector one key at a time (the reference for the test below)."""
    import math

    close = bar.close
    prev_close = state.closes[-1] if state.closes else None
    state.closes.append(close)
    state.bars += 1
    if prev_close is not None:
        state.rets.push(math.log(close / prev_close))
        delta = close - prev_close
        state.gain.push(delta if delta > 0 else 0.0)
        state.loss.push(-delta if delta < 0 else 0.0)
        true_range = max(bar.high - bar.low, abs(bar.high - prev_close), abs(bar.low - prev_close))
    else:
        true_range = bar.high - bar.low
    state.atr.push(true_range)
    macd = state.ema_fast.push(close) - state.ema_slow.push(close)
    signal = state.ema_signal.push(macd)
    state.boll.push(close)
    state.volume.push(bar.volume)
    state.spread.push(bar.spread)
    if state.bars < WARMUP_BARS:
        return None
    values = {}
    for h in (1, 4, 12, 24):
        values[f"ret_{h}"] = math.log(close / state.closes[-1 - h])
    values["vol_24"] = state.rets.std(ddof=1)
    gain, loss = state.gain.value, state.loss.value
    values["rsi_14"] = 50.0 if gain + loss == 0 else 100.0 * gain / (gain + loss)
    values["macd_rel"] = macd / close
    values["macd_hist_rel"] = (macd - signal) / close
    values["atr_14_rel"] = state.atr.value / close
    std = state.boll.std(ddof=0)
    values["boll_z_20"] = 0.0 if std == 0 else (close - state.boll.mean) / std
    values["spread_bps"] = bar.spread / close * 1e4
    spread_mean = state.spread.mean
    values["spread_ratio"] = bar.spread / spread_mean if spread_mean > 0 else 1.0
    values["tick_rate"] = bar.volume / state.timeframe_minutes
    values["tick_rate_rel"] = math.log((bar.volume + 1.0) / (state.volume.mean + 1.0))
    day_fraction = (bar.open_time.hour * 60 + bar.open_time.minute) / 1440.0
    values["tod_sin"] = math.sin(2 * math.pi * day_fraction)
    values["tod_cos"] = math.cos(2 * math.pi * day_fraction)
    return values


def test_update_is_the_building_blocks_float_for_float(real_bars_with_spread):
    """The inlined averages and the one-display vector give every value the building blocks
    give, bit for bit, in ``FEATURE_NAMES`` order (spread and volume varying, a flat stretch)."""
    from mlmodels.features import BarInput, SymbolFeatureState

    bars = real_bars_with_spread.iloc[:1500].copy()
    bars.iloc[300:330, :4] = bars.iloc[300, 3]  # a flat stretch: zero deltas, zero std
    fast, reference = SymbolFeatureState(timeframe_minutes=60.0), SymbolFeatureState(timeframe_minutes=60.0)
    compared = 0
    for ts, row in zip(bars.index, bars.itertuples(index=False), strict=True):
        bar = BarInput(
            open_time=ts.to_pydatetime(),
            open=float(row.Open),
            high=float(row.High),
            low=float(row.Low),
            close=float(row.Close),
            volume=float(getattr(row, "Volume", 0.0)),
            spread=float(row.Spread),
        )
        got, want = fast.update(bar), _update_by_blocks(reference, bar)
        if want is None:
            assert got is None
            continue
        assert list(got) == list(want) == list(FEATURE_NAMES)
        assert [v.hex() for v in got.values()] == [v.hex() for v in want.values()]
        compared += 1
    assert compared == len(bars) - WARMUP_BARS + 1
