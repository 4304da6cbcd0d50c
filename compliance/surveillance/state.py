"""The surveillance engine's windows as a safe, versioned snapshot (the streaming stage's restarts).

Pure: no Django, no I/O, no clock. ``state_dump(engine)`` writes the engine's state (latest
quotes, live orders, positions, the mid path, open episodes and every detector's windows) as
JSON bytes; ``state_load(engine, data)`` puts a snapshot into a freshly built engine and says
what it restored. The same pair carries the windows across a rule change without a restart
(``state_transfer``).

Why not pickle: the snapshot lives in a database row (``SurveillanceState``), and unpickling
a row that someone could edit runs whatever code they wrote into it. Here the bytes are only
ever decoded as JSON into typed structs (``msgspec``): a snapshot that does not match the
schema, of another format or another version, is refused (``StateError``) and the stage
starts with empty windows (and says so) instead of failing or trusting it. The worst an edited
row can do is feed the detectors wrong windows.

Versioning: ``STATE_VERSION`` names the layout below. A change to what a detector keeps (its
windows, their fields) must change its schema here and bump the version; an older snapshot
is then refused, not misread. The round-trip test (tests/compliance/test_state.py) replays a
development book through save-and-restore at many points and requires the alerts of an
uninterrupted run, which catches a detector field that this module forgot.

Rules: each detector instance (firm-wide, or scoped to an instrument, account or algorithm)
is saved with its parameters. On load, an instance whose parameters are unchanged gets its
windows back; so does one whose parameters changed, unless the change touches a parameter its
windows are built on (``STATE_FIELDS``: the RTS 9 slot length, the zero band of the slippage
sign test), in which case it starts afresh; windows are raw events, so a new threshold applies
to them from the moment it is in force. An instance for a new scoped rule starts afresh.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime
from math import inf
from typing import Any

import msgspec

from compliance.surveillance.base import OrderState, SurveillanceAlert
from compliance.surveillance.engine import _ScopeRouter
from compliance.surveillance.episodes import Episode
from compliance.surveillance.execution_quality import AsymmetricSlippageDetector, BestExecutionDetector, _Tally
from compliance.surveillance.order_detectors import (
    OrderToTradeDetector,
    PingOrdersDetector,
    QuoteStuffingDetector,
    SpoofingDetector,
    _Account,
    _Burst,
    _OtrKey,
)
from compliance.surveillance.records import FillRecord, OrderMessage
from compliance.surveillance.trade_detectors import (
    MarkingTheCloseDetector,
    MomentumIgnitionDetector,
    _Chain,
    _PairDetector,
    _Run,
)

STATE_FORMAT = "tradeops.surveillance.state"
# 2: marking the close keeps the pushes waiting to see the flow after the print; 3: momentum
# ignition keeps the bursts waiting for their reversal while the account trades on; 4: spoofing
# keeps each account's recent cancel times (its own cancel-rate baseline); 5: momentum ignition's
# chains keep the peak the burst itself reached and the reversal's notional (its average price);
# 6: spoofing keeps each account's last order sizes per symbol and its fills over the baseline
# window (the chance test)
# 7: momentum ignition's chains also keep the mid when the reversal began (how much of the move
# was left when the account turned)
# 8: momentum ignition's chains keep where the burst ended (``burst_pause_s``: the orders the
# account carried on with after it are not the burst)
# 9: order-to-trade keeps each account's live competitive quotes and, per slot, the seconds it
# quoted both sides (the market-making test)
# 10: momentum ignition keeps each account's fills of the last ``two_way_window_s`` and, per chain,
# what the account had bought and sold in that window before it (the two-way trader's test), and
# each symbol's aggressive volume by side with, per chain, where it stood at the chain's start and
# at the burst's end (the crowd's test)
# 11: wash trades keep the mid each recent fill met (the price test against the market's move
# between the legs) and the order id of each aggressive fill (the exclusive share by orders)
# 12: spoofing keeps, with each of an account's cancels, its symbol, side and price and whether
# the account re-quoted it (replaced or withdrawn)
# 13: asymmetric slippage's tallies keep the sum of squared slippages (the test by value) and the
# time of the last counted slippage (the end-of-input assessment's alert ends there) and the
# count of slippages last assessed (a client with more is pending: assessed when quiet)
# 16: best execution keeps the sweep in progress (order, instant, last fill price, still a walk:
# a market order walking the book's levels is not assessed beyond its first level)
# 18: asymmetric slippage's tallies keep the count of adverse slippages beyond best execution's
# bar (``gross_share``: a client whose adverse slippage is mostly best execution's exceptions)
# 20: spoofing keeps, with each recent fill, when the order that filled went in (a resting order
# waits in the queue: the bait's lead is measured to that order's arrival), and every order keeps
# the price it went in at (spoofing counts a ladder's levels as placed)
# 21: best execution keeps the detections it holds for asymmetric slippage's assessment of the
# client (``asymmetric_hold_s``), with the time the first was held
# 23: momentum ignition's chains keep the exit filled inside the burst (quantity, notional, order
# ids) and whether the account provides liquidity; each recent fill keeps whether it was passive
# 24: asymmetric slippage's tallies keep the count of adverse slippages past ``gross_multiple`` x
# best execution's bar (best execution's case needs one: ``gross_multiple``)
# 25: wash trades' runs keep each leg order's whole filled volume (``_Run.filled``: the order
# offset test, an order filled in slices of which only one paired) and which colluding pairs
# crossed on a venue, one leg resting (``_Run.crossed``: the hand-back test)
# 26: spoofing keeps, with each recent fill, whether the order that filled was aggressive (a
# cancel next to the account's own aggressive fill on that side was executed, not withdrawn)
# 27: asymmetric slippage's tallies keep each signed slippage while the client has fewer than
# ``min_fills`` (the exact test by value, ``exact_value_test``; at most min_fills - 1 each)
# 29: ping orders keeps, per account and symbol, the event times of its new orders and cancels in
# the last second (an order sent inside a message burst is not a ping); quote stuffing keeps the
# bursts of accounts with no history before them, awaiting the account's rate after them
# 30: quote stuffing keeps each account's messages of the last ``long_window_s`` (a burst sustained
# over several seconds) and, with each burst, its peak in that window
# 31: every live order keeps ``until`` (an IOC/FOK is over after it: its entry plus the settle
# second; null for an order that lives until cancelled or filled)
# 32: 27 and 29 together; 33: 27, 29 and 31 together; 34: 27 and 29 to 31 together (numbered on
# separate branches)
# 37: spoofing's open episodes keep the first of their order's partial fills (``first_t``: the
# cancels after several partial fills of one order are one episode)
# 38: asymmetric slippage's tallies keep the client's largest improvement (``max_improved``, bps:
# best execution's ``dismiss_symmetric``, wip/bex27)
# 42: 37 and 38 together (numbered on separate branches)
# 40: quote stuffing keeps each account's fill times of the last ``long_window_s`` while no burst
# is open (a burst takes in the fills of the window that opened it)
# 43: 42 and 40 together (numbered on separate branches)
# 49: best execution's sweep in progress keeps the sweep's first print when it was marked past the
# arrival touch within the bar (``walk_from_marked_first``: the later levels are read from it)
# 52: wash trades' and painting's runs keep when the run first was its accounts' whole trading in
# the symbol (``_Run.sole_at``: painting one pair short of ``min_pairs``, wip/paint32)
# 53: momentum ignition keeps each account's last fill in a symbol (``fresh_series_s``) and, per
# chain, whether its account was a newcomer to the symbol (wip/mom37)
# 54: momentum ignition's recent fills keep the order's quantity and id (``parent_slices_apart``:
# a slice of the account's execution parent is an order of the size of an earlier one, wip/mom48)
STATE_VERSION = 54

# Parameters a detector's saved windows are built on: a change to one of them discards them.
STATE_FIELDS: dict[str, frozenset[str]] = {
    "excessive_order_to_trade": frozenset({"slot_s"}),
    "asymmetric_slippage": frozenset({"zero_band_bps", "gross_multiple"}),
}


class StateError(ValueError):
    """A snapshot that is not one this code can read (format, version or schema)."""


def _num(x: float) -> float | None:
    """JSON has no infinities: the engine's 'never' and 'not yet' times are saved as null."""
    return None if x in (inf, -inf) else x


# ---------------------------------------------------------------------------------- shared pieces


class OrderDump(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    order_id: str
    account: str
    owner: str
    symbol: str
    side: int
    qty: float
    price: float | None
    market: bool
    t_new: float
    ts_new: datetime
    algo: str
    arr_bid: float | None
    arr_ask: float | None
    arr_mid: float | None
    away_bps: float | None
    aggressive: bool
    filled: float
    stop: bool
    placed_price: float | None
    until: float | None  # null: lives until cancelled or filled (``OrderState.until`` is inf)


def _order_dump(s: OrderState) -> OrderDump:
    return OrderDump(
        s.order_id,
        s.account,
        s.owner,
        s.symbol,
        s.side,
        s.qty,
        s.price,
        s.market,
        s.t_new,
        s.ts_new,
        s.algo,
        s.arr_bid,
        s.arr_ask,
        s.arr_mid,
        s.away_bps,
        s.aggressive,
        s.filled,
        s.stop,
        s.placed_price,
        _num(s.until),
    )


def _order_load(d: OrderDump) -> OrderState:
    s = OrderState(
        d.order_id, d.account, d.owner, d.symbol, d.side, d.qty, d.price, d.market, d.t_new, d.ts_new, d.algo
    )
    s.arr_bid, s.arr_ask, s.arr_mid = d.arr_bid, d.arr_ask, d.arr_mid
    s.away_bps, s.aggressive, s.filled, s.stop = d.away_bps, d.aggressive, d.filled, d.stop
    s.placed_price = d.placed_price
    s.until = inf if d.until is None else d.until
    return s


class AlertDump(msgspec.Struct, forbid_unknown_fields=True):
    alert_type: str
    account: str
    owner: str
    symbol: str
    order_ids: list[str]
    score: float
    start: datetime | None
    end: datetime | None
    evidence: dict[str, Any]
    severity: str


def _alert_dump(a: SurveillanceAlert) -> AlertDump:
    return AlertDump(
        a.alert_type, a.account, a.owner, a.symbol, a.order_ids, a.score, a.start, a.end, a.evidence, a.severity
    )


def _alert_load(d: AlertDump) -> SurveillanceAlert:
    a = SurveillanceAlert.__new__(SurveillanceAlert)  # as saved: no re-rounding, no re-capping
    a.alert_type, a.account, a.owner, a.symbol = d.alert_type, d.account, d.owner, d.symbol
    a.order_ids, a.score, a.start, a.end = d.order_ids, d.score, d.start, d.end
    a.evidence, a.severity = d.evidence, d.severity
    return a


class EpisodeDump(msgspec.Struct, forbid_unknown_fields=True):
    key: tuple[str, str, str]
    id: str
    start: datetime | None
    end: datetime | None
    best: AlertDump
    detections: int
    details: list[dict[str, Any]]
    order_ids: list[str]
    accounts: list[str]
    last_t: float


class EngineDump(msgspec.Struct, forbid_unknown_fields=True):
    last_t: float | None
    next_expiry: float | None
    quotes: dict[str, tuple[float, float, float]]
    orders: list[OrderDump]
    positions: list[tuple[str, str, float]]
    mid_paths: dict[str, list[tuple[float, float]]]
    merger_next_check: float | None
    episodes: list[EpisodeDump]
    alerts: list[AlertDump]


class InstanceDump(msgspec.Struct, forbid_unknown_fields=True):
    params: dict[str, Any]
    state: msgspec.Raw  # decoded with the detector's own schema


class DetectorDump(msgspec.Struct, forbid_unknown_fields=True):
    instances: dict[str, InstanceDump]  # "firm", "symbol:EURUSD", "account:12", "algo:mm"
    by_owner: dict[str, str] = {}  # pairing detectors: owner -> the account whose rule governs it


class Snapshot(msgspec.Struct, forbid_unknown_fields=True):
    format: str
    version: int
    engine: EngineDump
    detectors: dict[str, DetectorDump]
    stream: dict[str, Any] = {}  # the streaming stage's own (e.g. the ids of the last events)


class _Header(msgspec.Struct):
    format: str = ""
    version: int = 0


# ---------------------------------------------------------------------------------- detectors


class SpoofFill(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    t: float
    fill: FillRecord
    side: int
    arrival: float  # when the order that filled went in
    aggressive: bool  # the order that filled took liquidity (market, triggered stop, limit through the touch)


class SpoofCancel(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    order: OrderDump
    ts: datetime
    t: float


class SpoofEpisode(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    deadline: float
    fill: FillRecord
    fill_t: float
    fill_side: int
    cancelled: list[SpoofCancel]
    first_t: float  # the first of the order's partial fills in the episode (``fill_t`` when one)


class SpoofingState(msgspec.Struct, forbid_unknown_fields=True):
    recent_fills: list[tuple[str, str, list[SpoofFill]]]
    episodes: list[SpoofEpisode]
    # account -> its cancels (the baseline window): (event time, symbol, side, price, replaced)
    cancels: dict[str, list[tuple[float, str, int, float | None, bool]]]
    sizes: list[tuple[str, str, list[tuple[str, float]]]]  # (account, symbol) -> its last orders (id, qty)


def _spoofing_dump(d: SpoofingDetector) -> SpoofingState:
    return SpoofingState(
        [(a, s, [SpoofFill(*e) for e in dq]) for (a, s), dq in d.recent_fills.items()],
        [
            SpoofEpisode(e[0], e[1], e[2], e[3], [SpoofCancel(_order_dump(st), ts, t) for st, ts, t in e[4]], e[5])
            for e in d.episodes.values()
        ],
        {a: [tuple(c) for c in dq] for a, dq in d.cancels.items()},
        [(a, sym, list(dq)) for (a, sym), dq in d.sizes.items()],
    )


def _spoofing_load(d: SpoofingDetector, s: SpoofingState) -> None:
    d.recent_fills = {
        (a, sym): deque((f.t, f.fill, f.side, f.arrival, f.aggressive) for f in fills)
        for a, sym, fills in s.recent_fills
    }
    d.episodes = {
        (e.fill.order_id, e.fill_t): [
            e.deadline,
            e.fill,
            e.fill_t,
            e.fill_side,
            [(_order_load(c.order), c.ts, c.t) for c in e.cancelled],
            e.first_t,
        ]
        for e in s.episodes
    }
    d.cancels = {a: deque(list(c) for c in cs) for a, cs in s.cancels.items() if cs}
    d.sizes = {
        (a, sym): deque(((oid, q) for oid, q in orders), maxlen=d.p.size_history_orders) for a, sym, orders in s.sizes
    }


class OtrSlot(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    slot: int
    messages: int
    volume: float
    executed: list[str]
    exec_volume: float
    first_ts: datetime
    quoted_s: float


class OtrBreach(msgspec.Struct, forbid_unknown_fields=True):
    start_ts: datetime
    peak: dict[str, Any]
    end_ts: datetime | None
    reported: int


class OtrKeyState(msgspec.Struct, forbid_unknown_fields=True):
    account: str
    symbol: str
    owner: str
    slots: list[OtrSlot]
    cur_open: bool  # the last slot is still open (not in the sums)
    cur_slot: int | None
    slot_end: float | None
    sums: tuple[int, float, int, float]
    breach: OtrBreach | None
    order_ids: list[str]
    first_ts: datetime | None
    last_ts: datetime | None
    quotes: list[tuple[str, int]]
    quote_t: float | None


class OtrState(msgspec.Struct, forbid_unknown_fields=True):
    keys: list[OtrKeyState]
    last_sweep: int | None


def _otr_dump(d: OrderToTradeDetector) -> OtrState:
    keys = []
    for (account, symbol), k in d.keys.items():
        b = k.breach
        keys.append(
            OtrKeyState(
                account,
                symbol,
                k.owner,
                [OtrSlot(s[0], s[1], s[2], sorted(s[3]), s[4], s[5], s[6]) for s in k.slots],
                k.cur is not None,
                k.cur_slot,
                _num(k.slot_end),
                tuple(k.sums),
                None if b is None else OtrBreach(b["start_ts"], b["peak"], b["end_ts"], b["reported"]),
                list(k.order_ids),
                k.first_ts,
                k.last_ts,
                list(k.quotes.items()),
                k.quote_t,
            )
        )
    return OtrState(keys, None if d._last_sweep == -inf else d._last_sweep)


def _otr_load(d: OrderToTradeDetector, s: OtrState) -> None:
    d.keys = {}
    for ks in s.keys:
        k = _OtrKey(ks.owner)
        k.slots = deque(
            [s.slot, s.messages, s.volume, set(s.executed), s.exec_volume, s.first_ts, s.quoted_s] for s in ks.slots
        )
        k.cur = k.slots[-1] if ks.cur_open and k.slots else None
        k.cur_slot = ks.cur_slot
        k.slot_end = -inf if ks.slot_end is None else ks.slot_end
        k.sums = list(ks.sums)
        b = ks.breach
        k.breach = (
            None if b is None else {"start_ts": b.start_ts, "peak": b.peak, "end_ts": b.end_ts, "reported": b.reported}
        )
        k.order_ids.extend(ks.order_ids)
        k.first_ts, k.last_ts = ks.first_ts, ks.last_ts
        k.quotes = dict(ks.quotes)
        k.n_buy = sum(1 for side in k.quotes.values() if side > 0)
        k.n_sell = len(k.quotes) - k.n_buy
        k.quote_t = ks.quote_t
        d.keys[(ks.account, ks.symbol)] = k
    d._last_sweep = -inf if s.last_sweep is None else s.last_sweep


class StuffMsg(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    t: float
    msg: OrderMessage


class BurstDump(msgspec.Struct, forbid_unknown_fields=True):
    baseline_rate: float | None
    fills: int
    last_t: float
    last_ts: datetime
    messages: int
    order_ids: list[str]
    owner: str
    peak: int
    start_ts: datetime
    symbols: list[str]
    total_end: int  # the account's message count at the burst's last message
    peak_long: int  # the most messages in ``long_window_s`` during the burst


class StuffAccount(msgspec.Struct, forbid_unknown_fields=True):
    account: str
    window: list[StuffMsg]
    first_t: float
    total: int
    burst: BurstDump | None
    pending: list[BurstDump]  # bursts awaiting the account's rate after them
    fills: list[float]  # event times of the account's fills in the window, no burst open


class StuffingState(msgspec.Struct, forbid_unknown_fields=True):
    accounts: list[StuffAccount]
    open_bursts: list[str]
    pending_accounts: list[str]


def _burst_dump(b: _Burst) -> BurstDump:
    return BurstDump(
        b.baseline_rate,
        b.fills,
        b.last_t,
        b.last_ts,
        b.messages,
        list(b.order_ids),
        b.owner,
        b.peak,
        b.start_ts,
        sorted(b.symbols),
        b.total_end,
        b.peak_long,
    )


def _burst_load(bd: BurstDump) -> _Burst:
    b = _Burst()
    b.baseline_rate, b.fills, b.last_t, b.last_ts = bd.baseline_rate, bd.fills, bd.last_t, bd.last_ts
    b.messages, b.order_ids, b.owner, b.peak = bd.messages, bd.order_ids, bd.owner, bd.peak
    b.start_ts, b.symbols, b.total_end = bd.start_ts, set(bd.symbols), bd.total_end
    b.peak_long = bd.peak_long
    return b


def _stuffing_dump(d: QuoteStuffingDetector) -> StuffingState:
    accounts = []
    for account, acc in d.accounts.items():
        burst = None if acc.burst is None else _burst_dump(acc.burst)
        accounts.append(
            StuffAccount(
                account,
                [StuffMsg(t, m) for t, m in acc.window],
                acc.first_t,
                acc.total,
                burst,
                [_burst_dump(b) for b in acc.pending],
                list(acc.fills),
            )
        )
    return StuffingState(accounts, sorted(d.open_bursts), sorted(d.pending_accounts))


def _stuffing_load(d: QuoteStuffingDetector, s: StuffingState) -> None:
    d.accounts = {}
    for sa in s.accounts:
        acc = _Account(sa.first_t)
        acc.window = deque((m.t, m.msg) for m in sa.window)
        acc.total = sa.total
        if sa.burst is not None:
            acc.burst = _burst_load(sa.burst)
        acc.pending = [_burst_load(bd) for bd in sa.pending]
        acc.fills = deque(sa.fills)
        d.accounts[sa.account] = acc
    d.open_bursts = {a for a in s.open_bursts if a in d.accounts}
    d.pending_accounts = {a for a in s.pending_accounts if a in d.accounts}


class PingEntry(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    t: float
    order: OrderDump
    ts: datetime
    life: float


class PingState(msgspec.Struct, forbid_unknown_fields=True):
    pings: list[tuple[str, str, list[PingEntry]]]
    recent: list[tuple[str, str, list[float]]]  # the last second's new orders and cancels per key


def _ping_dump(d: PingOrdersDetector) -> PingState:
    return PingState(
        [(a, s, [PingEntry(t, _order_dump(st), ts, life) for t, st, ts, life in dq]) for (a, s), dq in d.pings.items()],
        [(a, s, list(dq)) for (a, s), dq in d.recent.items() if dq],
    )


def _ping_load(d: PingOrdersDetector, s: PingState) -> None:
    d.pings = {
        (a, sym): deque((e.t, _order_load(e.order), e.ts, e.life) for e in entries) for a, sym, entries in s.pings
    }
    d.recent = {(a, sym): deque(ts) for a, sym, ts in s.recent}


class ChainFill(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    t: float
    fill: FillRecord
    order_id: str


class ChainDump(msgspec.Struct, forbid_unknown_fields=True):
    account: str
    symbol: str
    side: int
    fills: list[ChainFill]
    ignited: bool
    start_mid: float | None
    peak_mid: float | None
    burst_peak: float | None
    spread: float | None
    rev_qty: float
    rev_notional: float
    rev_ids: list[str]
    last_t: float
    rev_mid: float | None
    core_n: int | None
    burst_end: float
    run_peak: float | None
    two_way: tuple[float, float]
    flow0: float
    flow1: float
    exit_qty: float
    exit_notional: float
    exit_ids: list[str]
    quoting: bool
    fresh: bool


class RecentFills(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    account: str
    symbol: str
    fills: list[tuple[float, int, float, bool, float, str]]  # (t, side, qty, passive, order qty, order id)


class MomentumState(msgspec.Struct, forbid_unknown_fields=True):
    chains: list[ChainDump]
    awaiting: list[ChainDump]
    next_sweep: float | None
    now: float | None
    recent: list[RecentFills]
    flow: dict[str, tuple[float, float]]
    last_fill: list[tuple[str, str, float]]


def _chain_dump(account: str, symbol: str, ch: _Chain) -> ChainDump:
    return ChainDump(
        account,
        symbol,
        ch.side,
        [ChainFill(*f) for f in ch.fills],
        ch.ignited,
        ch.start_mid,
        ch.peak_mid,
        ch.burst_peak,
        ch.spread,
        ch.rev_qty,
        ch.rev_notional,
        list(ch.rev_ids),
        ch.last_t,
        ch.rev_mid,
        ch.core_n,
        ch.burst_end,
        ch.run_peak,
        ch.two_way,
        ch.flow0,
        ch.flow1,
        ch.exit_qty,
        ch.exit_notional,
        list(ch.exit_ids),
        ch.quoting,
        ch.fresh,
    )


def _chain_load(cd: ChainDump) -> _Chain:
    ch = _Chain(cd.side, cd.symbol)
    ch.fills = [(f.t, f.fill, f.order_id) for f in cd.fills]
    ch.ignited, ch.start_mid, ch.peak_mid, ch.spread = cd.ignited, cd.start_mid, cd.peak_mid, cd.spread
    ch.burst_peak = cd.burst_peak
    ch.rev_qty, ch.rev_notional, ch.rev_ids, ch.last_t = cd.rev_qty, cd.rev_notional, cd.rev_ids, cd.last_t
    ch.rev_mid = cd.rev_mid
    ch.core_n, ch.burst_end, ch.run_peak = cd.core_n, cd.burst_end, cd.run_peak
    ch.two_way = tuple(cd.two_way)
    ch.flow0, ch.flow1 = cd.flow0, cd.flow1
    ch.exit_qty, ch.exit_notional, ch.exit_ids, ch.quoting = cd.exit_qty, cd.exit_notional, cd.exit_ids, cd.quoting
    ch.fresh = cd.fresh
    return ch


def _momentum_dump(d: MomentumIgnitionDetector) -> MomentumState:
    return MomentumState(
        [_chain_dump(account, symbol, ch) for (account, symbol), ch in d.chains.items()],
        [_chain_dump(account, symbol, ch) for (account, symbol), ch in d.awaiting.items()],
        _num(d._next_sweep),
        _num(d._now),
        [RecentFills(account, symbol, list(fills)) for (account, symbol), fills in d.recent.items()],
        {symbol: (b, s) for symbol, (b, s) in d.flow.items()},
        [(account, symbol, t) for (account, symbol), t in d.last_fill.items()],
    )


def _momentum_load(d: MomentumIgnitionDetector, s: MomentumState) -> None:
    for symbol in list(d.watching):
        d.engine.quote_unwatch(symbol, d._watch)
    d.chains, d.awaiting, d.watching = {}, {}, {}
    for dumps, into in ((s.chains, d.chains), (s.awaiting, d.awaiting)):
        for cd in dumps:
            ch = into[(cd.account, cd.symbol)] = _chain_load(cd)
            if ch.ignited:
                d._watch_chain(ch)
    d._next_sweep = -inf if s.next_sweep is None else s.next_sweep
    d._now = -inf if s.now is None else s.now
    d.recent = {(r.account, r.symbol): deque(tuple(x) for x in r.fills) for r in s.recent}
    d.flow = {symbol: [b, s_] for symbol, (b, s_) in s.flow.items()}
    d.last_fill = {(account, symbol): t for account, symbol, t in s.last_fill}


class MarkFill(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    t: float
    fill: FillRecord
    side: int
    aggressive: bool
    arr_mid: float | None


class MarkPending(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    """A push found at a print, waiting to see whether the flow carries on after it."""

    deadline: float
    account: str
    symbol: str
    direction: int
    push_qty: float
    after_qty: float
    alert: AlertDump


class MarkingState(msgspec.Struct, forbid_unknown_fields=True):
    fills: dict[str, list[MarkFill]]
    pending: list[MarkPending]


def _marking_dump(d: MarkingTheCloseDetector) -> MarkingState:
    return MarkingState(
        {sym: [MarkFill(*f) for f in dq] for sym, dq in d.fills.items()},
        [MarkPending(*e[:6], _alert_dump(e[6])) for e in d.pending],
    )


def _marking_load(d: MarkingTheCloseDetector, s: MarkingState) -> None:
    d.fills = {
        sym: deque((f.t, f.fill, f.side, f.aggressive, f.arr_mid) for f in fills) for sym, fills in s.fills.items()
    }
    d.pending = [
        [e.deadline, e.account, e.symbol, e.direction, e.push_qty, e.after_qty, _alert_load(e.alert)] for e in s.pending
    ]


class PairRecent(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    t: float
    fill: FillRecord
    side: int
    aggressive: bool
    used: bool
    mid: float | None


class PairDump(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    a: FillRecord
    b: FillRecord
    gap: float
    qty_gap: float
    price_gap: float


class RunDump(msgspec.Struct, forbid_unknown_fields=True):
    key: tuple[str, str]
    owner: str
    symbol: str
    collusive: bool
    pairs: list[PairDump]
    accounts: list[str]
    last_t: float
    emitted: list[int]
    filled: dict[str, float]
    crossed: list[int]
    sole_at: int | None


class PairState(msgspec.Struct, forbid_unknown_fields=True):
    collusion_tally: list[tuple[str, str, list[tuple[float, str]]]]
    recent: dict[str, list[PairRecent]]
    runs: list[RunDump]


def _pairs_dump(d: _PairDetector) -> PairState:
    r = d.runs
    return PairState(
        [(a, s, list(dq)) for (a, s), dq in r.collusion_tally.items()],
        {sym: [PairRecent(*e) for e in dq] for sym, dq in r.recent.items()},
        [
            RunDump(
                key,
                run.owner,
                run.symbol,
                run.collusive,
                [PairDump(*p) for p in run.pairs],
                list(run.accounts),
                run.last_t,
                sorted(run.emitted),
                dict(run.filled),
                list(run.crossed),
                run.sole_at,
            )
            for key, run in r.runs.items()
        ],
    )


def _pairs_load(d: _PairDetector, s: PairState) -> None:
    r = d.runs
    r.collusion_tally = {(a, sym): deque(tuple(x) for x in times) for a, sym, times in s.collusion_tally}
    r.recent = {
        sym: deque([e.t, e.fill, e.side, e.aggressive, e.used, e.mid] for e in entries)
        for sym, entries in s.recent.items()
    }
    r.runs = {}
    r.legs = {}
    for rd in s.runs:
        run = _Run(rd.owner, rd.symbol, rd.collusive)
        run.accounts = dict.fromkeys(rd.accounts)
        run.last_t = rd.last_t
        run.emitted = set(rd.emitted)
        run.filled = dict(rd.filled)
        run.crossed = list(rd.crossed)
        run.sole_at = rd.sole_at
        for oid in run.filled:
            r.legs.setdefault(oid, []).append(run)
        for p in rd.pairs:  # refiled under the parameters in force now
            run.pairs.append((p.a, p.b, p.gap, p.qty_gap, p.price_gap))
            d._classify(run)
        run.small_todo = [i for i in run.small_todo if i not in run.emitted]
        run.large_todo = [i for i in run.large_todo if i not in run.emitted]
        r.runs[rd.key] = run


class TallyDump(msgspec.Struct, forbid_unknown_fields=True):
    owner: str
    symbol: str
    adverse: int
    gross: int
    gross_far: int
    improved: int
    zero: int
    sum_adverse: float
    sum_improved: float
    sum_squares: float
    max_improved: float
    order_ids: list[str]
    accounts: list[str]
    first_ts: datetime
    last_ts: datetime
    assessed: int
    slips: list[float]


class AsymState(msgspec.Struct, forbid_unknown_fields=True):
    tallies: list[TallyDump]


def _asym_dump(d: AsymmetricSlippageDetector) -> AsymState:
    # the pending last, in their order (a tie of due times keeps it: ``pending_restore``)
    order = [*(k for k in d.tallies if k not in d.pending), *d.pending]
    return AsymState(
        [
            TallyDump(
                owner,
                symbol,
                t.adverse,
                t.gross,
                t.gross_far,
                t.improved,
                t.zero,
                t.sum_adverse,
                t.sum_improved,
                t.sum_squares,
                t.max_improved,
                list(t.order_ids),
                sorted(t.accounts),
                t.first_ts,
                t.last_ts,
                t.assessed,
                list(t.slips),
            )
            for (owner, symbol), t in ((k, d.tallies[k]) for k in order)
        ]
    )


def _asym_load(d: AsymmetricSlippageDetector, s: AsymState) -> None:
    d.tallies = {}
    for td in s.tallies:
        t = _Tally(td.first_ts)
        t.adverse, t.gross, t.improved, t.zero = td.adverse, td.gross, td.improved, td.zero
        t.gross_far = td.gross_far
        t.sum_adverse, t.sum_improved, t.sum_squares = td.sum_adverse, td.sum_improved, td.sum_squares
        t.max_improved = td.max_improved
        t.last_ts, t.assessed = td.last_ts, td.assessed
        t.order_ids, t.accounts = td.order_ids, set(td.accounts)
        t.slips = td.slips
        d.tallies[(td.owner, td.symbol)] = t
    d.pending_restore()  # due assess_quiet_s after each pending client's last slippage


class NoState(msgspec.Struct, forbid_unknown_fields=True):
    pass


class HeldDump(msgspec.Struct, forbid_unknown_fields=True):
    owner: str
    symbol: str
    first_t: float
    alerts: list[AlertDump]


class BestExecState(msgspec.Struct, forbid_unknown_fields=True):
    # the sweep in progress (one instant): order, time, last price, still a walk, first print
    walk: tuple[str, float, float, bool, float | None] | None = None
    held: list[HeldDump] = []  # detections held for asymmetric slippage's assessment, in order
    cleared: list[tuple[str, str]] = []  # clients asymmetric's last assessment cleared


def _bestex_dump(d: BestExecutionDetector) -> BestExecState:
    return BestExecState(
        d.walk,
        [HeldDump(o, s, first_t, [_alert_dump(a) for a in alerts]) for (o, s), (first_t, alerts) in d.held.items()],
        sorted(d.cleared),
    )


def _bestex_load(d: BestExecutionDetector, s: BestExecState) -> None:
    d.walk = tuple(s.walk) if s.walk is not None else None
    d.held = {(h.owner, h.symbol): [h.first_t, [_alert_load(a) for a in h.alerts]] for h in s.held}
    d.cleared = {tuple(k) for k in s.cleared}


# detector class -> (schema, dump, load); the pair detectors share theirs.
_CODECS: list[tuple[type, type, Any, Any]] = [
    (SpoofingDetector, SpoofingState, _spoofing_dump, _spoofing_load),
    (OrderToTradeDetector, OtrState, _otr_dump, _otr_load),
    (QuoteStuffingDetector, StuffingState, _stuffing_dump, _stuffing_load),
    (PingOrdersDetector, PingState, _ping_dump, _ping_load),
    (MomentumIgnitionDetector, MomentumState, _momentum_dump, _momentum_load),
    (MarkingTheCloseDetector, MarkingState, _marking_dump, _marking_load),
    (_PairDetector, PairState, _pairs_dump, _pairs_load),
    (AsymmetricSlippageDetector, AsymState, _asym_dump, _asym_load),
    (BestExecutionDetector, BestExecState, _bestex_dump, _bestex_load),
]


def _codec(detector) -> tuple[type, Any, Any]:
    for cls, schema, dump, load in _CODECS:
        if isinstance(detector, cls):
            return schema, dump, load
    raise StateError(f"no snapshot schema for {type(detector).__name__}")


# ---------------------------------------------------------------------------------- the engine


def _instances(unit) -> dict[str, Any]:
    """A unit's detector instances by scope key ("firm", "symbol:X", "account:A", "algo:G")."""
    if not isinstance(unit, _ScopeRouter):
        return {"firm": unit}
    out = {"firm": unit.default} if unit.default is not None else {}
    for scope, mapping in (("symbol", unit.by_symbol), ("account", unit.by_account), ("algo", unit.by_algo)):
        for key, d in mapping.items():
            if d is not None:
                out[f"{scope}:{key}"] = d
    return out


_encoder = msgspec.json.Encoder()


def state_dump(engine, *, stream: dict[str, Any] | None = None) -> bytes:
    """The engine's state as JSON bytes (``stream``: the caller's own small extras)."""
    engine._expiry_settle()  # a sweep skipped on empty windows still notes its time (OTR's last sweep)
    merger = engine.merger
    episodes = [
        EpisodeDump(
            ep.key,
            ep.id,
            ep.start,
            ep.end,
            _alert_dump(ep.best),
            ep.detections,
            ep.details,
            list(ep.order_ids),
            list(ep.accounts),
            ep.last_t,
        )
        for ep in merger.open.values()
    ]
    eng = EngineDump(
        _num(engine.last_t),
        _num(engine._next_expiry),
        dict(engine.quotes),
        [_order_dump(s) for s in engine.orders.values()],
        [(a, s, q) for (a, s), q in engine.positions.items()],
        {sym: list(path) for sym, path in engine.mid_paths.items()},
        _num(merger._next_check),
        episodes,
        [_alert_dump(a) for a in engine.alerts],
    )
    detectors = {}
    for name, unit in engine.units.items():
        instances = {}
        for key, d in _instances(unit).items():
            _schema, dump, _load = _codec(d)
            instances[key] = InstanceDump(msgspec.to_builtins(d.p), msgspec.Raw(_encoder.encode(dump(d))))
        by_owner = {}
        if isinstance(unit, _ScopeRouter) and unit.pairing:
            by_owner = dict(unit.by_owner_account)
        detectors[name] = DetectorDump(instances, by_owner)
    return _encoder.encode(Snapshot(STATE_FORMAT, STATE_VERSION, eng, detectors, stream or {}))


def state_read(data: bytes) -> Snapshot:
    """Decode a snapshot, or ``StateError`` saying why it cannot be used. Never executes anything
    from the bytes: JSON into typed structs, nothing else."""
    try:
        header = msgspec.json.decode(data, type=_Header)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise StateError(f"not a surveillance snapshot ({exc})") from None
    if header.format != STATE_FORMAT:
        raise StateError(f"not a surveillance snapshot (format {header.format!r})")
    if header.version != STATE_VERSION:
        raise StateError(f"snapshot version {header.version}, this code reads version {STATE_VERSION}")
    try:
        return msgspec.json.decode(data, type=Snapshot)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise StateError(f"snapshot does not match version {STATE_VERSION}: {exc}") from None


def state_load(engine, data: bytes | Snapshot) -> dict[str, Any]:
    """Put a snapshot into ``engine`` (freshly built, nothing processed yet). Returns what was
    restored: ``{"restored": [...], "restarted": [...], "stream": {...}}``, where each entry
    names a detector instance (``spoofing/firm``, ``ping_orders/account:12``...) and a restart
    says why. ``StateError`` (nothing loaded) when the snapshot cannot be read."""
    snap = data if isinstance(data, Snapshot) else state_read(data)
    # Decode every detector's part before touching the engine: all or nothing.
    decoded: dict[tuple[str, str], Any] = {}
    restarted: list[str] = []
    for name, unit in engine.units.items():
        saved = snap.detectors.get(name)
        for key, d in _instances(unit).items():
            label = f"{name}/{key}"
            inst = saved.instances.get(key) if saved is not None else None
            if inst is None:
                restarted.append(f"{label}: no saved windows (new rule or detector)")
                continue
            now = msgspec.to_builtins(d.p)
            changed = {f for f in set(now) | set(inst.params) if now.get(f) != inst.params.get(f)}
            blocking = changed & STATE_FIELDS.get(name, frozenset())
            if blocking:
                restarted.append(f"{label}: {', '.join(sorted(blocking))} changed, windows start afresh")
                continue
            schema, _dump, load = _codec(d)
            try:
                state = msgspec.json.decode(inst.state, type=schema)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                raise StateError(f"{label}: {exc}") from None
            decoded[(name, key)] = (d, load, state)
    e = snap.engine
    engine.last_t = -inf if e.last_t is None else e.last_t
    engine._next_expiry = -inf if e.next_expiry is None else e.next_expiry
    engine._windows_empty, engine._skipped_sweep_t = False, None  # the next sweep looks at the loaded windows
    engine.quotes.clear()
    engine.quotes.update({sym: tuple(q) for sym, q in e.quotes.items()})
    engine.orders.clear()
    engine.orders.update({d.order_id: _order_load(d) for d in e.orders})  # in entry order, as saved
    engine._immediate.clear()
    engine._immediate.extend(sorted((s for s in engine.orders.values() if s.until != inf), key=lambda s: s.until))
    engine.positions.clear()
    engine.positions.update({(a, s): q for a, s, q in e.positions})
    engine.mid_paths.clear()
    engine.mid_paths.update({sym: deque(tuple(x) for x in path) for sym, path in e.mid_paths.items() if path})
    merger = engine.merger
    merger.open = {}
    for ed in e.episodes:
        ep = Episode.__new__(Episode)
        ep.key, ep.id, ep.start, ep.end = tuple(ed.key), ed.id, ed.start, ed.end
        ep.best, ep.detections, ep.details = _alert_load(ed.best), ed.detections, ed.details
        ep.order_ids, ep.accounts, ep.last_t = dict.fromkeys(ed.order_ids), dict.fromkeys(ed.accounts), ed.last_t
        merger.open[ep.key] = ep
    merger._next_check = inf if e.merger_next_check is None else e.merger_next_check
    if merger.open:  # the quiet periods may have changed with the rules: check at the next tick
        merger._next_check = min(merger._next_check, engine.last_t)
    engine.alerts.extend(_alert_load(a) for a in e.alerts)
    restored = []
    for (name, key), (d, load, state) in decoded.items():
        load(d, state)
        restored.append(f"{name}/{key}")
    for name, unit in engine.units.items():
        saved = snap.detectors.get(name)
        if saved is not None and isinstance(unit, _ScopeRouter) and unit.pairing:
            unit.by_owner_account.update({o: a for o, a in saved.by_owner.items() if a in unit.by_account})
    return {"restored": restored, "restarted": restarted, "stream": snap.stream}


def state_transfer(old, new) -> dict[str, Any]:
    """Carry ``old``'s windows into ``new`` (built under changed rules) through the snapshot."""
    return state_load(new, state_dump(old))
