"""Building blocks shared by the detectors: live order state, the alert record, scoring.

Pure: no Django, no I/O, no clock. Time is the event's own ``ts``; ``t`` is the same instant as
float seconds since the epoch (cheap arithmetic for windows), the datetime is kept for evidence.
"""

from __future__ import annotations

from datetime import UTC, datetime
from math import inf
from typing import Any

SEVERITY = {
    "wash_trade": "high",
    "spoofing": "high",
    "layering": "high",
    "excessive_order_to_trade": "medium",
    "quote_stuffing": "high",
    "ping_orders": "medium",
    "momentum_ignition": "high",
    "marking_the_close": "high",
    "painting_the_tape": "high",
    "best_execution_slippage": "low",
    "asymmetric_slippage": "medium",
}

MAX_EVIDENCE_ORDERS = 200  # cap on order ids carried by one alert (the evidence says how many there were)


class OrderState:
    """What the engine knows about a live order: who, what, and the market when it arrived.

    ``side`` is +1 buy / -1 sell. ``away_bps`` is how far a limit order rests behind the touch
    (positive = passive, behind the best price on its side). ``aggressive`` is true for market
    orders and limits that crossed the touch on arrival; a stop order is neither until it
    triggers, when it trades at market and the quote then is its arrival benchmark. ``key`` is
    ``(account, symbol)``, made once per order for the detectors that key their windows on it.
    ``until``: the event time after which the order is over whatever the feed says next: ``inf``
    for an order that lives until it is cancelled or filled; for an IOC or FOK, its entry plus
    ``engine.IOC_SETTLE_S`` (the venue kills the unfilled rest at its matching, whether or not the
    feed carries that cancel; the second leaves room for the matching's fill reports).
    """

    __slots__ = (
        "account",
        "aggressive",
        "algo",
        "arr_ask",
        "arr_bid",
        "arr_mid",
        "away_bps",
        "filled",
        "key",
        "market",
        "order_id",
        "owner",
        "placed_price",
        "price",
        "qty",
        "side",
        "stop",
        "symbol",
        "t_new",
        "ts_new",
        "until",
    )

    def __init__(self, order_id, account, owner, symbol, side, qty, price, market, t_new, ts_new, algo=""):
        self.order_id = order_id
        self.account = account
        self.owner = owner
        self.symbol = symbol
        self.key = (account, symbol)
        self.side = side
        self.qty = qty
        self.price = price
        self.placed_price = price  # the price it went in at (``price`` follows its modifies)
        self.market = market
        self.t_new = t_new
        self.ts_new = ts_new
        self.algo = algo
        self.arr_bid = self.arr_ask = self.arr_mid = None
        self.aggressive = market
        self.away_bps = None
        self.filled = 0.0
        self.stop = False  # a stop order: off the book until it triggers (then it trades at market)
        self.until = inf  # an IOC/FOK: over after this event time (see the class docstring)

    def mark_arrival(self, quote) -> None:
        """Record the touch at arrival and classify the order against it (``quote`` may be None)."""
        if quote is None:
            return
        bid, ask, mid = quote
        self.arr_bid, self.arr_ask, self.arr_mid = bid, ask, mid
        price = self.price
        if self.market or price is None:
            self.away_bps = None
        elif self.side > 0:  # (``reprice``, inlined: every new order passes here)
            self.aggressive = price >= ask
            self.away_bps = (bid - price) / mid * 1e4
        else:
            self.aggressive = price <= bid
            self.away_bps = (price - ask) / mid * 1e4

    def reprice(self, quote) -> None:
        price = self.price
        if self.market or price is None or quote is None:
            self.away_bps = None
            return
        bid, ask, mid = quote
        if self.side > 0:
            self.aggressive = price >= ask
            self.away_bps = (bid - price) / mid * 1e4
        else:
            self.aggressive = price <= bid
            self.away_bps = (price - ask) / mid * 1e4


def evidence_sample(ids: list[str], cap: int = MAX_EVIDENCE_ORDERS) -> list[str]:
    """At most ``cap`` order ids that span the whole episode (the first, the last and evenly
    spaced between, in order), not its first ``cap``: an episode that runs on (an order-to-trade
    breach carried through a second period) shows its later orders too."""
    n = len(ids)
    if n <= cap:
        return ids
    return [ids[round(i * (n - 1) / (cap - 1))] for i in range(cap)]


class SurveillanceAlert:
    """One finding with its evidence. ``as_dict`` is the ``surveil`` output line."""

    __slots__ = (
        "account",
        "alert_type",
        "end",
        "evidence",
        "order_ids",
        "owner",
        "score",
        "severity",
        "start",
        "symbol",
    )

    def __init__(self, alert_type, *, account, owner, symbol, order_ids, score, start, end, evidence):
        self.alert_type = alert_type
        self.account = account
        self.owner = owner
        self.symbol = symbol
        ids = list(dict.fromkeys(order_ids))
        if len(ids) > MAX_EVIDENCE_ORDERS:
            evidence["order_ids_total"] = len(ids)
            ids = evidence_sample(ids)
        self.order_ids = ids
        self.score = round(min(1.0, max(0.0, score)), 4)
        self.start = start
        self.end = end
        self.evidence = evidence
        self.severity = SEVERITY.get(alert_type, "medium")

    def as_dict(self) -> dict[str, Any]:
        return {
            "alert_type": self.alert_type,
            "account": self.account,
            "owner": self.owner,
            "symbol": self.symbol,
            "order_ids": self.order_ids,
            "score": self.score,
            "start": iso(self.start),
            "end": iso(self.end),
            "evidence": self.evidence,
        }

    def __repr__(self) -> str:
        return f"<{self.alert_type} {self.account}/{self.symbol} {self.start}..{self.end} score={self.score}>"


def iso(when: datetime | None) -> str | None:
    """RFC 3339 UTC with microseconds and a ``Z`` (RTS 25)."""
    if when is None:
        return None
    return when.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def pip_size(symbol: str, overrides: dict[str, float]) -> float:
    """The pip of a symbol: an override, else 0.01 for yen crosses, 0.1 for gold, 0.0001."""
    return _convention(symbol, overrides, jpy=0.01, gold=0.1, silver=0.0001, other=0.0001)


def lot_size(symbol: str, overrides: dict[str, float]) -> float:
    """Units per standard lot: an override, else 100 oz for gold, 5,000 oz for silver, 100,000."""
    return _convention(symbol, overrides, jpy=100_000.0, gold=100.0, silver=5_000.0, other=100_000.0)


def _convention(symbol, overrides, *, jpy, gold, silver, other) -> float:
    value = overrides.get(symbol)
    if value is not None:
        return value
    if symbol.startswith("XAU"):
        return gold
    if symbol.startswith("XAG"):
        return silver
    return jpy if symbol.endswith("JPY") else other


def excess_score(measured: float, threshold: float) -> float:
    """0.5 at the threshold, rising to 1.0 at twice the threshold (or beyond)."""
    if threshold <= 0:
        return 1.0
    return min(1.0, 0.5 + 0.5 * (measured - threshold) / threshold)


def bps(x: float) -> float:
    return round(x, 3)


class Detector:
    """Base: subclasses override the hooks they need; the engine only calls overridden ones.

    Hooks: ``on_quote(t, quote)``, ``on_order(t, msg, state, side)``, ``on_fill(t, fill, state, side)``,
    ``on_close(t, close)``, ``expire(t)`` (called at least once per second of event time, for
    windows that close without a further event on their key) and ``finish()`` (end of input).
    ``on_order`` is called for the actions in ``order_actions`` only. A detector that needs the
    quotes of a symbol for a while (not all the time) asks ``engine.quote_watch`` instead of
    overriding ``on_quote``; the mid path of the last minutes is ``engine.mid_in_force``.
    Detectors append each detection to ``self.out``; the engine merges detections of one
    episode into one alert (``compliance.surveillance.episodes``).
    """

    alert_type: str = ""
    order_actions: frozenset[str] = frozenset({"new", "modify", "cancel"})
    mid_history_s: float = 0.0  # seconds of mid path the detector reads (engine.mid_in_force)

    def __init__(self, params, engine):
        self.p = params
        self.engine = engine
        self.out = engine.detections  # merged into one alert per episode by the engine

    def on_quote(self, t, quote):  # pragma: no cover - overridden
        raise NotImplementedError

    def on_order(self, t, msg, state, side):  # pragma: no cover - overridden
        raise NotImplementedError

    def on_fill(self, t, fill, state, side):  # pragma: no cover - overridden
        raise NotImplementedError

    def on_evict(self, t, state):  # pragma: no cover - overridden
        """The engine dropped ``state`` from its live orders without a cancel or a full fill (an
        IOC/FOK past its settle time, a resting order past the engine's age or count bound): a
        detector that keeps it (by order id) as live releases it here."""

    def on_close(self, t, close):  # pragma: no cover - overridden
        raise NotImplementedError

    def expire(self, t):  # pragma: no cover - overridden
        raise NotImplementedError

    def windows_empty(self) -> bool:
        """True when ``expire`` has nothing to close: until another hook runs, it would change
        nothing but its note of when it last swept (the engine then skips it, SurveillanceEngine
        ``process``). False, always sweep, unless a detector with ``expire`` says otherwise."""
        return False

    def finish(self):
        if type(self).expire is not Detector.expire:
            self.expire(float("inf"))
