"""Where the embedded replay starts: after the last bar an earlier run replayed, so market time in
the books only moves forward.

A second ``manage.py run_embedded`` used to replay the same bars from the start against what the
first left: 2017's events recorded after 2018's, orders priced against the paper broker's 2018
quote. Instead the run resumes: ``replay_plan`` reads the ``ReplayCheckpoint`` of the dataset's
symbol and timeframe (market-data events are not recorded in the database, they go through the
bus; the checkpoint is the system of record's note of how far a replay got) and the run replays
only the bars after it; ``ReplayCheckpointer`` moves the checkpoint as the run goes. The audit
trail's newest feature vector of the symbol (one per bar after the features' warm-up, appended
once its bar was handled) counts too when it is later: after a run killed between two saves, and
on a database written before checkpoints, which has none. Replaying from
bar 1 (``--from-start``, ``REPLAY_FROM_START=1``) is refused on a database that holds later market
time (``ReplayRefused``): the fix is a fresh database, never time written backwards.
"""

from __future__ import annotations

import bisect
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from tradeops.core.errors import Conflict
from tradeops.events import Bar, Envelope, bar_length
from trading.marketdata.sources import (
    BACKTESTING_DATASETS,
    DatasetRead,
    DemoDataMissing,
    backtesting_bars,
    backtesting_bars_read,
)
from trading.models import ReplayCheckpoint
from trading.selectors import feature_time_recorded, replay_checkpoint_get
from trading.services import replay_checkpoint_save

if TYPE_CHECKING:
    from mlmodels.handlers import WarmDropped

logger = logging.getLogger(__name__)

EMBEDDED_DATASET = "EURUSD"  # what ``workers.collector.embedded_source`` replays
FRESH = "`rm -rf var/` (the SQLite file and the paper broker's journal, var/paper-journal/)"


class ReplayRefused(Conflict):
    """A replay from bar 1 on a database that already holds later market time."""

    code = "replay_from_start_refused"


@dataclass(frozen=True)
class ReplayPlan:
    """What this run replays of ``dataset``: the bars after ``after`` (None: from bar 1)."""

    dataset: str
    symbol: str
    timeframe: str
    bar_times: tuple[datetime, ...]  # open times of the dataset's bars, in order
    checkpoint: ReplayCheckpoint | None
    limit: int | None = None
    found_in: str = "the replay checkpoint"  # or, for a database from before checkpoints, its feature vectors
    # The dataset as the plan read it: the features' warm-up and the source replay these bars
    # instead of reading the file again (None: not kept; they read it).
    read: DatasetRead | None = None

    @property
    def after(self) -> datetime | None:
        return self.checkpoint.last_bar_at if self.checkpoint is not None else None

    @property
    def done(self) -> int:
        """Bars of the dataset an earlier run replayed (those up to ``after``)."""
        return 0 if self.after is None else bisect.bisect_right(self.bar_times, self.after)

    @property
    def todo(self) -> int:
        remaining = len(self.bar_times) - self.done
        return remaining if self.limit is None else min(self.limit, remaining)

    @property
    def complete(self) -> bool:
        return self.todo == 0

    @property
    def source(self) -> str:
        return f"backtesting {self.dataset}"

    def describe(self, *, serving: bool = True) -> str:
        """One line for the operator: what this run replays, or that nothing is left."""
        total, first, last = len(self.bar_times), self.bar_times[0], self.bar_times[-1]
        what = f"{self.symbol} {self.timeframe} bars ({first:%Y-%m-%d} to {last:%Y-%m-%d})"
        if self.complete:
            return (
                f"replay complete: all {total:,} {what} were replayed by an earlier run; "
                f"{'serving the dashboard; ' if serving else ''}{FRESH} for a fresh replay"
            )
        span = f"bars {self.done + 1:,} to {self.done + self.todo:,} of {total:,} {what}"
        if self.after is None:
            return f"replay: {span}"
        return (
            f"replay: resuming after the last bar an earlier run replayed ({self.after:%Y-%m-%d %H:%M} UTC, "
            f"from {self.found_in}): {span}"
        )


def replay_plan(*, dataset: str = EMBEDDED_DATASET, from_start: bool = False, limit: int | None = None) -> ReplayPlan:
    """The bars of ``dataset`` this run replays: those after its checkpoint, at most ``limit``.

    ``from_start`` asks for bar 1 and raises ``ReplayRefused`` when an earlier run left a
    checkpoint: the database holds later market time, and replaying bar 1 onto it would record
    earlier market time after later. Reads the checkpoint and the dataset (~20-25 ms), once: the
    plan keeps it (``read``) for the features' warm-up and the source."""
    _, symbol, timeframe = BACKTESTING_DATASETS[dataset.upper()]
    read = backtesting_bars_read(dataset)
    bar_times = tuple(bar.ts for bar in read.bars)
    checkpoint = replay_checkpoint_get(symbol=symbol, timeframe=timeframe)
    found_in = ReplayPlan.found_in
    recorded = feature_time_recorded(symbol=symbol)
    if recorded is not None and (checkpoint is None or recorded - bar_length(timeframe) > checkpoint.last_bar_at):
        # The audit trail holds a bar's feature vector only once that bar's pump completed (the
        # sinks get their batch when the queue has run dry): a later bar than the checkpoint's
        # after a run killed between two saves, or the only record of how far runs got on a
        # database written before checkpoints (one vector per bar after the 50-bar warm-up).
        last_bar_at = recorded - bar_length(timeframe)
        found_in = "the audit trail's newest feature vector, " + (
            "no replay checkpoint yet" if checkpoint is None else "later than the replay checkpoint"
        )
        checkpoint = ReplayCheckpoint(
            symbol=symbol,
            timeframe=timeframe,
            source=f"backtesting {dataset}",
            first_bar_at=checkpoint.first_bar_at if checkpoint is not None else bar_times[0],
            last_bar_at=last_bar_at,
            bars=bisect.bisect_right(bar_times, last_bar_at),
        )
    if from_start and checkpoint is not None:
        newest = checkpoint.last_bar_at + bar_length(timeframe)
        raise ReplayRefused(
            f"--from-start refused: the database already holds {symbol} {timeframe} market time up to "
            f"{newest:%Y-%m-%d %H:%M} UTC (the {checkpoint.bars:,} bars earlier runs replayed, "
            f"{checkpoint.first_bar_at:%Y-%m-%d} to {checkpoint.last_bar_at:%Y-%m-%d}); replaying from bar 1 "
            f"would record earlier market time after it. For a fresh replay: {FRESH}; to carry on where "
            "the last run stopped, run without --from-start"
        )
    return ReplayPlan(
        dataset=dataset,
        symbol=symbol,
        timeframe=timeframe,
        bar_times=bar_times,
        checkpoint=checkpoint,
        limit=limit,
        found_in=found_in,
        read=read,
    )


def features_warmed(plan: ReplayPlan):
    """The ``ml-features`` handler with the bars earlier runs replayed folded in (``FeatureHandler.
    warm``; all of them, ~40 ms for 5,000 here: the features' smoothed averages carry their whole
    history), so a resumed run's features equal a single run's; None when nothing was replayed."""
    if plan.after is None:
        return None
    from mlmodels.runtime import features_stage

    handler = features_stage()
    bars = plan.read.bars if plan.read is not None else backtesting_bars(plan.dataset)
    handler.warm(bar for bar in bars if bar.ts <= plan.after)
    return handler


def features_warm_from_records(handler) -> str:
    """``Stage.warm`` of ``ml-features`` run as its own process (``manage.py run_stage
    ml-features``, the cluster's features process): fold into ``handler`` every bar of each
    replayed dataset of its timeframe up to the last bar the system of record says was handled
    (``replay_plan``: the replay checkpoint, or the audit trail's newest feature vector when
    later), as ``features_warmed`` does for the embedded run, emitting nothing. Kept only if the
    first bar the stage then consumes opens within ``mlmodels.handlers.warm_gap_limit`` of the
    last bar folded (a long weekend plus one bar): a live feed after a replay weeks old starts
    that symbol cold at its first bar, with a warning saying why (``FeatureHandler.warm``), rather
    than computing its first features on windows that span the gap. A restarted
    process then has its indicators where they were (until 2026-12-06 it needed ~50 bars before
    any signal), and a bar up to that one redelivered from an older offset is not folded or
    emitted again (``FeatureHandler.warm``). Two cheap look-ups per dataset; the dataset file
    is read only when one of them finds something (~25 ms for EURUSD's 5,000 bars).

    Returns one line for the operator ("" when there was nothing to warm from). Without the demo
    data installed the stage starts cold and says so (a warning, not a refusal to start)."""
    from mlmodels.handlers import warm_gap_limit

    said = []
    for dataset, (_, symbol, timeframe) in BACKTESTING_DATASETS.items():
        if timeframe != handler.timeframe:
            continue
        if replay_checkpoint_get(symbol=symbol, timeframe=timeframe) is None and (
            feature_time_recorded(symbol=symbol) is None
        ):
            continue
        try:
            plan = replay_plan(dataset=dataset)
        except DemoDataMissing as exc:
            logger.warning(
                "ml-features: %s %s replayed before but its bars cannot be read (%s); starting cold",
                symbol,
                timeframe,
                exc,
            )
            said.append(f"{symbol} {timeframe} cold (its bars cannot be read: {exc})")
            continue
        if plan.after is None:
            continue
        limit = warm_gap_limit(timeframe)
        folded = handler.warm(
            (bar for bar in plan.read.bars if bar.ts <= plan.after), max_gap=limit, on_dropped=_warm_dropped_log
        )
        logger.info(
            "ml-features: %s %s warmed on %d bars up to %s (%s); kept if the first bar consumed opens within %s",
            symbol,
            timeframe,
            folded,
            plan.after,
            plan.found_in,
            _hours(limit),
        )
        said.append(
            f"{symbol} {timeframe} warmed on {folded:,} bars up to {plan.after:%Y-%m-%d %H:%M} UTC "
            f"(from {plan.found_in}; kept if the first bar consumed opens within {_hours(limit)} of it, "
            "else dropped at that bar and started cold)"
        )
    return "; ".join(said)


def _hours(delta) -> str:
    return f"{delta.total_seconds() / 3600:,.0f} h"


def _warm_dropped_log(dropped: WarmDropped) -> None:
    """The operator's line when a restarted features stage starts a symbol cold after all."""
    logger.warning(
        "ml-features: %s %s warm-up dropped, starting cold: the first bar consumed opens %s UTC, %s after "
        "the last bar warmed on (%s UTC), more than the %s a market's bars are allowed between two opens "
        "(the session gap plus one bar): windows spanning that gap would mix prices that far apart; the %d warmed "
        "bars are discarded and its windows fill afresh from this bar (~50 bars before its first features)",
        dropped.symbol,
        dropped.timeframe,
        f"{dropped.first_bar:%Y-%m-%d %H:%M}",
        _gap_words(dropped.gap),
        f"{dropped.warmed_to:%Y-%m-%d %H:%M}",
        _hours(dropped.limit),
        dropped.bars,
    )


def _gap_words(gap) -> str:
    days = gap.total_seconds() / 86400
    return f"{days:,.1f} days" if days >= 2 else _hours(gap)


class ReplayCheckpointer:
    """Moves the plan's checkpoint as the run goes: ``on_event`` is the pipeline's ``on_event``
    (it sees every event dispatched), ``finish`` is called once the pipeline returned.

    A bar is saved only once it and what it caused are recorded: ``lag`` seconds after it was
    dispatched (in a lock-step replay its consequences are committed before the next source event;
    the audit trail's batch of its decision inputs within ``EMBEDDED_SINK_SECONDS``, so ``lag`` is
    a few of those), at most once per ``every`` seconds, and the last bar on the way out, after
    the pipeline flushed its sinks. After a run killed outright the checkpoint may be up to
    ``lag + every`` seconds of replay behind; ``replay_plan`` then takes the audit trail's newest
    feature vector, which is at most one sink batch behind (``EMBEDDED_SINK_SECONDS``); bars
    replayed again have their records deduplicated by id (the replay's ids derive from it)."""

    def __init__(
        self,
        plan: ReplayPlan,
        *,
        lag: float = 2.0,
        every: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.plan = plan
        self.lag = lag
        self.every = every
        self._clock = clock
        self._first = plan.checkpoint.first_bar_at if plan.checkpoint is not None else None
        self._replayed = plan.done  # bars of the dataset replayed, this run's included
        self._dispatched: deque[tuple[float, int, datetime]] = deque()  # (when, bars so far, bar open)
        self._last: tuple[int, datetime] | None = None  # the newest bar dispatched
        self._previous: tuple[int, datetime] | None = None  # the one before it
        self._saved_at = clock()
        self.saved: tuple[int, datetime] | None = None

    def source(self, events: Iterable[Envelope | None]) -> Iterator[Envelope | None]:
        """``events``, then the checkpoint saved at their end: after them it yields ``None`` (a
        source with nothing new: the pipeline settles and flushes its sinks) and saves when asked
        for more, so a served run that goes on following has its checkpoint at the last bar."""
        yield from events
        yield None
        self.finish()

    def on_event(self, event: Envelope) -> None:
        bar = event.payload
        if type(bar) is not Bar or bar.symbol != self.plan.symbol or bar.timeframe != self.plan.timeframe:
            return
        now = self._clock()
        self._replayed += 1
        if self._first is None:
            self._first = bar.ts
        self._previous, self._last = self._last, (self._replayed, bar.ts)
        self._dispatched.append((now, self._replayed, bar.ts))
        settled = None
        while self._dispatched and now - self._dispatched[0][0] >= self.lag:
            settled = self._dispatched.popleft()[1:]
        if settled is not None and now - self._saved_at >= self.every:
            self._save(*settled)

    def finish(self, *, failed: bool = False) -> None:
        """Save the last bar whose consequences are recorded: the last dispatched after a run that
        ended or was stopped (the pipeline settled and flushed its sinks before returning), the
        one before it after a failure (the failure may have cut its handling short)."""
        self._saved_at = self._clock()
        bar = self._previous if failed else self._last
        if bar is not None and (self.saved is None or bar[1] > self.saved[1]):
            self._save(*bar)

    def _save(self, bars: int, last_bar_at: datetime) -> None:
        self._saved_at = self._clock()
        plan = self.plan
        replay_checkpoint_save(
            symbol=plan.symbol,
            timeframe=plan.timeframe,
            source=plan.source,
            first_bar_at=self._first or last_bar_at,
            last_bar_at=last_bar_at,
            bars=bars,
        )
        self.saved = (bars, last_bar_at)
