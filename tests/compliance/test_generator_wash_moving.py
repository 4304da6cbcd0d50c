"""The scenario generator's owner washes whose legs the market moved apart, and two accounts'
scalps in parallel (2026-12-05 early-morning round, wip/wash15): drawn from a stream of their
own and added after everything else, so the rest of the book does not move."""

from __future__ import annotations

from datetime import datetime

import orjson

from compliance.scenarios.generator import ScenarioConfig, generate
from tests.compliance.helpers import book_with_and_without

CFG = ScenarioConfig(seed=101, hours=4.0)


def _t(row) -> float:
    return datetime.fromisoformat(row["ts"].replace("Z", "+00:00")).timestamp()


def test_the_moving_wash_stream_adds_its_own_labelled_orders_and_moves_nothing_else(monkeypatch):
    (with_extra, episodes), (without, without_episodes) = book_with_and_without(monkeypatch, CFG, "wash_move_rng")
    assert set(without) <= set(with_extra)
    added_eps = [e for e in episodes if e.variant in ("moving_linked", "parallel_scalps")]
    assert {e.variant for e in added_eps} == {"moving_linked", "parallel_scalps"}
    assert all(e.kind == "wash_trade" and e.near_miss == (e.variant == "parallel_scalps") for e in added_eps)
    assert len(episodes) == len(without_episodes) + len(added_eps)
    added = [orjson.loads(r) for r in set(with_extra) - set(without)]
    assert {r["order_id"] for r in added if r["type"] == "order"} == {o for e in added_eps for o in e.order_ids}


def test_a_moving_wash_is_one_owner_both_ways_and_priced_apart_by_the_market():
    rows, episodes = generate(CFG)
    quotes: dict[str, list] = {}
    for r in rows:
        if r["type"] == "quote":
            quotes.setdefault(r["symbol"], []).append((_t(r), float(r["bid"]), float(r["ask"])))
    for ep in (e for e in episodes if e.variant == "moving_linked"):
        fills = sorted((r for r in rows if r["type"] == "fill" and r["order_id"] in ep.order_ids), key=_t)
        assert len(fills) == 2 and {f["side"] for f in fills} == {"buy", "sell"}
        assert len({f["account"] for f in fills}) == 2 and {f["owner"] for f in fills} == {ep.owner}
        a, b = (float(f["price"]) for f in fills)
        gap_bps = abs(a - b) / a * 1e4
        bid, ask = next((bq, aq) for t, bq, aq in reversed(quotes[ep.symbol]) if t <= _t(fills[1]))
        assert gap_bps > max(3.0, 2 * (ask - bid) / ((ask + bid) / 2) * 1e4)  # over the tolerance: the market moved
