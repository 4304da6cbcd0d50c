"""Abuse episodes and their legitimate look-alikes on the limit-order-book book (issue 16).

``plan_episodes(desk, rng)`` draws, per alert type, 4-5 abuse episodes and 3-4 near-misses,
labels each (``desk.label``) and schedules its script on the desk's clock. A script is a
generator run by the desk: ``yield seconds`` waits that long of event time. Every order a script
sends carries ``tag=ep``, so the label's ``order_ids`` are exactly the episode's own orders.

The episodes are written from the regulation's definitions (MAR Art. 12 and Annex II of
2016/522, RTS 9, MiFID II Art. 27; DOMAIN.md) and from how abusers and legitimate traders act on
an exchange-style book: sizes are drawn against the book's depth at the time, distances in ticks
and pips of this book, timings against the fixing windows. Nothing here knows how a detector
works. Each episode draws its own parameters from wide ranges out of its own random stream
(``desk.rng``), so adding or changing one episode never shifts another's draws.

Pure Python: no Django, no clock, deterministic per seed.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from random import Random
from typing import Any

from compliance.scenarios.generator import KINDS

Script = Generator[float, None, Any]

# How many abuse episodes and near-misses each alert type gets per book.
ABUSE_PER_KIND = (4, 5)
NEAR_MISSES_PER_KIND = (3, 4)


# --------------------------------------------------------------------------- book arithmetic


def _decimals(tick: float) -> int:
    return max(0, -Decimal(repr(tick)).normalize().as_tuple().exponent)


def _on_tick(desk, sym: str, price: float) -> float:
    """A price rounded to the symbol's tick."""
    tick = desk.tick(sym)
    return round(round(price / tick) * tick, _decimals(tick))


def _units(desk, sym: str, lots: float) -> int:
    """Lots as units, in steps of 0.01 lot (1,000 units FX, 1 oz gold), at least one step."""
    step = desk.lot(sym) / 100
    return int(max(1, round(lots * desk.lot(sym) / step)) * step)


def _level_qty(desk, sym: str) -> float:
    """The typical quantity resting at one price level near the touch now (units)."""
    sizes = [q for _, q in desk.depth(sym, "buy", 5)] + [q for _, q in desk.depth(sym, "sell", 5)]
    sizes = [q for q in sizes if q > 0]
    return statistics.median(sizes) if sizes else float(desk.lot(sym))


def _reach_qty(desk, sym: str, side: str, levels: int) -> float:
    """What an aggressive order on ``side`` would take out to walk ``levels`` price levels."""
    book_side = "sell" if side == "buy" else "buy"
    return sum(q for _, q in desk.depth(sym, book_side, levels)) or float(desk.lot(sym))


def _size(desk, sym: str, qty: float) -> int:
    """A quantity in units rounded to 0.01 lot, at least 0.01 lot."""
    return _units(desk, sym, qty / desk.lot(sym))


def _ticks(desk, sym: str, pips: float) -> int:
    """A distance in pips as a whole number of ticks, at least one."""
    return max(1, round(pips * desk.pip(sym) / desk.tick(sym)))


def _far_ticks(desk, sym: str, side: str, pips: float, vol_share: float) -> int:
    """A distance from the touch an order is not meant to be reached at: ``pips``, or more on a
    market that moves faster (``vol_share`` of a minute's typical move), and behind at least three
    of the book's own levels."""
    by_vol = round(desk.vol(sym) * vol_share / desk.tick(sym))
    return max(_ticks(desk, sym, pips), by_vol, _deep_ticks(desk, sym, side, 3) + 1)


def _deep_ticks(desk, sym: str, side: str, level: int) -> int:
    """Ticks from the touch to the book's ``level``-th price level (0 = the touch) on ``side``:
    an order there has that much of the book in front of it."""
    levels = desk.depth(sym, side, level + 1)
    if not levels:
        return 0
    return round(abs(levels[0][0] - levels[-1][0]) / desk.tick(sym))


def _spread_ticks(desk, sym: str) -> int:
    bid, ask = desk.touch(sym)
    return round((ask - bid) / desk.tick(sym))


def _other(side: str) -> str:
    return "sell" if side == "buy" else "buy"


def _passive_price(desk, sym: str, side: str, behind_ticks: int = 0) -> float:
    """A resting price ``behind_ticks`` behind the touch on ``side`` (0 = at the touch)."""
    bid, ask = desk.touch(sym)
    tick = desk.tick(sym)
    return _on_tick(desk, sym, bid - behind_ticks * tick if side == "buy" else ask + behind_ticks * tick)


def _inside_or_touch(desk, sym: str, side: str) -> float:
    """A resting price one tick better than the touch when the spread allows it, else the touch."""
    bid, ask = desk.touch(sym)
    tick = desk.tick(sym)
    if _spread_ticks(desk, sym) >= 2:
        return _on_tick(desk, sym, bid + tick if side == "buy" else ask - tick)
    return _on_tick(desk, sym, bid if side == "buy" else ask)


def _wait_filled(desk, oid: str, timeout: float, poll: float) -> Script:
    """Wait until ``oid`` has a fill (or is closed, or ``timeout`` passes); returns the filled qty."""
    waited = 0.0
    while waited < timeout and desk.filled(oid) <= 0 and desk.is_open(oid):
        yield poll
        waited += poll
    return desk.filled(oid)


def _cancel_all(desk, oids: list[str]) -> None:
    for oid in oids:
        if desk.is_open(oid):
            desk.cancel(oid)


def _flatten(desk, r: Random, acct: str, sym: str, ep, order_type: str = "market") -> str | None:
    """Close ``acct``'s position in ``sym`` with one aggressive order; the order id or None."""
    pos = desk.position(acct, sym)
    qty = _size(desk, sym, abs(pos))
    if abs(pos) < desk.lot(sym) / 100 / 2:
        return None
    side = "sell" if pos > 0 else "buy"
    return _aggress(desk, r, acct, sym, side, qty, ep, order_type)


def _aggress(
    desk, r: Random, acct: str, sym: str, side: str, qty: float, ep, order_type: str, algo=None, slack_pips=None
) -> str:
    """An order meant to trade now: market, or an IOC/FOK/marketable limit priced through the touch
    (by 0-4 ticks, or by ``slack_pips``: the client's accepted deviation, as a trading terminal sets it)."""
    if order_type == "market":
        return desk.submit(acct, sym, side, qty, order_type="market", algo=algo, tag=ep)
    bid, ask = desk.touch(sym)
    slack = (_ticks(desk, sym, slack_pips) if slack_pips else r.randint(0, 4)) * desk.tick(sym)
    price = _on_tick(desk, sym, ask + slack if side == "buy" else bid - slack)
    oid = desk.submit(acct, sym, side, qty, price=price, order_type=order_type, algo=algo, tag=ep)
    if order_type == "limit" and desk.is_open(oid):
        # A marketable limit that did not fill completely does not stay: the trader pulls the rest.
        desk.cancel(oid)
    return oid


def _cross(
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
    while _spread_ticks(desk, sym) < 2 and waited < max_wait:
        pause = r.uniform(0.5, 4.0)
        yield pause
        waited += pause
    bid, ask = desk.touch(sym)
    n = _spread_ticks(desk, sym)
    if n >= 2:
        k = {"low": 1, "high": n - 1, "mid": max(1, n // 2)}.get(where) or r.randint(1, n - 1)
        price = _on_tick(desk, sym, bid + k * tick)
    else:
        price = _on_tick(desk, sym, ask if aggressor == "buy" else bid)
    passive_acct, aggr_acct = (seller, buyer) if aggressor == "buy" else (buyer, seller)
    resting = desk.submit(passive_acct, sym, _other(aggressor), qty, price=price, tag=ep)
    # A prearranged cross: the other side follows within milliseconds, now and then a second or so.
    yield r.uniform(0.003, 0.15) if r.random() < 0.8 else r.uniform(0.15, 1.5)
    left = qty - desk.filled(resting)
    crossed = 0
    if desk.is_open(resting) and left > 0:
        before = desk.filled(resting)
        taker = desk.submit(
            aggr_acct, sym, aggressor, _size(desk, sym, left), price=price, order_type=order_type, tag=ep
        )
        crossed = desk.filled(resting) - before
        if order_type == "limit" and desk.is_open(taker):
            yield r.uniform(0.2, 2.0)
            _cancel_all(desk, [taker])
    if desk.is_open(resting):
        yield r.uniform(0.5, 5.0)
        _cancel_all(desk, [resting])
    return crossed


def _cross_until(desk, r: Random, ep, attempts: int = 4, **kw) -> Script:
    """``_cross`` again (a few seconds later) while the market got in between; the qty crossed."""
    for _ in range(attempts):
        crossed = yield from _cross(desk, r, ep, **kw)
        if crossed:
            return crossed
        yield r.uniform(2.0, 20.0)
    return 0


# --------------------------------------------------------------------------- planning


@dataclass
class _Plan:
    """One episode ready to schedule: its label, its script, the time it needs and the accounts
    it uses (so two episodes never drive the same account at once)."""

    ep: Any
    script: Callable[[], Iterator[float]]
    duration: float
    accounts: tuple[str, ...]
    at: float | None = None


@dataclass
class _Ctx:
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


def _pair(ctx: _Ctx, r: Random, *, allow_background: bool, profile: str):
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


def _pair_label(desk, kind, a, b, sym, near, variant):
    owner = a[1] if a[1] == b[1] else f"{a[1]}+{b[1]}"
    return desk.label(kind, f"{a[0]},{b[0]}", owner, sym, near_miss=near, variant=variant)


# --------------------------------------------------------------------------- wash trades


def _wash(ctx: _Ctx, r: Random, sym: str, near: bool, variant: str) -> _Plan:
    desk = ctx.desk
    if not near:
        a, b, how = _pair(ctx, r, allow_background=True, profile=r.choice(("active", "retail", "algo")))
        ep = _pair_label(desk, "wash_trade", a, b, sym, False, f"{variant}/{how}")
        lots = r.choice((r.uniform(0.1, 1.5), r.uniform(1.5, 8.0), r.uniform(8.0, 25.0)))
        legs = 1 if variant == "one_way" else r.randint(2, 3)
        gaps = [r.uniform(3.0, 240.0) for _ in range(legs)]
        order_type = r.choice(("ioc", "ioc", "limit", "fok"))
        where = r.choice(("inside", "mid", "low", "high"))
        qty_drift = r.uniform(0.0, 0.03) if variant == "near_size" else 0.0

        def script() -> Iterator[float]:
            qty = _units(desk, sym, lots)
            seller, buyer = (a[0], b[0]) if r.random() < 0.5 else (b[0], a[0])
            for leg in range(legs):
                leg_qty = _size(desk, sym, qty * (1 + r.uniform(-qty_drift, qty_drift))) if leg else qty
                yield from _cross_until(
                    desk,
                    r,
                    ep,
                    seller=seller,
                    buyer=buyer,
                    sym=sym,
                    qty=leg_qty,
                    aggressor=r.choice(("buy", "sell")),
                    order_type=order_type,
                    where=where,
                )
                seller, buyer = buyer, seller  # the round trip back: no change in beneficial ownership
                yield gaps[leg]

        return _Plan(ep, script, sum(gaps) + 200 * legs, (a[0], b[0]))

    # Near-misses: an owner's two accounts that never meet each other on the venue.
    a = desk.account(r.choice(("active", "retail", "institutional")))
    b = desk.account(r.choice(("active", "retail")), owner=a[1])
    ep = _pair_label(desk, "wash_trade", a, b, sym, True, variant)
    lots = r.uniform(0.3, 12.0)
    ratio = r.choice((r.uniform(0.25, 0.7), r.uniform(1.4, 3.0)))
    later = r.uniform(240.0, 1800.0)
    order_type = r.choice(("market", "ioc", "limit"))

    def script() -> Iterator[float]:
        side = r.choice(("buy", "sell"))
        qty = _units(desk, sym, lots)
        if variant == "hedge_later":
            # One account takes a view, the other hedges part of it minutes later, both with the market.
            _aggress(desk, r, a[0], sym, side, qty, ep, order_type)
            yield later
            _aggress(desk, r, b[0], sym, _other(side), _size(desk, sym, qty * ratio), ep, order_type)
        elif variant == "same_direction":
            _aggress(desk, r, a[0], sym, side, qty, ep, order_type)
            yield r.uniform(5.0, 300.0)
            _aggress(desk, r, b[0], sym, side, _size(desk, sym, qty * ratio), ep, order_type)
        else:  # "resting_hedge": a hedge rested at the touch and left to the market, the other account far away in time
            oid = desk.submit(a[0], sym, side, qty, price=_passive_price(desk, sym, side, r.randint(0, 2)), tag=ep)
            yield from _wait_filled(desk, oid, r.uniform(300.0, 1200.0), r.uniform(2.0, 10.0))
            _cancel_all(desk, [oid])
            yield later
            _aggress(desk, r, b[0], sym, _other(side), _size(desk, sym, qty * ratio), ep, "market")

    return _Plan(ep, script, later + 1600, (a[0], b[0]))


# --------------------------------------------------------------------------- painting the tape


def _painting(ctx: _Ctx, r: Random, sym: str, near: bool, variant: str) -> _Plan:
    desk = ctx.desk
    n = r.randint(4, 12)
    gaps = [r.uniform(8.0, 200.0) for _ in range(n)]
    lots = r.choice((r.uniform(0.05, 0.5), r.uniform(0.5, 3.0), r.uniform(3.0, 10.0)))
    if not near:
        a, b, how = _pair(ctx, r, allow_background=True, profile=r.choice(("active", "algo", "retail")))
        ep = _pair_label(desk, "painting_the_tape", a, b, sym, False, f"{variant}/{how}")
        order_type = r.choice(("ioc", "ioc", "limit", "fok"))
        up = r.random() < 0.5

        def script() -> Iterator[float]:
            base = _units(desk, sym, lots)
            seller, buyer = a[0], b[0]
            for i in range(n):
                qty = _size(desk, sym, base * r.uniform(0.6, 1.6)) if variant != "same_size" else base
                if variant == "walk":
                    # Each print at the far edge of the spread in one direction: the tape walks.
                    where, aggressor = ("high", "buy") if up else ("low", "sell")
                else:
                    where, aggressor = r.choice(("mid", "inside")), r.choice(("buy", "sell"))
                yield from _cross_until(
                    desk, r, ep, seller=seller, buyer=buyer, sym=sym, qty=qty, aggressor=aggressor,
                    order_type=order_type, where=where, max_wait=90.0,
                )  # fmt: skip
                if variant != "walk" or r.random() < 0.5:
                    seller, buyer = buyer, seller
                yield gaps[i]

        return _Plan(ep, script, sum(gaps) + 120 * n, (a[0], b[0]))

    a = desk.account(r.choice(("active", "retail", "algo")))
    b = desk.account(r.choice(("active", "retail")), owner=a[1])
    ep = _pair_label(desk, "painting_the_tape", a, b, sym, True, variant)
    offset = r.uniform(600.0, 2400.0)

    def script() -> Iterator[float]:
        side = r.choice(("buy", "sell"))
        base = _units(desk, sym, lots)
        if variant == "same_direction_series":
            # Two accounts of one owner building the same position with the market, interleaved.
            for i in range(n):
                acct = a[0] if i % 2 == 0 else b[0]
                _aggress(desk, r, acct, sym, side, _size(desk, sym, base * r.uniform(0.5, 1.5)), ep, "market")
                yield gaps[i]
        elif variant == "hedged_later":
            for i in range(n):
                _aggress(desk, r, a[0], sym, side, _size(desk, sym, base * r.uniform(0.5, 1.5)), ep, "market")
                yield gaps[i] / 2
            yield offset
            _aggress(desk, r, b[0], sym, _other(side), _size(desk, sym, abs(desk.position(a[0], sym))), ep, "market")
        else:  # "own_scalps": each account scalps with strangers on its own, never with the other
            for i in range(n):
                acct = a[0] if r.random() < 0.5 else b[0]
                oid = desk.submit(acct, sym, side, base, price=_passive_price(desk, sym, side), tag=ep)
                yield from _wait_filled(desk, oid, r.uniform(30.0, 240.0), r.uniform(1.0, 5.0))
                _cancel_all(desk, [oid])
                _flatten(desk, r, acct, sym, ep)
                yield gaps[i]

    return _Plan(ep, script, sum(gaps) + offset + 240 * n, (a[0], b[0]))


# --------------------------------------------------------------------------- spoofing and layering


def _spoof_like(ctx: _Ctx, r: Random, sym: str, near: bool, variant: str, kind: str) -> _Plan:
    """Spoofing (one large order, or a few at one level) and layering (orders at several levels):
    orders on one side the account does not mean to fill, a genuine small order on the other."""
    desk = ctx.desk
    acct, owner = desk.account(r.choice(("active", "algo", "active")))
    algo = ctx.algo_id(r, "SPX") if r.random() < 0.3 else None
    ep = desk.label(kind, acct, owner, sym, near_miss=near, variant=variant)
    layering = kind == "layering"
    cycles = r.choice((1, 1, 2, 3)) if not near and variant == "repeat" else 1
    levels = r.randint(3, 6) if layering else r.choice((1, 1, 1, 2, 3))
    gap_ticks = r.choice((1, 1, 2, r.randint(2, 6)))
    # The large orders sit behind the touch (an abuser does not want them filled); a genuine
    # trader's large order may sit at the touch.
    behind_pips = r.choice((r.uniform(0.3, 0.8), r.uniform(0.8, 2.0), r.uniform(2.0, 4.0)))
    if near and r.random() < 0.4:
        behind_pips = 0.0
    vol_share = r.uniform(0.3, 1.0)
    deep_level = r.randint(2, 4)  # the spoof sits behind this many of the book's own levels
    size_mult = r.uniform(4.0, 12.0) if levels == 1 else r.uniform(3.5, 8.0)
    genuine_share = r.uniform(0.05, 0.6)
    cancel_after = r.choice((r.uniform(0.1, 1.5), r.uniform(1.5, 6.0), r.uniform(6.0, 15.0)))
    hold_after = r.uniform(480.0, 2400.0)
    stagger = r.uniform(0.5, 12.0) if variant == "added_progressively" else 0.0
    genuine_type = r.choice(("limit", "limit", "limit_inside"))
    timeout = r.uniform(240.0, 900.0)
    poll = r.uniform(0.2, 1.5)

    prices: dict[str, float] = {}  # the large orders' prices as sent
    small_size: list[int] = []

    def behind_ticks() -> int:
        # Far enough behind the touch for this market's pace (a minute's typical move sets it).
        if not behind_pips:
            return 0
        by_vol = desk.vol(sym) * vol_share / desk.tick(sym)
        return max(_ticks(desk, sym, behind_pips), round(by_vol), _deep_ticks(desk, sym, spoof_side[0], deep_level) + 1)

    small: list[str] = []

    spoof_side = ["buy"]

    def place_large(side: str) -> Iterator[float]:
        spoof_side[0] = side
        level_qty = _level_qty(desk, sym)
        # Each large order several times the small one and of the order of the book's levels.
        each = max(small_qty() * size_mult, level_qty * r.uniform(0.8, 3.0))
        behind = behind_ticks()
        oids = []
        for i in range(levels):
            if i >= (3 if layering else 1) and small and desk.filled(small[-1]) > 0:
                break  # the small order has filled: no more layers
            share = each * r.uniform(0.9, 1.25)
            if i == 0 or not layering:
                anchor = _passive_price(desk, sym, side, behind)
            # Layers step away from the first one, whatever the touch did meanwhile.
            step = i * gap_ticks * desk.tick(sym) if layering else 0.0
            price = _on_tick(desk, sym, anchor - step if side == "buy" else anchor + step)
            oids.append(desk.submit(acct, sym, side, _size(desk, sym, share), price=price, algo=algo, tag=ep))
            prices[oids[-1]] = price
            if stagger:
                yield stagger * r.uniform(0.5, 1.5)
        return oids

    def fade(oids: list[str], side: str) -> None:
        # The abuser's large orders are not meant to trade: when the market comes within a tick
        # of one, it is moved back (a genuine order would be left to fill).
        bid, ask = desk.touch(sym)
        touch = bid if side == "buy" else ask
        tick = desk.tick(sym)
        for oid in oids:
            price = prices.get(oid)
            guard = max(2, behind_ticks() // 2)
            if price is not None and desk.is_open(oid) and abs(price - touch) <= tick * (guard + 0.5):
                away = _passive_price(desk, sym, side, behind_ticks() + r.randint(0, 3))
                if desk.modify(oid, price=away):
                    prices[oid] = away

    def small_qty() -> float:
        # The genuine order's size, fixed for the episode (the trader's usual clip).
        if not small_size:
            small_size.append(_size(desk, sym, _level_qty(desk, sym) * genuine_share))
        return small_size[0]

    def genuine(side: str) -> str:
        qty = small_qty()
        price = _inside_or_touch(desk, sym, side) if genuine_type == "limit_inside" else _passive_price(desk, sym, side)
        return desk.submit(acct, sym, side, qty, price=price, algo=algo, tag=ep)

    def chase(oid: str, side: str) -> None:
        # A small resting order left behind by the market is moved back to the touch.
        if desk.is_open(oid) and desk.filled(oid) <= 0:
            bid, ask = desk.touch(sym)
            touch = bid if side == "buy" else ask
            return_price = _on_tick(desk, sym, touch)
            desk.modify(oid, price=return_price)

    def script() -> Iterator[float]:
        for _ in range(cycles):
            small_side = r.choice(("buy", "sell"))
            large_side = _other(small_side)
            if near and variant == "large_alone":
                # A large order that sits, then is withdrawn with nothing traded on the other side.
                oids = yield from place_large(r.choice(("buy", "sell")))
                yield r.uniform(120.0, 900.0)
                _cancel_all(desk, oids)
                return
            first_large = variant == "added_progressively" or r.random() < 0.6
            if first_large:
                oids = yield from place_large(large_side)
                yield r.uniform(0.2, 6.0)
                small.append(genuine(small_side))
            else:
                for _ in range(3):
                    small.append(genuine(small_side))
                    yield r.uniform(0.05, 1.5)
                    if desk.filled(small[-1]) <= 0:
                        break
                    # Filled before the pressure went on: an ordinary trade; try again later.
                    yield r.uniform(5.0, 60.0)
                oids = yield from place_large(large_side)
            small_oid = small[-1]
            waited = 0.0
            while desk.filled(small_oid) <= 0 and waited < timeout:
                step = poll * r.uniform(0.5, 1.5)
                yield step
                waited += step
                if waited > 30.0 and r.random() < 0.05:
                    chase(small_oid, small_side)
                if not near:
                    fade(oids, large_side)
            if desk.filled(small_oid) <= 0 and desk.is_open(small_oid):
                # Impatient: the small order is made marketable so the trade happens.
                bid, ask = desk.touch(sym)
                desk.modify(small_oid, price=_on_tick(desk, sym, ask if small_side == "buy" else bid))
            if not near:
                until = desk.t + cancel_after
                while until - desk.t > 1e-6:
                    yield min(poll, until - desk.t)
                    fade(oids, large_side)
                if layering and r.random() < 0.5:
                    for oid in oids:  # pulled one after another, within a second or two
                        _cancel_all(desk, [oid])
                        yield r.uniform(0.02, 0.4)
                else:
                    _cancel_all(desk, oids)
                _cancel_all(desk, [small_oid])
                yield r.uniform(20.0, 240.0)
            elif variant in ("genuinely_filled", "ladder_filled"):
                # The large order(s) were meant: left to the market, then moved to the touch to finish.
                yield hold_after
                for oid in oids:
                    if desk.is_open(oid):
                        bid, ask = desk.touch(sym)
                        desk.modify(oid, price=_on_tick(desk, sym, bid if large_side == "sell" else ask))
                yield r.uniform(5.0, 60.0)
                _cancel_all(desk, oids + [small_oid])
            else:  # "cancelled_late": withdrawn long after the other side filled, for the client's own reason
                yield hold_after
                # Now and then the client's session drops and the venue pulls its orders.
                reason = "disconnect" if r.random() < 0.3 else None
                for oid in oids + [small_oid]:
                    if desk.is_open(oid):
                        desk.cancel(oid, reason=reason)

    dur = cycles * (timeout + 300.0) + (hold_after + 120 if near else 0)
    return _Plan(ep, script, dur, (acct,))


def _ladder_near(ctx: _Ctx, r: Random, sym: str, variant: str) -> _Plan:
    """Layering look-alikes that are legitimate: scaling into a position with a ladder of bids
    (or offers) that stay and fill; a two-sided ladder quoted for a long time."""
    desk = ctx.desk
    acct, owner = desk.account(r.choice(("institutional", "active", "mm")))
    ep = desk.label("layering", acct, owner, sym, near_miss=True, variant=variant)
    levels = r.randint(3, 7)
    gap = r.randint(1, 5)
    lots = r.uniform(0.5, 8.0)
    stay = r.uniform(900.0, 3600.0)

    def script() -> Iterator[float]:
        side = r.choice(("buy", "sell"))
        sides = (side,) if variant == "scale_in" else ("buy", "sell")
        oids = []
        for s in sides:
            for i in range(levels):
                qty = _units(desk, sym, lots * r.uniform(0.6, 1.4))
                oids.append(desk.submit(acct, sym, s, qty, price=_passive_price(desk, sym, s, i * gap), tag=ep))
        yield stay
        _cancel_all(desk, oids)

    return _Plan(ep, script, stay + 60, (acct,))


# --------------------------------------------------------------------------- order-to-trade ratio


def _order_to_trade(ctx: _Ctx, r: Random, sym: str, near: bool, variant: str) -> _Plan:
    desk = ctx.desk
    length = ctx.scale(r.uniform(900.0, 2700.0))
    if not near:
        acct, owner = desk.account(r.choice(("algo", "algo", "active")))
        algo = ctx.algo_id(r, "OTR") if r.random() < 0.75 else None
        ep = desk.label("excessive_order_to_trade", acct, owner, sym, variant=variant)
        cadence = r.uniform(0.4, 4.0)
        away_pips = (r.uniform(1.0, 3.0), r.uniform(3.0, 15.0))
        far = r.uniform(1.0, 2.5)
        trades = r.randint(0, 4)
        lots = r.uniform(0.1, 5.0)

        def script() -> Iterator[float]:
            trade_at = sorted(r.uniform(0.0, length) for _ in range(trades))
            t0 = desk.t
            live: dict[str, str] = {}
            two_sided = variant == "two_sided_far"
            reach = far
            hit: set[str] = set()
            spreads: list[int] = []
            while desk.t - t0 < length:
                spreads.append(_spread_ticks(desk, sym))
                usual = statistics.median(spreads[-300:])
                if len(spreads) > 20 and spreads[-1] > max(3, 3 * usual):
                    # A release: the algo pulls its orders and sits out the fast market.
                    _cancel_all(desk, list(live.values()))
                    yield r.uniform(20.0, 120.0)
                    continue
                for oid in live.values():
                    if oid not in hit and desk.filled(oid) > 0:
                        # Reached by the market: the algo backs its orders further off.
                        hit.add(oid)
                        reach = min(reach * 1.6, 8.0)
                for side in ("buy", "sell") if two_sided else (r.choice(("buy", "sell")),):
                    price = _passive_price(desk, sym, side, _far_ticks(desk, sym, side, r.uniform(*away_pips), reach))
                    qty = _units(desk, sym, lots * r.uniform(0.8, 1.2))
                    oid = live.get(side)
                    if variant == "modify_chase" and oid and desk.is_open(oid):
                        desk.modify(oid, price=price, qty=qty if r.random() < 0.3 else None)
                    else:
                        if oid and desk.is_open(oid):
                            desk.cancel(oid)
                        live[side] = desk.submit(acct, sym, side, qty, price=price, algo=algo, tag=ep)
                if trade_at and desk.t - t0 >= trade_at[0]:
                    trade_at.pop(0)
                    _aggress(
                        desk,
                        r,
                        acct,
                        sym,
                        r.choice(("buy", "sell")),
                        _units(desk, sym, 0.01 * r.randint(1, 20)),
                        ep,
                        "ioc",
                        algo,
                    )
                yield cadence * r.uniform(0.5, 1.5)
            _cancel_all(desk, list(live.values()))

        return _Plan(ep, script, length + 30, (acct,))

    if variant == "busy_market_maker":
        return _market_maker(ctx, r, sym, "excessive_order_to_trade", variant, length)
    acct, owner = desk.account("institutional" if variant == "slicing_algo" else "active")
    algo = ctx.algo_id(r, "TWAP") if variant == "slicing_algo" else None
    ep = desk.label("excessive_order_to_trade", acct, owner, sym, near_miss=True, variant=variant)
    lots = r.uniform(0.2, 5.0)
    every = r.uniform(20.0, 120.0)

    def script() -> Iterator[float]:
        side = r.choice(("buy", "sell"))
        t0 = desk.t
        while desk.t - t0 < length:
            qty = _units(desk, sym, lots * r.uniform(0.5, 1.5))
            if variant == "slicing_algo":
                # A child order pegged at the touch; re-pegged once if the market walks away, then taken.
                oid = desk.submit(acct, sym, side, qty, price=_passive_price(desk, sym, side), algo=algo, tag=ep)
                yield from _wait_filled(desk, oid, every, r.uniform(2.0, 8.0))
                if desk.is_open(oid):
                    desk.modify(oid, price=_passive_price(desk, sym, side))
                    yield from _wait_filled(desk, oid, every / 2, r.uniform(2.0, 8.0))
                if desk.is_open(oid):
                    left = qty - desk.filled(oid)
                    desk.cancel(oid)
                    _aggress(desk, r, acct, sym, side, _size(desk, sym, left), ep, "market", algo)
            else:  # "active_scalper": many orders, nearly all of them trade
                s = r.choice(("buy", "sell"))
                _aggress(desk, r, acct, sym, s, qty, ep, r.choice(("market", "ioc", "limit")))
                yield every * r.uniform(0.2, 0.8)
                _flatten(desk, r, acct, sym, ep)
            yield every * r.uniform(0.3, 1.0)

    return _Plan(ep, script, length + 2 * every + 60, (acct,))


def _market_maker(ctx: _Ctx, r: Random, sym: str, kind: str, variant: str, length: float) -> _Plan:
    """A legitimate market-making client: quotes both sides at (or one tick inside) the touch,
    re-prices when the touch moves away by more than its tolerance, and lays off inventory with
    IOCs past a limit. Busy, but its orders trade: a normal order-to-trade ratio."""
    desk = ctx.desk
    acct, owner = desk.account("mm")
    algo = ctx.algo_id(r, "MM")
    ep = desk.label(kind, acct, owner, sym, near_miss=True, variant=variant)
    lots = r.uniform(0.2, 3.0)
    tolerance = r.randint(0, 3)  # ticks the touch may move before the quote follows
    poll = r.uniform(0.5, 4.0)
    limit_lots = lots * r.uniform(2.0, 6.0)
    replace = r.random() < 0.5  # cancel/replace or modify

    def script() -> Iterator[float]:
        t0 = desk.t
        tick = desk.tick(sym)
        quotes: dict[str, tuple[str, float]] = {}  # side -> (order id, the price it was quoted at)
        while desk.t - t0 < length:
            for side in ("buy", "sell"):
                inside = _spread_ticks(desk, sym) >= 3
                want = _inside_or_touch(desk, sym, side) if inside else _passive_price(desk, sym, side)
                qty = _units(desk, sym, lots)
                held = quotes.get(side)
                if held is None or not desk.is_open(held[0]):
                    quotes[side] = (desk.submit(acct, sym, side, qty, price=want, algo=algo, tag=ep), want)
                elif abs(held[1] - want) / tick > tolerance:
                    if replace:
                        desk.cancel(held[0])
                        quotes[side] = (desk.submit(acct, sym, side, qty, price=want, algo=algo, tag=ep), want)
                    else:
                        desk.modify(held[0], price=want)
                        quotes[side] = (held[0], want)
            if abs(desk.position(acct, sym)) > desk.lot(sym) * limit_lots:
                _flatten(desk, r, acct, sym, ep, "ioc")
            yield poll * r.uniform(0.6, 1.4)
        _cancel_all(desk, [oid for oid, _ in quotes.values()])

    return _Plan(ep, script, length + 30, (acct,))


# --------------------------------------------------------------------------- quote stuffing


def _quote_stuffing(ctx: _Ctx, r: Random, sym: str, near: bool, variant: str) -> _Plan:
    desk = ctx.desk
    if not near:
        acct, owner = desk.account(r.choice(("algo", "algo", "active")))
        algo = ctx.algo_id(r, "QS") if r.random() < 0.8 else None
        ep = desk.label("quote_stuffing", acct, owner, sym, variant=variant)
        bursts = r.randint(1, 4)
        messages = [r.randint(40, 320) for _ in range(bursts)]
        seconds = [r.uniform(0.5, 8.0) for _ in range(bursts)]
        pauses = [r.uniform(5.0, 180.0) for _ in range(bursts)]
        away = (r.uniform(0.5, 3.0), r.uniform(3.0, 25.0))
        far = r.uniform(0.8, 2.0)
        lots = r.uniform(0.05, 3.0)

        def script() -> Iterator[float]:
            for b in range(bursts):
                dt = seconds[b] / messages[b]
                sent = 0
                live: list[tuple[str, str]] = []  # (order id, side), oldest first
                while sent < messages[b]:
                    side = r.choice(("buy", "sell"))
                    price = _passive_price(desk, sym, side, _far_ticks(desk, sym, side, r.uniform(*away), far))
                    qty = _units(desk, sym, lots * r.uniform(0.5, 1.5))
                    if variant == "modify_storm" and len(live) >= 2:
                        # A handful of orders re-priced over and over, never near the touch.
                        oid, oside = r.choice(live)
                        if desk.is_open(oid):
                            desk.modify(
                                oid,
                                price=_passive_price(
                                    desk, sym, oside, _far_ticks(desk, sym, oside, r.uniform(*away), far)
                                ),
                            )
                        else:
                            live.remove((oid, oside))
                    elif variant == "ladder_flash" and sent < messages[b] // 2:
                        live.append((desk.submit(acct, sym, side, qty, price=price, algo=algo, tag=ep), side))
                    elif variant == "ladder_flash" and live:
                        _cancel_all(desk, [live.pop(0)[0]])
                    else:  # "new_cancel" (and a storm's first orders): every order withdrawn at once
                        live.append((desk.submit(acct, sym, side, qty, price=price, algo=algo, tag=ep), side))
                        if variant == "new_cancel" and len(live) > r.randint(1, 3):
                            _cancel_all(desk, [live.pop(0)[0]])
                            sent += 1
                    sent += 1
                    yield dt * r.uniform(0.3, 1.7)
                _cancel_all(desk, [oid for oid, _ in live])
                yield pauses[b]

        return _Plan(ep, script, sum(seconds) + sum(pauses) + 30, (acct,))

    if variant == "requoting_market_maker":
        return _market_maker(ctx, r, sym, "quote_stuffing", variant, ctx.scale(r.uniform(600.0, 1800.0)))
    acct, owner = desk.account(r.choice(("retail", "active", "institutional")))
    ep = desk.label("quote_stuffing", acct, owner, sym, near_miss=True, variant=variant)
    n = r.randint(8, 25)
    spread_s = r.uniform(1.0, 10.0)
    stay = r.uniform(600.0, 3000.0)
    lots = r.uniform(0.05, 2.0)
    gap = r.randint(1, 6)

    def script() -> Iterator[float]:
        side = r.choice(("buy", "sell"))
        oids = []
        for i in range(n):
            s = side if variant == "grid" else r.choice(("buy", "sell"))
            behind = (i // 2 + 1) * gap if variant == "grid" else r.randint(0, 3)
            oids.append(
                desk.submit(
                    acct,
                    sym,
                    s,
                    _units(desk, sym, lots * r.uniform(0.5, 1.5)),
                    price=_passive_price(desk, sym, s, behind),
                    tag=ep,
                )
            )
            yield spread_s / n
        # A basket or a grid: the orders rest and fill; what is left is withdrawn much later.
        yield stay
        _cancel_all(desk, oids)

    return _Plan(ep, script, spread_s + stay + 30, (acct,))


# --------------------------------------------------------------------------- ping orders


def _ping(ctx: _Ctx, r: Random, sym: str, near: bool, variant: str) -> _Plan:
    desk = ctx.desk
    n = r.randint(12, 60)
    length = ctx.scale(r.uniform(90.0, 1200.0))
    lots = r.choice((0.01, 0.02, 0.05, r.uniform(0.01, 0.2)))
    if not near:
        acct, owner = desk.account(r.choice(("algo", "active", "algo")))
        algo = ctx.algo_id(r, "PING") if r.random() < 0.6 else None
        ep = desk.label("ping_orders", acct, owner, sym, variant=variant)
        linger = r.uniform(0.02, 1.0)
        at_touch = r.uniform(0.0, 0.25) if variant != "fleeting_limit" else 0.0
        linger = linger if variant != "fleeting_limit" else r.uniform(0.005, 0.15)

        def script() -> Iterator[float]:
            for _ in range(n):
                side = r.choice(("buy", "sell"))
                qty = _units(desk, sym, lots * r.uniform(0.5, 1.5))
                bid, ask = desk.touch(sym)
                spread = _spread_ticks(desk, sym)
                if r.random() < at_touch:
                    price = ask if side == "buy" else bid  # the odd probe at the far touch trades
                elif spread < 2:
                    price = bid if side == "buy" else ask  # no room inside: probe at the near touch
                else:
                    k = r.randint(1, spread - 1)
                    price = _on_tick(desk, sym, bid + k * desk.tick(sym))
                order_type = {"ioc_probe": "ioc", "fok_probe": r.choice(("fok", "ioc"))}.get(variant, "limit")
                oid = desk.submit(
                    acct, sym, side, qty, price=_on_tick(desk, sym, price), order_type=order_type, algo=algo, tag=ep
                )
                if order_type == "limit":
                    yield linger * r.uniform(0.3, 1.7)
                    _cancel_all(desk, [oid])
                yield length / n * r.uniform(0.2, 1.8)
            _flatten(desk, r, acct, sym, ep)

        return _Plan(ep, script, 2 * length + 30, (acct,))

    acct, owner = desk.account(r.choice(("retail", "active")))
    ep = desk.label("ping_orders", acct, owner, sym, near_miss=True, variant=variant)
    n = r.randint(6, 20)
    length = ctx.scale(r.uniform(600.0, 2400.0))

    def script() -> Iterator[float]:
        side = r.choice(("buy", "sell"))
        oids = []
        for _ in range(n):
            qty = _units(desk, sym, lots * r.uniform(0.5, 1.5))
            if variant == "small_resting":
                oids.append(
                    desk.submit(acct, sym, side, qty, price=_passive_price(desk, sym, side, r.randint(0, 2)), tag=ep)
                )
            elif variant == "small_market":
                desk.submit(acct, sym, r.choice(("buy", "sell")), qty, order_type="market", tag=ep)
            else:  # "ioc_at_touch": small IOCs at the touch, which fill
                _aggress(desk, r, acct, sym, r.choice(("buy", "sell")), qty, ep, "ioc")
            yield length / n * r.uniform(0.5, 1.5)
        yield r.uniform(300.0, 1200.0)
        _cancel_all(desk, oids)

    return _Plan(ep, script, 2 * length + 1300, (acct,))


# --------------------------------------------------------------------------- momentum ignition


def _momentum(ctx: _Ctx, r: Random, sym: str, near: bool, variant: str) -> _Plan:
    desk = ctx.desk
    n = r.randint(3, 10)
    burst_s = r.uniform(2.0, 90.0)
    walk_levels = r.randint(1, 3) if variant != "failed_attempt" else 0
    push = r.uniform(0.5, 1.5)
    order_type = r.choice(("market", "market", "ioc", "limit"))
    turn_after = r.uniform(15.0, 480.0)
    if near and variant == "slow_accumulation":
        acct, owner = desk.account("institutional")
        algo = ctx.algo_id(r, "VWAP")
    else:
        acct, owner = desk.account(r.choice(("active", "algo", "active")))
        algo = ctx.algo_id(r, "MOM") if r.random() < 0.4 else None
    ep = desk.label("momentum_ignition", acct, owner, sym, near_miss=near, variant=variant)
    slices = r.randint(8, 20)
    accumulate_s = ctx.scale(r.uniform(1800.0, 5400.0))

    def burst(side: str) -> Iterator[float]:
        for _ in range(n):
            reach = _reach_qty(desk, sym, side, max(1, walk_levels))
            qty = reach * push if walk_levels else _level_qty(desk, sym) * r.uniform(0.1, 0.5)
            _aggress(desk, r, acct, sym, side, _size(desk, sym, qty), ep, order_type, algo)
            yield burst_s / n * r.uniform(0.3, 1.7)

    def script() -> Iterator[float]:
        side = r.choice(("buy", "sell"))
        if near and variant == "slow_accumulation":
            # The same size built slowly by an institutional algo: no burst, no reversal.
            total = _reach_qty(desk, sym, side, 2) * push * n
            t0 = desk.t
            for i in range(slices):
                yield max(0.0, t0 + i * accumulate_s / slices * r.uniform(0.8, 1.2) - desk.t)
                piece = _size(desk, sym, total / slices)
                oid = desk.submit(acct, sym, side, piece, price=_passive_price(desk, sym, side), algo=algo, tag=ep)
                yield from _wait_filled(desk, oid, 0.6 * accumulate_s / slices, r.uniform(2.0, 10.0))
                if desk.is_open(oid):
                    left = piece - desk.filled(oid)
                    desk.cancel(oid)
                    if r.random() < 0.5 and left > 0:  # behind schedule: the rest taken now
                        _aggress(desk, r, acct, sym, side, _size(desk, sym, left), ep, "market", algo)
            return
        yield from burst(side)
        if near:
            if variant == "burst_then_add":
                yield turn_after * r.uniform(2.0, 6.0)
                yield from burst(side)
            return  # the position is held: a view on the market, not an ignition
        yield turn_after
        # The other way into the move: rest at the new touch and let the momentum take it, or hit it.
        pos = desk.position(acct, sym)
        qty = _size(desk, sym, abs(pos))
        if variant == "reverse_limit":
            oid = desk.submit(
                acct, sym, _other(side), qty, price=_inside_or_touch(desk, sym, _other(side)), algo=algo, tag=ep
            )
            yield from _wait_filled(desk, oid, r.uniform(30.0, 300.0), r.uniform(1.0, 5.0))
            yield r.uniform(5.0, 60.0)
            _cancel_all(desk, [oid])
            _flatten(desk, r, acct, sym, ep)
        else:
            pieces = r.randint(1, 3)
            for _ in range(pieces):
                _aggress(
                    desk,
                    r,
                    acct,
                    sym,
                    _other(side),
                    _size(desk, sym, qty / pieces),
                    ep,
                    r.choice(("market", "ioc")),
                    algo,
                )
                yield r.uniform(0.5, 20.0)
            _flatten(desk, r, acct, sym, ep)

    dur = accumulate_s + 600 if variant == "slow_accumulation" else burst_s * 2 + turn_after * 7 + 400
    return _Plan(ep, script, dur, (acct,))


# --------------------------------------------------------------------------- marking the close


def _fix_slots(desk, span: float, lead: float) -> list[tuple[str, float]]:
    """(symbol, fixing time) of every fixing whose window ends inside the book with ``lead``
    seconds of trading before it."""
    slots = []
    for sym in desk.symbols:
        t = desk.next_fix(sym, 0.0)
        while t is not None and t < span:
            start, end = desk.fix_window(sym, t)
            if start >= lead and end < span - 5:
                slots.append((sym, t))
            t = desk.next_fix(sym, t + 1.0)
    return slots


def _marking(ctx: _Ctx, r: Random, sym: str, fix_t: float, near: bool, variant: str) -> _Plan:
    desk = ctx.desk
    ws, we = desk.fix_window(sym, fix_t)
    build_lead = min(r.uniform(300.0, 2700.0), ws - 30.0)
    prof = "institutional" if near and variant == "flat_fix_order" else r.choice(("active", "algo", "institutional"))
    acct, owner = desk.account(prof)
    algo = ctx.algo_id(r, "FIX") if prof in ("algo", "institutional") and r.random() < 0.6 else None
    ep = desk.label("marking_the_close", acct, owner, sym, near_miss=near, variant=variant)
    build_lots = r.choice((r.uniform(1.0, 5.0), r.uniform(5.0, 25.0), r.uniform(25.0, 60.0)))
    build_orders = r.randint(1, 5)
    n = r.randint(3, 14)
    window_len = we - ws
    # When in the window the pressure goes: all of it, up to the fixing, or the part around it.
    a, b = {
        "whole_window": (0.0, 0.95),
        "before_fix": (max(0.0, (fix_t - ws) / window_len - r.uniform(0.2, 0.5)), (fix_t - ws) / window_len),
        "around_fix": (r.uniform(0.1, 0.4), r.uniform(0.6, 0.95)),
    }.get(variant, (r.uniform(0.0, 0.3), r.uniform(0.7, 0.98)))
    push = r.uniform(0.4, 1.6)
    order_type = r.choice(("market", "ioc", "limit", "market"))
    unwind_after = r.uniform(30.0, 1200.0) if r.random() < 0.6 else None

    def build(side: str) -> Iterator[float]:
        total = _units(desk, sym, build_lots)
        for _ in range(build_orders):
            piece = _size(desk, sym, total / build_orders)
            if r.random() < 0.5:
                oid = desk.submit(acct, sym, side, piece, price=_passive_price(desk, sym, side), algo=algo, tag=ep)
                yield from _wait_filled(desk, oid, r.uniform(30.0, 240.0), r.uniform(2.0, 8.0))
                if desk.is_open(oid):
                    left = piece - desk.filled(oid)
                    desk.cancel(oid)
                    _aggress(desk, r, acct, sym, side, _size(desk, sym, left), ep, "market", algo)
            else:
                _aggress(desk, r, acct, sym, side, piece, ep, "market", algo)
            yield r.uniform(10.0, max(20.0, build_lead / (build_orders + 1) - 250.0))

    def script() -> Iterator[float]:
        side = r.choice(("buy", "sell"))
        if not (near and variant == "flat_fix_order"):
            yield from build(side)
        wait = ws + a * window_len - desk.t
        if wait > 0:
            yield wait
        end = ws + b * window_len
        times = sorted(r.uniform(0.0, max(1.0, end - desk.t)) for _ in range(n))
        t0 = desk.t
        if near and variant == "unwind_into_fix":
            # The held position sold into the fix: against the position's interest.
            pos = abs(desk.position(acct, sym))
            for t in times[: max(2, n // 3)]:
                yield max(0.0, t0 + t - desk.t)
                _aggress(desk, r, acct, sym, _other(side), _size(desk, sym, pos / max(2, n // 3)), ep, "market", algo)
            return
        if near:  # "flat_fix_order": a client's fix order from a flat account, sliced evenly across the window
            total = _units(desk, sym, build_lots)
            for i in range(n):
                yield max(0.0, ws + (i + 0.5) * window_len / n - desk.t)
                _aggress(desk, r, acct, sym, side, _size(desk, sym, total / n), ep, "market", algo)
            return
        for t in times:
            yield max(0.0, t0 + t - desk.t)
            qty = _reach_qty(desk, sym, side, 1) * push
            _aggress(desk, r, acct, sym, side, _size(desk, sym, qty), ep, order_type, algo)
        if unwind_after is not None:
            yield max(0.0, we - desk.t) + unwind_after
            _flatten(desk, r, acct, sym, ep)

    at = max(0.0, ws - build_lead)
    return _Plan(ep, script, (we - at) + 1300, (acct,), at=at)


# --------------------------------------------------------------------------- execution quality


def _execution(ctx: _Ctx, r: Random, sym: str, near: bool, variant: str, kind: str) -> _Plan:
    """Clients whose fills the firm marks off the book (the abuse) or fairly / symmetrically."""
    desk = ctx.desk
    acct, owner = desk.account(r.choice(("retail", "retail", "active")))
    ep = desk.label(kind, acct, owner, sym, near_miss=near, variant=variant)
    asym = kind == "asymmetric_slippage"
    n = r.randint(18, 40) if asym else r.randint(6, 20)
    length = ctx.scale(r.uniform(2400.0, 9000.0) if asym else r.uniform(1200.0, 5400.0))
    lots = r.choice((r.uniform(0.01, 0.5), r.uniform(0.5, 3.0), r.uniform(3.0, 10.0)))
    order_types = {"marketable_limits": ("limit", "ioc"), "mixed": ("market", "ioc", "limit")}.get(variant, ("market",))
    policy: dict[str, Any] = {}
    if not near and not asym:
        lo = r.uniform(2.5, 6.0)
        policy = {"adverse_pips": (lo, lo + r.uniform(1.0, 8.0)), "share": r.uniform(0.6, 1.0)}
    elif not near:
        lo = r.uniform(0.4, 1.5)
        policy = {
            "adverse_pips": (lo, lo + r.uniform(0.5, 2.5)),
            "share": r.uniform(0.4, 0.7),
            # Price improvement withheld: none, or rare and clipped to a fraction of a pip.
            "improve_share": 0.0 if variant == "withheld" else r.uniform(0.02, 0.08),
            "improve_pips": (0.05, r.uniform(0.1, 0.3)),
        }
    elif variant in ("symmetric", "symmetric_small"):
        hi = r.uniform(0.6, 1.8) if variant == "symmetric_small" else r.uniform(1.5, 3.0)
        share = r.uniform(0.2, 0.45)
        policy = {
            "adverse_pips": (0.1, hi),
            "share": share,
            "improve_share": share * r.uniform(0.85, 1.15),
            "improve_pips": (0.1, hi * r.uniform(0.85, 1.15)),
        }
    big = variant == "book_walk"
    # A marketable limit carries the client's accepted deviation (a few pips past the touch); the
    # firm never prints beyond it.
    deviation = r.uniform(8.0, 20.0) if not near and not asym else r.uniform(3.0, 10.0)

    def script() -> Iterator[float]:
        if policy:
            desk.execution(acct, sym, **policy)
        side = r.choice(("buy", "sell"))
        for _ in range(n):
            qty = _units(desk, sym, lots * r.uniform(0.5, 1.5))
            if big:  # a large order in a thin book: fills walk the levels at the book's own prices
                qty = _size(desk, sym, _reach_qty(desk, sym, side, r.randint(2, 4)) * r.uniform(0.8, 1.1))
            _aggress(desk, r, acct, sym, side, qty, ep, r.choice(order_types), slack_pips=deviation)
            # A retail round trip: mostly alternating sides, now and then adding to the position.
            if r.random() < 0.7:
                side = _other(side)
            yield length / n * r.uniform(0.4, 1.6)
        if policy:
            desk.execution(acct, sym)

    return _Plan(ep, script, 1.7 * length + 60, (acct,))


# --------------------------------------------------------------------------- the plan


VARIANTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # kind: (abuse variants, near-miss variants)
    "wash_trade": (("round_trip", "one_way", "near_size"), ("hedge_later", "same_direction", "resting_hedge")),
    "painting_the_tape": (
        ("walk", "back_and_forth", "same_size"),
        ("same_direction_series", "hedged_later", "own_scalps"),
    ),
    "spoofing": (("single", "repeat", "added_progressively"), ("genuinely_filled", "cancelled_late", "large_alone")),
    "layering": (("contiguous", "added_progressively", "repeat"), ("scale_in", "two_sided", "ladder_filled")),
    "excessive_order_to_trade": (
        ("cancel_replace", "modify_chase", "two_sided_far"),
        ("busy_market_maker", "slicing_algo", "active_scalper"),
    ),
    "quote_stuffing": (("new_cancel", "modify_storm", "ladder_flash"), ("requoting_market_maker", "basket", "grid")),
    "ping_orders": (("ioc_probe", "fleeting_limit", "fok_probe"), ("small_resting", "small_market", "ioc_at_touch")),
    "momentum_ignition": (
        ("reverse_market", "reverse_limit", "failed_attempt"),
        ("burst_held", "slow_accumulation", "burst_then_add"),
    ),
    "marking_the_close": (("whole_window", "before_fix", "around_fix"), ("flat_fix_order", "unwind_into_fix")),
    "best_execution_slippage": (("market", "marketable_limits", "mixed"), ("symmetric_small", "book_walk", "fair")),
    "asymmetric_slippage": (("withheld", "clipped"), ("symmetric", "symmetric_small", "fair")),
}


def _build(ctx: _Ctx, kind: str, r: Random, sym: str, near: bool, variant: str) -> _Plan:
    if kind == "wash_trade":
        return _wash(ctx, r, sym, near, variant)
    if kind == "painting_the_tape":
        return _painting(ctx, r, sym, near, variant)
    if kind == "layering" and near and variant in ("scale_in", "two_sided"):
        return _ladder_near(ctx, r, sym, variant)
    if kind in ("spoofing", "layering"):
        return _spoof_like(ctx, r, sym, near, variant, kind)
    if kind == "excessive_order_to_trade":
        return _order_to_trade(ctx, r, sym, near, variant)
    if kind == "quote_stuffing":
        return _quote_stuffing(ctx, r, sym, near, variant)
    if kind == "ping_orders":
        return _ping(ctx, r, sym, near, variant)
    if kind == "momentum_ignition":
        return _momentum(ctx, r, sym, near, variant)
    if kind in ("best_execution_slippage", "asymmetric_slippage"):
        return _execution(ctx, r, sym, near, variant, kind)
    raise ValueError(f"no script for {kind!r}")


def _start(ctx: _Ctx, plan: _Plan, r: Random, lo: float, hi: float) -> float:
    """A start time in [lo, hi) at which none of the plan's accounts is busy with another episode."""
    duration = min(plan.duration, 0.9 * ctx.span)
    hi = max(lo + 1.0, min(hi, ctx.span - duration))
    at = r.uniform(lo, hi)
    for _ in range(40):
        if all(not (at < e and s < at + duration) for a in plan.accounts for s, e in ctx.busy.get(a, ())):
            break
        at = r.uniform(60.0, max(61.0, ctx.span - duration))
    for a in plan.accounts:
        ctx.busy.setdefault(a, []).append((at, at + duration))
    return at


def _stamped(ep, script: Callable[[], Iterator[float]], desk) -> Callable[[], Iterator[float]]:
    def run() -> Iterator[float]:
        try:
            ep.start_s = desk.t  # when the episode's first order goes out
        except AttributeError:
            pass
        yield from script()

    return run


def plan_episodes(desk, rng: Random) -> list:
    """Label and schedule the book's abuse episodes and near-misses (issue 16).

    Per alert type 4-5 abuse episodes and 3-4 near-misses, variants taken in a shuffled cycle so
    every variant appears, symbols in a shuffled cycle, start times spread over the book (each
    episode in its own slice of the book, jittered). Marking-the-close episodes take distinct
    (symbol, fixing) slots. Returns the labels (also registered on the desk by ``desk.label``).
    """
    span = desk.hours * 3600.0
    ctx = _Ctx(desk, rng, span)
    labels = []
    fix_slots = _fix_slots(desk, span, lead=600.0)
    rng.shuffle(fix_slots)
    for kind in KINDS:
        counts = (rng.randint(*ABUSE_PER_KIND), rng.randint(*NEAR_MISSES_PER_KIND))
        abuse_variants, near_variants = VARIANTS[kind]
        jobs = []
        for near, count, variants in ((False, counts[0], abuse_variants), (True, counts[1], near_variants)):
            order = list(variants)
            rng.shuffle(order)
            jobs += [(near, order[i % len(order)]) for i in range(count)]
        rng.shuffle(jobs)
        syms = list(desk.symbols)
        rng.shuffle(syms)
        for i, (near, variant) in enumerate(jobs):
            r = desk.rng(f"episode:{kind}:{i}")
            sym = syms[i % len(syms)]
            if kind == "marking_the_close":
                if not fix_slots:
                    continue  # a book too short for a fixing with a build-up before it
                sym, fix_t = fix_slots.pop() if len(fix_slots) > 1 else fix_slots[0]
                plan = _marking(ctx, r, sym, fix_t, near, variant)
            else:
                plan = _build(ctx, kind, r, sym, near, variant)
            if plan.at is None:
                width = span / len(jobs)
                plan.at = _start(ctx, plan, r, 60.0 + i * width * 0.85, 60.0 + (i + 1) * width * 0.85)
            desk.spawn(_stamped(plan.ep, plan.script, desk)(), at=plan.at)
            labels.append(plan.ep)
    return labels
