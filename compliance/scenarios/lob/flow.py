"""The outside market's order flow on the limit order book (pure): a zero-intelligence model.

Poisson arrivals of limit orders (placed at a distance drawn from the opposite touch), market
orders and cancellations of resting orders, at rates that switch between calm, busy and news
regimes (a Markov chain per symbol, plus data releases that hit several symbols at once). A slow
fundamental value wanders like FX and the flow leans towards it, so the price is formed by
matching. Mixed into ``market.Desk``, whose clock, matching and quotes it uses.
"""

from __future__ import annotations

import math

from compliance.scenarios.lob.book import BUY, SELL, Book, Order

# Regimes: multipliers of the limit order rate, the market order rate, the cancellation rate, the
# fundamental's volatility and the limit orders' distance; the mean stay in minutes. In news the
# liquidity providers step back (orders placed no closer than a floor to the opposite touch, more
# cancels) while takers come in force: the book widens and moves.
REGIMES = {
    "calm": (0.7, 0.7, 0.7, 0.7, 1.0, 16.0),
    "busy": (1.6, 1.6, 1.6, 1.3, 1.2, 8.0),
    "news": (1.6, 4.0, 3.0, 3.5, 3.0, 2.5),
}
NEXT_REGIME = {
    "calm": (("busy", 0.9), ("news", 0.1)),
    "busy": (("calm", 0.88), ("news", 0.12)),
    "news": (("busy", 0.6), ("calm", 0.4)),
}

# Clock events
_MARKET, _SCRIPT, _SECOND, _QUOTE, _REGIME, _RELEASE = range(6)


class OutsideFlow:
    """The outside market's part of the desk (its methods use the desk's clock and matching)."""

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
        lim_m, mkt_m, can_m = REGIMES[book.regime][:3]
        rate = book.limit_rate * lim_m + book.market_rate * mkt_m + book.cancel_rate * len(book.outside) * can_m
        book.market_gen += 1
        self._push(self.t + book.rng.expovariate(rate), _MARKET, book.sym, book.market_gen)

    def _schedule_regime(self, book: Book) -> None:
        minutes = REGIMES[book.regime][5]
        book.regime_gen += 1
        self._push(self.t + book.rng.expovariate(1.0 / (minutes * 60.0)), _REGIME, book.sym, book.regime_gen)

    def _switch_regime(self, book: Book) -> None:
        """The end of a stay: the next regime from the chain (news of the symbol's own now and then)."""
        self._advance_fundamental(book)
        r = book.rng.random()
        acc = 0.0
        for name, p in NEXT_REGIME[book.regime]:
            acc += p
            if r < acc:
                book.regime = name
                break
        book.floor = 0
        if book.regime == "news":
            self._news(book, book.rng.choice((-1, 1)))
        self._schedule_regime(book)
        self._schedule_market(book)

    def _release(self) -> None:
        """A scheduled data release: a USD figure moves every symbol at once (the dollar one way:
        EURUSD, GBPUSD and gold against USDJPY); a JPY, EUR or GBP figure moves its own pair."""
        r = self.rng("releases")
        sign = r.choice((-1, 1))
        u = r.random()
        if u < 0.5:
            hit = {"EURUSD": -sign, "GBPUSD": -sign, "XAUUSD": -sign, "USDJPY": sign}
        elif u < 0.7:
            hit = {"USDJPY": sign}
        elif u < 0.85:
            hit = {"EURUSD": sign}
        else:
            hit = {"GBPUSD": sign}
        for sym, direction in hit.items():
            book = self._books[sym]
            self._advance_fundamental(book)
            book.regime = "news"
            self._news(book, direction)
            self._schedule_regime(book)
            self._schedule_market(book)
        self._push(self.t + r.expovariate(1.0 / (r.uniform(35.0, 70.0) * 60.0)), _RELEASE, None, None)

    def _news(self, book: Book, direction: int) -> None:
        """News: the fundamental jumps, liquidity near the touch is withdrawn, providers step back."""
        spec = book.spec
        book.floor = book.rng.randint(1, 4) * spec.scale if spec.scale > 1 else book.rng.randint(2, 6)
        lo, hi = (20.0, 90.0) if book.sym == "XAUUSD" else (4.0, 20.0)  # gold: $2-9
        book.fundamental += direction * book.rng.uniform(lo, hi) * spec.pip / spec.tick
        mid = book.mid_ticks()
        near = 6 * spec.scale
        for o in list(book.outside):
            if abs(o.price - mid) <= near and book.rng.random() < 0.6:
                book.remove(o)
        self._ensure(book)
        self._after_change(book)

    def _advance_fundamental(self, book: Book) -> None:
        dt = self.t - book.f_t
        if dt > 0:
            book.fundamental += book.rng.gauss(0.0, book.spec.sigma * REGIMES[book.regime][3] * math.sqrt(dt))
            book.f_t = self.t

    def _market_event(self, book: Book) -> None:
        rng = book.rng
        self._advance_fundamental(book)
        regime = REGIMES[book.regime]
        lim = book.limit_rate * regime[0]
        mkt = book.market_rate * regime[1]
        can = book.cancel_rate * len(book.outside) * regime[2]
        u = rng.random() * (lim + mkt + can)
        scale = book.spec.scale
        mid = book.mid_ticks()
        lean = math.tanh((book.fundamental - mid) / (3.0 * scale))
        if u < lim:
            side = BUY if rng.random() < 0.5 + 0.25 * lean else SELL
            d = int(rng.expovariate(1.0 / (3.0 * scale * regime[4]))) + book.floor
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
