"""The limit order book's matching on small hand-made cases (an empty book, clients only)."""

from __future__ import annotations

import pytest

from compliance.scenarios.lob.market import Desk

EUR = "EURUSD"


@pytest.fixture
def desk():
    return Desk(1, hours=0.1, outside=False)


def _fills(desk, oid=None):
    return [
        (r["order_id"], r["side"], int(r["qty"]), r["price"])
        for r in desk.records
        if r["type"] == "fill" and oid in (None, r["order_id"])
    ]


def test_price_time_priority_and_two_clients_trading(desk):
    a, _ = desk.account("retail")
    b, _ = desk.account("active")
    c, _ = desk.account("institutional")
    first = desk.submit(a, EUR, "sell", 100_000, price=1.10010)
    second = desk.submit(b, EUR, "sell", 50_000, price=1.10010)
    better = desk.submit(b, EUR, "sell", 30_000, price=1.10008)
    assert desk.touch(EUR) == (0.0, 1.10008)
    taker = desk.submit(c, EUR, "buy", 150_000, order_type="market")
    # the better price first, then the level in time order
    assert _fills(desk, taker) == [(taker, "buy", 30_000, "1.10008"), (taker, "buy", 120_000, "1.10010")]
    assert _fills(desk, better) == [(better, "sell", 30_000, "1.10008")]
    assert _fills(desk, first) == [(first, "sell", 100_000, "1.10010")]
    assert _fills(desk, second) == [(second, "sell", 20_000, "1.10010")]
    assert desk.is_open(second) and not desk.is_open(first)
    assert desk.position(c, EUR) == 150_000
    assert desk.position(a, EUR) == -100_000 and desk.position(b, EUR) == -50_000
    assert desk.avg_price(taker) == pytest.approx((30_000 * 1.10008 + 120_000 * 1.10010) / 150_000)


def test_modify_keeps_priority_on_a_smaller_qty_and_loses_it_on_a_larger(desk):
    a, _ = desk.account("mm")
    b, _ = desk.account("retail")
    c, _ = desk.account("active")
    oa = desk.submit(a, EUR, "buy", 100_000, price=1.10000)
    ob = desk.submit(b, EUR, "buy", 100_000, price=1.10000)
    desk.modify(oa, qty=80_000)  # smaller: keeps its place
    s1 = desk.submit(c, EUR, "sell", 50_000, order_type="market")
    assert _fills(desk, s1) == [(s1, "sell", 50_000, "1.10000")]
    assert desk.filled(oa) == 50_000 and desk.filled(ob) == 0
    desk.modify(oa, qty=200_000)  # larger: to the back of the queue
    s2 = desk.submit(c, EUR, "sell", 120_000, order_type="market")
    assert desk.filled(ob) == 100_000
    assert desk.filled(oa) == 70_000
    assert _fills(desk, s2) == [(s2, "sell", 120_000, "1.10000")]


def test_marketable_limit_trades_then_rests_and_the_touch_moves(desk):
    a, _ = desk.account("retail")
    b, _ = desk.account("active")
    desk.submit(a, EUR, "sell", 40_000, price=1.10010)
    desk.submit(a, EUR, "sell", 40_000, price=1.10020)
    oid = desk.submit(b, EUR, "buy", 100_000, price=1.10015)
    assert desk.filled(oid) == 40_000 and desk.is_open(oid)
    assert desk.touch(EUR) == (1.10015, 1.1002)
    quotes = [r for r in desk.records if r["type"] == "quote"]
    assert quotes[-1]["bid"] == "1.10015" and quotes[-1]["ask"] == "1.10020"


def test_ioc_fok_and_stop(desk):
    a, _ = desk.account("retail")
    b, _ = desk.account("algo")
    desk.submit(a, EUR, "sell", 60_000, price=1.10010)
    desk.submit(a, EUR, "buy", 60_000, price=1.09990)
    fok = desk.submit(b, EUR, "buy", 100_000, price=1.10010, order_type="fok")
    assert desk.filled(fok) == 0 and not desk.is_open(fok)
    ioc = desk.submit(b, EUR, "buy", 100_000, price=1.10010, order_type="ioc")
    assert desk.filled(ioc) == 60_000 and not desk.is_open(ioc)
    # a sell stop rests off the book until the bid reaches it, then trades as market
    stop = desk.submit(b, EUR, "sell", 30_000, price=1.09980, order_type="stop")
    assert desk.is_open(stop) and desk.filled(stop) == 0
    assert desk.touch(EUR) == (1.0999, 0.0)
    desk.submit(a, EUR, "sell", 50_000, order_type="market")  # takes 50k of the 60k bid
    assert desk.filled(stop) == 0
    desk.submit(a, EUR, "buy", 10_000, price=1.09975)
    desk.submit(a, EUR, "sell", 10_000, order_type="market")  # the 1.09990 bid gone: bid 1.09975
    assert desk.filled(stop) == 10_000 and not desk.is_open(stop)
    assert desk.records[-1]["type"] in ("fill", "quote")


def test_execution_policy_marks_aggressive_fills_only(desk):
    a, _ = desk.account("retail")
    b, _ = desk.account("active")
    maker = desk.submit(a, EUR, "sell", 300_000, price=1.10010)
    desk.execution(b, adverse_pips=(2.0, 2.0), share=1.0)
    m = desk.submit(b, EUR, "buy", 100_000, order_type="market")
    assert _fills(desk, m) == [(m, "buy", 100_000, "1.10030")]  # 2 pips worse than the book paid
    assert _fills(desk, maker)[-1][3] == "1.10010"  # the resting side at its own price
    lim = desk.submit(b, EUR, "buy", 100_000, price=1.10015)
    assert _fills(desk, lim) == [(lim, "buy", 100_000, "1.10015")]  # never beyond the limit
    desk.execution(b)  # fair again
    m2 = desk.submit(b, EUR, "buy", 100_000, order_type="market")
    assert _fills(desk, m2) == [(m2, "buy", 100_000, "1.10010")]
    desk.execution(b, improve_share=1.0, improve_pips=(1.0, 1.0), adverse_pips=(0.0, 0.0), share=0.0)
    desk.submit(a, EUR, "buy", 100_000, price=1.10000)
    s = desk.submit(b, EUR, "sell", 50_000, order_type="market")
    assert _fills(desk, s) == [(s, "sell", 50_000, "1.10010")]  # improved by a pip


def test_cancel_and_labels(desk):
    a, owner = desk.account("retail")
    ep = desk.label("spoofing", a, owner, EUR, variant="hand")
    oid = desk.submit(a, EUR, "buy", 100_000, price=1.1, tag=ep)
    assert desk.cancel(oid, reason="kill_switch")
    assert not desk.cancel(oid)
    assert ep.order_ids == {oid} and ep.accepted == ("spoofing", "layering")
    assert desk.records[-1]["action"] == "cancel" and desk.records[-1]["reason"] == "kill_switch"
    nm = desk.label("spoofing", a, owner, EUR, near_miss=True)
    assert nm.accepted == ()
    assert desk.episodes == [ep, nm]


def test_scripts_wait_in_event_time(desk):
    seen = []

    def script(d):
        seen.append(d.t)
        yield 2.5
        seen.append(d.t)
        yield 0
        seen.append(d.t)

    desk.spawn(script(desk), at=10.0)
    desk.run()
    assert seen == [10.0, 12.5, 12.5]


@pytest.mark.parametrize(("move_at", "expected"), [(3600.5, "1.10010"), (3599.5, "1.10110")])
def test_fixing_is_the_median_of_the_mid_each_second_over_five_minutes(move_at, expected):
    desk = Desk(1, hours=1.1, outside=False)
    a, _ = desk.account("mm")

    def quotes(d):
        bid = d.submit(a, EUR, "buy", 100_000, price=1.10000)
        ask = d.submit(a, EUR, "sell", 100_000, price=1.10020)
        yield move_at - d.t
        d.modify(ask, price=1.10120)
        d.modify(bid, price=1.10100)

    desk.spawn(quotes(desk), at=3300.0)
    desk.run()
    # 301 samples from 59:30 to 01:02:30; the one print at the window's end
    (close,) = [r for r in desk.records if r["type"] == "close" and r["symbol"] == EUR]
    assert close["ts"].endswith("T01:02:30.000000Z")
    assert close["price"] == expected
    assert desk.next_fix(EUR, 0.0) == 3600.0 and desk.next_fix(EUR, 3601.0) is None
    assert desk.fix_window(EUR, 3600.0) == (3450.0, 3750.0)
