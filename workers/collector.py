"""The data collector: the runner at the left edge of the pipeline (MT5 | replay | synthetic
→ collector + market monitor → market-data-events).

For each tick or bar it normalises the input to the event schema (``Tick``/``Bar``; a broker
``Quote`` becomes a ``Tick``), stamps ``received_at`` (RTS 25: UTC, microseconds), wraps it in
an envelope keyed by symbol (one partition per symbol keeps per-symbol order), runs the pure
``MarketMonitor`` and publishes what it returns: the event with its flags, and any alerts (to
compliance-events). An event the monitor quarantines by rule is not published to
market-data-events; it goes to the ``Quarantine`` (file and/or memory) with the reasons and,
when the bus can, to the market-data dead-letter topic with ``dlq.reason`` headers. Nothing is
silently dropped.

It publishes through whatever it is given: a bus object (``tradeops.bus.get_bus()``: anything
with ``publish(event)``) or a plain callable. ``Collector.events(items)`` instead yields the
envelopes, which is how ``manage.py run_pipeline --source workers.collector.embedded_source``
feeds the embedded run. No business rule lives here.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from itertools import dropwhile, islice
from typing import Any

import msgspec

from tradeops.bus.runner import output_event_id, output_id_prefix, uuid5_of_bytes
from tradeops.core.clock import utcnow
from tradeops.events import Alert, Bar, Envelope, Tick, Topic, encode, make_event
from trading.brokers.base import Broker, BrokerConnectionError, Quote
from trading.marketdata.monitor import MarketMonitor, MonitorConfig
from trading.marketdata.quarantine import Quarantine, QuarantinedRow
from trading.marketdata.sources import DatasetRead, backtesting_bars, bars_as_ticks, paced

logger = logging.getLogger(__name__)

SOURCE = "collector"
_UUID_CLEAR = ~((0xF000 << 64) | (0xC000 << 48)) & ((1 << 128) - 1)  # version and variant bits
_UUID_V4 = (4 << 76) | (0x8000 << 48)
_replace = msgspec.structs.replace
_END = object()
# Candidate producer settings for replays (throughput over latency): bigger, later batches. One
# raw-produce check on the 2-core dev box gave 330k/s against 210k/s for the bus defaults, but
# through the collector they did not win consistently (bench/README.md), so ``manage.py replay``
# keeps the bus defaults; bench/replay_throughput.py measures both.
REPLAY_PRODUCER_CONFIG = {"linger.ms": 20, "batch.size": 1_000_000}


@dataclass
class CollectorStats:
    received: int = 0
    published: int = 0
    flagged: int = 0
    quarantined: int = 0
    alerts: int = 0
    flags: Counter = field(default_factory=Counter)
    seconds: float = 0.0

    def summary(self) -> str:
        flags = ", ".join(f"{k} {v}" for k, v in self.flags.most_common()) or "none"
        rate = self.received / self.seconds if self.seconds else 0.0
        return (
            f"{self.received} received, {self.published} published ({self.flagged} flagged: {flags}), "
            f"{self.quarantined} quarantined, {self.alerts} alerts in {self.seconds:.2f}s ({rate:,.0f}/s)"
        )


def normalise(item: Tick | Bar | Quote) -> Tick | Bar:
    """The event schema for a source item; anything else is refused with a clear error."""
    if isinstance(item, Tick | Bar):
        return item
    if isinstance(item, Quote):
        return Tick(symbol=item.symbol, bid=item.bid, ask=item.ask, ts=item.ts, last=item.last, volume=item.volume)
    raise TypeError(f"the collector takes Tick, Bar or broker Quote items, not {type(item).__name__}")


class Collector:
    """Normalise, stamp, monitor, publish. One instance per feed process (not thread-safe)."""

    def __init__(
        self,
        *,
        publish: Callable[[Envelope], Any] | Any | None = None,
        monitor: MarketMonitor | None = None,
        quarantine: Quarantine | None = None,
        clock: Callable[[], datetime] = utcnow,
        source: str = SOURCE,
        dead_letter: bool = True,
        secure_ids: bool = False,
        deterministic_ids: bool = False,
    ):
        self._bus = publish if publish is not None and hasattr(publish, "publish") else None
        self._publish = publish.publish if self._bus is not None else publish
        self.monitor = monitor if monitor is not None else MarketMonitor()
        self.quarantine = quarantine if quarantine is not None else Quarantine()
        self._clock = clock
        self.source = source
        self._dead_letter = dead_letter and self._bus is not None and hasattr(self._bus, "publish_raw")
        self.stats = CollectorStats()
        self._getrandbits = random.SystemRandom().getrandbits if secure_ids else random.Random().getrandbits  # noqa: S311 - ids, not secrets
        # A replay's ids derive from what is replayed (``replay_event_id``), so replaying the same
        # data again (a restarted embedded run) gives the same ids, and so the same ids for every
        # stage's outputs (``tradeops.bus.runner.output_event_id``): the audit trail and the
        # stages' dedupe recognise them instead of recording predictions twice. A live feed keeps
        # random ids: two real ticks may carry the same time and prices.
        self.deterministic_ids = deterministic_ids

    def _event_id(self) -> uuid.UUID:
        """A random (version 4) UUID from a per-collector generator seeded by the OS: uuid4()
        makes a system call per id, which cost more than the monitor at 100k ticks/s. Build the
        collector in the process that uses it (a forked copy would repeat the sequence), or pass
        ``secure_ids=True``."""
        return uuid.UUID(int=(self._getrandbits(128) & _UUID_CLEAR) | _UUID_V4)

    def process(self, item: Tick | Bar | Quote) -> list[Envelope]:
        """One item in, the envelopes to publish out (flagged event unless quarantined, alerts)."""
        kind = type(item)
        payload = item if kind is Tick or kind is Bar else normalise(item)
        payload = _replace(payload, received_at=self._clock())
        event_id = replay_event_id(self.source, payload) if self.deterministic_ids else self._event_id()
        event = make_event(payload, source=self.source, key=payload.symbol, event_id=event_id)
        stats = self.stats
        stats.received += 1
        verdict = self.monitor.inspect(event)
        if verdict is None:  # not market data: pass through untouched
            return [event]
        flags, alerts = verdict.flags, verdict.alerts
        if alerts and self.deterministic_ids:  # the monitor's alerts follow from the event: ids from its id
            alerts = [
                _replace(a, event_id=output_event_id(stage=f"{self.source}.monitor", input_id=event_id, index=i))
                for i, a in enumerate(alerts)
            ]
        if not flags and not alerts:
            stats.published += 1
            return [verdict.event]
        if flags:
            stats.flags.update(flags)
        stats.alerts += len(alerts)
        if verdict.quarantined:
            stats.quarantined += 1
            self._quarantine(verdict.event, verdict.reasons, flags, verdict.figures)
            return list(alerts)
        stats.published += 1
        if flags:
            stats.flagged += 1
        return [verdict.event, *alerts]

    def _quarantine(
        self, event: Envelope, reasons: tuple[str, ...], flags: tuple[str, ...], figures: tuple[dict, ...]
    ) -> None:
        """Keep a quarantined event: the quarantine row (file) and, with a bus, its dead-letter
        topic. Both carry the findings' figures as fields (``findings``; the ``dlq.findings``
        header, JSON) beside the words (``reason``; ``dlq.detail``)."""
        data = encode(event)
        reason = "; ".join(f"{f}: {r}" for f, r in zip(flags, reasons, strict=True))
        findings = tuple({"flag": f, "reason": r, **found} for f, r, found in zip(flags, reasons, figures, strict=True))
        row = QuarantinedRow(
            source=f"{self.source}:{event.key}", line=0, reason=reason, raw=data.decode(), findings=findings
        )
        self.quarantine.add(row)
        if self._dead_letter:
            from tradeops.topics import dlq_name  # the bus's catalogue, present whenever a bus is

            self._bus.publish_raw(
                dlq_name(Topic.MARKET_DATA),
                data,
                key=event.key,
                headers={
                    "dlq.reason": "market_monitor." + flags[0],
                    "dlq.detail": reason[:2000],
                    "dlq.findings": json.dumps(findings),  # a few small dicts: never near a header limit
                },
            )

    def events(self, items: Iterable[Tick | Bar | Quote]) -> Iterator[Envelope]:
        """Yield the envelopes for ``items`` (a pipeline source). ``stats.seconds`` counts the
        time spent reading the source and processing, not what the consumer does in between."""
        clock = time.perf_counter
        iterator = iter(items)
        stats = self.stats
        while True:
            started = clock()
            item = next(iterator, _END)
            if item is _END:
                stats.seconds += clock() - started
                return
            out = self.process(item)
            stats.seconds += clock() - started
            yield from out

    def run(
        self, items: Iterable[Tick | Bar | Quote], *, speed: float | None = None, batch_size: int = 500
    ) -> CollectorStats:
        """Publish everything ``items`` yields, paced at ``speed`` x real time (None: flat out).

        Flat out, a bus with ``publish_many`` gets batches of ``batch_size`` (per-call overhead
        shows at 100k events/s); paced or with ``batch_size=1`` (live feeds), every event is
        published as it comes."""
        if self._publish is None:
            raise ValueError("Collector.run needs publish= (a bus or a callable); use events() otherwise")
        events = self.events(paced(items, speed=speed))
        publish_many = getattr(self._bus, "publish_many", None)
        if speed or publish_many is None or batch_size <= 1:
            publish = self._publish
            for event in events:
                publish(event)
        else:
            while chunk := list(islice(events, batch_size)):
                publish_many(chunk)
        return self.stats


REPLAY_ID_NAMESPACE = uuid.UUID("1f7c2a8e-3b6d-5e14-9c0a-7d2e4b8f6a31")


def replay_event_id(source: str, payload: Tick | Bar) -> uuid.UUID:
    """The event id of a replayed tick or bar, derived from what it is (source, kind, symbol,
    timeframe, time, prices): the same on every replay of the same data. ``uuid5`` semantics
    (``output_event_id``'s fast computation)."""
    # ``!s``: a Decimal's str(), the text its empty format gives, without Decimal.__format__'s parsing
    if type(payload) is Bar:
        name = f"bar:{payload.symbol}:{payload.timeframe}:{payload.ts.isoformat()}:{payload.close!s}"
    else:
        name = f"tick:{payload.symbol}:{payload.ts.isoformat()}:{payload.bid!s}:{payload.ask!s}"
    prefix = _REPLAY_PREFIXES.get(source)
    if prefix is None:  # output_event_id's, computed once per source
        prefix = _REPLAY_PREFIXES[source] = output_id_prefix(stage=source, input_id=REPLAY_ID_NAMESPACE)
    return uuid5_of_bytes(prefix + name.encode())


_REPLAY_PREFIXES: dict[str, bytes] = {}


def collector_metrics(collector: Collector, *, process: str | None = None) -> None:
    """Report ``collector``'s counts as ``tradeops_collector_events_total{source, outcome}``, read
    when scraped (its ``CollectorStats``, kept anyway: nothing is added to the hot path), and, with
    ``process``, serve this process's metrics on ``METRICS_PORT`` (the ``collect`` and ``replay``
    commands; the embedded run serves them on the web's ``/metrics``)."""
    from tradeops.observability.collectors import feed_stats_track

    feed_stats_track(collector.source, collector.stats)
    if process is not None:
        from tradeops.observability.server import metrics_serve

        metrics_serve(process=process)


def live_quotes(
    broker: Broker,
    symbols: Iterable[str],
    *,
    interval: float = 0.1,
    retry_interval: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
    should_stop: Callable[[], bool] = lambda: False,
    on_outage: Callable[[BrokerConnectionError | None], None] | None = None,
) -> Iterator[Quote]:
    """Poll a broker's latest tick for each symbol (MT5 has no push API), yielding changes.

    A lost terminal (``BrokerConnectionError``, including an open breaker) does not end the
    feed: ``on_outage(error)`` is called once when the outage starts and ``on_outage(None)``
    when quotes come back, and polling retries every ``retry_interval`` seconds (the broker's
    breaker decides when a reconnect is actually attempted)."""
    symbols = list(symbols)
    last: dict[str, Quote] = {}
    down = False
    while not should_stop():
        try:
            quotes = [broker.quote(symbol) for symbol in symbols]
        except BrokerConnectionError as exc:
            if not down and on_outage is not None:
                on_outage(exc)
            down = True
            logger.warning("collector: broker unavailable (%s); retrying in %ss", exc, retry_interval)
            sleep(retry_interval)
            continue
        if down and on_outage is not None:
            on_outage(None)
        down = False
        for quote in quotes:
            previous = last.get(quote.symbol)
            if previous is None or (quote.ts, quote.bid, quote.ask) != (previous.ts, previous.bid, previous.ask):
                last[quote.symbol] = quote
                yield quote
        sleep(interval)


def outage_alert(error: BrokerConnectionError | None, *, broker: str, symbols: Iterable[str], at: datetime) -> Envelope:
    """The compliance-events alert for a feed outage starting (``error``) or ending (None)."""
    symbols = list(symbols)
    alert = Alert(
        alert_type="market_data.feed_down" if error is not None else "market_data.feed_restored",
        severity="high" if error is not None else "low",
        symbol=symbols[0] if len(symbols) == 1 else "",
        owner="collector",
        start=at,
        evidence={
            "broker": broker,
            "symbols": symbols,
            "error": str(error) if error else "",
            "code": getattr(error, "code", ""),
        },
        ts=at,
    )
    return make_event(alert, source=SOURCE, key=broker)


def monitor_for(symbols: Iterable[str], **overrides: Any) -> MarketMonitor:
    """A monitor that knows the symbols' trading hours (from the seed specifications), so closed
    sessions are not reported as gaps."""
    from trading.seed_data import INSTRUMENTS

    hours = {spec["symbol"]: spec.get("trading_hours") or {} for spec in INSTRUMENTS}
    wanted = {s: hours[s] for s in symbols if s in hours}
    return MarketMonitor(MonitorConfig(trading_hours=wanted, **overrides))


def embedded_source(
    *,
    limit: int | None = None,
    quarantine_file: str | None = None,
    after: datetime | None = None,
    dataset: DatasetRead | None = None,
) -> Iterator[Envelope]:
    """The embedded run's market data: the real EURUSD hourly bars the ``backtesting``
    package ships (``requirements/demo.txt``; ``DemoDataMissing`` says so when it is absent),
    replayed through the collector and monitor as bars and as derived ticks.

    ``after``: the open time of the last bar an earlier run replayed (``workers.replay_checkpoint``):
    only the bars after it are replayed, so a second run carries market time forward.

    ``dataset``: the EURUSD bars read already (``backtesting_bars_read``: the run's replay plan
    read them), replayed instead of reading the file again; the rows its reader set aside go to
    this source's quarantine first, every one (a read of the file here quarantines those up to the
    last bar it replays).

    Environment: ``REPLAY_LIMIT`` (bars of this run, default all 5,000), ``REPLAY_SPEED`` (x real time,
    default 0 = as fast as possible), ``REPLAY_QUARANTINE`` (JSON-lines file for quarantined
    events, default ``var/quarantine/collector.jsonl``)."""
    limit = limit or replay_limit()
    speed = float(os.environ.get("REPLAY_SPEED", "0")) or None
    quarantine = Quarantine(quarantine_file or os.environ.get("REPLAY_QUARANTINE", "var/quarantine/collector.jsonl"))
    # Derived ticks come every 20 minutes: a gap is a missing hour or more of session time.
    collector = Collector(
        monitor=monitor_for(["EURUSD"], max_gap=timedelta(minutes=50)), quarantine=quarantine, deterministic_ids=True
    )
    collector_metrics(collector)
    # Read here, only the bars replayed are read (the file holds 5,000): ``islice`` stops the reader
    # there, which was ~half the source's CPU per event in a 2,000-bar replay. The same bars: the
    # limit counts the rows the reader yields, as the slice did.
    if dataset is not None:
        if dataset.dataset != "EURUSD":
            raise ValueError(f"embedded_source replays EURUSD, not the {dataset.dataset} bars it was given")
        for row in dataset.set_aside:
            quarantine.add(row)
        todo = dataset.bars if after is None else dropwhile(lambda bar: bar.ts <= after, dataset.bars)
        bars = list(islice(todo, limit))
    else:
        with closing(backtesting_bars("EURUSD", quarantine=quarantine)) as rows:
            todo = rows if after is None else dropwhile(lambda bar: bar.ts <= after, rows)
            bars = list(islice(todo, limit))
    spread = Decimal("0.00008")
    items = _interleave(bars, bars_as_ticks(bars, spread=spread))
    try:
        yield from collector.events(paced(items, speed=speed) if speed else items)  # flat out: no pacing layer
    finally:
        quarantine.close()
        logger.info("collector: %s; %s", collector.stats.summary(), quarantine.summary())


def replay_limit() -> int | None:
    """``REPLAY_LIMIT``: the bars a replay of this run replays at most (unset or 0: all)."""
    return int(os.environ.get("REPLAY_LIMIT", "0")) or None


def _interleave(bars: list[Bar], ticks: Iterable[Tick]) -> Iterator[Tick | Bar]:
    """Ticks in time order, each bar right after the last tick inside it (when it has closed)."""
    pending = iter(bars)
    bar = next(pending, None)
    hour = timedelta(hours=1)
    for tick in ticks:
        while bar is not None and tick.ts >= bar.ts + hour:  # the bar has closed
            yield bar
            bar = next(pending, None)
        yield tick
    if bar is not None:
        yield bar
        yield from pending
