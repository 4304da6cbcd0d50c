"""The scenario generator's order-to-trade quoting (2026-12-04 night round, wip/otr13): market
makers re-pricing a two-sided quote by modification (labelled near-misses) and an abuser parking
orders on both sides away from the touch (a labelled episode), drawn from a stream of their own
and added after everything else, so the rest of the book does not move."""

from __future__ import annotations

import orjson

from compliance.scenarios.generator import ScenarioConfig, generate
from tests.compliance.helpers import book_with_and_without

CFG = ScenarioConfig(seed=101, hours=4.0)


def test_the_quoting_stream_adds_its_own_accounts_and_moves_nothing_else(monkeypatch):
    (with_quoting, episodes), (without, without_episodes) = book_with_and_without(monkeypatch, CFG, "quoting_rng")
    assert set(without) <= set(with_quoting)
    added_eps = [e for e in episodes if e.variant in ("market_maker_modify", "parked_both_sides")]
    assert {e.variant for e in added_eps} == {"market_maker_modify", "parked_both_sides"}
    assert all(e.kind == "excessive_order_to_trade" for e in added_eps)
    assert all(e.near_miss == (e.variant == "market_maker_modify") for e in added_eps)
    assert len(episodes) == len(without_episodes) + len(added_eps)
    added = [orjson.loads(r) for r in set(with_quoting) - set(without)]
    accounts = {e.account for e in added_eps}
    assert added and all(r["account"] in accounts for r in added)
    assert {r["order_id"] for r in added} == {o for e in added_eps for o in e.order_ids}


def test_the_market_maker_re_prices_by_modification_both_sides_at_the_touch():
    rows, episodes = generate(CFG)
    mm = next(e for e in episodes if e.variant == "market_maker_modify")
    mine = [r for r in rows if r.get("account") == mm.account]
    actions = [r["action"] for r in mine if r["type"] == "order"]
    fills = sum(r["type"] == "fill" for r in mine)
    assert actions.count("modify") > 10 * actions.count("new") and fills >= 1
    assert {r["side"] for r in mine if r["type"] == "order"} == {"buy", "sell"}
