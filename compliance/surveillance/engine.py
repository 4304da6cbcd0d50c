"""The surveillance engine: shared market and order state plus the detectors, one event at a time.

Pure: no Django, no I/O, no clock. ``process(record)`` takes one decoded record
(``compliance.surveillance.records``), updates the live order book, latest quotes and net
positions, and hands the record to the detectors that subscribe to its kind. The detectors'
detections go through the ``EpisodeMerger`` (``compliance.surveillance.episodes``): one alert
per episode collects in ``alerts`` (drain with ``take_alerts``). ``finish()`` closes every open
window and episode at the end of a batch. Records must arrive in time order (``process``
refuses one that goes back in time). ``compliance.surveillance.state`` saves and restores its
windows (the streaming stage's restarts and rule changes).

Hot path: a few attribute reads and one call per subscribed detector; no allocation beyond the
order's state and deque entries (see ``bench/surveil_throughput.py``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from math import inf

from compliance.surveillance.base import Detector, OrderState
from compliance.surveillance.episodes import EpisodeMerger
from compliance.surveillance.execution_quality import AsymmetricSlippageDetector, BestExecutionDetector
from compliance.surveillance.order_detectors import (
    OrderToTradeDetector,
    PingOrdersDetector,
    QuoteStuffingDetector,
    SpoofingDetector,
)
from compliance.surveillance.params import (
    DETECTOR_PARAMS,
    Params,
    market_params,
    market_scoped_params,
    params_convert,
)
from compliance.surveillance.records import ClosePrint, FillRecord, OrderMessage, Quote
from compliance.surveillance.trade_detectors import (
    MarkingTheCloseDetector,
    MomentumIgnitionDetector,
    PaintingTheTapeDetector,
    WashTradeDetector,
)

DETECTORS: dict[str, type[Detector]] = {
    "wash_trade": WashTradeDetector,
    "painting_the_tape": PaintingTheTapeDetector,
    "spoofing": SpoofingDetector,
    "excessive_order_to_trade": OrderToTradeDetector,
    "quote_stuffing": QuoteStuffingDetector,
    "ping_orders": PingOrdersDetector,
    "momentum_ignition": MomentumIgnitionDetector,
    "marking_the_close": MarkingTheCloseDetector,
    "best_execution_slippage": BestExecutionDetector,
    "asymmetric_slippage": AsymmetricSlippageDetector,
}
if set(DETECTORS) != set(DETECTOR_PARAMS):  # checked even under python -O (an assert would not be)
    raise RuntimeError(
        f"detectors without parameters or parameters without a detector: {set(DETECTORS) ^ set(DETECTOR_PARAMS)}"
    )


class OutOfOrder(ValueError):
    """A record earlier than the last one processed: the input is not in time order."""


def _overrides(detector: Detector, hook: str) -> bool:
    return getattr(type(detector), hook) is not getattr(Detector, hook)


STOP_TYPES = frozenset({"stop", "stop_limit"})
# The live orders stay bounded on a day-long stream whatever the feed omits (issue 16):
# - an IOC or FOK trades at entry or never: the venue kills its unfilled rest at once, whether or
#   not the feed carries that cancel. It is over ``IOC_SETTLE_S`` after entry unless filled in full
#   before (every fill report within that second is its own, a sweep's levels reported a few
#   milliseconds apart included; ping orders settles an IOC after the same second,
#   ``ioc_settle_s``). A later cancel or fill of it is taken as one of an order the engine does not
#   know (no error, no double count).
# - a resting order (GTC) that never ends: dropped once ``ORDER_MAX_AGE_S`` old (longer than every
#   detector's window: its cancel or fill then carries nothing a detector weighs) or, past
#   ``MAX_OPEN_ORDERS`` live orders, the oldest; counted in ``evicted`` (the stage logs them).
IMMEDIATE_TYPES = frozenset({"ioc", "fok"})
IOC_SETTLE_S = 1.0
ORDER_MAX_AGE_S = 86_400.0
MAX_OPEN_ORDERS = 500_000
MID_SAMPLE_S = 1.0  # the mid path keeps one mid per this many seconds
PAIRING = frozenset({"wash_trade", "painting_the_tape"})  # pair fills across an owner's accounts


class _ScopeRouter:
    """One detector kind with scoped parameters: the most specific rule applies (account, then
    algorithm, then instrument, then firm-wide). Each scoped rule gets its own detector
    instance (None where the rule disables the detector). Only built when such rules exist, so
    the common path pays nothing for it.

    The pairing detectors (wash trades, painting the tape) pair fills of one beneficial owner
    across accounts, so an account rule there governs every account of that account's owner
    (learnt from the first event of the account). Quotes and close prints go to every instance.
    """

    def __init__(self, default, *, by_symbol=None, by_account=None, by_algo=None, pairing=False):
        self.default = default
        self.by_symbol = by_symbol or {}
        self.by_account = by_account or {}
        self.by_algo = by_algo or {}
        self.pairing = pairing
        self.by_owner_account: dict[str, str] = {}  # owner -> the account whose rule governs it (pairing)
        self.instances = [
            d
            for d in (default, *self.by_symbol.values(), *self.by_account.values(), *self.by_algo.values())
            if d is not None
        ]

    def _pick(self, account, owner, algo, symbol):
        by_account = self.by_account
        if by_account:
            if account in by_account:
                if self.pairing:
                    self.by_owner_account[owner] = account
                return by_account[account]
            if self.pairing and owner in self.by_owner_account:
                return by_account[self.by_owner_account[owner]]
        if algo and algo in self.by_algo:
            return self.by_algo[algo]
        return self.by_symbol.get(symbol, self.default)

    def on_quote(self, t, quote):
        for d in self.instances:
            d.on_quote(t, quote)

    def on_order(self, t, msg, state, side):
        algo = msg.algo or (state.algo if state is not None else "")
        d = self._pick(msg.account, msg.owner, algo, msg.symbol)
        if d is not None:
            d.on_order(t, msg, state, side)

    def on_fill(self, t, fill, state, side):
        d = self._pick(fill.account, fill.owner, state.algo if state is not None else "", fill.symbol)
        if d is not None:
            d.on_fill(t, fill, state, side)

    def on_close(self, t, close):
        for d in self.instances:
            d.on_close(t, close)

    def on_evict(self, t, state):
        d = self._pick(state.account, state.owner, state.algo, state.symbol)
        if d is not None:
            d.on_evict(t, state)

    def expire(self, t):
        for d in self.instances:
            d.expire(t)

    def windows_empty(self) -> bool:
        return all(d.windows_empty() for d in self.instances)

    def finish(self):
        for d in self.instances:
            d.finish()


class SurveillanceEngine:
    """Runs every enabled detector over one time-ordered stream.

    ``params``: detector name -> ``Params`` struct or a plain dict (validated); missing detectors
    get their defaults. Scoped rules, detector name -> {key -> params}: ``instrument_params``
    (key: symbol), ``account_params`` (key: the account as on the records) and ``algo_params``
    (key: algorithm id); the most specific applies (account, algorithm, instrument, firm). For
    quote stuffing, which watches an account across symbols, an instrument rule makes that
    symbol's messages be assessed on their own. ``only``: restrict to these detector names.
    ``clamp_time``: treat a record older than the last one as happening at the last one's time
    instead of refusing it (streaming from several partitions, where small reorderings are
    normal). ``episodes``: ``"close"`` (one alert per episode, emitted when it closes: batch) or
    ``"updates"`` (emitted when it opens and each time it grows: streaming); see
    ``compliance.surveillance.episodes``. ``market``: the kind of market (``MARKET_PROFILES``:
    ``"otc"``, ``"order_book"``), whose profile gives the detectors' defaults under ``params``.
    """

    def __init__(
        self,
        params: Mapping[str, Params | dict] | None = None,
        *,
        instrument_params: Mapping[str, Mapping[str, Params | dict]] | None = None,
        account_params: Mapping[str, Mapping[str, Params | dict]] | None = None,
        algo_params: Mapping[str, Mapping[str, Params | dict]] | None = None,
        only: set[str] | None = None,
        clamp_time: bool = False,
        episodes: str = "close",
        order_max_age_s: float = ORDER_MAX_AGE_S,
        max_open_orders: int = MAX_OPEN_ORDERS,
        market: str = "otc",
    ):
        self.quotes: dict[str, tuple[float, float, float]] = {}  # symbol -> (bid, ask, mid)
        self.orders: dict[str, OrderState] = {}  # live orders, oldest entry first
        self._immediate: deque = deque()  # the IOC/FOK orders entered in the last IOC_SETTLE_S, in entry order
        self.order_max_age_s = order_max_age_s
        self.max_open_orders = max_open_orders
        # Live orders dropped without a cancel or a full fill: IOC/FOK settled ("immediate",
        # by design), resting orders past the age ("aged") or count ("over_count") bound.
        self.evicted: dict[str, int] = {"immediate": 0, "aged": 0, "over_count": 0}
        self.evicted_resting = 0  # "aged" + "over_count": the ones the stage logs (never silently)
        self.positions: dict[tuple[str, str], float] = {}  # (account, symbol) -> signed qty
        self.alerts: list = []  # one per episode (see ``episodes``)
        self.detections: list = []  # what the detectors found since the last record
        # The mid path: one mid per second per symbol, kept ``mid_history_s`` back (the longest
        # any detector reads), and the detectors watching a symbol's every quote for a while.
        self.mid_paths: dict[str, deque] = {}
        self.mid_history_s = 0.0
        self.quote_watchers: dict[str, list] = {}
        self.last_t = -inf
        self.clamp_time = clamp_time
        self._next_expiry = -inf
        # No detector window open, no episode open (checked after each sweep): the sweeps are
        # skipped until a record reaches a detector; the last one skipped is run first then
        # (``_expiry_settle``), so every detector's state is as if none had been skipped.
        self._windows_empty = False
        self._skipped_sweep_t: float | None = None
        # The market's profile (``MARKET_PROFILES``) under the firm's parameters and under every
        # scoped rule, parameter by parameter: what a rule leaves out is the market's default.
        self.market = market
        params = market_params(market, params)
        scoped = {
            "symbol": market_scoped_params(market, instrument_params),
            "account": market_scoped_params(market, account_params),
            "algo": market_scoped_params(market, algo_params),
        }
        for mapping in (params, *scoped.values()):
            for name in mapping:
                if name not in DETECTOR_PARAMS:
                    params_convert(name, None)  # raises ParameterError naming it (never silently ignored)
        quiet: dict[str, float] = {}
        # Every detector's firm-wide parameters (enabled or not): some read another's (the pair
        # detectors share the wash-trade matching; wash leaves painting runs to painting).
        self.default_params: dict[str, Params] = {
            name: raw if isinstance(raw, Params) else params_convert(name, raw)
            for name in DETECTORS
            for raw in (params.get(name),)
        }
        self.detectors: list = []  # Detector, or _ScopeRouter where scoped rules exist
        self.units: dict[str, Detector | _ScopeRouter] = {}  # detector name -> its unit
        hooks: dict[str, list] = {h: [] for h in ("on_quote", "on_order", "on_fill", "on_close", "expire", "on_evict")}
        order_hooks: dict[str, list] = {"new": [], "modify": [], "cancel": []}
        for name, cls in DETECTORS.items():
            if only is not None and name not in only:
                continue

            def build(raw, name=name, cls=cls):
                p = raw if isinstance(raw, Params) else params_convert(name, raw)
                return cls(p, self) if p.enabled else None

            default = build(self.default_params[name])
            by = {
                scope: {k: build(raw) for k, raw in (rules.get(name) or {}).items()} for scope, rules in scoped.items()
            }
            live = [d for d in (default, *(x for m in by.values() for x in m.values())) if d is not None]
            if not live:
                continue
            if default is not None and default.p.episode_quiet_s is not None:
                for alert_type in (name, "layering") if name == "spoofing" else (name,):
                    quiet[alert_type] = default.p.episode_quiet_s
            if any(by.values()):
                unit = _ScopeRouter(
                    default,
                    by_symbol=by["symbol"],
                    by_account=by["account"],
                    by_algo=by["algo"],
                    pairing=name in PAIRING,
                )
            else:
                unit = default
            self.detectors.append(unit)
            self.units[name] = unit
            sample = live[0]
            for hook, bound in hooks.items():
                if _overrides(sample, hook):
                    bound.append(getattr(unit, hook))
                    if hook == "on_order":
                        for action in sample.order_actions:
                            order_hooks[action].append(unit.on_order)
            for d in live:
                self.mid_history_s = max(self.mid_history_s, d.mid_history_s)
        self._on_quote = hooks["on_quote"]
        self._on_order = order_hooks
        self._on_fill = hooks["on_fill"]
        self._on_close = hooks["on_close"]
        self._expire = hooks["expire"]
        self._on_evict = hooks["on_evict"]
        self._windows_checks = [expire.__self__.windows_empty for expire in self._expire]
        self.merger = EpisodeMerger(self.alerts, quiet=quiet, emit=episodes)

    def process(self, rec) -> None:
        t = rec.ts.timestamp()
        if t < self.last_t:
            if not self.clamp_time:
                raise OutOfOrder(f"ts {rec.ts.isoformat()} is earlier than the previous record")
            t = self.last_t
        self.last_t = t
        if t >= self._next_expiry:
            self._next_expiry = t + 1.0
            if self._immediate or self.orders:
                self._orders_expire(t)
            if self._windows_empty and not self.detections:
                self._skipped_sweep_t = t  # nothing could close (a tick on a quiet book): later
            else:
                self._sweep(t)
        cls = rec.__class__
        woken = self._windows_empty and (cls is not Quote or self._on_quote)  # a detector sees it
        if woken:
            self._expiry_settle()
            self._windows_empty = False
        if cls is Quote:
            symbol = rec.symbol
            mid = (rec.bid + rec.ask) * 0.5
            self.quotes[symbol] = (rec.bid, rec.ask, mid)
            if self.mid_history_s:
                path = self.mid_paths.get(symbol)
                if path is None:
                    self.mid_paths[symbol] = deque(((t, mid),))
                elif t - path[-1][0] >= MID_SAMPLE_S:  # a mid per second is plenty for minutes-long windows
                    path.append((t, mid))
                    edge = t - self.mid_history_s
                    while path[1][0] <= edge:  # keep one from before the horizon: the mid in force then
                        path.popleft()
            if self.quote_watchers:
                watchers = self.quote_watchers.get(symbol)
                if watchers:
                    for hook in watchers:
                        hook(t, rec)
            for hook in self._on_quote:
                hook(t, rec)
        elif cls is OrderMessage:
            self._order(t, rec)
        elif cls is FillRecord:
            self._fill(t, rec)
        elif cls is ClosePrint:
            for hook in self._on_close:
                hook(t, rec)
        else:
            raise TypeError(f"not a surveillance record: {cls.__name__}")
        if self.detections:
            self._merge(t)
        if woken:  # quiet still if the record opened nothing (most close prints): no sweep needed
            self._windows_empty = self._nothing_open()

    def _sweep(self, t: float) -> None:
        """Close what ``t`` closes: every detector's expired windows, then the quiet episodes."""
        for expire in self._expire:
            expire(t)
        if self.detections:
            self._merge(t)
        self.merger.expire(t)
        self._windows_empty = self._nothing_open()

    def _orders_expire(self, t: float) -> None:
        """Drop the live orders that are over without a cancel or a full fill: the IOC/FOK past
        their ``until``, the resting orders past ``order_max_age_s`` (once a second)."""
        orders = self.orders
        immediate = self._immediate
        while immediate:
            s = immediate[0]
            if orders.get(s.order_id) is not s:  # cancelled, filled or replaced already
                immediate.popleft()
            elif s.until < t:
                immediate.popleft()
                self._evict(t, s, "immediate")
            else:
                break
        edge = t - self.order_max_age_s
        while orders:
            s = next(iter(orders.values()))
            if s.ts_new.timestamp() >= edge:
                break
            self._evict(t, s, "aged")

    def _evict(self, t: float, state: OrderState, reason: str) -> None:
        del self.orders[state.order_id]
        self.evicted[reason] += 1
        if reason != "immediate":
            self.evicted_resting += 1
        for hook in self._on_evict:
            hook(t, state)

    def _closed(self, t: float, state: OrderState) -> OrderState | None:
        """``state``, or None (dropped now) when it is an IOC/FOK already over at ``t``."""
        if t > state.until:
            self._evict(t, state, "immediate")
            return None
        return state

    def _nothing_open(self) -> bool:
        """No window, episode or quote watch open: a sweep now would close nothing."""
        return (
            not self.merger.open
            and not self.quote_watchers
            and not self.detections
            and all(empty() for empty in self._windows_checks)
        )

    def _expiry_settle(self) -> None:
        """Run the last sweep skipped while every window was empty (a detector's ``expire`` on
        empty windows only notes when it swept: the last note is the one that counts). Before a
        detector sees a record, before its state is saved (``state.state_dump``) and at the end."""
        t = self._skipped_sweep_t
        if t is not None:
            self._skipped_sweep_t = None
            for expire in self._expire:
                expire(t)
            self.merger.expire(t)

    def _merge(self, t: float) -> None:
        add = self.merger.add
        for detection in self.detections:
            add(detection, t)
        self.detections.clear()

    def _order(self, t, msg) -> None:
        side = 1 if msg.side == "buy" else -1
        action = msg.action
        if action == "new":
            state = OrderState(
                msg.order_id,
                msg.account,
                msg.owner,
                msg.symbol,
                side,
                msg.qty,
                msg.price,
                msg.order_type == "market",
                t,
                msg.ts,
                msg.algo,
            )
            order_type = msg.order_type
            if order_type in STOP_TYPES:
                state.stop = True
            else:
                state.mark_arrival(self.quotes.get(msg.symbol))
                if order_type in IMMEDIATE_TYPES:
                    state.until = t + IOC_SETTLE_S
                    self._immediate.append(state)
            orders = self.orders
            orders.pop(msg.order_id, None)  # an id re-used: the new order is the youngest
            orders[msg.order_id] = state
            if len(orders) > self.max_open_orders:
                self._evict(t, next(iter(orders.values())), "over_count")
        elif action == "cancel":
            state = self.orders.get(msg.order_id)
            if state is not None and self._closed(t, state) is not None:
                del self.orders[msg.order_id]
            else:
                state = None
        else:  # modify: a new price and/or size; the arrival benchmark stays the original one
            state = self.orders.get(msg.order_id)
            if state is not None:
                state = self._closed(t, state)
            if state is not None and state.stop:
                state.qty = msg.qty
                state.price = msg.price
            elif state is not None:
                state.qty = msg.qty
                state.price = msg.price
                was_aggressive = state.aggressive
                quote = self.quotes.get(msg.symbol)
                state.reprice(quote)
                if state.aggressive and not was_aggressive:  # re-priced through the touch: it arrives now
                    state.mark_arrival(quote)
                    state.t_new = t
        for hook in self._on_order[action]:
            hook(t, msg, state, side)

    def _fill(self, t, fill) -> None:
        side = 1 if fill.side == "buy" else -1
        state = self.orders.get(fill.order_id)
        key = (fill.account, fill.symbol)
        self.positions[key] = self.positions.get(key, 0.0) + side * fill.qty
        if state is not None and t > state.until:  # an IOC/FOK already over: a fill of an unknown order
            state = self._closed(t, state)
        if state is not None:
            if state.stop:  # triggered: a market order from now, benchmarked on the quote now
                state.stop = False
                state.market = state.aggressive = True
                state.t_new = t
                state.mark_arrival(self.quotes.get(fill.symbol))
            state.filled += fill.qty
        for hook in self._on_fill:
            hook(t, fill, state, side)
        if state is not None and state.filled >= state.qty * 0.999999999:
            del self.orders[fill.order_id]

    def quote_watch(self, symbol: str, hook) -> None:
        """Hand every quote of ``symbol`` to ``hook(t, quote)`` until ``quote_unwatch``."""
        self.quote_watchers.setdefault(symbol, []).append(hook)

    def quote_unwatch(self, symbol: str, hook) -> None:
        watchers = self.quote_watchers.get(symbol)
        if watchers and hook in watchers:
            watchers.remove(hook)
            if not watchers:
                del self.quote_watchers[symbol]

    def mid_in_force(self, symbol: str, t: float) -> float | None:
        """The mid sampled at or last before ``t`` (the oldest kept if none is that old), from the
        per-second mid path (kept ``mid_history_s`` back); None before any quote of the symbol."""
        path = self.mid_paths.get(symbol)
        if not path:
            return None
        mid = path[0][1]
        for pt, pmid in path:
            if pt > t:
                break
            mid = pmid
        return mid

    def sweep_until(self, t: float) -> None:
        """Close what event time ``t`` closes when no record comes (the live stage on a quiet
        market, ``SurveillanceConsumer.idle``): the sweep a record at ``t`` would run, every
        detector's expired windows then the quiet episodes. ``last_t`` stays the last record's, so
        a record that comes later is taken at its own time. Nothing open: nothing to do."""
        if t <= self.last_t or (self._windows_empty and not self.detections):
            return
        self._expiry_settle()
        self._sweep(t)

    def take_alerts(self) -> list:
        alerts = self.alerts[:]
        self.alerts.clear()
        return alerts

    def finish(self) -> list:
        """End of input: close every open window; returns all alerts not yet taken."""
        self._expiry_settle()
        for d in self.detectors:
            d.finish()
        self._merge(self.last_t)
        self.merger.finish()
        return self.take_alerts()
