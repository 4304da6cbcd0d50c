"""The limit order book's invariants on one whole generated book (seed 3, 4 hours, background
and whatever episodes ``plan_episodes`` schedules), determinism per seed, and validity as
``surveil`` input. No detector output is read here (docs/lob-book.md, independence)."""

from __future__ import annotations

import io
import re
from collections import Counter

import orjson
import pytest
from django.core.management import call_command

from compliance.scenarios.generator import ACCEPTED, KINDS
from compliance.scenarios.lob import LobConfig, background, lob_generate
from compliance.scenarios.lob.market import SPECS, Desk

TS = re.compile(r"^2026-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


@pytest.fixture(scope="module")
def book():
    desk = Desk(3, audit=True)
    records, episodes = lob_generate(LobConfig(seed=3), desk=desk)
    return desk, records, episodes


def test_size(book):
    desk, records, _episodes = book
    assert 120_000 <= len(records) <= 320_000
    kinds = Counter(r["type"] for r in records)
    assert kinds["order"] > 1500 and kinds["fill"] > 1000 and kinds["quote"] > 100_000


def test_timestamps_rfc3339_and_non_decreasing(book):
    _desk, records, _e = book
    stamps = [r["ts"] for r in records]
    assert all(TS.match(ts) for ts in stamps)
    assert all(a <= b for a, b in zip(stamps, stamps[1:], strict=False))
    assert stamps[0].endswith("T00:00:00.000000Z")  # the Tokyo/Sydney session


def test_quotes_never_crossed_and_on_the_tick_grid(book):
    _desk, records, _e = book
    for r in records:
        if r["type"] == "quote":
            spec = SPECS[r["symbol"]]
            bid, ask = float(r["bid"]), float(r["ask"])
            assert bid < ask
            assert abs(bid / spec.tick - round(bid / spec.tick)) < 1e-6


def _seconds(ts: str) -> float:
    h, m, s = ts[11:-1].split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


def test_quotes_throttled_except_around_client_events(book):
    _desk, records, _e = book
    last: dict[str, float] = {}
    close, total = 0, 0
    for r in records:
        if r["type"] == "quote":
            t = _seconds(r["ts"])
            if r["symbol"] in last:
                total += 1
                close += t - last[r["symbol"]] < 0.010
            last[r["symbol"]] = t
    assert total > 100_000 and close / total < 0.01


def test_fixings_hourly_median_prints(book):
    _desk, records, _e = book
    closes = [r for r in records if r["type"] == "close"]
    assert len(closes) == 4 * 3
    assert {r["ts"][11:] for r in closes} == {"01:02:30.000000Z", "02:02:30.000000Z", "03:02:30.000000Z"}
    # the print lies within the range of the quotes of its window
    for c in closes:
        hour = c["ts"][:13]
        mids = [
            (float(q["bid"]) + float(q["ask"])) / 2
            for q in records
            if q["type"] == "quote"
            and q["symbol"] == c["symbol"]
            and q["ts"][:13] in (hour, f"{hour[:11]}{int(hour[11:]) - 1:02d}")
        ]
        assert min(mids) <= float(c["price"]) <= max(mids)


def test_fills_at_the_book_price_or_the_marked_one(book):
    desk, records, _e = book
    assert len(desk.audit) == sum(r["type"] == "fill" for r in records)
    for _t, _oid, _sym, _side, price, printed, mark, _aggr in desk.audit:
        assert printed == price + mark
    # fair fills: an aggressive buy pays the arrival ask or more (it walked), never less; a sell
    # gets the arrival bid or less; a passive fill is at the order's own price
    quote = {}
    arrival = {}
    order_price = {}
    fills = iter(desk.audit)
    for r in records:
        if r["type"] == "quote":
            quote[r["symbol"]] = (
                round(float(r["bid"]) / SPECS[r["symbol"]].tick),
                round(float(r["ask"]) / SPECS[r["symbol"]].tick),
            )
        elif r["type"] == "order" and r["action"] in ("new", "modify"):
            arrival[r["order_id"]] = quote.get(r["symbol"])
            if r["price"] is not None:
                order_price[r["order_id"]] = round(float(r["price"]) / SPECS[r["symbol"]].tick)
        elif r["type"] == "fill":
            _t, oid, sym, side, price, printed, mark, aggressive = next(fills)
            assert oid == r["order_id"]
            assert round(float(r["price"]) / SPECS[sym].tick) == printed
            order = desk._orders[oid]
            if not aggressive:
                assert price == order_price[oid] and mark == 0
            elif order.otype != "stop" and arrival[oid] is not None and mark == 0:
                bid, ask = arrival[oid]
                assert price >= ask if side == 1 else price <= bid
            if order.otype in ("limit", "ioc", "fok"):
                assert (printed <= order_price[oid]) if side == 1 else (printed >= order_price[oid])


def test_background_fills_are_fair(book):
    desk, _records, episodes = book
    tagged = {oid for ep in episodes for oid in ep.order_ids}
    for _t, oid, *_rest, mark, _aggr in desk.audit:
        if oid not in tagged and desk._orders[oid].client[0] not in {k[0] for k in desk._policies}:
            assert mark == 0


def test_positions_add_up_and_fills_name_their_order(book):
    desk, records, _e = book
    orders = {r["order_id"]: r for r in records if r["type"] == "order" and r["action"] == "new"}
    net = Counter()
    for r in records:
        if r["type"] == "fill":
            o = orders[r["order_id"]]
            assert (o["account"], o["owner"], o["symbol"], o["side"]) == (
                r["account"],
                r["owner"],
                r["symbol"],
                r["side"],
            )
            net[(r["account"], r["symbol"])] += int(r["qty"]) * (1 if r["side"] == "buy" else -1)
    for (acct, sym), units in net.items():
        assert desk.position(acct, sym) == units
    for oid, o in orders.items():
        assert desk.filled(oid) <= int(o["qty"]) or any(
            r["type"] == "order" and r["order_id"] == oid and r["action"] == "modify" for r in records
        )


def test_labels_name_orders_of_the_book(book):
    _desk, records, episodes = book
    ids = {r["order_id"] for r in records if r["type"] == "order"}
    for ep in episodes:
        assert ep.order_ids and ep.order_ids <= ids, (ep.kind, ep.variant)
        assert ep.kind in KINDS and ep.accepted == (() if ep.near_miss else ACCEPTED[ep.kind])


def test_background_accounts_and_profiles(book):
    desk, records, episodes = book
    # The background's accounts are the ones background.start creates (episodes also trade on
    # the linked accounts and the colluding pair, so an account named in a label may be one).
    fresh = Desk(3)
    background.start(fresh, fresh.rng("background"))
    profiles = Counter(p for a, (p, _o) in desk._accounts.items() if a in fresh._accounts)
    assert 18 <= sum(profiles.values()) <= 40
    assert {"retail", "active", "mm", "algo", "institutional"} <= set(profiles)
    linked = desk.linked()
    assert len(linked) == 3 and all(a[1] == b[1] and a[0] != b[0] for a, b in linked)
    (c1, o1), (c2, o2) = desk.colluders()
    assert o1 != o2 and c1 != c2
    algos = {r.get("algo") for r in records if r["type"] == "order"} - {None}
    assert any(a.startswith(("TWAP", "VWAP")) for a in algos)
    mm = [a for a, (p, _o) in desk._accounts.items() if p == "mm"]
    reprices = sum(1 for r in records if r["type"] == "order" and r["account"] in mm and r["action"] != "new")
    assert reprices > 20


def test_every_line_accepted_by_the_surveil_decoder(book, tmp_path):
    _desk, records, _e = book
    path = tmp_path / "lob.jsonl"
    path.write_bytes(b"".join(orjson.dumps(r, option=orjson.OPT_APPEND_NEWLINE) for r in records))
    err = io.StringIO()
    call_command("surveil", str(path), "--output", "/dev/null", "--fail-on-error", stderr=err, stdout=io.StringIO())
    summary = err.getvalue()
    assert f"from {len(records)} lines" in summary and " 0 bad lines" in summary  # only the summary is read


def test_deterministic_per_seed():
    a = lob_generate(LobConfig(seed=5, hours=0.3))
    b = lob_generate(LobConfig(seed=5, hours=0.3))
    c = lob_generate(LobConfig(seed=6, hours=0.3))
    assert a[0] == b[0]
    assert [e.as_dict() for e in a[1]] == [e.as_dict() for e in b[1]]
    assert a[0] != c[0]
