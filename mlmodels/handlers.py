"""Pure pipeline handlers: features, models, pattern validator. No Django, no I/O, no clock.

- ``FeatureHandler`` (market-data-events -> feature-events): per symbol, O(1) per bar or tick.
  Bars of its timeframe are used as they come; for a symbol that sends only ticks it builds the
  bars itself (mid price, tick count, mean spread). Once a symbol has sent a bar its ticks are
  not aggregated as well (no double counting).
- ``PredictionHandler`` (feature-events -> prediction-events): runs both models on each feature
  vector, publishes each model's ``Prediction`` (with its version) and hands both to the
  ``PatternValidator``. Running the two models and the validator in one stage is what lets the
  validator see both predictions of the same vector on a partitioned bus without a join.
  The models are injected (``install``) by the runner, which loads and verifies artifacts.
- ``PatternValidator``: a ``Signal`` only when both models agree and the weaker confidence
  passes the threshold; withheld while the live feature window has drifted from the training
  distribution (population stability index), with a drift ``Alert`` raised when the drift
  starts and a low-severity one when it clears. The signal carries the model versions and the
  algorithm id (RTS 6 Art. 12: which algorithm each order comes from).
"""

from __future__ import annotations

import uuid
from bisect import bisect_right
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from math import isfinite
from typing import NamedTuple

import numpy as np

from mlmodels.features import (
    ATR_PERIOD,
    FEATURE_NAMES,
    FEATURE_SET,
    VOL_WINDOW,
    SymbolFeatureState,
    TickBarAggregator,
    timeframe_delta,
)
from mlmodels.serving import ServingModel
from tradeops.events import Alert, Bar, Envelope, Features, Prediction, Signal, Tick, make_event

# Ticks the market monitor marked as unusable for prices; they never enter a bar.
REJECTED_TICK_FLAGS = frozenset({"crossed", "spike", "out_of_order", "stale"})
_add_reduce = np.add.reduce
SIGNAL_NAMESPACE = uuid.UUID("5b0f3c55-6a4e-4d8e-9f0e-6d1f3f7a2c11")


# The longest closure a market's bars normally show, between two bar opens less one bar: a long
# weekend. Measured on the shipped data: FX over Christmas and New Year, 73 h between two EURUSD
# H1 opens (an ordinary weekend 49-50 h); a US stock's four-day weekend, 96 h between two GOOG
# D1 opens (120 h once, the 2012 hurricane closure: one bar more than the limit's day, allowed).
SESSION_GAP = timedelta(days=4)


def warm_gap_limit(timeframe: str) -> timedelta:
    """The longest gap, bar open to bar open, that a warm-up may be carried across into the first
    bar a restarted stage consumes: the session gap (``SESSION_GAP``) plus one bar."""
    return SESSION_GAP + timeframe_delta(timeframe)


class WarmDropped(NamedTuple):
    """A warm-up not carried into the live bars (``FeatureHandler.warm``'s ``max_gap``): the first
    bar after it opened ``gap`` after the last bar folded in, more than ``limit``."""

    symbol: str
    timeframe: str
    warmed_to: datetime  # open time of the last bar the warm-up folded
    first_bar: datetime  # open time of the first bar consumed after it
    gap: timedelta
    limit: timedelta
    bars: int  # bars the warm-up had folded for the symbol, now dropped


class FeatureHandler:
    """market-data-events -> feature-events. State: one feature state (+ tick aggregator) per symbol."""

    def __init__(self, *, timeframe: str = "H1", source: str = "mlmodels.features"):
        self.timeframe = timeframe
        self.period = timeframe_delta(timeframe)
        self.minutes = self.period.total_seconds() / 60.0
        self.source = source
        self._states: dict[str, SymbolFeatureState] = {}
        self._aggregators: dict[str, TickBarAggregator] = {}
        self._last_mid: dict[str, Decimal] = {}
        self._bar_fed: set[str] = set()
        # Per symbol, the open time of the last bar ``warm`` folded in: a bar at or before it was
        # handled already (by this stage before a restart) and is not folded or emitted again.
        self._warmed_to: dict[str, datetime] = {}
        # Warmed symbols whose first bar after the warm-up has not come yet, with the largest gap
        # allowed before it and the bars folded (``warm``'s ``max_gap``); what was dropped.
        self._warm_pending: dict[str, tuple[timedelta, int]] = {}
        self._on_warm_dropped: Callable[[WarmDropped], None] | None = None
        self.warm_dropped: list[WarmDropped] = []

    def _state(self, symbol: str) -> SymbolFeatureState:
        state = self._states.get(symbol)
        if state is None:
            state = self._states[symbol] = SymbolFeatureState(timeframe_minutes=self.minutes)
        return state

    def warm(
        self,
        bars: Iterable[Bar],
        *,
        max_gap: timedelta | None = None,
        on_dropped: Callable[[WarmDropped], None] | None = None,
    ) -> int:
        """Fold bars that came before this handler's first event into its state, emitting nothing:
        a replay that resumes where an earlier run stopped (``workers.replay_checkpoint``) starts
        with the features that run had, instead of warming up again on bars it then cannot trade;
        so does a restarted ``ml-features`` process (``workers.replay_checkpoint.
        features_warm_from_records``). A bar of a symbol at or before the last one folded here is
        ignored when it comes as an event (``handle``): it was handled before, and a consumer that
        resumes from an older offset must neither fold it twice nor emit its features again.
        Bars must come in time order per symbol. Returns the bars folded (those of its timeframe).

        ``max_gap`` (a restarted live stage: ``warm_gap_limit``; None for a replay that resumes
        with the next bar of the same series): the warm-up holds only if the first bar consumed
        after it (a bar, or the first bar built from ticks) opens at most that long after the last
        bar folded. Further on (a live feed after a replay weeks old), its first features would be
        computed on windows spanning the gap, so the symbol's warmed state is dropped at that bar,
        which then starts its windows cold (~50 bars before its first features, as a first start),
        and ``on_dropped`` is told why (``WarmDropped``, kept in ``warm_dropped`` too). The bars up
        to the last one folded are still recognised as handled. A warmed symbol whose live feed
        sends ticks has them aggregated (the warm-up does not mark it as one that sends bars)."""
        folded: dict[str, int] = {}
        for bar in bars:
            if bar.timeframe != self.timeframe:
                continue
            warmed_to = self._warmed_to.get(bar.symbol)
            if warmed_to is not None and bar.ts <= warmed_to:
                continue
            self._warmed_to[bar.symbol] = bar.ts
            spread = float(bar.spread) if bar.spread is not None else 0.0
            self._state(bar.symbol).fold(
                bar.ts, float(bar.high), float(bar.low), float(bar.close), float(bar.volume), spread
            )
            folded[bar.symbol] = folded.get(bar.symbol, 0) + 1
        if max_gap is not None:
            self._on_warm_dropped = on_dropped
            for symbol, n in folded.items():
                held = self._warm_pending.get(symbol)
                self._warm_pending[symbol] = (max_gap, n + (held[1] if held is not None else 0))
        return sum(folded.values())

    def _warm_settle(self, symbol: str, first_bar: datetime) -> None:
        """The first bar after ``symbol``'s warm-up opens at ``first_bar``: keep the warmed windows
        when it follows within the allowed gap, else drop them (``warm``)."""
        limit, bars = self._warm_pending.pop(symbol)
        warmed_to = self._warmed_to[symbol]
        gap = first_bar - warmed_to
        if gap <= limit:
            return
        self._states.pop(symbol, None)
        dropped = WarmDropped(symbol, self.timeframe, warmed_to, first_bar, gap, limit, bars)
        self.warm_dropped.append(dropped)
        if self._on_warm_dropped is not None:
            self._on_warm_dropped(dropped)

    def declined_keys(self, kind: type) -> set[str] | None:
        """Ticks of a symbol that sends bars are ignored (``handle``; market data is keyed by its symbol)."""
        return self._bar_fed if kind is Tick else None

    def handle(self, event: Envelope) -> list[Envelope]:
        payload = event.payload
        if type(payload) is Bar:
            if payload.timeframe != self.timeframe:
                return []
            symbol = payload.symbol
            if self._warmed_to and (warmed_to := self._warmed_to.get(symbol)) is not None and payload.ts <= warmed_to:
                return []  # folded in by the warm-up: handled before this process started
            if self._warm_pending and symbol in self._warm_pending:
                self._warm_settle(symbol, payload.ts)
            self._bar_fed.add(symbol)
            open_time, spread = payload.ts, payload.spread
            state = self._states.get(symbol) or self._state(symbol)
            # the bar's fields straight in (``fold``), not through a ``BarInput`` built per bar
            values = state.fold(
                open_time,
                float(payload.high),
                float(payload.low),
                float(payload.close),
                float(payload.volume),
                float(spread) if spread is not None else 0.0,
            )
            price = payload.close
        elif type(payload) is Tick:
            symbol = payload.symbol
            if symbol in self._bar_fed or (payload.flags and REJECTED_TICK_FLAGS.intersection(payload.flags)):
                return []
            aggregator = self._aggregators.get(symbol)
            if aggregator is None:
                aggregator = self._aggregators[symbol] = TickBarAggregator(period=self.period)
            mid = (payload.bid + payload.ask) / 2
            price = self._last_mid.get(symbol, mid)  # the closed bar's close: the previous tick's mid
            self._last_mid[symbol] = mid
            bar = aggregator.push(payload.ts, float(mid), float(payload.ask - payload.bid))
            if bar is None:
                return []
            open_time = bar.open_time
            if self._warm_pending and symbol in self._warm_pending:
                self._warm_settle(symbol, open_time)
            values = self._state(symbol).update(bar)
        else:
            return []
        if values is None:
            return []
        features = Features(
            symbol=symbol, ts=open_time + self.period, values=values, price=price, feature_set=FEATURE_SET
        )
        return [make_event(features, source=self.source, key=symbol, traceparent=event.traceparent)]


# ---------------------------------------------------------------- drift


class DriftWindow:
    """Population stability index of the last ``window`` feature vectors of one symbol against
    the training distribution. O(features) per update: bin counts move in and out of the window.

    PSI per feature = sum over bins (live - expected) * ln(live / expected). Live shares get half
    a pseudo-count per bin (so one empty bin in a small window is not read as drift) and
    expected shares are floored at 1e-4.

    The validator compares the *mean* PSI over the features with its limit (the evidence names
    the worst features). Measured on the shipped EURUSD bars: volatility features are so
    persistent that the worst single feature of any 200-500 bar window exceeds 0.25 most of the
    time even in sample, whereas the mean over features of a 500-bar window exceeds 0.25 in
    about 1% of in-sample windows (see docs/ml-pipeline.md)."""

    FLOOR = 1e-4
    PSEUDO_COUNT = 0.5
    # The full window's table of terms holds features x bins x (window + 1) floats: 0.64 MB for
    # 16 features, 10 bins and the default 500 vectors. Longer windows compute their terms.
    TABLE_MAX_WINDOW = 5000

    def __init__(self, reference: dict, *, window: int):
        self.window = window
        self.names = [n for n in FEATURE_NAMES if n in reference.get("features", {})]
        specs = [reference["features"][n] for n in self.names]
        self.edges = [spec["edges"] for spec in specs]
        # One row per feature, padded to the widest; padded bins are masked out of the sums.
        width = max((len(spec["expected"]) for spec in specs), default=1)
        self.bins = np.array([len(spec["expected"]) for spec in specs], dtype=float)
        self.mask = np.zeros((len(specs), width), dtype=bool)
        self.expected = np.ones((len(specs), width))
        for i, spec in enumerate(specs):
            k = len(spec["expected"])
            self.mask[i, :k] = True
            self.expected[i, :k] = np.maximum(np.asarray(spec["expected"], dtype=float), self.FLOOR)
        # Counts are kept as indices into the full window's table of terms (below): the cell's
        # offset in the table plus its count, so one gather gives every term of a full window.
        self._stride = window + 1  # counts 0..window
        self._offsets = np.arange(len(specs) * width, dtype=np.intp).reshape(len(specs), width) * self._stride
        self._index = self._offsets.copy()
        self._flat_index = self._index.reshape(-1)  # a view: cell (i, b) is _flat_index[i * width + b]
        # (name, edges, flat offset of its row) per feature: the bins' flat indices in one pass
        self._specs = [(name, self.edges[i], i * width) for i, name in enumerate(self.names)]
        self._denominators: dict[int, np.ndarray] = {}  # window length -> (n + pseudo * bins)[:, None]
        self._table: np.ndarray | None = None  # a full window's term of every cell for every count
        self.history: deque[np.ndarray] = deque()  # each vector's flat bin indices

    @property
    def full(self) -> bool:
        return len(self.history) >= self.window

    @property
    def counts(self) -> np.ndarray:
        """The window's vectors per feature (row) and bin (column), as floats."""
        return (self._index - self._offsets).astype(float)

    def push(self, values: dict[str, float]) -> None:
        # Each feature's bin as a flat index into the cells (one row per feature): a 1-d update
        # is several times cheaper than a 2-d fancy index. Counts are whole numbers: exact.
        bins = np.array([bisect_right(edges, values[name]) + base for name, edges, base in self._specs], dtype=np.intp)
        flat = self._flat_index
        flat[bins] += 1
        self.history.append(bins)
        if len(self.history) > self.window:
            flat[self.history.popleft()] -= 1

    def _denominator(self, n: int) -> np.ndarray:
        # Depends only on the window's length (a full window's is the one used): computed once
        # per length, the same values, so the same floats.
        denominator = self._denominators.get(n)
        if denominator is None:
            denominator = self._denominators[n] = (n + self.PSEUDO_COUNT * self.bins)[:, None]
        return denominator

    def _terms(self, counts: np.ndarray, denominator: np.ndarray, expected: np.ndarray, mask: np.ndarray) -> np.ndarray:
        live = (counts + self.PSEUDO_COUNT) / denominator
        return np.where(mask, (live - expected) * np.log(live / expected), 0.0)

    def psi_sums(self) -> list[float]:
        """PSI per feature, in ``names`` order.

        A full window (the only one the validator reads) looks its terms up: with the window's
        length fixed, a cell's term depends only on its count, so the terms of every count
        0..window are computed once, by the same expression on the same floats (an extra axis
        for the count), and a vector costs one gather instead of seven array operations and a
        logarithm per cell. The sums are the same reduction over the same terms."""
        n = len(self.history)
        if n != self.window or n > self.TABLE_MAX_WINDOW:
            return self._terms(self.counts, self._denominator(n), self.expected, self.mask).sum(axis=1).tolist()
        table = self._table
        if table is None:
            counts = np.arange(self._stride, dtype=float)[None, None, :]  # (feature, bin, count)
            table = self._terms(
                counts, self._denominator(n)[:, :, None], self.expected[:, :, None], self.mask[:, :, None]
            )
            table = self._table = np.ascontiguousarray(table).reshape(-1)
        return _add_reduce(table.take(self._index), 1).tolist()  # ndarray.sum(axis=1) without its wrapper

    def psi(self) -> dict[str, float]:
        return dict(zip(self.names, self.psi_sums(), strict=True))


# ---------------------------------------------------------------- validator


@dataclass(frozen=True)
class ValidatorSettings:
    """The validator's thresholds (from the ``ValidatorConfig`` row, editable in the admin)."""

    min_confidence: float = 0.55
    psi_limit: float = 0.25
    drift_window: int = 500
    algo_id: str = "tradeops-ml"
    enabled: bool = True


class ModelVote(NamedTuple):
    """One model's vote on one vector (a tuple: two per bar, built several times cheaper than a
    frozen dataclass)."""

    model: str
    version: str
    direction: int  # +1 up, -1 down
    probability: float  # probability of ``direction``


class PatternValidator:
    """Agreement + confidence + drift gate. State: one drift window (and drift flag) per symbol."""

    def __init__(self, settings: ValidatorSettings, *, drift_reference: dict):
        self.settings = settings
        self.drift_reference = drift_reference
        self._windows: dict[str, DriftWindow] = {}
        self._drifted: dict[str, bool] = {}
        self.drift_scores: dict[str, float] = {}  # symbol -> latest mean PSI (a full window's)
        self.withheld = {"disagree": 0, "low_confidence": 0, "drift": 0, "disabled": 0}

    def evaluate(self, features: Features, votes: list[ModelVote]) -> list[Signal | Alert]:
        """Return the Signal, or the drift Alert, or nothing, for one feature vector."""
        symbol = features.symbol
        window = self._windows.get(symbol)
        if window is None:
            window = self._windows[symbol] = DriftWindow(self.drift_reference, window=self.settings.drift_window)
        window.push(features.values)
        out: list[Signal | Alert] = []
        if window.full:
            sums = window.psi_sums()  # the per-feature dict only for an alert's evidence
            score = sum(sums) / len(sums) if sums else 0.0
            self.drift_scores[symbol] = score
            drifted = score > self.settings.psi_limit
            if drifted != self._drifted.get(symbol, False):
                self._drifted[symbol] = drifted
                psi = dict(zip(window.names, sums, strict=True))
                out.append(self._drift_alert(features, psi, score, _versions(votes), drifted))
            if drifted:
                self.withheld["drift"] += 1
                return out
        if not self.settings.enabled:
            self.withheld["disabled"] += 1
            return out
        if len(votes) < 2 or any(v.direction != votes[0].direction for v in votes):
            self.withheld["disagree"] += 1
            return out
        confidence = min([v.probability for v in votes])
        if confidence < self.settings.min_confidence:
            self.withheld["low_confidence"] += 1
            return out
        direction = votes[0].direction
        versions = _versions(votes)
        values = features.values
        price = float(features.price)
        atr = values.get(f"atr_{ATR_PERIOD}_rel")
        out.append(
            Signal(
                signal_id=str(uuid.uuid5(SIGNAL_NAMESPACE, _signal_key(symbol, features.ts, versions))),
                symbol=symbol,
                ts=features.ts,
                side="BUY" if direction > 0 else "SELL",
                confidence=confidence,
                price=features.price,
                model_versions=versions,
                algo_id=self.settings.algo_id,
                atr=atr * price if atr is not None else None,
                volatility=values.get(f"vol_{VOL_WINDOW}"),
            )
        )
        return out

    def _drift_alert(self, features, psi, score, versions, drifted: bool) -> Alert:
        top = dict(sorted(psi.items(), key=lambda kv: -kv[1])[:5])
        return Alert(
            alert_type="model_drift" if drifted else "model_drift_cleared",
            severity="high" if drifted else "low",
            symbol=features.symbol,
            owner="ml",
            score=score,
            end=features.ts,
            evidence={
                "psi_mean": score,
                "psi_worst_features": top,
                "psi_limit": self.settings.psi_limit,
                "window": self.settings.drift_window,
                "model_versions": versions,
                "action": "signals withheld until the drift clears" if drifted else "signals resumed",
            },
            ts=features.ts,
        )


def _versions(votes: list[ModelVote]) -> dict[str, str]:
    # Only a signal or an alert carries them: built for those, not for every vector.
    return {v.model: v.version for v in votes}


def _signal_key(symbol: str, ts: datetime, versions: dict[str, str]) -> str:
    # Deterministic: a replay of the same vector through the same models yields the same id.
    return f"{symbol}|{ts.isoformat()}|" + ",".join(f"{k}={versions[k]}" for k in sorted(versions))


# ---------------------------------------------------------------- models stage


class PredictionHandler:
    """feature-events -> prediction-events (Prediction per model, then Signal or drift Alert).

    Emits nothing until the runner has installed both models. A vector whose symbol or feature
    set the models were not trained for is skipped (counted in ``skipped``)."""

    def __init__(self, *, source: str = "mlmodels.predict"):
        self.source = source
        self.validator: PatternValidator | None = None
        self.skipped = 0
        self.models = {}

    @property
    def models(self) -> dict[str, ServingModel]:
        return self._models

    @models.setter
    def models(self, models: dict[str, ServingModel]) -> None:
        # What a vector needs of each model, read once per install rather than per vector: its
        # name, version and horizon as they go into the Prediction, and the one-row predictor.
        self._models = models
        self._serving = [
            (m.name, m.version, str(m.horizon), m.row_predictor or m.predict_up_one) for m in models.values()
        ]
        self._symbols_served: dict[str, bool] = {}  # symbol -> every model serves it

    def install(self, *, models: dict[str, ServingModel], settings: ValidatorSettings) -> None:
        """Swap in verified models and validator settings (the runner's reload). The drift
        windows restart when the training distribution they compare against changes."""
        reference = next(iter(models.values())).drift_reference if models else {}
        current = self.validator
        if (
            current is not None
            and current.drift_reference == reference
            and current.settings.drift_window == settings.drift_window
        ):
            current.settings = settings  # thresholds only: keep the live windows
        else:
            self.validator = PatternValidator(settings, drift_reference=reference)
        self.models = dict(models)

    def _serves(self, symbol: str) -> bool:
        served = self._symbols_served.get(symbol)
        if served is None:
            served = self._symbols_served[symbol] = not any(
                m.symbols and symbol not in m.symbols for m in self._models.values()
            )
        return served

    def handle(self, event: Envelope) -> list[Envelope]:
        payload = event.payload
        if type(payload) is not Features or not self._models or self.validator is None:
            return []
        symbol = payload.symbol
        if payload.feature_set != FEATURE_SET or not self._serves(symbol):
            self.skipped += 1
            return []
        values = payload.values
        row = [values[name] for name in FEATURE_NAMES]
        if not all(map(isfinite, row)):  # the floats as they are: numpy's per-call overhead spared
            self.skipped += 1
            return []
        x = np.array(row)
        ts, source, traceparent = payload.ts, self.source, event.traceparent
        votes = []
        out = []
        for name, version, horizon, predict_up in self._serving:
            p_up = predict_up(x)
            direction = 1 if p_up >= 0.5 else -1
            probability = p_up if direction > 0 else 1.0 - p_up
            votes.append(ModelVote(name, version, direction, probability))
            prediction = Prediction(
                symbol=symbol,
                ts=ts,
                model=name,
                model_version=version,
                direction=direction,
                probability=probability,
                horizon=horizon,
            )
            out.append(make_event(prediction, source=source, key=symbol, traceparent=traceparent))
        for result in self.validator.evaluate(payload, votes):
            out.append(make_event(result, source=source, key=symbol, traceparent=traceparent))
        return out
