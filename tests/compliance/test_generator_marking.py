"""The scenario generator's marking-the-close variation (2026-12-04 night round): the abusers'
older business the other way and the fixing clients' small business are drawn from a stream of
their own and added after everything else, so the rest of the book does not move."""

from __future__ import annotations

from datetime import datetime

import orjson

from compliance.scenarios.generator import ScenarioConfig, generate
from tests.compliance.helpers import book_with_and_without

CFG = ScenarioConfig(seed=101, hours=4.0)


def test_the_marking_stream_adds_orders_and_moves_nothing_else(monkeypatch):
    (with_extra, episodes), (without, _) = book_with_and_without(monkeypatch, CFG, "marking_rng")
    assert set(without) <= set(with_extra)
    added = [orjson.loads(r) for r in set(with_extra) - set(without)]
    assert added  # some marking episode drew other business
    marking = {(e.account, e.symbol) for e in episodes if e.kind == "marking_the_close"}
    assert all(r["type"] in ("order", "fill") and (r["account"], r["symbol"]) in marking for r in added)
    # None of the added orders is labelled: they are the account's other business.
    labelled = {o for e in episodes for o in e.order_ids}
    assert not labelled & {r["order_id"] for r in added}


def test_some_abusers_are_positioned_against_the_push_yet_built_its_way_within_the_hour():
    rows, episodes = generate(CFG)
    fills: dict[tuple[str, str], list[tuple[float, float, str]]] = {}
    for r in rows:
        if r["type"] != "fill":
            continue
        t = datetime.fromisoformat(r["ts"].replace("Z", "+00:00")).timestamp()
        sign = 1 if r["side"] == "buy" else -1
        fills.setdefault((r["account"], r["symbol"]), []).append((t, sign * float(r["qty"]), r["order_id"]))
    against = 0
    for e in episodes:
        if e.kind != "marking_the_close" or e.near_miss:
            continue
        mine = fills[(e.account, e.symbol)]
        push = [f for f in mine if f[2] in e.order_ids]
        began, way = push[0][0], 1 if push[0][1] > 0 else -1
        held = sum(q for t, q, _ in mine if t < began)
        built = sum(q for t, q, _ in mine if began - 3600 <= t < began)
        if held * way < 0 < built * way:  # short overall, bought within the hour, then pushed up
            against += 1
    assert against >= 1


def test_the_wash_stream_adds_labelled_slow_wash_episodes_and_moves_nothing_else(monkeypatch):
    """The 2026-12-04 late-night round's wash episodes whose second leg follows 10-25 s later."""
    (with_extra, episodes), (without, _) = book_with_and_without(monkeypatch, CFG, "wash_rng")
    assert set(without) <= set(with_extra)
    added = [orjson.loads(r) for r in set(with_extra) - set(without)]
    slow = [e for e in episodes if e.variant.startswith("slow_")]
    assert slow and all(e.kind == "wash_trade" and not e.near_miss for e in slow)
    assert {r["order_id"] for r in added} == {o for e in slow for o in e.order_ids}


def test_the_marking_block_stream_adds_unlabelled_position_blocks_and_moves_nothing_else(monkeypatch):
    """The 2026-12-04 last-evening round's abusers who take their position in one block larger
    than the push, 10-25 minutes before it (wip/close11)."""
    (with_extra, episodes), (without, _) = book_with_and_without(monkeypatch, CFG, "marking_block_rng")
    assert set(without) <= set(with_extra)
    added = [orjson.loads(r) for r in set(with_extra) - set(without)]
    assert added  # some abusers drew a block
    assert all(r["type"] in ("order", "fill") and r["order_id"].startswith("b") for r in added)
    labelled = {o for e in episodes for o in e.order_ids}
    assert not labelled & {r["order_id"] for r in added}
    abusers = [e for e in episodes if e.kind == "marking_the_close" and not e.near_miss]
    rows = [orjson.loads(r) for r in with_extra]

    def fits(fill, e) -> bool:
        push = [r for r in rows if r["type"] == "fill" and r["order_id"] in e.order_ids]
        at = datetime.fromisoformat(fill["ts"].replace("Z", "+00:00")).timestamp()
        gap = datetime.fromisoformat(push[0]["ts"].replace("Z", "+00:00")).timestamp() - at  # fill latencies aside
        return (
            {r["side"] for r in push} == {fill["side"]}  # the push's way
            and float(fill["qty"]) >= 0.99 * sum(float(r["qty"]) for r in push)  # at least the push
            and 599 <= gap <= 1501  # 10-25 minutes before the push's first order
        )

    for fill in (r for r in added if r["type"] == "fill"):
        mine = [e for e in abusers if (e.account, e.symbol) == (fill["account"], fill["symbol"])]
        assert any(fits(fill, e) for e in mine)


def _t(row) -> float:
    return datetime.fromisoformat(row["ts"].replace("Z", "+00:00")).timestamp()


def test_the_marking_lead_stream_adds_labelled_orders_opening_the_push_early_and_moves_nothing_else(monkeypatch):
    """Pushes that open minutes before the print's window (another firm's book, 2026-12-04 night
    round, wip/close13): the episode's own orders, the push's way, 1-5 minutes before its first."""
    (with_extra, episodes), (without, episodes_without) = book_with_and_without(monkeypatch, CFG, "marking_lead_rng")
    assert set(without) <= set(with_extra)
    added = [orjson.loads(r) for r in set(with_extra) - set(without)]
    assert added and all(r["type"] in ("order", "fill") and r["order_id"].startswith("l") for r in added)
    leads = {r["order_id"] for r in added}
    before = {(e.account, e.symbol, e.start_s): e.order_ids for e in episodes_without}
    rows = [orjson.loads(r) for r in with_extra]
    for e in episodes:
        mine = e.order_ids & leads
        if not mine:
            assert e.order_ids == before[(e.account, e.symbol, e.start_s)]
            continue
        assert e.kind == "marking_the_close" and not e.near_miss
        assert e.order_ids - mine == before[(e.account, e.symbol, e.start_s)]
        push = [r for r in rows if r["type"] == "order" and r["order_id"] in e.order_ids - mine]
        first = min(_t(r) for r in push)
        for r in (r for r in rows if r["type"] == "order" and r["order_id"] in mine):
            assert r["side"] == push[0]["side"] and 59 <= first - _t(r) <= 301


def test_the_marking_after_stream_adds_unlabelled_trades_back_after_the_print_and_moves_nothing_else(monkeypatch):
    """Trading back after the print (another firm's book, 2026-12-04 night round, wip/close13):
    marking accounts' unlabelled orders the other way from their push, 30-280 s after the print."""
    (with_extra, episodes), (without, _) = book_with_and_without(monkeypatch, CFG, "marking_after_rng")
    assert set(without) <= set(with_extra)
    added = [orjson.loads(r) for r in set(with_extra) - set(without)]
    assert added and all(r["type"] in ("order", "fill") and r["order_id"].startswith("a") for r in added)
    labelled = {o for e in episodes for o in e.order_ids}
    assert not labelled & {r["order_id"] for r in added}
    rows = [orjson.loads(r) for r in with_extra]
    closes = [(r["symbol"], _t(r)) for r in rows if r["type"] == "close"]
    marking = [e for e in episodes if e.kind == "marking_the_close"]
    abusers = near = 0
    for r in (r for r in added if r["type"] == "order"):
        fits = []
        for e in (e for e in marking if (e.account, e.symbol) == (r["account"], r["symbol"])):
            push = [x for x in rows if x["type"] == "order" and x["order_id"] in e.order_ids]
            last = max(_t(x) for x in push)
            printed = min(t for s, t in closes if s == e.symbol and t > last)
            if r["side"] != push[-1]["side"] and 29 <= _t(r) - printed <= 281:
                fits.append(e)
        assert fits
        abusers += any(not e.near_miss for e in fits)
        near += any(e.near_miss for e in fits)
    assert abusers and near


def test_the_small_effect_stream_shrinks_some_marking_pushes_and_moves_no_order(monkeypatch):
    """Marks whose push did little to the print (another firm's book, 2026-12-05 early morning,
    wip/close15): the small-effect stream scales a third of the marking pushes' price effect by
    0.08-0.35 and changes no order: the same orders, sizes and times, with or without it (only
    prices near those pushes, and the quoting algorithms that follow the touch, differ)."""
    from compliance.scenarios import generator

    def book():
        b = generator._Builder(CFG)
        rows, episodes = b.build()
        return b, rows, episodes

    small, rows, episodes = book()
    monkeypatch.setattr(generator._Builder, "_marking_small_effect", lambda self: 1.0)
    plain, rows_plain, _ = book()

    def orders(rs):  # the quoting algorithms' own orders (ids "q...") re-price on the touch
        return [
            (r["type"], r.get("order_id"), r.get("action"), r.get("side"), r.get("qty"), r["ts"])
            for r in rs
            if r["type"] in ("order", "fill") and not r["order_id"].startswith("q")
        ]

    assert orders(rows) == orders(rows_plain)
    marking = {(e.symbol, e.start_s) for e in episodes if e.kind == "marking_the_close"}
    ratios = []
    for sym, bumps in small.market.bumps.items():
        for mine, theirs in zip(bumps, plain.market.bumps[sym], strict=True):
            assert mine[:4] == theirs[:4]
            if mine[4] != theirs[4]:
                ratios.append(mine[4] / theirs[4])
                assert any(s == sym and abs(start - mine[0]) < 300 for s, start in marking)
    assert ratios and all(0.08 - 1e-9 <= x <= 0.35 + 1e-9 for x in ratios)
    assert len(ratios) < len(marking)
