"""The limit-order-book book's labelled episodes (compliance/scenarios/lob/episodes.py).

What a reviewer of the book would check: every alert type has its 4-5 abuse episodes and 3-4
near-misses, every label names orders that are in the file and belong to its accounts, episodes
differ from one another, the same seed gives the same book, and each kind of episode does on the
book what its label says (the owner's two accounts really trade with each other, the spoofer's
large orders go once its small one has filled, the stuffer's burst is a burst...). Measured from
the book's own records, never from a detector. Development seeds only (1-9).
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from datetime import datetime

import pytest

from compliance.scenarios.generator import ACCEPTED, KINDS
from compliance.scenarios.lob import LobConfig, lob_generate
from compliance.scenarios.lob.market import SPECS

pytestmark = pytest.mark.slow


def _seconds(ts: str) -> float:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


class Book:
    """One generated book indexed by order: its lines, the touch at each order's arrival."""

    def __init__(self, seed: int, hours: float = 4.0):
        self.records, self.episodes = lob_generate(LobConfig(seed=seed, hours=hours))
        self.t0 = _seconds(self.records[0]["ts"])
        self.orders: dict[str, list[dict]] = defaultdict(list)
        self.fills: dict[str, list[dict]] = defaultdict(list)
        self.arrival: dict[str, tuple[float, float]] = {}
        touch: dict[str, tuple[float, float]] = {}
        for r in self.records:
            if r["type"] == "quote":
                touch[r["symbol"]] = (float(r["bid"]), float(r["ask"]))
            elif r["type"] == "order":
                self.orders[r["order_id"]].append(r)
                if r["action"] == "new":
                    self.arrival[r["order_id"]] = touch[r["symbol"]]
            elif r["type"] == "fill":
                self.fills[r["order_id"]].append(r)

    def t(self, rec: dict) -> float:
        return _seconds(rec["ts"]) - self.t0

    def of(self, kind: str, near_miss: bool):
        return [e for e in self.episodes if e.kind == kind and e.near_miss == near_miss]

    def slippage_pips(self, ep) -> list[float]:
        """Per fill of the episode's aggressive orders: pips worse than the arrival touch."""
        pip = SPECS[ep.symbol].pip
        out = []
        for oid in ep.order_ids:
            bid, ask = self.arrival[oid]
            for f in self.fills[oid]:
                px = float(f["price"])
                out.append(((px - ask) if f["side"] == "buy" else (bid - px)) / pip)
        return out


@pytest.fixture(scope="module")
def book() -> Book:
    return Book(seed=1)


def test_counts_per_type_and_near_miss(book):
    for kind in KINDS:
        assert 4 <= len(book.of(kind, False)) <= 5, kind
        assert 3 <= len(book.of(kind, True)) <= 4, kind
    abuse = sum(not e.near_miss for e in book.episodes)
    near = sum(e.near_miss for e in book.episodes)
    assert 45 <= abuse <= 55 and 33 <= near <= 44
    for ep in book.episodes:
        assert ep.accepted == (() if ep.near_miss else ACCEPTED[ep.kind])


def test_every_labelled_order_is_in_the_book_and_is_the_labels_own(book):
    seen: Counter = Counter()
    for ep in book.episodes:
        assert ep.order_ids, (ep.kind, ep.variant)
        accounts = set(ep.account.split(","))
        owners = set(ep.owner.split("+"))
        for oid in ep.order_ids:
            new = [r for r in book.orders[oid] if r["action"] == "new"]
            assert len(new) == 1, oid
            assert new[0]["account"] in accounts and new[0]["owner"] in owners, (ep.kind, oid)
            assert new[0]["symbol"] == ep.symbol
            for fill in book.fills[oid]:
                assert fill["account"] in accounts
            seen[oid] += 1
        first = min(book.t(r) for oid in ep.order_ids for r in book.orders[oid])
        assert ep.start_s <= first + 1e-6
    assert max(seen.values()) == 1  # no order belongs to two episodes


def test_episodes_vary(book):
    first_sizes = []
    starts = []
    for ep in book.episodes:
        first = min((r for oid in ep.order_ids for r in book.orders[oid]), key=book.t)
        first_sizes.append(first["qty"])
        starts.append(round(ep.start_s))
    assert len(set(first_sizes)) >= 0.8 * len(book.episodes)
    assert len(set(starts)) >= 0.9 * len(book.episodes)
    for kind in KINDS:
        abuse = book.of(kind, False)
        assert len({e.variant.split("/")[0] for e in abuse}) >= 2, kind
        assert len({e.symbol for e in abuse}) >= 2, kind
        assert len({e.account for e in abuse}) == len(abuse), kind


def test_same_seed_same_book_other_seed_other_book():
    a = lob_generate(LobConfig(seed=2, hours=1.5))
    b = lob_generate(LobConfig(seed=2, hours=1.5))
    c = lob_generate(LobConfig(seed=3, hours=1.5))
    assert a[0] == b[0]
    assert [e.as_dict() for e in a[1]] == [e.as_dict() for e in b[1]]
    assert [e.as_dict() for e in a[1]] != [e.as_dict() for e in c[1]]


def test_wash_and_painting_accounts_really_trade_with_each_other(book):
    for kind, least in (("wash_trade", 1), ("painting_the_tape", 2)):
        for ep in book.of(kind, False):
            accounts = set(ep.account.split(","))
            legs = defaultdict(set)
            for oid in ep.order_ids:
                for f in book.fills[oid]:
                    legs[(f["ts"], f["price"])].add(f["account"])
            assert sum(legs_ == accounts for legs_ in legs.values()) >= least, (kind, ep.variant)
        for ep in book.of(kind, True):  # the look-alikes never meet on the venue
            accounts = set(ep.account.split(","))
            legs = defaultdict(set)
            for oid in ep.order_ids:
                for f in book.fills[oid]:
                    legs[(f["ts"], f["price"])].add(f["account"])
            assert not any(legs_ == accounts for legs_ in legs.values()), (kind, ep.variant)


def test_spoofs_and_layers_are_pulled_after_the_small_order_fills(book):
    for kind in ("spoofing", "layering"):
        for ep in book.of(kind, False):
            news = [r for oid in ep.order_ids for r in book.orders[oid] if r["action"] == "new"]
            smallest = min(float(r["qty"]) for r in news)
            large = [r for r in news if float(r["qty"]) >= 3 * smallest]
            small = [r for r in news if float(r["qty"]) < 3 * smallest]
            assert large and small, (kind, ep.variant)
            if kind == "layering":
                assert len({r["price"] for r in large}) >= 3
            # Each large order withdrawn went within seconds of a fill of a small order on the other side.
            for order in large:
                cancels = [book.t(r) for r in book.orders[order["order_id"]] if r["action"] == "cancel"]
                fills = [book.t(f) for s in small if s["side"] != order["side"] for f in book.fills[s["order_id"]]]
                for c in cancels:
                    assert any(0 <= c - f <= 25.0 for f in fills), (kind, ep.variant)
            assert any(r["action"] == "cancel" for o in large for r in book.orders[o["order_id"]])


def test_message_bursts_ratios_and_pings(book):
    for ep in book.of("quote_stuffing", False):
        times = sorted(book.t(r) for oid in ep.order_ids for r in book.orders[oid])
        densest = max(sum(1 for u in times if t <= u < t + 10.0) for t in times)
        assert densest >= 40
        # Not meant to trade: at most the odd order a release (or gold's whipsaw) sweeps through.
        assert sum(1 for oid in ep.order_ids if book.fills[oid]) <= max(3, 0.02 * len(times))
    for ep in book.of("excessive_order_to_trade", False):
        messages = sum(len(book.orders[oid]) for oid in ep.order_ids)
        traded = sum(1 for oid in ep.order_ids if book.fills[oid])
        assert messages / max(traded, 1) >= 25
    for ep in book.of("excessive_order_to_trade", True):
        messages = sum(len(book.orders[oid]) for oid in ep.order_ids)
        traded = sum(1 for oid in ep.order_ids if book.fills[oid])
        assert messages / max(traded, 1) <= 5
    for ep in book.of("ping_orders", False):
        lots = [float(r["qty"]) / SPECS[ep.symbol].lot for oid in ep.order_ids for r in book.orders[oid][:1]]
        assert len(lots) >= 12 and statistics.median(lots) <= 0.3
        unfilled = sum(1 for oid in ep.order_ids if not book.fills[oid])
        assert unfilled >= 0.5 * len(ep.order_ids) - 1


def test_momentum_turns_and_near_misses_hold(book):
    for ep in book.of("momentum_ignition", False):
        sides = [f["side"] for oid in ep.order_ids for f in book.fills[oid]]
        assert {"buy", "sell"} <= set(sides), ep.variant
    for ep in book.of("momentum_ignition", True):
        assert len({f["side"] for oid in ep.order_ids for f in book.fills[oid]}) == 1, ep.variant


def test_marking_trades_in_the_fixing_window_for_a_position_built_before(book):
    fixes = [3600.0 * k for k in range(1, 4)]
    for ep in book.of("marking_the_close", False):
        fills = sorted((f for oid in ep.order_ids for f in book.fills[oid]), key=book.t)
        fix = next(x for x in fixes if any(x - 150 <= book.t(f) <= x + 150 for f in fills))
        before = sum(float(f["qty"]) * (1 if f["side"] == "buy" else -1) for f in fills if book.t(f) < fix - 150)
        inside = [f for f in fills if fix - 150 <= book.t(f) <= fix + 150]
        assert before != 0 and inside
        assert all((f["side"] == "buy") == (before > 0) for f in inside), ep.variant


def test_execution_policies_show_in_the_fills(book):
    for ep in book.of("best_execution_slippage", False):
        slips = book.slippage_pips(ep)
        adverse = [s for s in slips if s >= 2.0]
        assert len(adverse) >= 3 and len(adverse) >= 0.4 * len(slips), ep.variant
    for ep in book.of("asymmetric_slippage", False):
        slips = book.slippage_pips(ep)
        adverse = sum(s > 0.3 for s in slips)
        improved = sum(s < -0.05 for s in slips)
        assert adverse >= 5 and improved <= adverse / 3, ep.variant
    for ep in book.of("asymmetric_slippage", True) + book.of("best_execution_slippage", True):
        slips = book.slippage_pips(ep)
        if ep.variant.startswith("symmetric"):
            assert sum(s < -0.05 for s in slips) >= 1
        assert statistics.mean(slips) < 1.5, ep.variant
