"""Seeded synthetic order histories with labelled market abuse mixed into normal trading.

Pure (no Django, no clock): ``generate(ScenarioConfig(seed=...))`` returns the ``surveil`` input
records (dicts, in time order) and the labelled episodes. The same seed gives the same history.

Normal trading, which is where false positives come from:
- retail/institutional traders (some owners hold two linked accounts) sending market orders
  (filled at the touch with symmetric slippage) and limit orders behind the touch that rest,
  get modified, cancelled (a few within a second or two) or filled;
- market makers quoting both sides at the touch, re-quoting every second or so and pulling the
  other side when one side fills (high but legitimate order-to-trade ratios);
- an hourly close/fixing print per symbol.

Abuse, each kind placed at random times with randomised sizes, counts, speeds and price
impact drawn from ranges (never a single magic value): wash trades, spoofing, layering,
excessive order-to-trade ratio, quote stuffing, ping orders, momentum ignition (with price
impact), marking the close (with impact on the print), painting the tape, best-execution
slippage outliers, and a client whose fills only ever slip against it (asymmetric slippage).
"""

from __future__ import annotations

import bisect
import math
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

SYMBOLS = {  # symbol: (start mid, spread, digits, pip)
    "EURUSD": (1.0850, 0.00008, 5, 0.0001),
    "GBPUSD": (1.2700, 0.00012, 5, 0.0001),
    "USDJPY": (150.00, 0.012, 3, 0.01),
    "AUDUSD": (0.6600, 0.00010, 5, 0.0001),
}
NORMAL_SIZES = (10_000, 20_000, 50_000, 100_000, 100_000, 200_000, 300_000, 500_000, 1_000_000)

KINDS = (
    "wash_trade",
    "spoofing",
    "layering",
    "excessive_order_to_trade",
    "quote_stuffing",
    "ping_orders",
    "momentum_ignition",
    "marking_the_close",
    "painting_the_tape",
    "best_execution_slippage",
    "asymmetric_slippage",
)
# A painting-the-tape episode is a run of wash pairs by construction: a wash alert on it is right.
# A stuffing or ping burst really does blow out the account's RTS 9 ratio for that period.
ACCEPTED = {k: (k,) for k in KINDS} | {
    "painting_the_tape": ("painting_the_tape", "wash_trade"),
    "quote_stuffing": ("quote_stuffing", "excessive_order_to_trade"),
    "ping_orders": ("ping_orders", "excessive_order_to_trade"),
}


@dataclass(frozen=True)
class ScenarioConfig:
    seed: int = 7
    hours: float = 4.0
    traders: int = 40
    linked_owners: int = 6  # owners holding two accounts (wash-trade noise)
    market_makers: int = 4
    orders_per_trader_per_hour: float = 30.0
    mm_requote_s: float = 2.0  # mean seconds between a market maker's re-quotes
    quote_interval_s: float = 0.5  # mean seconds between quotes per symbol
    volatility_bps_per_sqrt_s: float = 0.3
    episodes_per_kind: int = 10
    close_every_s: float = 1800.0  # a close or fixing print per symbol this often
    start: datetime = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


@dataclass
class Episode:
    kind: str
    account: str
    owner: str
    symbol: str
    start_s: float
    order_ids: set[str] = field(default_factory=set)

    @property
    def accepted(self) -> tuple[str, ...]:
        return ACCEPTED[self.kind]


class _Market:
    """Per-symbol mid path (random walk) plus price-impact bumps that abuse episodes add."""

    def __init__(self, rng: random.Random, cfg: ScenarioConfig):
        self.times: dict[str, list[float]] = {}
        self.mids: dict[str, list[float]] = {}
        self.bumps: dict[str, list[tuple[float, float, float, float, float]]] = {s: [] for s in SYMBOLS}
        horizon = cfg.hours * 3600
        for sym, (mid, _spread, _digits, _pip) in SYMBOLS.items():
            t, m = 0.0, mid
            ts, ms = [], []
            while t < horizon + 600:
                ts.append(t)
                ms.append(m)
                dt = rng.expovariate(1 / cfg.quote_interval_s)
                t += dt
                m *= 1 + rng.gauss(0, cfg.volatility_bps_per_sqrt_s * math.sqrt(dt)) * 1e-4
            self.times[sym], self.mids[sym] = ts, ms

    def bump(self, sym, t0, t1, t2, t3, amp_bps):
        """Ramp 0 -> amp over [t0, t1], hold to t2, decay to 0 by t3 (signed bps)."""
        self.bumps[sym].append((t0, t1, t2, t3, amp_bps))

    def _impact(self, sym, t):
        total = 0.0
        for t0, t1, t2, t3, amp in self.bumps[sym]:
            if t0 <= t <= t3:
                if t < t1:
                    total += amp * (t - t0) / max(t1 - t0, 1e-9)
                elif t <= t2:
                    total += amp
                else:
                    total += amp * (t3 - t) / max(t3 - t2, 1e-9)
        return total

    def quote_at(self, sym, t):
        """(bid, ask, mid) of the last quote at or before ``t`` (what the engine will have seen)."""
        i = bisect.bisect_right(self.times[sym], t) - 1
        qt = self.times[sym][max(i, 0)]
        return self._quote(sym, qt, self.mids[sym][max(i, 0)])

    def _quote(self, sym, qt, base_mid):
        _mid0, spread, digits, _pip = SYMBOLS[sym]
        mid = base_mid * (1 + self._impact(sym, qt) * 1e-4)
        bid = round(mid - spread / 2, digits)
        ask = round(mid + spread / 2, digits)
        return bid, ask, (bid + ask) / 2

    def all_quotes(self, sym):
        for qt, m in zip(self.times[sym], self.mids[sym], strict=True):
            yield qt, self._quote(sym, qt, m)


class _Builder:
    def __init__(self, cfg: ScenarioConfig):
        self.cfg = cfg
        self.rng = random.Random(cfg.seed)
        self.market = _Market(self.rng, cfg)
        self.rows: list[tuple[float, int, dict]] = []
        self.seq = 0
        self.next_id = 0
        self.episodes: list[Episode] = []
        self.horizon = cfg.hours * 3600
        self.used_slots: set = set()

    # ---------------------------------------------------------------- primitives

    def _add(self, t, row):
        self.seq += 1
        self.rows.append((t, self.seq, row))

    def new_id(self):
        self.next_id += 1
        return f"o{self.next_id}"

    def px(self, sym, price):
        return f"{price:.{SYMBOLS[sym][2]}f}"

    def order(self, t, action, oid, acct, owner, sym, side, qty, price, otype="limit", reason=""):
        row = {
            "type": "order",
            "ts": t,
            "action": action,
            "order_id": oid,
            "account": acct,
            "owner": owner,
            "symbol": sym,
            "side": side,
            "qty": str(qty),
            "price": None if price is None else self.px(sym, price),
            "order_type": otype,
        }
        if reason:
            row["reason"] = reason
        self._add(t, row)

    def fill(self, t, oid, acct, owner, sym, side, qty, price):
        self._add(
            t,
            {
                "type": "fill",
                "ts": t,
                "order_id": oid,
                "account": acct,
                "owner": owner,
                "symbol": sym,
                "side": side,
                "qty": str(qty),
                "price": self.px(sym, price),
            },
        )

    def market_order(self, t, acct, owner, sym, side, qty, slip_bps=None, episode=None):
        """A market order filled 20-120 ms later at the touch plus slippage (bps of mid, + = adverse)."""
        oid = self.new_id()
        self.order(t, "new", oid, acct, owner, sym, side, qty, None, "market")
        tf = t + self.rng.uniform(0.02, 0.12)
        bid, ask, mid = self.market.quote_at(sym, tf)
        if slip_bps is None:
            u = self.rng.random()
            slip_bps = 0.0 if u < 0.6 else self.rng.uniform(0.1, 0.8) * (1 if u < 0.8 else -1)
        sign = 1 if side == "buy" else -1
        price = (ask if side == "buy" else bid) + sign * slip_bps * 1e-4 * mid
        self.fill(tf, oid, acct, owner, sym, side, qty, price)
        if episode is not None:
            episode.order_ids.add(oid)
        return oid, tf, price

    def pip(self, sym):
        return SYMBOLS[sym][3]

    def episode(self, kind, acct, owner, sym, t):
        ep = Episode(kind, acct, owner, sym, t)
        self.episodes.append(ep)
        return ep

    def when(self, margin_end=600.0):
        return self.rng.uniform(300.0, self.horizon - margin_end)

    # ---------------------------------------------------------------- normal trading

    def _accounts(self):
        accounts = []
        for i in range(self.cfg.traders):
            owner = f"OWN{i:03d}"
            accounts.append((f"ACC{i:03d}", owner))
            if i < self.cfg.linked_owners:
                accounts.append((f"ACC{i:03d}B", owner))
        return accounts

    def normal(self):
        cfg, rng = self.cfg, self.rng
        for acct, owner in self.normal_accounts:
            t = rng.uniform(0, 120)
            rate = cfg.orders_per_trader_per_hour / 3600
            while t < self.horizon:
                sym = rng.choice(list(SYMBOLS))
                side = rng.choice(("buy", "sell"))
                qty = rng.choice(NORMAL_SIZES)
                if rng.random() < 0.5:
                    self.market_order(t, acct, owner, sym, side, qty)
                else:
                    self._normal_limit(t, acct, owner, sym, side, qty)
                t += rng.expovariate(rate)
        for k in range(cfg.market_makers):
            acct, owner = f"MM{k}", f"MMOWN{k}"
            for sym in list(SYMBOLS)[k % 2 :: 2]:
                self._market_maker(acct, owner, sym)

    def _normal_limit(self, t, acct, owner, sym, side, qty):
        rng = self.rng
        bid, ask, mid = self.market.quote_at(sym, t)
        pip = self.pip(sym)
        behind = rng.uniform(0, 6) * pip
        price = bid - behind if side == "buy" else ask + behind
        oid = self.new_id()
        self.order(t, "new", oid, acct, owner, sym, side, qty, price)
        life = rng.uniform(0.2, 2.0) if rng.random() < 0.05 else rng.uniform(5, 600)
        if rng.random() < 0.2:  # one modification: move the price
            tm = t + life * rng.uniform(0.2, 0.8)
            price = price + (1 if side == "buy" else -1) * rng.uniform(0, 2) * pip
            self.order(tm, "modify", oid, acct, owner, sym, side, qty, price)
            bid, ask, _mid = self.market.quote_at(sym, tm)
            if (side == "buy" and price >= ask) or (side == "sell" and price <= bid):  # marketable now: trades
                self.fill(tm + rng.uniform(0.02, 0.12), oid, acct, owner, sym, side, qty, ask if side == "buy" else bid)
                return
        if rng.random() < 0.25:
            self.fill(t + life, oid, acct, owner, sym, side, qty, price)
        else:
            self.order(t + life, "cancel", oid, acct, owner, sym, side, qty, price)

    def _market_maker(self, acct, owner, sym):
        rng, cfg = self.rng, self.cfg
        t = rng.uniform(0, 5)
        size = 1_000_000
        while t < self.horizon:
            bid, ask, _mid = self.market.quote_at(sym, t)
            b, a = self.new_id(), self.new_id()
            self.order(t, "new", b, acct, owner, sym, "buy", size, bid)
            self.order(t, "new", a, acct, owner, sym, "sell", size, ask)
            nxt = t + rng.expovariate(1 / cfg.mm_requote_s)
            if rng.random() < 0.08:  # one side trades; the other is pulled at once (legitimate)
                tf = rng.uniform(t, nxt)
                if rng.random() < 0.5:
                    self.fill(tf, b, acct, owner, sym, "buy", size, bid)
                    self.order(tf + 0.01, "cancel", a, acct, owner, sym, "sell", size, ask)
                else:
                    self.fill(tf, a, acct, owner, sym, "sell", size, ask)
                    self.order(tf + 0.01, "cancel", b, acct, owner, sym, "buy", size, bid)
                nxt = tf + 0.02
            else:
                self.order(nxt - 0.001, "cancel", b, acct, owner, sym, "buy", size, bid)
                self.order(nxt - 0.001, "cancel", a, acct, owner, sym, "sell", size, ask)
            t = nxt

    def _close_slots(self):
        """(symbol, time) of every close/fixing print: one per symbol every ``close_every_s``."""
        step = self.cfg.close_every_s
        return [(sym, k * step) for k in range(1, int(self.horizon // step)) for sym in SYMBOLS]

    def closes(self):
        for sym, t in self._close_slots():
            _bid, _ask, mid = self.market.quote_at(sym, t)
            self._add(t + 1e-6, {"type": "close", "ts": t + 1e-6, "symbol": sym, "price": self.px(sym, mid)})

    # ---------------------------------------------------------------- abuse

    def _someone(self):
        return self.rng.choice(self.normal_accounts)

    def _linked_owner(self):
        i = self.rng.randrange(self.cfg.linked_owners)
        return f"ACC{i:03d}", f"ACC{i:03d}B", f"OWN{i:03d}"

    def wash_trade(self):
        a, b, owner = self._linked_owner()
        sym, t = self.rng.choice(list(SYMBOLS)), self.when()
        ep = self.episode("wash_trade", a, owner, sym, t)
        qty = self.rng.choice(NORMAL_SIZES[3:])
        side = self.rng.choice(("buy", "sell"))
        other = "sell" if side == "buy" else "buy"
        self.market_order(t, a, owner, sym, side, qty, slip_bps=0.0, episode=ep)
        self.market_order(t + self.rng.uniform(0.5, 8), b, owner, sym, other, qty, slip_bps=0.0, episode=ep)

    def _spoof(self, kind, levels):
        rng = self.rng
        acct, owner = self._someone()
        sym, t = rng.choice(list(SYMBOLS)), self.when()
        ep = self.episode(kind, acct, owner, sym, t)
        spoof_side = rng.choice(("buy", "sell"))
        real_side = "sell" if spoof_side == "buy" else "buy"
        real_qty = rng.choice((50_000, 100_000, 200_000))
        bid, ask, _mid = self.market.quote_at(sym, t)
        pip = self.pip(sym)
        spoof_ids = []
        tt = t
        for lvl in range(levels):
            behind = (rng.uniform(0.2, 1.5) + lvl * rng.uniform(0.5, 1.5)) * pip
            price = bid - behind if spoof_side == "buy" else ask + behind
            qty = real_qty * rng.choice((3, 4, 5, 8, 10)) // max(1, levels // 2)
            oid = self.new_id()
            self.order(tt, "new", oid, acct, owner, sym, spoof_side, qty, price)
            spoof_ids.append((oid, qty, price))
            ep.order_ids.add(oid)
            tt += rng.uniform(0.05, 1.0)
        _oid, tf, _price = self.market_order(tt + rng.uniform(1, 10), acct, owner, sym, real_side, real_qty, episode=ep)
        tc = tf + rng.uniform(0.3, 3.0)
        for oid, qty, price in spoof_ids:
            self.order(tc, "cancel", oid, acct, owner, sym, spoof_side, qty, price)
            tc += rng.uniform(0.01, 0.3)

    def spoofing(self):
        self._spoof("spoofing", 1)

    def layering(self):
        self._spoof("layering", self.rng.randint(3, 5))

    def excessive_order_to_trade(self):
        rng = self.rng
        k = len([e for e in self.episodes if e.kind == "excessive_order_to_trade"])
        acct, owner = f"ALGO{k:02d}", f"ALGOOWN{k:02d}"
        sym, t0 = rng.choice(list(SYMBOLS)), rng.uniform(0, self.horizon - 3600)
        ep = self.episode("excessive_order_to_trade", acct, owner, sym, t0)
        duration = rng.uniform(1800, 3600)
        rate = rng.uniform(0.5, 1.5)  # messages per second
        fills = rng.randint(1, 6)
        fill_at = sorted(rng.uniform(t0, t0 + duration) for _ in range(fills))
        t = t0
        while t < t0 + duration:
            bid, ask, _mid = self.market.quote_at(sym, t)
            side = rng.choice(("buy", "sell"))
            price = (
                bid - rng.uniform(0, 3) * self.pip(sym) if side == "buy" else ask + rng.uniform(0, 3) * self.pip(sym)
            )
            oid = self.new_id()
            ep.order_ids.add(oid)
            qty = 100_000
            self.order(t, "new", oid, acct, owner, sym, side, qty, price)
            t += rng.expovariate(rate)
            if rng.random() < 0.4:
                price += (1 if side == "buy" else -1) * 0.5 * self.pip(sym)
                self.order(t, "modify", oid, acct, owner, sym, side, qty, price)
                t += rng.expovariate(rate)
            if fill_at and t >= fill_at[0]:
                fill_at.pop(0)
                self.fill(t, oid, acct, owner, sym, side, qty, price)
            else:
                self.order(t, "cancel", oid, acct, owner, sym, side, qty, price)
            t += rng.expovariate(rate)

    def quote_stuffing(self):
        rng = self.rng
        acct, owner = self._someone()
        sym, t = rng.choice(list(SYMBOLS)), self.when()
        ep = self.episode("quote_stuffing", acct, owner, sym, t)
        rate = rng.uniform(80, 300)
        end = t + rng.uniform(0.5, 2.0)
        bid, ask, _mid = self.market.quote_at(sym, t)
        while t < end:
            oid = self.new_id()
            ep.order_ids.add(oid)
            side = rng.choice(("buy", "sell"))
            price = bid - self.pip(sym) if side == "buy" else ask + self.pip(sym)
            qty = rng.choice(NORMAL_SIZES[2:])
            self.order(t, "new", oid, acct, owner, sym, side, qty, price)
            t += rng.expovariate(rate)
            self.order(t, "cancel", oid, acct, owner, sym, side, qty, price)
            t += rng.expovariate(rate)

    def ping_orders(self):
        rng = self.rng
        acct, owner = self._someone()
        sym, t = rng.choice(list(SYMBOLS)), self.when()
        ep = self.episode("ping_orders", acct, owner, sym, t)
        for _ in range(rng.randint(12, 30)):
            bid, ask, _mid = self.market.quote_at(sym, t)
            side = rng.choice(("buy", "sell"))
            price = ask if side == "buy" else bid  # at the far touch: probing for hidden size
            qty = rng.choice((1_000, 2_000, 5_000, 8_000))
            oid = self.new_id()
            ep.order_ids.add(oid)
            self.order(t, "new", oid, acct, owner, sym, side, qty, price)
            self.order(t + rng.uniform(0.02, 0.6), "cancel", oid, acct, owner, sym, side, qty, price)
            t += rng.uniform(0.5, 4.0)

    def momentum_ignition(self):
        rng = self.rng
        acct, owner = self._someone()
        sym, t = rng.choice(list(SYMBOLS)), self.when()
        ep = self.episode("momentum_ignition", acct, owner, sym, t)
        side = rng.choice(("buy", "sell"))
        sign = 1 if side == "buy" else -1
        n = rng.randint(5, 9)
        gaps = [rng.uniform(0.4, 1.8) for _ in range(n)]
        burst_end = t + sum(gaps)
        reversal = burst_end + rng.uniform(15, 90)
        self.market.bump(sym, t, burst_end, reversal, reversal + 60, sign * rng.uniform(4, 12))
        sizes = [rng.choice((500_000, 1_000_000, 2_000_000)) for _ in gaps]

        def emit():
            tt = t
            for gap, qty in zip(gaps, sizes, strict=True):
                self.market_order(tt, acct, owner, sym, side, qty, episode=ep)
                tt += gap
            self.market_order(reversal, acct, owner, sym, "sell" if side == "buy" else "buy", sum(sizes), episode=ep)

        return emit

    def marking_the_close(self):
        rng = self.rng
        acct, owner = self._someone()
        free = [slot for slot in self._close_slots() if slot not in self.used_slots]
        if not free:
            return None
        slot = rng.choice(free)
        self.used_slots.add(slot)
        sym, close_t = slot
        ep = self.episode("marking_the_close", acct, owner, sym, close_t - 300)
        side = rng.choice(("buy", "sell"))
        sign = 1 if side == "buy" else -1
        held_at = close_t - rng.uniform(600, 3000)
        held = rng.choice((1_000_000, 2_000_000))
        n = rng.randint(3, 6)
        starts = sorted(close_t - rng.uniform(10, 240) for _ in range(n))
        sizes = [rng.choice((500_000, 1_000_000, 2_000_000)) for _ in starts]
        self.market.bump(sym, starts[0], close_t, close_t + 30, close_t + 150, sign * rng.uniform(3, 8))

        def emit():
            self.market_order(held_at, acct, owner, sym, side, held)
            for ts, qty in zip(starts, sizes, strict=True):
                self.market_order(ts, acct, owner, sym, side, qty, episode=ep)

        return emit

    def painting_the_tape(self):
        rng = self.rng
        a, b, owner = self._linked_owner()
        sym, t = rng.choice(list(SYMBOLS)), self.when(margin_end=1200)
        ep = self.episode("painting_the_tape", a, owner, sym, t)
        for _ in range(rng.randint(5, 10)):
            qty = rng.choice((5_000, 10_000, 20_000, 30_000, 40_000))
            side = rng.choice(("buy", "sell"))
            other = "sell" if side == "buy" else "buy"
            self.market_order(t, a, owner, sym, side, qty, slip_bps=0.0, episode=ep)
            self.market_order(t + rng.uniform(0.3, 4), b, owner, sym, other, qty, slip_bps=0.0, episode=ep)
            t += rng.uniform(15, 60)

    def best_execution_slippage(self):
        acct, owner = self._someone()
        sym, t = self.rng.choice(list(SYMBOLS)), self.when()
        ep = self.episode("best_execution_slippage", acct, owner, sym, t)
        side = self.rng.choice(("buy", "sell"))
        self.market_order(t, acct, owner, sym, side, self.rng.choice(NORMAL_SIZES), self.rng.uniform(7, 25), ep)

    def asymmetric_slippage(self):
        rng = self.rng
        k = len([e for e in self.episodes if e.kind == "asymmetric_slippage"])
        acct, owner = f"CLIENT{k:02d}", f"CLIENTOWN{k:02d}"
        sym = rng.choice(list(SYMBOLS))
        t = rng.uniform(0, self.horizon * 0.3)
        ep = self.episode("asymmetric_slippage", acct, owner, sym, t)
        end = rng.uniform(t + self.horizon * 0.4, self.horizon)
        n = rng.randint(90, 140)
        for _ in range(n):
            u = rng.random()
            slip = 0.0 if u < 0.55 else rng.uniform(0.1, 1.0)  # adverse passed on, improvement kept
            self.market_order(
                rng.uniform(t, end), acct, owner, sym, rng.choice(("buy", "sell")), rng.choice(NORMAL_SIZES), slip, ep
            )

    # ---------------------------------------------------------------- output

    def build(self):
        # Price-impact episodes shape the quote path first, so that every order priced later
        # (normal trading included) sees the same market the engine will see.
        self.normal_accounts = self._accounts()
        deferred = []
        for kind in ("momentum_ignition", "marking_the_close"):
            for _ in range(self.cfg.episodes_per_kind):
                deferred.append(getattr(self, kind)())
        self.normal()
        for kind in KINDS:
            if kind in ("momentum_ignition", "marking_the_close"):
                continue
            for _ in range(self.cfg.episodes_per_kind):
                getattr(self, kind)()
        for emit in deferred:
            if emit is not None:
                emit()
        self.closes()
        for sym in SYMBOLS:
            for qt, (bid, ask, _mid) in self.market.all_quotes(sym):
                if qt <= self.horizon:
                    self._add(
                        qt,
                        {"type": "quote", "ts": qt, "symbol": sym, "bid": self.px(sym, bid), "ask": self.px(sym, ask)},
                    )
        self.rows.sort(key=lambda r: (r[0], r[1]))
        start = self.cfg.start
        out = []
        for _t, _seq, row in self.rows:
            row["ts"] = _iso(start + timedelta(microseconds=round(row["ts"] * 1e6)))
            out.append(row)
        return out, self.episodes


def _iso(when: datetime) -> str:
    return when.isoformat(timespec="microseconds").replace("+00:00", "Z")


def generate(cfg: ScenarioConfig | None = None) -> tuple[list[dict], list[Episode]]:
    """Records (``surveil`` input dicts in time order) and the labelled abuse episodes."""
    return _Builder(cfg or ScenarioConfig()).build()
