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

The scripts live by subdomain: ``order_episodes`` (spoofing, layering, order-to-trade, quote
stuffing, pings), ``trade_episodes`` (wash, painting, momentum, marking, execution quality), on
the order tactics of ``tactics``; this module holds the plan.

Pure Python: no Django, no clock, deterministic per seed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from random import Random

from compliance.scenarios.generator import KINDS
from compliance.scenarios.lob.order_episodes import (
    ladder_near,
    order_to_trade,
    ping,
    quote_stuffing,
    spoof_like,
)
from compliance.scenarios.lob.tactics import Ctx, Plan
from compliance.scenarios.lob.trade_episodes import execution, fix_slots, marking, momentum, painting, wash

# How many abuse episodes and near-misses each alert type gets per book.
ABUSE_PER_KIND = (4, 5)
NEAR_MISSES_PER_KIND = (3, 4)

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
    "best_execution_slippage": (
        ("market", "marketable_limits", "mixed"),
        ("symmetric_small", "book_walk", "news_spread", "fair"),
    ),
    "asymmetric_slippage": (("withheld", "clipped"), ("symmetric", "symmetric_small", "fair")),
}


def _build(ctx: Ctx, kind: str, r: Random, sym: str, near: bool, variant: str) -> Plan:
    if kind == "wash_trade":
        return wash(ctx, r, sym, near, variant)
    if kind == "painting_the_tape":
        return painting(ctx, r, sym, near, variant)
    if kind == "layering" and near and variant in ("scale_in", "two_sided"):
        return ladder_near(ctx, r, sym, variant)
    if kind in ("spoofing", "layering"):
        return spoof_like(ctx, r, sym, near, variant, kind)
    if kind == "excessive_order_to_trade":
        return order_to_trade(ctx, r, sym, near, variant)
    if kind == "quote_stuffing":
        return quote_stuffing(ctx, r, sym, near, variant)
    if kind == "ping_orders":
        return ping(ctx, r, sym, near, variant)
    if kind == "momentum_ignition":
        return momentum(ctx, r, sym, near, variant)
    if kind in ("best_execution_slippage", "asymmetric_slippage"):
        return execution(ctx, r, sym, near, variant, kind)
    raise ValueError(f"no script for {kind!r}")


def _start(ctx: Ctx, plan: Plan, r: Random, lo: float, hi: float) -> float:
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
    ctx = Ctx(desk, rng, span)
    labels = []
    slots = fix_slots(desk, span, lead=600.0)
    rng.shuffle(slots)
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
                if not slots:
                    continue  # a book too short for a fixing with a build-up before it
                sym, fix_t = slots.pop() if len(slots) > 1 else slots[0]
                plan = marking(ctx, r, sym, fix_t, near, variant)
            else:
                plan = _build(ctx, kind, r, sym, near, variant)
            if plan.at is None:
                width = span / len(jobs)
                plan.at = _start(ctx, plan, r, 60.0 + i * width * 0.85, 60.0 + (i + 1) * width * 0.85)
            desk.spawn(_stamped(plan.ep, plan.script, desk)(), at=plan.at)
            labels.append(plan.ep)
    return labels
