"""The scenario generator's asymmetric slippage by value (2026-12-05 morning round, wip/exec16):
a broker who passes improvements on but clipped, and a fair client on as many orders, drawn from
a stream of their own and added after everything else, so the rest of the book does not move."""

from __future__ import annotations

import orjson

from compliance.scenarios.generator import SYMBOLS, ScenarioConfig, generate
from tests.compliance.helpers import book_with_and_without

CFG = ScenarioConfig(seed=101, hours=4.0)


def test_the_value_stream_adds_its_own_clients_and_moves_nothing_else(monkeypatch):
    (with_value, episodes), (without, without_episodes) = book_with_and_without(monkeypatch, CFG, "slip_value_rng")
    assert set(without) <= set(with_value)
    value = [e for e in episodes if e.variant in ("value", "value_fair")]
    assert sorted((e.variant, e.near_miss) for e in value) == [("value", False), ("value_fair", True)]
    assert all(e.kind == "asymmetric_slippage" for e in value)
    assert len(episodes) == len(without_episodes) + len(value)
    added = [orjson.loads(r) for r in set(with_value) - set(without)]
    assert added and all(r["account"] in {e.account for e in value} for r in added)
    assert {r["order_id"] for r in added} == {o for e in value for o in e.order_ids}


def test_the_abuser_passes_improvement_on_but_smaller_than_the_adverse_slippage():
    rows, episodes = generate(CFG)
    abuse = next(e for e in episodes if e.variant == "value")
    pip = SYMBOLS[abuse.symbol][1]
    touch: dict[str, tuple[float, float]] = {}
    side: dict[str, str] = {}
    adverse: list[float] = []
    improved: list[float] = []
    for r in rows:
        if r["type"] == "quote" and r["symbol"] == abuse.symbol:
            touch[r["symbol"]] = (float(r["bid"]), float(r["ask"]))
        elif r["type"] == "order" and r["order_id"] in abuse.order_ids:
            side[r["order_id"]] = r["side"]
        elif r["type"] == "fill" and r["order_id"] in abuse.order_ids:
            bid, ask = touch[abuse.symbol]
            buy = side[r["order_id"]] == "buy"
            slip = ((float(r["price"]) - ask) if buy else (bid - float(r["price"]))) / pip
            if slip > 0.01:
                adverse.append(slip)
            elif slip < -0.01:
                improved.append(-slip)
    assert improved and adverse
    assert len(adverse) > len(improved)
    assert sum(improved) / len(improved) < 0.5 * sum(adverse) / len(adverse)
