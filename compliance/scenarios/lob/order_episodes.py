"""Episode scripts about order messages (issue 16): spoofing and layering, excessive
order-to-trade, quote stuffing, ping orders, and their legitimate look-alikes (a market maker,
ladders, baskets). ``episodes.plan_episodes`` schedules them.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from random import Random

from compliance.scenarios.lob.tactics import (
    Ctx,
    Plan,
    aggress,
    book_level_qty,
    calm,
    cancel_all,
    deep_ticks,
    far_ticks,
    flatten,
    inside_or_touch,
    lots_to_units,
    on_tick,
    opposite,
    passive_price,
    pips_to_ticks,
    qty_units,
    spread_ticks,
    wait_filled,
)

# --------------------------------------------------------------------------- spoofing and layering


def spoof_like(ctx: Ctx, r: Random, sym: str, near: bool, variant: str, kind: str) -> Plan:
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
        return max(
            pips_to_ticks(desk, sym, behind_pips), round(by_vol), deep_ticks(desk, sym, spoof_side[0], deep_level) + 1
        )

    small: list[str] = []

    spoof_side = ["buy"]

    def place_large(side: str) -> Iterator[float]:
        spoof_side[0] = side
        level_qty = book_level_qty(desk, sym)
        # Each large order several times the small one and of the order of the book's levels.
        each = max(small_qty() * size_mult, level_qty * r.uniform(0.8, 3.0))
        behind = behind_ticks()
        oids = []
        for i in range(levels):
            if i >= (3 if layering else 1) and small and desk.filled(small[-1]) > 0:
                break  # the small order has filled: no more layers
            share = each * r.uniform(0.9, 1.25)
            if i == 0 or not layering:
                anchor = passive_price(desk, sym, side, behind)
            # Layers step away from the first one, whatever the touch did meanwhile.
            step = i * gap_ticks * desk.tick(sym) if layering else 0.0
            price = on_tick(desk, sym, anchor - step if side == "buy" else anchor + step)
            oids.append(desk.submit(acct, sym, side, qty_units(desk, sym, share), price=price, algo=algo, tag=ep))
            prices[oids[-1]] = price
            if stagger:
                yield from hold(stagger * r.uniform(0.5, 1.5), oids, side)
        return oids

    def hold(seconds: float, oids: list[str], side: str) -> Iterator[float]:
        # Wait, watching the large orders (an abuser's are faded when the market comes near).
        until = desk.t + seconds
        while until - desk.t > 1e-6:
            yield min(poll, until - desk.t)
            if not near:
                fade(oids, side)

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
                away = passive_price(desk, sym, side, behind_ticks() + r.randint(0, 3))
                if desk.modify(oid, price=away):
                    prices[oid] = away

    def small_qty() -> float:
        # The genuine order's size, fixed for the episode (the trader's usual clip).
        if not small_size:
            small_size.append(qty_units(desk, sym, book_level_qty(desk, sym) * genuine_share))
        return small_size[0]

    def genuine(side: str) -> str:
        qty = small_qty()
        price = inside_or_touch(desk, sym, side) if genuine_type == "limit_inside" else passive_price(desk, sym, side)
        return desk.submit(acct, sym, side, qty, price=price, algo=algo, tag=ep)

    def chase(oid: str, side: str) -> None:
        # A small resting order left behind by the market is moved back to the touch.
        if desk.is_open(oid) and desk.filled(oid) <= 0:
            bid, ask = desk.touch(sym)
            touch = bid if side == "buy" else ask
            return_price = on_tick(desk, sym, touch)
            desk.modify(oid, price=return_price)

    def script() -> Iterator[float]:
        for _ in range(cycles):
            small_side = r.choice(("buy", "sell"))
            large_side = opposite(small_side)
            if near and variant == "large_alone":
                # A large order that sits, then is withdrawn with nothing traded on the other side.
                oids = yield from place_large(r.choice(("buy", "sell")))
                yield r.uniform(120.0, 900.0)
                cancel_all(desk, oids)
                return
            first_large = variant == "added_progressively" or r.random() < 0.6
            if first_large:
                oids = yield from place_large(large_side)
                yield from hold(r.uniform(0.2, 6.0), oids, large_side)
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
                if desk.filled(small[-1]) > 0:  # still too quick: the small order follows the large one
                    yield from hold(r.uniform(0.2, 6.0), oids, large_side)
                    small.append(genuine(small_side))
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
                desk.modify(small_oid, price=on_tick(desk, sym, ask if small_side == "buy" else bid))
            if not near:
                yield from hold(cancel_after, oids, large_side)
                if layering and r.random() < 0.5:
                    for oid in oids:  # pulled one after another, within a second or two
                        cancel_all(desk, [oid])
                        yield r.uniform(0.02, 0.4)
                else:
                    cancel_all(desk, oids)
                cancel_all(desk, [small_oid])
                yield r.uniform(20.0, 240.0)
            elif variant in ("genuinely_filled", "ladder_filled"):
                # The large order(s) were meant: left to the market, then moved to the touch to finish.
                yield hold_after
                for oid in oids:
                    if desk.is_open(oid):
                        bid, ask = desk.touch(sym)
                        desk.modify(oid, price=on_tick(desk, sym, bid if large_side == "sell" else ask))
                yield r.uniform(5.0, 60.0)
                cancel_all(desk, oids + [small_oid])
            else:  # "cancelled_late": withdrawn long after the other side filled, for the client's own reason
                yield hold_after
                # Now and then the client's session drops and the venue pulls its orders.
                reason = "disconnect" if r.random() < 0.3 else None
                for oid in oids + [small_oid]:
                    if desk.is_open(oid):
                        desk.cancel(oid, reason=reason)

    dur = cycles * (timeout + 300.0) + (hold_after + 120 if near else 0)
    return Plan(ep, script, dur, (acct,))


def ladder_near(ctx: Ctx, r: Random, sym: str, variant: str) -> Plan:
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
                qty = lots_to_units(desk, sym, lots * r.uniform(0.6, 1.4))
                oids.append(desk.submit(acct, sym, s, qty, price=passive_price(desk, sym, s, i * gap), tag=ep))
        yield stay
        cancel_all(desk, oids)

    return Plan(ep, script, stay + 60, (acct,))


# --------------------------------------------------------------------------- order-to-trade ratio


def order_to_trade(ctx: Ctx, r: Random, sym: str, near: bool, variant: str) -> Plan:
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
                spreads.append(spread_ticks(desk, sym))
                usual = statistics.median(spreads[-300:])
                if len(spreads) > 20 and spreads[-1] > max(3, 3 * usual):
                    # A release: the algo pulls its orders and sits out the fast market.
                    cancel_all(desk, list(live.values()))
                    yield r.uniform(20.0, 120.0)
                    continue
                for oid in live.values():
                    if oid not in hit and desk.filled(oid) > 0:
                        # Reached by the market: the algo backs its orders further off.
                        hit.add(oid)
                        reach = min(reach * 1.6, 8.0)
                for side in ("buy", "sell") if two_sided else (r.choice(("buy", "sell")),):
                    price = passive_price(desk, sym, side, far_ticks(desk, sym, side, r.uniform(*away_pips), reach))
                    qty = lots_to_units(desk, sym, lots * r.uniform(0.8, 1.2))
                    oid = live.get(side)
                    if variant == "modify_chase" and oid and desk.is_open(oid):
                        desk.modify(oid, price=price, qty=qty if r.random() < 0.3 else None)
                    else:
                        if oid and desk.is_open(oid):
                            desk.cancel(oid)
                        live[side] = desk.submit(acct, sym, side, qty, price=price, algo=algo, tag=ep)
                if trade_at and desk.t - t0 >= trade_at[0]:
                    trade_at.pop(0)
                    aggress(
                        desk,
                        r,
                        acct,
                        sym,
                        r.choice(("buy", "sell")),
                        lots_to_units(desk, sym, 0.01 * r.randint(1, 20)),
                        ep,
                        "ioc",
                        algo,
                    )
                yield cadence * r.uniform(0.5, 1.5)
            cancel_all(desk, list(live.values()))

        return Plan(ep, script, length + 30, (acct,))

    if variant == "busy_market_maker":
        return market_maker(ctx, r, sym, "excessive_order_to_trade", variant, length)
    acct, owner = desk.account("institutional" if variant == "slicing_algo" else "active")
    algo = ctx.algo_id(r, "TWAP") if variant == "slicing_algo" else None
    ep = desk.label("excessive_order_to_trade", acct, owner, sym, near_miss=True, variant=variant)
    lots = r.uniform(0.2, 5.0)
    every = r.uniform(20.0, 120.0)

    def script() -> Iterator[float]:
        side = r.choice(("buy", "sell"))
        t0 = desk.t
        while desk.t - t0 < length:
            qty = lots_to_units(desk, sym, lots * r.uniform(0.5, 1.5))
            if variant == "slicing_algo":
                # A child order pegged at the touch; re-pegged once if the market walks away, then taken.
                oid = desk.submit(acct, sym, side, qty, price=passive_price(desk, sym, side), algo=algo, tag=ep)
                yield from wait_filled(desk, oid, every, r.uniform(2.0, 8.0))
                if desk.is_open(oid):
                    desk.modify(oid, price=passive_price(desk, sym, side))
                    yield from wait_filled(desk, oid, every / 2, r.uniform(2.0, 8.0))
                if desk.is_open(oid):
                    left = qty - desk.filled(oid)
                    desk.cancel(oid)
                    aggress(desk, r, acct, sym, side, qty_units(desk, sym, left), ep, "market", algo)
            else:  # "active_scalper": many orders, nearly all of them trade
                s = r.choice(("buy", "sell"))
                aggress(desk, r, acct, sym, s, qty, ep, r.choice(("market", "ioc", "limit")))
                yield every * r.uniform(0.2, 0.8)
                flatten(desk, r, acct, sym, ep)
            yield every * r.uniform(0.3, 1.0)

    return Plan(ep, script, length + 2 * every + 60, (acct,))


def market_maker(ctx: Ctx, r: Random, sym: str, kind: str, variant: str, length: float) -> Plan:
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
                inside = spread_ticks(desk, sym) >= 3
                want = inside_or_touch(desk, sym, side) if inside else passive_price(desk, sym, side)
                qty = lots_to_units(desk, sym, lots)
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
                flatten(desk, r, acct, sym, ep, "ioc")
            yield poll * r.uniform(0.6, 1.4)
        cancel_all(desk, [oid for oid, _ in quotes.values()])

    return Plan(ep, script, length + 30, (acct,))


# --------------------------------------------------------------------------- quote stuffing


def quote_stuffing(ctx: Ctx, r: Random, sym: str, near: bool, variant: str) -> Plan:
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
                yield from calm(desk, r, sym)  # a stuffer jams a quiet book, not a release
                dt = seconds[b] / messages[b]
                sent = 0
                live: list[tuple[str, str]] = []  # (order id, side), oldest first
                while sent < messages[b]:
                    side = r.choice(("buy", "sell"))
                    price = passive_price(desk, sym, side, far_ticks(desk, sym, side, r.uniform(*away), far))
                    qty = lots_to_units(desk, sym, lots * r.uniform(0.5, 1.5))
                    if variant == "modify_storm" and len(live) >= 2:
                        # A handful of orders re-priced over and over, never near the touch.
                        oid, oside = r.choice(live)
                        if desk.is_open(oid):
                            desk.modify(
                                oid,
                                price=passive_price(
                                    desk, sym, oside, far_ticks(desk, sym, oside, r.uniform(*away), far)
                                ),
                            )
                        else:
                            live.remove((oid, oside))
                    elif variant == "ladder_flash" and sent < messages[b] // 2:
                        live.append((desk.submit(acct, sym, side, qty, price=price, algo=algo, tag=ep), side))
                    elif variant == "ladder_flash" and live:
                        cancel_all(desk, [live.pop(0)[0]])
                    else:  # "new_cancel" (and a storm's first orders): every order withdrawn at once
                        live.append((desk.submit(acct, sym, side, qty, price=price, algo=algo, tag=ep), side))
                        if variant == "new_cancel" and len(live) > r.randint(1, 3):
                            cancel_all(desk, [live.pop(0)[0]])
                            sent += 1
                    sent += 1
                    yield dt * r.uniform(0.3, 1.7)
                cancel_all(desk, [oid for oid, _ in live])
                yield pauses[b]

        return Plan(ep, script, sum(seconds) + sum(pauses) + 30, (acct,))

    if variant == "requoting_market_maker":
        return market_maker(ctx, r, sym, "quote_stuffing", variant, ctx.scale(r.uniform(600.0, 1800.0)))
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
                    lots_to_units(desk, sym, lots * r.uniform(0.5, 1.5)),
                    price=passive_price(desk, sym, s, behind),
                    tag=ep,
                )
            )
            yield spread_s / n
        # A basket or a grid: the orders rest and fill; what is left is withdrawn much later.
        yield stay
        cancel_all(desk, oids)

    return Plan(ep, script, spread_s + stay + 30, (acct,))


# --------------------------------------------------------------------------- ping orders


def ping(ctx: Ctx, r: Random, sym: str, near: bool, variant: str) -> Plan:
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
                qty = lots_to_units(desk, sym, lots * r.uniform(0.5, 1.5))
                bid, ask = desk.touch(sym)
                spread = spread_ticks(desk, sym)
                if r.random() < at_touch:
                    price = ask if side == "buy" else bid  # the odd probe at the far touch trades
                elif spread < 2:
                    price = bid if side == "buy" else ask  # no room inside: probe at the near touch
                else:
                    k = r.randint(1, spread - 1)
                    price = on_tick(desk, sym, bid + k * desk.tick(sym))
                order_type = {"ioc_probe": "ioc", "fok_probe": r.choice(("fok", "ioc"))}.get(variant, "limit")
                oid = desk.submit(
                    acct, sym, side, qty, price=on_tick(desk, sym, price), order_type=order_type, algo=algo, tag=ep
                )
                if order_type == "limit":
                    yield linger * r.uniform(0.3, 1.7)
                    cancel_all(desk, [oid])
                yield length / n * r.uniform(0.2, 1.8)
            flatten(desk, r, acct, sym, ep)

        return Plan(ep, script, 2 * length + 30, (acct,))

    acct, owner = desk.account(r.choice(("retail", "active")))
    ep = desk.label("ping_orders", acct, owner, sym, near_miss=True, variant=variant)
    n = r.randint(6, 20)
    length = ctx.scale(r.uniform(600.0, 2400.0))

    def script() -> Iterator[float]:
        side = r.choice(("buy", "sell"))
        oids = []
        for _ in range(n):
            qty = lots_to_units(desk, sym, lots * r.uniform(0.5, 1.5))
            if variant == "small_resting":
                oids.append(
                    desk.submit(acct, sym, side, qty, price=passive_price(desk, sym, side, r.randint(0, 2)), tag=ep)
                )
            elif variant == "small_market":
                desk.submit(acct, sym, r.choice(("buy", "sell")), qty, order_type="market", tag=ep)
            else:  # "ioc_at_touch": small IOCs at the touch, which fill
                aggress(desk, r, acct, sym, r.choice(("buy", "sell")), qty, ep, "ioc")
            yield length / n * r.uniform(0.5, 1.5)
        yield r.uniform(300.0, 1200.0)
        cancel_all(desk, oids)

    return Plan(ep, script, 2 * length + 1300, (acct,))
