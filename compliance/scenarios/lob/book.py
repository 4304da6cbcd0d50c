"""The price-level order book of one symbol, its orders and the symbols' specifications (pure).

Prices are integer ticks; a side is a sorted list of price levels, each a FIFO queue of orders
(price-time priority). The outside market's orders are kept in a list as well, so a random one
can be cancelled in constant time. Matching and the outside flow live in ``market.Desk``.
"""

from __future__ import annotations

import bisect
import random
from collections import deque
from dataclasses import dataclass

SYMBOLS = ("EURUSD", "GBPUSD", "USDJPY", "XAUUSD")


@dataclass(frozen=True)
class SymbolSpec:
    tick: float  # price increment
    pip: float
    lot: int  # units per standard lot
    decimals: int
    start: tuple[float, float]  # range of the opening price
    scale: int  # typical spread, ticks: the unit of the outside flow's distances
    sigma: float  # the fundamental's volatility, ticks per sqrt(second), calm
    step: int  # quantity increment, units
    size_lots: float  # median outside order, lots


SPECS = {
    "EURUSD": SymbolSpec(0.00001, 0.0001, 100_000, 5, (1.04, 1.12), 2, 1.5, 1000, 1.3),
    "GBPUSD": SymbolSpec(0.00001, 0.0001, 100_000, 5, (1.22, 1.32), 3, 1.9, 1000, 1.5),
    "USDJPY": SymbolSpec(0.001, 0.01, 100_000, 3, (142.0, 158.0), 3, 1.9, 1000, 1.5),
    "XAUUSD": SymbolSpec(0.01, 0.1, 100, 2, (2450.0, 2850.0), 18, 7.0, 1, 1.0),
}

BUY, SELL = 1, -1


class Order:
    __slots__ = (
        "oid",
        "sym",
        "side",
        "price",
        "qty",
        "left",
        "client",
        "otype",
        "algo",
        "filled",
        "value",
        "live",
        "idx",
        "limit",
    )

    def __init__(self, oid, sym, side, price, qty, client=None, otype="limit", algo=None):
        self.oid = oid
        self.sym = sym
        self.side = side
        self.price = price  # ticks (the stop price for a pending stop)
        self.qty = qty  # total ordered, units
        self.left = qty
        self.client = client  # (account, owner) for a firm client, None for the outside market
        self.otype = otype
        self.algo = algo
        self.filled = 0
        self.value = 0.0  # sum of printed price * qty (client orders)
        self.live = True
        self.idx = -1  # position in the outside order list
        self.limit = price  # ticks, None for market: the price the client accepted


class Policy:
    __slots__ = ("adverse", "share", "improve_share", "improve")

    def __init__(self, adverse, share, improve_share, improve):
        self.adverse = adverse
        self.share = share
        self.improve_share = improve_share
        self.improve = improve


class Book:
    """One symbol's price-level book and its outside flow state."""

    def __init__(self, sym: str, spec: SymbolSpec, rng: random.Random, start_price: float):
        self.sym = sym
        self.spec = spec
        self.rng = rng
        self.bids: list[int] = []  # ascending; best is [-1]
        self.asks: list[int] = []  # ascending; best is [0]
        self.bid_q: dict[int, deque] = {}
        self.ask_q: dict[int, deque] = {}
        self.outside: list[Order] = []
        self.stops: list[Order] = []
        self.fundamental = start_price / spec.tick
        self.f_t = 0.0
        self.regime = "calm"
        self.regime_gen = 0
        self.floor = 0  # ticks a new limit order keeps from the opposite touch (news)
        self.market_gen = 0
        self.published = (0, 0)
        self.last_pub_t = -1.0
        self.quote_pending = False
        self.quote_gap = rng.uniform(0.010, 0.050)
        self.mids: deque = deque(maxlen=901)  # mid each second, ticks
        self.fix_samples: list[float] = []
        # per-symbol draws of the outside flow
        self.limit_rate = rng.uniform(16.0, 26.0)
        self.market_rate = rng.uniform(2.9, 4.6)
        self.cancel_rate = rng.uniform(0.025, 0.04)  # per resting order per second
        self.lean = rng.uniform(0.3, 0.45)
        self.market_size = rng.uniform(1.2, 1.8)  # market orders against limit orders, median

    def best_bid(self) -> int | None:
        return self.bids[-1] if self.bids else None

    def best_ask(self) -> int | None:
        return self.asks[0] if self.asks else None

    def touch(self) -> tuple[int, int]:
        return (self.bids[-1] if self.bids else 0, self.asks[0] if self.asks else 0)

    def mid_ticks(self) -> float:
        if self.bids and self.asks:
            return (self.bids[-1] + self.asks[0]) / 2.0
        if self.bids:
            return float(self.bids[-1])
        if self.asks:
            return float(self.asks[0])
        return self.fundamental

    def add(self, order: Order) -> None:
        """Rest an order at the back of its level's queue (price-time priority)."""
        if order.side == BUY:
            queues, prices = self.bid_q, self.bids
        else:
            queues, prices = self.ask_q, self.asks
        q = queues.get(order.price)
        if q is None:
            q = queues[order.price] = deque()
            bisect.insort(prices, order.price)
        q.append(order)
        if order.client is None:
            order.idx = len(self.outside)
            self.outside.append(order)

    def remove(self, order: Order) -> None:
        """Take a resting order off its level."""
        if order.side == BUY:
            queues, prices = self.bid_q, self.bids
        else:
            queues, prices = self.ask_q, self.asks
        q = queues.get(order.price)
        if q is not None:
            try:
                q.remove(order)
            except ValueError:
                pass
            if not q:
                del queues[order.price]
                i = bisect.bisect_left(prices, order.price)
                if i < len(prices) and prices[i] == order.price:
                    prices.pop(i)
        if order.client is None:
            self._drop_outside(order)

    def _drop_outside(self, order: Order) -> None:
        i = order.idx
        if i < 0:
            return
        last = self.outside.pop()
        if last is not order:
            self.outside[i] = last
            last.idx = i
        order.idx = -1

    def levels(self, side: int, n: int) -> list[tuple[int, int]]:
        if side == BUY:
            prices = self.bids[::-1][:n] if n < len(self.bids) else self.bids[::-1]
            queues = self.bid_q
        else:
            prices = self.asks[:n]
            queues = self.ask_q
        return [(p, sum(o.left for o in queues[p])) for p in prices[:n]]

    def available(self, side: int, limit: int | None) -> int:
        """Quantity an aggressor on ``side`` could take up to ``limit`` (ticks; None: all)."""
        total = 0
        if side == BUY:
            for p in self.asks:
                if limit is not None and p > limit:
                    break
                total += sum(o.left for o in self.ask_q[p])
        else:
            for p in reversed(self.bids):
                if limit is not None and p < limit:
                    break
                total += sum(o.left for o in self.bid_q[p])
        return total
