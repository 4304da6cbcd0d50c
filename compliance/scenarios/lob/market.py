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

import heapq
import math
import random
from collections.abc import Generator
from datetime import UTC, datetime, timedelta

from compliance.scenarios import generator
from compliance.scenarios.lob.book import BUY, SELL, SPECS, SYMBOLS, Book, Order, Policy, SymbolSpec
from compliance.scenarios.lob.flow import _MARKET, _QUOTE, _REGIME, _RELEASE, _SCRIPT, _SECOND, OutsideFlow

__all__ = ["BUY", "SELL", "SPECS", "SYMBOLS", "Book", "Desk", "Episode", "Order", "Policy", "SymbolSpec"]

FIX_HALF_WINDOW_S = 150.0


class Episode(generator.Episode):
    """A labelled abuse episode or near-miss: the scorer's label (``generator.Episode``, what
    ``evaluation.score`` reads), whose written form also says when it began."""

    def as_dict(self) -> dict:
        label = super().as_dict()
        order_ids = label.pop("order_ids")
        return {**label, "start_s": round(self.start_s, 6), "order_ids": order_ids}


class Desk(OutsideFlow):
    """The venue and the firm's client gateway; the interface the scripts use.

    Prices in and out of the desk's methods are floats in price units; quantities are units
    (base currency, ounces for XAUUSD).
    """

    def __init__(
        self,
        seed: int,
        hours: float = 4.0,
        start: datetime | None = None,
        start_hour: int = 0,
        audit: bool = False,
        outside: bool = True,
    ):
        """``audit`` keeps (t, order id, symbol, side, book price, printed price, mark, aggressive)
        per client fill (prices in ticks) in ``self.audit``; ``outside=False`` leaves the books
        empty and the outside market silent (hand-made matching cases)."""
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
            start = day + timedelta(hours=start_hour)  # 0: 00:00 UTC, the Tokyo/Sydney session
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
        for book in self._books.values() if outside else ():
            self._seed_book(book)
            self._publish(book)
            self._schedule_market(book)
            self._schedule_regime(book)
        self._push(0.0, _SECOND, None, None)
        if outside:
            self._push(self.rng("releases").uniform(600.0, 3000.0), _RELEASE, None, None)

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
            elif kind == _RELEASE:
                self._release()
        self.t = end

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
