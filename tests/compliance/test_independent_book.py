"""The independent evaluation book (``compliance.scenarios.independent``): what it holds, checked on
the records themselves (never by running the detectors: its evaluation seeds are run once, by
hand, for docs/surveillance-evaluation.md). Seeds here are outside ``INDEPENDENT_SEEDS``."""

from __future__ import annotations

import bisect
from collections import Counter, defaultdict
from datetime import datetime

import orjson
import pytest

from compliance.scenarios.generator import KINDS
from compliance.scenarios.independent import INDEPENDENT_SEEDS, SPECS, IndependentConfig, independent_generate
from compliance.surveillance.records import ClosePrint, FillRecord, OrderMessage, Quote, record_decoder

SEED = 11
assert SEED not in INDEPENDENT_SEEDS


@pytest.fixture(scope="module")
def book():
    return independent_generate(IndependentConfig(seed=SEED, hours=2.0))


def _t(row) -> float:
    return datetime.fromisoformat(row["ts"].replace("Z", "+00:00")).timestamp()


def test_the_book_is_valid_surveil_input_in_time_order_and_reproducible(book):
    rows, labels = book
    decoded = [record_decoder.decode(orjson.dumps(r)) for r in rows]
    assert all(a.ts <= b.ts for a, b in zip(decoded, decoded[1:], strict=False))
    kinds = Counter(type(r) for r in decoded)
    assert kinds[Quote] > kinds[OrderMessage] > kinds[FillRecord] > kinds[ClosePrint] > 0
    assert {r.symbol for r in decoded if isinstance(r, Quote)} == set(SPECS)
    again, _labels = independent_generate(IndependentConfig(seed=SEED, hours=2.0))
    assert again == rows


def test_every_kind_has_episodes_and_near_misses_and_every_label_names_orders(book):
    rows, labels = book
    abuse = Counter(lab.kind for lab in labels if not lab.near_miss)
    near = Counter(lab.kind for lab in labels if lab.near_miss)
    assert set(abuse) == set(KINDS) and all(4 <= n <= 5 for n in abuse.values())
    assert 45 <= sum(abuse.values()) <= 47
    assert set(near) == set(KINDS) and 31 <= sum(near.values()) <= 36
    ids = {r["order_id"] for r in rows if r["type"] == "order"}
    for lab in labels:
        assert lab.order_ids and lab.order_ids <= ids, (lab.kind, lab.variant)


def test_accounts_of_every_profile_linked_owners_and_a_colluding_pair(book):
    rows, labels = book
    owners = {(r["account"], r["owner"]) for r in rows if r["type"] == "order"}
    accounts = {a for a, _o in owners}
    assert 18 <= len(accounts) <= 26
    prefixes = Counter(a.split("-")[0] for a in accounts)
    assert {"RTL", "ACT", "ALG", "INS", "LNK", "CLX"} <= set(prefixes)
    by_owner = defaultdict(set)
    for a, o in owners:
        by_owner[o].add(a)
    assert sum(1 for accs in by_owner.values() if len(accs) == 2) >= 3  # same-owner pairs
    colluders = [o for a, o in owners if a.startswith("CLX")]
    assert len(set(colluders)) == 2  # the colluding pair: distinct owners


def test_spoofing_rests_one_price_and_layering_two_to_six_behind_the_touch(book):
    rows, labels = book
    quotes = defaultdict(list)
    for r in rows:
        if r["type"] == "quote":
            quotes[r["symbol"]].append((_t(r), float(r["bid"]), float(r["ask"])))
    news = {r["order_id"]: r for r in rows if r["type"] == "order" and r["action"] == "new"}
    cancelled = {r["order_id"] for r in rows if r["type"] == "order" and r["action"] == "cancel"}
    for lab in labels:
        if lab.kind not in ("spoofing", "layering") or lab.near_miss:
            continue
        resting = [news[o] for o in lab.order_ids if o in cancelled and news[o]["order_type"] == "limit"]
        assert resting
        for r in resting:
            q = quotes[r["symbol"]]
            _t0, bid, ask = q[max(bisect.bisect_right([x[0] for x in q], _t(r)) - 1, 0)]
            price = float(r["price"])
            assert price < bid if r["side"] == "buy" else price > ask  # behind the touch


def test_momentum_ignition_moves_the_quote_path_and_reverses(book):
    rows, labels = book
    mids = defaultdict(list)
    for r in rows:
        if r["type"] == "quote":
            mids[r["symbol"]].append((_t(r), (float(r["bid"]) + float(r["ask"])) / 2))
    fills = defaultdict(list)
    for r in rows:
        if r["type"] == "fill":
            fills[r["order_id"]].append(r)
    moved = 0
    episodes = [lab for lab in labels if lab.kind == "momentum_ignition" and not lab.near_miss]
    for lab in episodes:
        fs = sorted((f for o in lab.order_ids for f in fills[o]), key=_t)
        side = fs[0]["side"]
        assert any(f["side"] != side for f in fs)  # the same account trades the other way
        sign = 1 if side == "buy" else -1
        series = mids[lab.symbol]
        times = [x[0] for x in series]
        start = series[bisect.bisect_right(times, _t(fs[0])) - 1][1]
        until = next(_t(f) for f in fs if f["side"] != side)
        peak = max(sign * (m / start - 1) * 1e4 for t, m in series if _t(fs[0]) <= t <= until)
        moved += peak >= 2.0
    assert moved >= len(episodes) - 1  # the push moves the mid (an attempt that fails is still labelled)


def test_asymmetric_slippage_is_adverse_far_more_often_than_improved(book):
    rows, labels = book
    quotes = defaultdict(list)
    for r in rows:
        if r["type"] == "quote":
            quotes[r["symbol"]].append((_t(r), float(r["bid"]), float(r["ask"])))
    news = {r["order_id"]: r for r in rows if r["type"] == "order" and r["action"] == "new"}
    first_fill = {}
    for r in rows:
        if r["type"] == "fill":
            first_fill.setdefault(r["order_id"], r)
    for lab in labels:
        if lab.kind != "asymmetric_slippage":
            continue
        adverse = improved = 0
        for oid in lab.order_ids:
            fill = first_fill.get(oid)
            if fill is None:
                continue
            q = quotes[lab.symbol]
            _t0, bid, ask = q[max(bisect.bisect_right([x[0] for x in q], _t(fill)) - 1, 0)]
            touch = ask if fill["side"] == "buy" else bid
            slip = (float(fill["price"]) - touch) * (1 if fill["side"] == "buy" else -1)
            adverse += slip > 1e-9
            improved += slip < -1e-9
        if lab.near_miss:
            assert improved > 0.4 * adverse
        else:
            assert adverse > 3 * improved and adverse >= 10
        assert news  # orders were entered
