"""The scenario generator's book-walking clients (2026-12-04 night round, execution quality):
labelled near-misses of asymmetric slippage drawn from a stream of their own and added after
everything else, so the rest of the book does not move."""

from __future__ import annotations

import orjson

from compliance.scenarios.generator import ScenarioConfig, generate
from tests.compliance.helpers import book_with_and_without

CFG = ScenarioConfig(seed=101, hours=4.0)


def test_the_sweep_stream_adds_its_own_clients_and_moves_nothing_else(monkeypatch):
    (with_sweep, episodes), (without, without_episodes) = book_with_and_without(monkeypatch, CFG, "sweep_rng")
    assert set(without) <= set(with_sweep)
    walks = [e for e in episodes if e.variant == "book_walk"]
    assert walks and all(e.near_miss and e.kind == "asymmetric_slippage" for e in walks)
    assert len(episodes) == len(without_episodes) + len(walks)
    added = [orjson.loads(r) for r in set(with_sweep) - set(without)]
    accounts = {e.account for e in walks}
    assert added and all(r["account"] in accounts for r in added)
    labelled = {o for e in walks for o in e.order_ids}
    assert {r["order_id"] for r in added} == labelled


def test_book_walking_orders_fill_in_slices_each_further_through_the_book():
    rows, episodes = generate(CFG)
    walk = next(e for e in episodes if e.variant == "book_walk")
    fills: dict[str, list[tuple[str, float]]] = {}
    for r in rows:
        if r["type"] == "fill" and r["order_id"] in walk.order_ids:
            fills.setdefault(r["order_id"], []).append((r["side"], float(r["price"])))
    assert all(len(f) >= 2 for f in fills.values())
    walked = 0
    for f in fills.values():
        sign = 1 if f[0][0] == "buy" else -1
        assert all(sign * (b[1] - a[1]) >= 0 for a, b in zip(f, f[1:], strict=False))  # to the pipette
        walked += sign * (f[-1][1] - f[0][1]) > 0
    assert walked > len(fills) / 2  # the rest were already 0.9 pip past the touch, or walked under a pipette
