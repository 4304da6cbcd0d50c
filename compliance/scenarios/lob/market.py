"""The exchange-style limit order book behind the third evaluation book (pure, no Django, no clock).

Per symbol a price-level book (sorted levels of FIFO queues, prices as integer ticks) is filled by
the outside market's order flow, a zero-intelligence (Santa Fe style) model: Poisson arrivals of
limit orders placed at a distance drawn from the opposite touch, market orders and cancellations,
at rates that switch between calm, busy and news regimes. A slow fundamental value wanders like
FX; the outside flow leans towards it (more buying when the book is below it), so the price is
formed by matching, never by an impact formula or a scripted path. A news regime withdraws part
of the liquidity near the touch, places orders wider and moves the fundamental.

The firm's clients (every ``order`` and ``fill`` line written is theirs) reach the venue through
the firm (DMA) by the :class:`Desk`: their limit orders rest in the same books with price-time
priority and move the touch, market/IOC/FOK orders walk the book, stops rest off the book until
the touch reaches them, two clients' orders trade with each other when they meet. The firm's
best-execution duty (MiFID II Art. 27): an aggressive fill is printed at the book's price unless
an execution policy (:meth:`Desk.execution`) marks it.

Quotes are the book's own touch, published when it changes (at most one per 10-50 ms per symbol
from the outside flow; always at once around a client's event, so the quote in force when a
client order arrives is the touch it met). Fixings (WM/Reuters style): every hour, the median of
the mid sampled each second over a 5-minute window centred on the hour, printed as a ``close``
line at the window's end.

Scripts (the background accounts, the episodes) are generators run by the desk's clock:
``yield seconds`` waits that long in event time.
"""

from __future__ import annotations

import bisect
import heapq
import math
import random
from collections import deque
from collections.abc import Generator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from compliance.scenarios.generator import ACCEPTED

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

# Regimes: (rate multiplier, fundamental volatility multiplier, distance multiplier, mean minutes)
REGIMES = {
    "calm": (0.7, 0.7, 1.0, 16.0),
    "busy": (1.6, 1.3, 1.2, 8.0),
    "news": (3.0, 3.5, 2.8, 2.5),
}
NEXT_REGIME = {
    "calm": (("busy", 0.8), ("news", 0.2)),
    "busy": (("calm", 0.75), ("news", 0.25)),
    "news": (("busy", 0.6), ("calm", 0.4)),
}

FIX_HALF_WINDOW_S = 150.0

BUY, SELL = 1, -1

# Clock events
_MARKET, _SCRIPT, _SECOND, _QUOTE, _REGIME = range(5)


@dataclass
class Episode:
    """A labelled abuse episode or near-miss (what the scorer, ``evaluation.score``, needs)."""

    kind: str
    account: str
    owner: str
    symbol: str
    start_s: float
    near_miss: bool = False
    variant: str = ""
    order_ids: set[str] = field(default_factory=set)

    @property
    def accepted(self) -> tuple[str, ...]:
        return () if self.near_miss else ACCEPTED[self.kind]

    def as_dict(self) -> dict:
        return {
            "kind": self.kind,
            "near_miss": self.near_miss,
            "variant": self.variant,
            "accepted": list(self.accepted),
            "account": self.account,
            "owner": self.owner,
            "symbol": self.symbol,
            "start_s": round(self.start_s, 6),
            "order_ids": sorted(self.order_ids),
        }


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


class Desk:
    """The venue and the firm's client gateway; the interface the scripts use.

    Prices in and out of the desk's methods are floats in price units; quantities are units
    (base currency, ounces for XAUUSD).
    """

    def __init__(self, seed: int, hours: float = 4.0, start: datetime | None = None, audit: bool = False):
        self.seed = seed
        self.hours = hours
        self.end_t = hours * 3600.0
        self.symbols = SYMBOLS
        self.t = 0.0
        self._seq = 0
        self._heap: list = []
        self._streams: dict[str, random.Random] = {}
        rng = self.rng("market")
        if start is None:
            day = datetime(2026, 1, 5, tzinfo=UTC) + timedelta(days=rng.randrange(0, 350))
            while day.weekday() >= 5:  # the FX week: Monday-Friday
                day += timedelta(days=1)
            start = day  # 00:00 UTC: the Tokyo/Sydney session
        self.start = start
        self.records: list[dict] = []
        self.episodes: list[Episode] = []
        self.audit = [] if audit else None
        self._books: dict[str, Book] = {}
        for sym in SYMBOLS:
            spec = SPECS[sym]
            brng = self.rng(f"book:{sym}")
            self._books[sym] = Book(sym, spec, brng, brng.uniform(*spec.start))
        self._orders: dict[str, Order] = {}
        self._oid = 0  # the outside market's orders
        self._client_oid = 0
        self._positions: dict[tuple[str, str], int] = {}
        self._policies: dict[tuple[str, str | None], Policy] = {}
        self._accounts: dict[str, tuple[str, str]] = {}
        self._owners: set[str] = set()
        self._linked: list = []
        self._colluders = None
        self._ts_cache: dict[int, str] = {}
        self._fixes = [3600.0 * k for k in range(1, int(hours) + 1) if 3600.0 * k + FIX_HALF_WINDOW_S <= self.end_t]
        for book in self._books.values():
            self._seed_book(book)
            self._publish(book)
            self._schedule_market(book)
            self._schedule_regime(book)
        self._push(0.0, _SECOND, None, None)

    # ---- streams, clock -------------------------------------------------------------------

    def rng(self, name: str) -> random.Random:
        """A random stream of its own per name: one part's draws never shift another's."""
        r = self._streams.get(name)
        if r is None:
            r = self._streams[name] = random.Random(f"lob:{self.seed}:{name}")  # noqa: S311 (a simulation, not a secret)
        return r

    def _push(self, t, kind, a, b):
        self._seq += 1
        heapq.heappush(self._heap, (t, self._seq, kind, a, b))

    def spawn(self, gen: Generator, at: float | None = None) -> None:
        """Run a script (a generator yielding waits in seconds) from ``at`` (default now)."""
        self._push(self.t if at is None else max(at, self.t), _SCRIPT, gen, None)

    def run(self) -> None:
        """Run the clock to the book's end: market events, script wake-ups, samples, quotes."""
        heap = self._heap
        pop = heapq.heappop
        books = self._books
        end = self.end_t
        while heap:
            t, _, kind, a, b = pop(heap)
            if t > end:
                break
            self.t = t
            if kind == _MARKET:
                book = books[a]
                if b == book.market_gen:
                    self._market_event(book)
                    self._schedule_market(book)
            elif kind == _SCRIPT:
                try:
                    wait = next(a)
                except StopIteration:
                    continue
                self._push(t + max(float(wait or 0.0), 0.0), _SCRIPT, a, None)
            elif kind == _SECOND:
                self._second()
                self._push(t + 1.0, _SECOND, None, None)
            elif kind == _QUOTE:
                book = books[a]
                book.quote_pending = False
                self._publish(book)
            elif kind == _REGIME:
                book = books[a]
                if b == book.regime_gen:
                    self._switch_regime(book)
        self.t = end

    # ---- the outside market ---------------------------------------------------------------

    def _seed_book(self, book: Book) -> None:
        spec = book.spec
        f = round(book.fundamental)
        for i in range(40):
            d = i // 2
            self._outside_limit(book, BUY, f - 1 - d * max(1, spec.scale // 2))
            self._outside_limit(book, SELL, f + 1 + d * max(1, spec.scale // 2))

    def _outside_size(self, book: Book, mult: float = 1.0) -> int:
        spec = book.spec
        lots = spec.size_lots * mult * math.exp(book.rng.gauss(0.0, 0.8))
        units = int(lots * spec.lot / spec.step) * spec.step
        return max(units, spec.step)

    def _outside_limit(self, book: Book, side: int, price: int) -> None:
        self._oid += 1
        book.add(Order(self._oid, book.sym, side, price, self._outside_size(book)))

    def _schedule_market(self, book: Book) -> None:
        rate_mult = REGIMES[book.regime][0]
        rate = (book.limit_rate + book.market_rate) * rate_mult + book.cancel_rate * len(book.outside) * (
            2.0 if book.regime == "news" else 1.0
        )
        book.market_gen += 1
        self._push(self.t + book.rng.expovariate(rate), _MARKET, book.sym, book.market_gen)

    def _schedule_regime(self, book: Book) -> None:
        minutes = REGIMES[book.regime][3]
        book.regime_gen += 1
        self._push(self.t + book.rng.expovariate(1.0 / (minutes * 60.0)), _REGIME, book.sym, book.regime_gen)

    def _switch_regime(self, book: Book) -> None:
        self._advance_fundamental(book)
        r = book.rng.random()
        acc = 0.0
        for name, p in NEXT_REGIME[book.regime]:
            acc += p
            if r < acc:
                book.regime = name
                break
        if book.regime == "news":
            # the release: the fundamental jumps, liquidity near the touch is withdrawn
            spec = book.spec
            book.fundamental += book.rng.choice((-1, 1)) * book.rng.uniform(4.0, 20.0) * spec.pip / spec.tick
            mid = book.mid_ticks()
            near = 6 * spec.scale
            for o in list(book.outside):
                if abs(o.price - mid) <= near and book.rng.random() < 0.6:
                    book.remove(o)
            self._ensure(book)
            self._after_change(book)
        self._schedule_regime(book)
        self._schedule_market(book)

    def _advance_fundamental(self, book: Book) -> None:
        dt = self.t - book.f_t
        if dt > 0:
            book.fundamental += book.rng.gauss(0.0, book.spec.sigma * REGIMES[book.regime][1] * math.sqrt(dt))
            book.f_t = self.t

    def _market_event(self, book: Book) -> None:
        rng = book.rng
        self._advance_fundamental(book)
        regime = REGIMES[book.regime]
        mult = regime[0]
        lim = book.limit_rate * mult
        mkt = book.market_rate * mult
        can = book.cancel_rate * len(book.outside) * (2.0 if book.regime == "news" else 1.0)
        u = rng.random() * (lim + mkt + can)
        scale = book.spec.scale
        mid = book.mid_ticks()
        lean = math.tanh((book.fundamental - mid) / (3.0 * scale))
        if u < lim:
            side = BUY if rng.random() < 0.5 + 0.25 * lean else SELL
            d = int(rng.expovariate(1.0 / (3.0 * scale * regime[2])))
            if side == BUY:
                ask = book.best_ask()
                price = (ask if ask is not None else round(mid) + 1) - 1 - d
            else:
                bid = book.best_bid()
                price = (bid if bid is not None else round(mid) - 1) + 1 + d
            self._outside_limit(book, side, price)
        elif u < lim + mkt:
            side = BUY if rng.random() < 0.5 + book.lean * lean else SELL
            qty = self._outside_size(book, book.market_size)
            # the outside flow never empties a side: it takes at most what rests near the touch
            avail = book.available(side, None)
            qty = min(qty, max(0, avail - book.spec.step * 50))
            if qty > 0:
                self._take(book, side, qty, None, None)
        elif book.outside:
            o = book.outside[int(rng.random() * len(book.outside))]
            book.remove(o)
            o.live = False
        self._ensure(book)
        self._after_change(book)

    def _ensure(self, book: Book) -> None:
        """Liquidity providers refill a side that has run thin."""
        spec = book.spec
        if len(book.bids) < 4 or len(book.asks) < 4:
            mid = book.mid_ticks()
            for i in range(4):
                if len(book.bids) < 4:
                    top = book.best_ask()
                    base = min(round(mid) - 1, (top - 1) if top is not None else round(mid) - 1)
                    self._outside_limit(book, BUY, base - i * spec.scale)
                if len(book.asks) < 4:
                    bot = book.best_bid()
                    base = max(round(mid) + 1, (bot + 1) if bot is not None else round(mid) + 1)
                    self._outside_limit(book, SELL, base + i * spec.scale)

    # ---- matching ---------------------------------------------------------------------------

    def _take(self, book: Book, side: int, qty: int, limit: int | None, taker: Order | None) -> list:
        """An aggressor on ``side`` takes up to ``qty`` at prices no worse than ``limit`` (ticks;
        None: any), in price-time priority. Resting client orders print their (passive) fills.
        Returns the aggressor's executions [(price ticks, qty)] per level."""
        out = []
        if side == BUY:
            prices, queues = book.asks, book.ask_q
        else:
            prices, queues = book.bids, book.bid_q
        while qty > 0 and prices:
            p = prices[0] if side == BUY else prices[-1]
            if limit is not None and (p > limit if side == BUY else p < limit):
                break
            q = queues[p]
            got = 0
            while qty > 0 and q:
                rest = q[0]
                n = rest.left if rest.left <= qty else qty
                rest.left -= n
                qty -= n
                got += n
                if rest.client is not None:
                    self._fill(rest, p, n, aggressive=False)
                if rest.left == 0:
                    q.popleft()
                    rest.live = False
                    if rest.client is None:
                        book._drop_outside(rest)
            if got:
                out.append((p, got))
            if not q:
                del queues[p]
                if side == BUY:
                    prices.pop(0)
                else:
                    prices.pop()
        return out

    def _fill(self, order: Order, price: int, qty: int, aggressive: bool) -> None:
        """Print a client's fill; an aggressive one goes through the firm's execution policy."""
        book = self._books[order.sym]
        spec = book.spec
        printed = price
        marked = 0
        if aggressive:
            acct = order.client[0]
            pol = self._policies.get((acct, order.sym)) or self._policies.get((acct, None))
            if pol is not None:
                r = self.rng(f"policy:{acct}")
                u = r.random()
                ticks = 0
                if u < pol.share:
                    ticks = -round(r.uniform(*pol.adverse) * spec.pip / spec.tick)
                elif u < pol.share + pol.improve_share:
                    ticks = round(r.uniform(*pol.improve) * spec.pip / spec.tick)
                # ticks > 0 favours the client; a buy pays less
                printed = price - ticks if order.side == BUY else price + ticks
                if order.limit is not None and order.otype in ("limit", "ioc", "fok"):
                    # a limit order is never printed beyond its limit
                    printed = min(printed, order.limit) if order.side == BUY else max(printed, order.limit)
                printed = max(printed, 1)
                marked = printed - price
        order.filled += qty
        px = printed * spec.tick
        order.value += px * qty
        acct, owner = order.client
        key = (acct, order.sym)
        self._positions[key] = self._positions.get(key, 0) + order.side * qty
        if not aggressive:
            self._flush(book)
        self.records.append(
            {
                "type": "fill",
                "ts": self._ts(),
                "order_id": order.oid,
                "account": acct,
                "owner": owner,
                "symbol": order.sym,
                "side": "buy" if order.side == BUY else "sell",
                "qty": str(qty),
                "price": f"{px:.{spec.decimals}f}",
            }
        )
        if self.audit is not None:
            self.audit.append((self.t, order.oid, order.sym, order.side, price, printed, marked, aggressive))

    # ---- quotes, touch changes, stops -----------------------------------------------------

    def _after_change(self, book: Book) -> None:
        if book.stops:
            self._check_stops(book)
        if (book.best_bid(), book.best_ask()) != book.published and not book.quote_pending:
            due = book.last_pub_t + book.quote_gap
            if self.t >= due:
                self._publish(book)
            else:
                book.quote_pending = True
                self._push(due, _QUOTE, book.sym, None)

    def _publish(self, book: Book) -> None:
        bid, ask = book.best_bid(), book.best_ask()
        if bid is None or ask is None or (bid, ask) == book.published or bid >= ask:
            return
        book.published = (bid, ask)
        book.last_pub_t = self.t
        d = book.spec.decimals
        tick = book.spec.tick
        self.records.append(
            {
                "type": "quote",
                "ts": self._ts(),
                "symbol": book.sym,
                "bid": f"{bid * tick:.{d}f}",
                "ask": f"{ask * tick:.{d}f}",
            }
        )

    def _flush(self, book: Book) -> None:
        """Publish the touch now if it changed (before and after a client's event)."""
        if (book.best_bid(), book.best_ask()) != book.published:
            self._publish(book)

    def _check_stops(self, book: Book) -> None:
        while book.stops:
            bid, ask = book.best_bid(), book.best_ask()
            hit = None
            for o in book.stops:
                if (o.side == BUY and ask is not None and ask >= o.price) or (
                    o.side == SELL and bid is not None and bid <= o.price
                ):
                    hit = o
                    break
            if hit is None:
                return
            book.stops.remove(hit)
            self._flush(book)
            for p, n in self._take(book, hit.side, hit.left, None, hit):
                hit.left -= n
                self._fill(hit, p, n, aggressive=True)
            hit.left = 0
            hit.live = False

    def _second(self) -> None:
        """Each second: sample the mids (volatility, fixings) and print fixings due."""
        t = self.t
        for book in self._books.values():
            self._advance_fundamental(book)
            mid = book.mid_ticks()
            book.mids.append(mid)
            for fix in self._fixes:
                lo, hi = fix - FIX_HALF_WINDOW_S, fix + FIX_HALF_WINDOW_S
                if lo <= t <= hi + 1e-9:
                    book.fix_samples.append(mid)
                    if t >= hi - 1e-9:
                        s = sorted(book.fix_samples)
                        n = len(s)
                        med = s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2.0
                        book.fix_samples = []
                        spec = book.spec
                        self.records.append(
                            {
                                "type": "close",
                                "ts": self._ts(),
                                "symbol": book.sym,
                                "price": f"{med * spec.tick:.{spec.decimals}f}",
                            }
                        )

    def _ts(self) -> str:
        us = int(round(self.t * 1_000_000))
        sec, frac = divmod(us, 1_000_000)
        head = self._ts_cache.get(sec)
        if head is None:
            head = (self.start + timedelta(seconds=sec)).strftime("%Y-%m-%dT%H:%M:%S")
            if len(self._ts_cache) > 4096:
                self._ts_cache.clear()
            self._ts_cache[sec] = head
        return f"{head}.{frac:06d}Z"

    # ---- the Desk's interface (what the scripts use) ------------------------------------------

    def touch(self, sym: str) -> tuple[float, float]:
        book = self._books[sym]
        tick = book.spec.tick
        d = book.spec.decimals
        bid, ask = book.best_bid(), book.best_ask()
        return (round(bid * tick, d) if bid else 0.0, round(ask * tick, d) if ask else 0.0)

    def mid(self, sym: str) -> float:
        book = self._books[sym]
        return book.mid_ticks() * book.spec.tick

    def spread(self, sym: str) -> float:
        book = self._books[sym]
        bid, ask = book.best_bid(), book.best_ask()
        if bid is None or ask is None:
            return 0.0
        return (ask - bid) * book.spec.tick

    def tick(self, sym: str) -> float:
        return SPECS[sym].tick

    def pip(self, sym: str) -> float:
        return SPECS[sym].pip

    def lot(self, sym: str) -> int:
        return SPECS[sym].lot

    def depth(self, sym: str, side: str, levels: int = 5) -> list[tuple[float, int]]:
        """The book's levels on one side, best first: ``side`` "buy"/"bid" or "sell"/"ask"."""
        book = self._books[sym]
        s = BUY if side in ("buy", "bid") else SELL
        tick = book.spec.tick
        d = book.spec.decimals
        return [(round(p * tick, d), q) for p, q in book.levels(s, levels)]

    def vol(self, sym: str) -> float:
        """The typical absolute mid move over 60 s now (price units)."""
        book = self._books[sym]
        m = book.mids
        n = len(m)
        if n < 120:
            return book.spec.sigma * math.sqrt(60.0) * 0.8 * book.spec.tick
        moves = [abs(m[i] - m[i - 60]) for i in range(60, n, 5)]
        return max(sum(moves) / len(moves), 1.0) * book.spec.tick

    def next_fix(self, sym: str, after: float) -> float | None:
        """Time (s) of the next fixing at or after ``after`` (None when the book has no more)."""
        for fix in self._fixes:
            if fix >= after:
                return fix
        return None

    def fix_window(self, sym: str, fix_t: float) -> tuple[float, float]:
        return (fix_t - FIX_HALF_WINDOW_S, fix_t + FIX_HALF_WINDOW_S)

    def _new_id(self, stream: str, prefix: str, digits: int, taken) -> str:
        r = self.rng(stream)
        while True:
            name = f"{prefix}{r.randrange(10 ** (digits - 1), 10**digits)}"
            if name not in taken:
                return name

    def account(self, profile: str, owner: str | None = None) -> tuple[str, str]:
        """A new firm client account (its ids drawn, so neither order nor number tells a profile);
        with ``owner`` given, a linked account of that owner."""
        acct = self._new_id("accounts", "", 7, self._accounts)
        if owner is None:
            owner = self._new_id("owners", "CL", 5, self._owners)
        self._owners.add(owner)
        self._accounts[acct] = (profile, owner)
        return acct, owner

    def linked(self) -> list:
        """The background owners' account pairs [((acct, owner), (acct, owner))]."""
        return list(self._linked)

    def colluders(self):
        """The colluding pair: two accounts of distinct owners."""
        return self._colluders

    def add_linked(self, first: tuple[str, str], second: tuple[str, str]) -> None:
        """Register a background owner's two accounts (``linked``)."""
        self._linked.append((first, second))

    def set_colluders(self, first: tuple[str, str], second: tuple[str, str]) -> None:
        """Register the colluding pair (``colluders``)."""
        self._colluders = (first, second)

    def label(self, kind: str, acct: str, owner: str, sym: str, near_miss: bool = False, variant: str = "") -> Episode:
        ep = Episode(kind, acct, owner, sym, self.t, near_miss=near_miss, variant=variant)
        self.episodes.append(ep)
        return ep

    def _order_line(self, order: Order, action: str, reason: str | None = None) -> None:
        spec = SPECS[order.sym]
        acct, owner = order.client
        rec = {
            "type": "order",
            "ts": self._ts(),
            "action": action,
            "order_id": order.oid,
            "account": acct,
            "owner": owner,
            "symbol": order.sym,
            "side": "buy" if order.side == BUY else "sell",
            "qty": str(order.qty),
            "price": None if order.otype == "market" else f"{order.price * spec.tick:.{spec.decimals}f}",
            "order_type": order.otype,
        }
        if order.algo:
            rec["algo"] = order.algo
        if reason:
            rec["reason"] = reason
        self.records.append(rec)

    def submit(
        self,
        acct: str,
        sym: str,
        side: str,
        qty: float,
        price: float | None = None,
        order_type: str = "limit",
        algo: str | None = None,
        tag: Episode | None = None,
    ) -> str:
        """A client order now. ``limit`` rests (trading first if marketable), ``market`` walks the
        book, ``ioc``/``fok`` trade at ``price`` or better at once (FOK all or nothing), ``stop``
        rests off the book until the touch reaches ``price`` (ask for a buy, bid for a sell), then
        trades as market. ``tag``: the episode the order (and its fills) belongs to."""
        book = self._books[sym]
        spec = book.spec
        s = BUY if side == "buy" else SELL
        units = max(int(round(qty / spec.step)) * spec.step, spec.step)
        if order_type != "market" and price is None:
            raise ValueError(f"{order_type} order needs a price")
        ticks = None if order_type == "market" else max(int(round(price / spec.tick)), 1)
        profile_owner = self._accounts.get(acct)
        if profile_owner is None:
            raise ValueError(f"unknown account {acct!r}")
        self._client_oid += 1
        oid = f"X{self._client_oid}"
        order = Order(oid, sym, s, ticks, units, (acct, profile_owner[1]), order_type, algo)
        self._orders[oid] = order
        if tag is not None:
            tag.order_ids.add(oid)
        self._flush(book)
        self._order_line(order, "new")
        if order_type == "stop":
            book.stops.append(order)
            self._check_stops(book)
        elif order_type == "market":
            self._execute(book, order, None)
            order.left = 0
            order.live = False
        elif order_type == "fok":
            if book.available(s, ticks) >= units:
                self._execute(book, order, ticks)
            order.left = 0
            order.live = False
        elif order_type == "ioc":
            self._execute(book, order, ticks)
            order.left = 0
            order.live = False
        else:
            self._execute(book, order, ticks)
            if order.left > 0:
                book.add(order)
            else:
                order.live = False
        self._after_change(book)
        self._flush(book)
        return oid

    def _execute(self, book: Book, order: Order, limit: int | None) -> None:
        for p, n in self._take(book, order.side, order.left, limit, order):
            order.left -= n
            self._fill(order, p, n, aggressive=True)

    def modify(self, oid: str, price: float | None = None, qty: float | None = None) -> bool:
        """Change an open order's price and/or total quantity; it loses its time priority when
        the price changes or the quantity rises. Returns False when the order is not open."""
        order = self._orders.get(oid)
        if order is None or not order.live:
            return False
        book = self._books[order.sym]
        spec = book.spec
        new_price = order.price if price is None else max(int(round(price / spec.tick)), 1)
        new_qty = order.qty if qty is None else max(int(round(qty / spec.step)) * spec.step, spec.step)
        if new_qty <= order.filled:
            return self.cancel(oid)
        self._flush(book)
        requeue = new_price != order.price or new_qty > order.qty
        if order.otype == "stop":
            order.price = new_price
            order.qty = new_qty
            order.left = new_qty - order.filled
            self._order_line(order, "modify")
            self._check_stops(book)
        elif requeue:
            book.remove(order)
            order.price = new_price
            order.limit = new_price
            order.qty = new_qty
            order.left = new_qty - order.filled
            self._order_line(order, "modify")
            self._execute(book, order, new_price)
            if order.left > 0:
                book.add(order)
            else:
                order.live = False
        else:
            order.qty = new_qty
            order.left = new_qty - order.filled
            self._order_line(order, "modify")
        self._after_change(book)
        self._flush(book)
        return True

    def cancel(self, oid: str, reason: str | None = None) -> bool:
        """Cancel an open order (``reason`` e.g. ``kill_switch``). False when it is not open."""
        order = self._orders.get(oid)
        if order is None or not order.live:
            return False
        book = self._books[order.sym]
        self._flush(book)
        if order.otype == "stop":
            book.stops.remove(order)
        else:
            book.remove(order)
        order.live = False
        order.left = 0
        self._order_line(order, "cancel", reason)
        self._after_change(book)
        self._flush(book)
        return True

    def is_open(self, oid: str) -> bool:
        order = self._orders.get(oid)
        return bool(order is not None and order.live)

    def filled(self, oid: str) -> int:
        order = self._orders.get(oid)
        return order.filled if order is not None else 0

    def avg_price(self, oid: str) -> float | None:
        order = self._orders.get(oid)
        if order is None or not order.filled:
            return None
        return order.value / order.filled

    def position(self, acct: str, sym: str) -> int:
        return self._positions.get((acct, sym), 0)

    def execution(
        self,
        acct: str,
        sym: str | None = None,
        adverse_pips: tuple[float, float] | None = None,
        share: float = 0.0,
        improve_share: float = 0.0,
        improve_pips: tuple[float, float] = (0.0, 0.0),
    ) -> None:
        """The firm's fill policy for a client from now on (all symbols when ``sym`` is None):
        each fill of a market, stop or marketable order is printed ``adverse_pips`` worse than
        the book's price with probability ``share``, better by ``improve_pips`` with probability
        ``improve_share`` (a limit/IOC/FOK order is never printed beyond its limit). With no
        policy given, the client's fills are fair again."""
        if adverse_pips is None and not improve_share:
            self._policies.pop((acct, sym), None)
            if sym is None:
                for key in [k for k in self._policies if k[0] == acct]:
                    del self._policies[key]
            return
        self._policies[(acct, sym)] = Policy(
            tuple(adverse_pips or (0.0, 0.0)), float(share), float(improve_share), tuple(improve_pips)
        )
