"""The scenario generator's short intense quoting (2026-12-04 night round, wip/slip13): an
algorithm quiet until then parks and cancels orders on both sides for a few minutes with an
occasional fill (labelled order-to-trade near-misses), drawn from a stream of its own and added
after everything else, so the rest of the book does not move."""

from __future__ import annotations

import orjson

from compliance.scenarios.generator import ScenarioConfig, generate
from tests.compliance.helpers import book_with_and_without

CFG = ScenarioConfig(seed=101, hours=4.0)


def test_the_intense_stream_adds_its_own_accounts_and_moves_nothing_else(monkeypatch):
    (with_intense, episodes), (without, without_episodes) = book_with_and_without(monkeypatch, CFG, "intense_rng")
    assert set(without) <= set(with_intense)
    added_eps = [e for e in episodes if e.variant == "short_intense"]
    assert added_eps and all(e.kind == "excessive_order_to_trade" and e.near_miss for e in added_eps)
    assert len(episodes) == len(without_episodes) + len(added_eps)
    added = [orjson.loads(r) for r in set(with_intense) - set(without)]
    accounts = {e.account for e in added_eps}
    assert added and all(r["account"] in accounts for r in added)
    labelled = {o for e in added_eps for o in e.order_ids}
    assert {r["order_id"] for r in added if r["type"] == "order" and r["action"] == "new"} == labelled


def test_the_quoter_is_quiet_then_cancels_all_the_time_and_trades_now_and_then():
    rows, episodes = generate(CFG)
    ep = next(e for e in episodes if e.variant == "short_intense")
    mine = [r for r in rows if r.get("account") == ep.account]
    orders = [r for r in mine if r["type"] == "order"]
    # an account of its own (nothing before the stretch), starting at least 900 s into the book
    assert mine and ep.start_s >= 900 and all(r["order_id"].startswith("si") for r in orders)
    cancels = sum(r["action"] == "cancel" for r in orders)
    fills = sum(r["type"] == "fill" for r in mine)
    assert cancels >= 50 and fills >= 1 and len(orders) / fills < 100  # no RTS 9 breach
    assert {r["side"] for r in orders} == {"buy", "sell"}
