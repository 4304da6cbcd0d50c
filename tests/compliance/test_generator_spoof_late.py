"""The scenario generator's spoofers and layerers who pull their bait 5-9 s after the genuine
fill, and honest re-quoters whose replace falls as late after a fill of their own (2026-12-05
early-morning round, wip/slip15): drawn from a stream of their own and added after everything
else, so the rest of the book does not move."""

from __future__ import annotations

from datetime import datetime

import orjson

from compliance.scenarios.generator import ScenarioConfig, generate
from tests.compliance.helpers import book_with_and_without

CFG = ScenarioConfig(seed=101, hours=4.0)
VARIANTS = ("late_bait_cancel", "requote")


def _t(row) -> float:
    return datetime.fromisoformat(row["ts"].replace("Z", "+00:00")).timestamp()


def test_the_late_cancel_stream_adds_its_own_labelled_orders_and_moves_nothing_else(monkeypatch):
    (with_extra, episodes), (without, without_episodes) = book_with_and_without(monkeypatch, CFG, "spoof_late_rng")
    assert set(without) <= set(with_extra)
    added_eps = [e for e in episodes if e.variant in VARIANTS]
    assert sorted((e.kind, e.variant, e.near_miss) for e in added_eps) == [
        ("layering", "late_bait_cancel", False),
        ("layering", "requote", True),
        ("spoofing", "late_bait_cancel", False),
        ("spoofing", "requote", True),
    ]
    assert len(episodes) == len(without_episodes) + len(added_eps)
    added = [orjson.loads(r) for r in set(with_extra) - set(without)]
    assert {r["order_id"] for r in added if r["type"] == "order"} == {o for e in added_eps for o in e.order_ids}


def test_the_bait_is_pulled_5_to_9_s_after_the_fill_and_the_requote_as_late_after_its_own():
    rows, episodes = generate(CFG)
    for ep in (e for e in episodes if e.variant in VARIANTS):
        mine = [r for r in rows if r["type"] in ("order", "fill") and r["order_id"] in ep.order_ids]
        fills = [_t(r) for r in mine if r["type"] == "fill"]
        cancels = [_t(r) for r in mine if r["type"] == "order" and r["action"] == "cancel"]
        assert fills and cancels
        for tf in fills:  # the first cancel after each fill comes 5-9 s later, none sooner
            assert 5.0 <= min(c - tf for c in cancels if c > tf) <= 9.5
        if ep.near_miss:  # the re-quoter replaces every order it cancels but the last
            traded = {r["order_id"] for r in mine if r["type"] == "fill"}
            news = [r for r in mine if r["type"] == "order" and r["action"] == "new" and r["order_id"] not in traded]
            assert len(news) == len(cancels) >= 8
