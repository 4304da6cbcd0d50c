"""The surveillance engine: shared market and order state plus the detectors, one event at a time.

Pure: no Django, no I/O, no clock. ``process(record)`` takes one decoded record
(``compliance.surveillance.records``), updates the live order book, latest quotes and net
positions, and hands the record to the detectors that subscribe to its kind; alerts collect in
``alerts`` (drain with ``take_alerts``). ``finish()`` closes every open window at the end of a
batch. Records must arrive in time order (``process`` refuses one that goes back in time).

Hot path: a few attribute reads and one call per subscribed detector; no allocation beyond the
order's state and deque entries (see ``bench/surveil_throughput.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from math import inf

from compliance.surveillance.base import Detector, OrderState
from compliance.surveillance.execution_quality import AsymmetricSlippageDetector, BestExecutionDetector
from compliance.surveillance.order_detectors import (
    OrderToTradeDetector,
    PingOrdersDetector,
    QuoteStuffingDetector,
    SpoofingDetector,
)
from compliance.surveillance.params import DETECTOR_PARAMS, Params, params_convert
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
assert set(DETECTORS) == set(DETECTOR_PARAMS)


class OutOfOrder(ValueError):
    """A record earlier than the last one processed: the input is not in time order."""


def _overrides(detector: Detector, hook: str) -> bool:
    return getattr(type(detector), hook) is not getattr(Detector, hook)


class SurveillanceEngine:
    """Runs every enabled detector over one time-ordered stream.

    ``params``: detector name -> ``Params`` struct or a plain dict (validated); missing detectors
    get their defaults. ``only``: restrict to these detector names. ``clamp_time``: treat a record
    older than the last one as happening at the last one's time instead of refusing it (streaming
    from several partitions, where small reorderings are normal).
    """

    def __init__(
        self,
        params: Mapping[str, Params | dict] | None = None,
        *,
        only: set[str] | None = None,
        clamp_time: bool = False,
    ):
        self.quotes: dict[str, tuple[float, float, float]] = {}  # symbol -> (bid, ask, mid)
        self.orders: dict[str, OrderState] = {}
        self.positions: dict[tuple[str, str], float] = {}  # (account, symbol) -> signed qty
        self.alerts: list = []
        self.last_t = -inf
        self.clamp_time = clamp_time
        self._next_expiry = -inf
        params = dict(params or {})
        self.detectors: list[Detector] = []
        for name, cls in DETECTORS.items():
            if only is not None and name not in only:
                continue
            raw = params.get(name)
            p = raw if isinstance(raw, Params) else params_convert(name, raw)
            if p.enabled:
                self.detectors.append(cls(p, self))
        ds = self.detectors
        self._on_quote = [d.on_quote for d in ds if _overrides(d, "on_quote")]
        self._on_order = [d.on_order for d in ds if _overrides(d, "on_order")]
        self._on_fill = [d.on_fill for d in ds if _overrides(d, "on_fill")]
        self._on_close = [d.on_close for d in ds if _overrides(d, "on_close")]
        self._expire = [d.expire for d in ds if _overrides(d, "expire")]

    def process(self, rec) -> None:
        t = rec.ts.timestamp()
        if t < self.last_t:
            if not self.clamp_time:
                raise OutOfOrder(f"ts {rec.ts.isoformat()} is earlier than the previous record")
            t = self.last_t
        self.last_t = t
        if t >= self._next_expiry:
            self._next_expiry = t + 1.0
            for expire in self._expire:
                expire(t)
        cls = rec.__class__
        if cls is Quote:
            self.quotes[rec.symbol] = (rec.bid, rec.ask, (rec.bid + rec.ask) * 0.5)
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
            state.mark_arrival(self.quotes.get(msg.symbol))
            self.orders[msg.order_id] = state
        elif action == "cancel":
            state = self.orders.pop(msg.order_id, None)
        else:  # modify: a new price and/or size; the arrival benchmark stays the original one
            state = self.orders.get(msg.order_id)
            if state is not None:
                state.qty = msg.qty
                state.price = msg.price
                was_aggressive = state.aggressive
                quote = self.quotes.get(msg.symbol)
                state.reprice(quote)
                if state.aggressive and not was_aggressive:  # re-priced through the touch: it arrives now
                    state.mark_arrival(quote)
                    state.t_new = t
        for hook in self._on_order:
            hook(t, msg, state, side)

    def _fill(self, t, fill) -> None:
        side = 1 if fill.side == "buy" else -1
        state = self.orders.get(fill.order_id)
        key = (fill.account, fill.symbol)
        self.positions[key] = self.positions.get(key, 0.0) + side * fill.qty
        if state is not None:
            state.filled += fill.qty
        for hook in self._on_fill:
            hook(t, fill, state, side)
        if state is not None and state.filled >= state.qty * 0.999999999:
            del self.orders[fill.order_id]

    def take_alerts(self) -> list:
        alerts = self.alerts[:]
        self.alerts.clear()
        return alerts

    def finish(self) -> list:
        """End of input: close every open window; returns all alerts not yet taken."""
        for d in self.detectors:
            d.finish()
        return self.take_alerts()
