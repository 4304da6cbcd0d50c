"""Episode scripts about trades (issue 16): wash trades and painting the tape, momentum
ignition, marking the close, best execution and asymmetric slippage, and their legitimate
look-alikes (hedges, held positions, slow accumulation, fix orders, fair or symmetric fills).
``episodes.plan_episodes`` schedules them.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from random import Random
from typing import Any

from compliance.scenarios.lob.tactics import (
    Ctx,
    Plan,
    account_pair,
    aggress,
    book_level_qty,
    cancel_all,
    cross_until,
    flatten,
    inside_or_touch,
    lots_to_units,
    near_touch_qty,
    opposite,
    pair_label,
    passive_price,
    qty_units,
    reach_qty,
    spread_ticks,
    wait_filled,
)

# --------------------------------------------------------------------------- wash trades


def wash(ctx: Ctx, r: Random, sym: str, near: bool, variant: str) -> Plan:
    desk = ctx.desk
    if not near:
        a, b, how = account_pair(ctx, r, allow_background=True, profile=r.choice(("active", "retail", "algo")))
        ep = pair_label(desk, "wash_trade", a, b, sym, False, f"{variant}/{how}")
        lots = r.choice((r.uniform(0.1, 1.5), r.uniform(1.5, 8.0), r.uniform(8.0, 25.0)))
        legs = 1 if variant == "one_way" else r.randint(2, 3)
        gaps = [r.uniform(3.0, 240.0) for _ in range(legs)]
        order_type = r.choice(("ioc", "ioc", "limit", "fok"))
        where = r.choice(("inside", "mid", "low", "high"))
        qty_drift = r.uniform(0.0, 0.03) if variant == "near_size" else 0.0

        def script() -> Iterator[float]:
            qty = lots_to_units(desk, sym, lots)
            seller, buyer = (a[0], b[0]) if r.random() < 0.5 else (b[0], a[0])
            for leg in range(legs):
                leg_qty = qty_units(desk, sym, qty * (1 + r.uniform(-qty_drift, qty_drift))) if leg else qty
                yield from cross_until(
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

        return Plan(ep, script, sum(gaps) + 200 * legs, (a[0], b[0]))

    # Near-misses: an owner's two accounts that never meet each other on the venue.
    a = desk.account(r.choice(("active", "retail", "institutional")))
    b = desk.account(r.choice(("active", "retail")), owner=a[1])
    ep = pair_label(desk, "wash_trade", a, b, sym, True, variant)
    lots = r.uniform(0.3, 12.0)
    ratio = r.choice((r.uniform(0.25, 0.7), r.uniform(1.4, 3.0)))
    later = r.uniform(240.0, 1800.0)
    order_type = r.choice(("market", "ioc", "limit"))

    def script() -> Iterator[float]:
        side = r.choice(("buy", "sell"))
        qty = lots_to_units(desk, sym, lots)
        if variant == "hedge_later":
            # One account takes a view, the other hedges part of it minutes later, both with the market.
            aggress(desk, r, a[0], sym, side, qty, ep, order_type)
            yield later
            aggress(desk, r, b[0], sym, opposite(side), qty_units(desk, sym, qty * ratio), ep, order_type)
        elif variant == "same_direction":
            aggress(desk, r, a[0], sym, side, qty, ep, order_type)
            yield r.uniform(5.0, 300.0)
            aggress(desk, r, b[0], sym, side, qty_units(desk, sym, qty * ratio), ep, order_type)
        else:  # "resting_hedge": a hedge rested at the touch and left to the market, the other account far away in time
            oid = desk.submit(a[0], sym, side, qty, price=passive_price(desk, sym, side, r.randint(0, 2)), tag=ep)
            yield from wait_filled(desk, oid, r.uniform(300.0, 1200.0), r.uniform(2.0, 10.0))
            cancel_all(desk, [oid])
            yield later
            aggress(desk, r, b[0], sym, opposite(side), qty_units(desk, sym, qty * ratio), ep, "market")

    return Plan(ep, script, later + 1600, (a[0], b[0]))


# --------------------------------------------------------------------------- painting the tape


def painting(ctx: Ctx, r: Random, sym: str, near: bool, variant: str) -> Plan:
    desk = ctx.desk
    n = r.randint(4, 12)
    gaps = [r.uniform(8.0, 200.0) for _ in range(n)]
    lots = r.choice((r.uniform(0.05, 0.5), r.uniform(0.5, 3.0), r.uniform(3.0, 10.0)))
    if not near:
        a, b, how = account_pair(ctx, r, allow_background=True, profile=r.choice(("active", "algo", "retail")))
        ep = pair_label(desk, "painting_the_tape", a, b, sym, False, f"{variant}/{how}")
        order_type = r.choice(("ioc", "ioc", "limit", "fok"))
        up = r.random() < 0.5

        def script() -> Iterator[float]:
            base = lots_to_units(desk, sym, lots)
            seller, buyer = a[0], b[0]
            for i in range(n):
                qty = qty_units(desk, sym, base * r.uniform(0.6, 1.6)) if variant != "same_size" else base
                if variant == "walk":
                    # Each print at the far edge of the spread in one direction: the tape walks.
                    where, aggressor = ("high", "buy") if up else ("low", "sell")
                else:
                    where, aggressor = r.choice(("mid", "inside")), r.choice(("buy", "sell"))
                yield from cross_until(
                    desk, r, ep, seller=seller, buyer=buyer, sym=sym, qty=qty, aggressor=aggressor,
                    order_type=order_type, where=where, max_wait=90.0,
                )  # fmt: skip
                if variant != "walk" or r.random() < 0.5:
                    seller, buyer = buyer, seller
                yield gaps[i]

        return Plan(ep, script, sum(gaps) + 120 * n, (a[0], b[0]))

    a = desk.account(r.choice(("active", "retail", "algo")))
    b = desk.account(r.choice(("active", "retail")), owner=a[1])
    ep = pair_label(desk, "painting_the_tape", a, b, sym, True, variant)
    offset = r.uniform(600.0, 2400.0)

    def script() -> Iterator[float]:
        side = r.choice(("buy", "sell"))
        base = lots_to_units(desk, sym, lots)
        if variant == "same_direction_series":
            # Two accounts of one owner building the same position with the market, interleaved.
            for i in range(n):
                acct = a[0] if i % 2 == 0 else b[0]
                aggress(desk, r, acct, sym, side, qty_units(desk, sym, base * r.uniform(0.5, 1.5)), ep, "market")
                yield gaps[i]
        elif variant == "hedged_later":
            for i in range(n):
                aggress(desk, r, a[0], sym, side, qty_units(desk, sym, base * r.uniform(0.5, 1.5)), ep, "market")
                yield gaps[i] / 2
            yield offset
            aggress(
                desk, r, b[0], sym, opposite(side), qty_units(desk, sym, abs(desk.position(a[0], sym))), ep, "market"
            )
        else:  # "own_scalps": each account scalps with strangers on its own, never with the other
            for i in range(n):
                acct = a[0] if r.random() < 0.5 else b[0]
                oid = desk.submit(acct, sym, side, base, price=passive_price(desk, sym, side), tag=ep)
                yield from wait_filled(desk, oid, r.uniform(30.0, 240.0), r.uniform(1.0, 5.0))
                cancel_all(desk, [oid])
                flatten(desk, r, acct, sym, ep)
                yield gaps[i]

    return Plan(ep, script, sum(gaps) + offset + 240 * n, (a[0], b[0]))


# --------------------------------------------------------------------------- momentum ignition


def momentum(ctx: Ctx, r: Random, sym: str, near: bool, variant: str) -> Plan:
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
            reach = reach_qty(desk, sym, side, max(1, walk_levels))
            qty = reach * push if walk_levels else book_level_qty(desk, sym) * r.uniform(0.1, 0.5)
            aggress(desk, r, acct, sym, side, qty_units(desk, sym, qty), ep, order_type, algo)
            yield burst_s / n * r.uniform(0.3, 1.7)

    def script() -> Iterator[float]:
        side = r.choice(("buy", "sell"))
        if near and variant == "slow_accumulation":
            # The same size built slowly by an institutional algo: no burst, no reversal.
            total = reach_qty(desk, sym, side, 2) * push * n
            t0 = desk.t
            for i in range(slices):
                yield max(0.0, t0 + i * accumulate_s / slices * r.uniform(0.8, 1.2) - desk.t)
                piece = qty_units(desk, sym, total / slices)
                oid = desk.submit(acct, sym, side, piece, price=passive_price(desk, sym, side), algo=algo, tag=ep)
                yield from wait_filled(desk, oid, 0.6 * accumulate_s / slices, r.uniform(2.0, 10.0))
                if desk.is_open(oid):
                    left = piece - desk.filled(oid)
                    desk.cancel(oid)
                    if r.random() < 0.5 and left > 0:  # behind schedule: the rest taken now
                        aggress(desk, r, acct, sym, side, qty_units(desk, sym, left), ep, "market", algo)
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
        qty = qty_units(desk, sym, abs(pos))
        if variant == "reverse_limit":
            oid = desk.submit(
                acct, sym, opposite(side), qty, price=inside_or_touch(desk, sym, opposite(side)), algo=algo, tag=ep
            )
            yield from wait_filled(desk, oid, r.uniform(30.0, 300.0), r.uniform(1.0, 5.0))
            yield r.uniform(5.0, 60.0)
            cancel_all(desk, [oid])
            flatten(desk, r, acct, sym, ep)
        else:
            pieces = r.randint(1, 3)
            for _ in range(pieces):
                aggress(
                    desk,
                    r,
                    acct,
                    sym,
                    opposite(side),
                    qty_units(desk, sym, qty / pieces),
                    ep,
                    r.choice(("market", "ioc")),
                    algo,
                )
                yield r.uniform(0.5, 20.0)
            flatten(desk, r, acct, sym, ep)

    dur = accumulate_s + 600 if variant == "slow_accumulation" else burst_s * 2 + turn_after * 7 + 400
    return Plan(ep, script, dur, (acct,))


# --------------------------------------------------------------------------- marking the close


def fix_slots(desk, span: float, lead: float) -> list[tuple[str, float]]:
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


def marking(ctx: Ctx, r: Random, sym: str, fix_t: float, near: bool, variant: str) -> Plan:
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
        total = lots_to_units(desk, sym, build_lots)
        for _ in range(build_orders):
            piece = qty_units(desk, sym, total / build_orders)
            if r.random() < 0.5:
                oid = desk.submit(acct, sym, side, piece, price=passive_price(desk, sym, side), algo=algo, tag=ep)
                yield from wait_filled(desk, oid, r.uniform(30.0, 240.0), r.uniform(2.0, 8.0))
                if desk.is_open(oid):
                    left = piece - desk.filled(oid)
                    desk.cancel(oid)
                    aggress(desk, r, acct, sym, side, qty_units(desk, sym, left), ep, "market", algo)
            else:
                aggress(desk, r, acct, sym, side, piece, ep, "market", algo)
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
                aggress(
                    desk, r, acct, sym, opposite(side), qty_units(desk, sym, pos / max(2, n // 3)), ep, "market", algo
                )
            return
        if near:  # "flat_fix_order": a client's fix order from a flat account, sliced evenly across the window
            total = lots_to_units(desk, sym, build_lots)
            for i in range(n):
                yield max(0.0, ws + (i + 0.5) * window_len / n - desk.t)
                aggress(desk, r, acct, sym, side, qty_units(desk, sym, total / n), ep, "market", algo)
            return
        for t in times:
            yield max(0.0, t0 + t - desk.t)
            qty = reach_qty(desk, sym, side, 1) * push
            aggress(desk, r, acct, sym, side, qty_units(desk, sym, qty), ep, order_type, algo)
        if unwind_after is not None:
            yield max(0.0, we - desk.t) + unwind_after
            flatten(desk, r, acct, sym, ep)

    at = max(0.0, ws - build_lead)
    return Plan(ep, script, (we - at) + 1300, (acct,), at=at)


# --------------------------------------------------------------------------- execution quality


def execution(ctx: Ctx, r: Random, sym: str, near: bool, variant: str, kind: str) -> Plan:
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
    news = variant == "news_spread"
    if news:
        n, lots = r.randint(3, 8), r.uniform(0.05, 2.0)
    # A marketable limit carries the client's accepted deviation (a few pips past the touch); the
    # firm never prints beyond it.
    deviation = r.uniform(8.0, 20.0) if not near and not asym else r.uniform(3.0, 10.0)

    def script() -> Iterator[float]:
        if policy:
            desk.execution(acct, sym, **policy)
        side = r.choice(("buy", "sell"))
        spreads: list[int] = []
        for _ in range(n):
            if news:
                # A client who trades the release: waits (up to 20 min) for the spread to blow out,
                # then deals at the book's own wide prices, fairly.
                waited = 0.0
                while waited < 1200.0:
                    spreads.append(spread_ticks(desk, sym))
                    if len(spreads) > 30 and spreads[-1] >= max(4, 3 * statistics.median(spreads)):
                        break
                    step = r.uniform(1.0, 4.0)
                    yield step
                    waited += step
            qty = lots_to_units(desk, sym, lots * r.uniform(0.5, 1.5))
            if big:  # a large order in a thin book: fills walk the levels at the book's own prices
                qty = qty_units(desk, sym, reach_qty(desk, sym, side, r.randint(2, 4)) * r.uniform(0.8, 1.1))
            else:  # a client's ticket sized to the market: no more than rests within a pip of the touch
                qty = min(qty, qty_units(desk, sym, near_touch_qty(desk, sym, side, 1.0)))
            aggress(desk, r, acct, sym, side, qty, ep, r.choice(order_types), slack_pips=deviation)
            # A retail round trip: mostly alternating sides, now and then adding to the position.
            if r.random() < 0.7:
                side = opposite(side)
            yield length / n * r.uniform(0.4, 1.6)
        if policy:
            desk.execution(acct, sym)

    return Plan(ep, script, 1.7 * length + 60, (acct,))
