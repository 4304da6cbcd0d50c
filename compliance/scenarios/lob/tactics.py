"""Order tactics for the limit-order-book book's episode scripts: book arithmetic (ticks, pips,
lots, the book's levels), the ways an order is sent (aggressive, resting behind the touch, far
from it), two accounts crossing on the venue, and the planning records (``Plan``, ``Ctx``).

Pure Python: no Django, no clock. Scripts are generators run by the desk: ``yield seconds``.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from random import Random
from typing import Any

Script = Generator[float, None, Any]


# --------------------------------------------------------------------------- book arithmetic


def price_decimals(tick: float) -> int:
    return max(0, -Decimal(repr(tick)).normalize().as_tuple().exponent)


def on_tick(desk, sym: str, price: float) -> float:
    """A price rounded to the symbol's tick."""
    tick = desk.tick(sym)
    return round(round(price / tick) * tick, price_decimals(tick))


def lots_to_units(desk, sym: str, lots: float) -> int:
    """Lots as units, in steps of 0.01 lot (1,000 units FX, 1 oz gold), at least one step."""
    step = desk.lot(sym) / 100
    return int(max(1, round(lots * desk.lot(sym) / step)) * step)


def book_level_qty(desk, sym: str) -> float:
    """The typical quantity resting at one price level near the touch now (units)."""
    sizes = [q for _, q in desk.depth(sym, "buy", 5)] + [q for _, q in desk.depth(sym, "sell", 5)]
    sizes = [q for q in sizes if q > 0]
    return statistics.median(sizes) if sizes else float(desk.lot(sym))


def reach_qty(desk, sym: str, side: str, levels: int) -> float:
    """What an aggressive order on ``side`` would take out to walk ``levels`` price levels."""
    book_side = "sell" if side == "buy" else "buy"
    return sum(q for _, q in desk.depth(sym, book_side, levels)) or float(desk.lot(sym))


def near_touch_qty(desk, sym: str, side: str, pips: float) -> float:
    """What an aggressive order on ``side`` would find within ``pips`` of the touch (units)."""
    book_side = "sell" if side == "buy" else "buy"
    levels = desk.depth(sym, book_side, 10)
    if not levels:
        return 0.0
    best = levels[0][0]
    return sum(q for p, q in levels if abs(p - best) <= pips * desk.pip(sym) + 1e-12)


def qty_units(desk, sym: str, qty: float) -> int:
    """A quantity in units rounded to 0.01 lot, at least 0.01 lot."""
    return lots_to_units(desk, sym, qty / desk.lot(sym))


def pips_to_ticks(desk, sym: str, pips: float) -> int:
    """A distance in pips as a whole number of ticks, at least one."""
    return max(1, round(pips * desk.pip(sym) / desk.tick(sym)))


def far_ticks(desk, sym: str, side: str, pips: float, vol_share: float) -> int:
    """A distance from the touch an order is not meant to be reached at: ``pips``, or more on a
    market that moves faster (``vol_share`` of a minute's typical move), and behind at least three
    of the book's own levels."""
    by_vol = round(desk.vol(sym) * vol_share / desk.tick(sym))
    return max(pips_to_ticks(desk, sym, pips), by_vol, deep_ticks(desk, sym, side, 3) + 1)


def deep_ticks(desk, sym: str, side: str, level: int) -> int:
    """Ticks from the touch to the book's ``level``-th price level (0 = the touch) on ``side``:
    an order there has that much of the book in front of it."""
    levels = desk.depth(sym, side, level + 1)
    if not levels:
        return 0
    return round(abs(levels[0][0] - levels[-1][0]) / desk.tick(sym))


def spread_ticks(desk, sym: str) -> int:
    bid, ask = desk.touch(sym)
    return round((ask - bid) / desk.tick(sym))


def calm(desk, r: Random, sym: str, max_wait: float = 600.0) -> Script:
    """Wait for an ordinary market: the spread and the mid watched for 20-60 s, then until the
    spread is no wider than twice its median and the mid's last 10 s range within a minute's
    typical move (a release passes in a few minutes)."""
    spreads: list[int] = []
    mids: list[float] = []
    watched = 0.0
    watch = r.uniform(20.0, 60.0)
    while watched < max_wait:
        spreads.append(spread_ticks(desk, sym))
        mids.append(desk.mid(sym))
        if watched >= watch:
            recent = mids[-6:]
            wide = spreads[-1] > max(2, 2 * statistics.median(spreads))
            racing = max(recent) - min(recent) > desk.vol(sym)
            if not wide and not racing:
                return
        step = r.uniform(1.0, 3.0)
        yield step
        watched += step


def opposite(side: str) -> str:
    return "sell" if side == "buy" else "buy"


def passive_price(desk, sym: str, side: str, behind_ticks: int = 0) -> float:
    """A resting price ``behind_ticks`` behind the touch on ``side`` (0 = at the touch)."""
    bid, ask = desk.touch(sym)
    tick = desk.tick(sym)
    return on_tick(desk, sym, bid - behind_ticks * tick if side == "buy" else ask + behind_ticks * tick)


def inside_or_touch(desk, sym: str, side: str) -> float:
    """A resting price one tick better than the touch when the spread allows it, else the touch."""
    bid, ask = desk.touch(sym)
    tick = desk.tick(sym)
    if spread_ticks(desk, sym) >= 2:
        return on_tick(desk, sym, bid + tick if side == "buy" else ask - tick)
    return on_tick(desk, sym, bid if side == "buy" else ask)


def wait_filled(desk, oid: str, timeout: float, poll: float) -> Script:
    """Wait until ``oid`` has a fill (or is closed, or ``timeout`` passes); returns the filled qty."""
    waited = 0.0
    while waited < timeout and desk.filled(oid) <= 0 and desk.is_open(oid):
        yield poll
        waited += poll
    return desk.filled(oid)


def cancel_all(desk, oids: list[str]) -> None:
    for oid in oids:
        if desk.is_open(oid):
            desk.cancel(oid)


def flatten(desk, r: Random, acct: str, sym: str, ep, order_type: str = "market") -> str | None:
    """Close ``acct``'s position in ``sym`` with one aggressive order; the order id or None."""
    pos = desk.position(acct, sym)
    qty = qty_units(desk, sym, abs(pos))
    if abs(pos) < desk.lot(sym) / 100 / 2:
        return None
    side = "sell" if pos > 0 else "buy"
    return aggress(desk, r, acct, sym, side, qty, ep, order_type)


def aggress(
    desk, r: Random, acct: str, sym: str, side: str, qty: float, ep, order_type: str, algo=None, slack_pips=None
) -> str:
    """An order meant to trade now: market, or an IOC/FOK/marketable limit priced through the touch
    (by 0-4 ticks, or by ``slack_pips``: the client's accepted deviation, as a trading terminal sets it)."""
    if order_type == "market":
        return desk.submit(acct, sym, side, qty, order_type="market", algo=algo, tag=ep)
    bid, ask = desk.touch(sym)
    slack = (pips_to_ticks(desk, sym, slack_pips) if slack_pips else r.randint(0, 4)) * desk.tick(sym)
    price = on_tick(desk, sym, ask + slack if side == "buy" else bid - slack)
    oid = desk.submit(acct, sym, side, qty, price=price, order_type=order_type, algo=algo, tag=ep)
    if order_type == "limit" and desk.is_open(oid):
        # A marketable limit that did not fill completely does not stay: the trader pulls the rest.
        desk.cancel(oid)
    return oid


def cross(
    desk,
    r: Random,
    ep,
    *,
    seller: str,
    buyer: str,
    sym: str,
    qty: float,
    aggressor: str,
    order_type: str,
    where: str = "inside",
    max_wait: float = 180.0,
) -> Script:
    """Two of the episode's accounts trade with each other on the venue: the passive one rests a
    limit inside the spread (alone at its price, so first in line), the other takes it a moment
    later. ``where``: the price inside the spread (``low``/``high``/``mid``/``inside``)."""
    tick = desk.tick(sym)
    waited = 0.0
    while spread_ticks(desk, sym) < 2 and waited < max_wait:
        pause = r.uniform(0.5, 4.0)
        yield pause
        waited += pause
    bid, ask = desk.touch(sym)
    n = spread_ticks(desk, sym)
    if n >= 2:
        k = {"low": 1, "high": n - 1, "mid": max(1, n // 2)}.get(where) or r.randint(1, n - 1)
        price = on_tick(desk, sym, bid + k * tick)
    else:
        price = on_tick(desk, sym, ask if aggressor == "buy" else bid)
    passive_acct, aggr_acct = (seller, buyer) if aggressor == "buy" else (buyer, seller)
    resting = desk.submit(passive_acct, sym, opposite(aggressor), qty, price=price, tag=ep)
    # A prearranged cross: the other side follows within milliseconds, now and then a second or so.
    yield r.uniform(0.003, 0.15) if r.random() < 0.8 else r.uniform(0.15, 1.5)
    left = qty - desk.filled(resting)
    crossed = 0
    if desk.is_open(resting) and left > 0:
        before = desk.filled(resting)
        taker = desk.submit(
            aggr_acct, sym, aggressor, qty_units(desk, sym, left), price=price, order_type=order_type, tag=ep
        )
        crossed = desk.filled(resting) - before
        if order_type == "limit" and desk.is_open(taker):
            yield r.uniform(0.2, 2.0)
            cancel_all(desk, [taker])
    if desk.is_open(resting):
        yield r.uniform(0.5, 5.0)
        cancel_all(desk, [resting])
    return crossed


def cross_until(desk, r: Random, ep, attempts: int = 4, **kw) -> Script:
    """``cross`` again (a few seconds later) while the market got in between; the qty crossed."""
    for _ in range(attempts):
        crossed = yield from cross(desk, r, ep, **kw)
        if crossed:
            return crossed
        yield r.uniform(2.0, 20.0)
    return 0


# --------------------------------------------------------------------------- planning


@dataclass
class Plan:
    """One episode ready to schedule: its label, its script, the time it needs and the accounts
    it uses (so two episodes never drive the same account at once)."""

    ep: Any
    script: Callable[[], Iterator[float]]
    duration: float
    accounts: tuple[str, ...]
    at: float | None = None


@dataclass
class Ctx:
    desk: Any
    rng: Random
    span: float
    busy: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    algo_seq: int = 0
    used: set[str] = field(default_factory=set)

    def algo_id(self, r: Random, prefix: str) -> str:
        self.algo_seq += 1
        return f"{prefix}-{r.randint(10, 99)}{self.algo_seq:02d}"

    def scale(self, seconds: float) -> float:
        """A duration drawn for a 4-hour book, shortened on a shorter book."""
        return seconds * min(1.0, self.span / 14400.0)


def account_pair(ctx: Ctx, r: Random, *, allow_background: bool, profile: str):
    """Two accounts of one owner (new, or a background linked pair), or the colluding pair.
    Returns ((acct, owner), (acct, owner), how)."""
    desk = ctx.desk
    choices = ["new"]
    # A background pair carries one abuse episode a book at most, so episodes stay apart.
    free = [p for p in desk.linked() if p[0][0] not in ctx.used]
    if allow_background:
        if free:
            choices.append("linked")
        if desk.colluders() and desk.colluders()[0][0] not in ctx.used:
            choices.append("colluders")
    how = r.choice(choices)
    if how == "linked":
        a, b = r.choice(free)
    elif how == "colluders":
        a, b = desk.colluders()
    if how != "new":
        ctx.used.add(a[0])
    else:
        a = desk.account(profile)
        b = desk.account(r.choice(("retail", "active", profile)), owner=a[1])
    if r.random() < 0.5:
        a, b = b, a
    return a, b, how


def pair_label(desk, kind, a, b, sym, near, variant):
    owner = a[1] if a[1] == b[1] else f"{a[1]}+{b[1]}"
    return desk.label(kind, f"{a[0]},{b[0]}", owner, sym, near_miss=near, variant=variant)
