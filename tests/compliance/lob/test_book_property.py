"""A property test of the limit order book: random client order sequences on an empty book never
leave it crossed, and every unit ordered is filled, resting, or gone (cancelled or unfilled)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from compliance.scenarios.lob.market import Desk

SYM = "USDJPY"

ops = st.lists(
    st.tuples(
        st.sampled_from(("limit", "limit", "limit", "market", "ioc", "fok", "cancel", "modify")),
        st.sampled_from(("buy", "sell")),
        st.integers(min_value=149_990, max_value=150_010),  # price, ticks of 0.001
        st.integers(min_value=1, max_value=20),  # qty, thousands
        st.integers(min_value=0, max_value=3),  # account
        st.integers(min_value=0, max_value=10_000),  # which order to cancel or modify
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(ops)
def test_random_orders_never_cross_and_conserve_quantity(seq):
    desk = Desk(7, hours=0.01, outside=False)
    accounts = [desk.account("retail")[0] for _ in range(4)]
    oids = []
    for kind, side, price, qty, acct, pick in seq:
        if kind in ("cancel", "modify"):
            if oids:
                oid = oids[pick % len(oids)]
                if kind == "cancel":
                    desk.cancel(oid)
                else:
                    desk.modify(oid, price=price / 1000.0, qty=qty * 1000 + desk.filled(oid))
        else:
            oids.append(
                desk.submit(
                    accounts[acct],
                    SYM,
                    side,
                    qty * 1000,
                    price=None if kind == "market" else price / 1000.0,
                    order_type=kind,
                )
            )
        bid, ask = desk.touch(SYM)
        if bid and ask:
            assert bid < ask
    book = desk._books[SYM]
    resting = sum(o.left for q in (*book.bid_q.values(), *book.ask_q.values()) for o in q)
    open_left = sum(desk._orders[o].left for o in oids if desk.is_open(o))
    assert resting == open_left
    fills = [r for r in desk.records if r["type"] == "fill"]
    bought = sum(int(r["qty"]) for r in fills if r["side"] == "buy")
    sold = sum(int(r["qty"]) for r in fills if r["side"] == "sell")
    assert bought == sold  # clients only: every match prints both sides
    for oid in oids:
        order = desk._orders[oid]
        assert order.filled + order.left <= order.qty
        assert order.filled == sum(int(r["qty"]) for r in fills if r["order_id"] == oid)
    for acct in accounts:
        assert desk.position(acct, SYM) == sum(
            int(r["qty"]) * (1 if r["side"] == "buy" else -1) for r in fills if r["account"] == acct
        )
    quotes = [r for r in desk.records if r["type"] == "quote"]
    assert all(float(q["bid"]) < float(q["ask"]) for q in quotes)


live_ops = st.lists(
    st.tuples(
        st.floats(min_value=0.0, max_value=5.0),  # wait, seconds
        st.sampled_from(("limit", "limit", "market", "ioc", "fok", "stop", "cancel", "modify")),
        st.sampled_from(("buy", "sell")),
        st.integers(min_value=-6, max_value=6),  # ticks from the near touch
        st.integers(min_value=1, max_value=400),  # qty, thousands
        st.integers(min_value=0, max_value=10_000),
    ),
    max_size=30,
)


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=1, max_value=9), live_ops)
def test_client_orders_in_the_live_market_keep_the_book_sound(seed, seq):
    """Random client orders among the outside flow: the book is never crossed (checked every
    tenth of a second), published quotes never are, and fills, positions and orders agree."""
    desk = Desk(seed, hours=0.03)
    accounts = [desk.account("active")[0] for _ in range(3)]
    oids = []
    crossed = []

    def watch(d):
        while True:
            for sym in d.symbols:
                bid, ask = d.touch(sym)
                if bid and ask and bid >= ask:
                    crossed.append((d.t, sym, bid, ask))
            yield 0.1

    def client(d):
        tick = d.tick(SYM)
        for i, (wait, kind, side, ticks, qty, pick) in enumerate(seq):
            yield wait
            acct = accounts[i % 3]
            bid, ask = d.touch(SYM)
            near = bid if side == "buy" else ask
            price = near + ticks * tick
            if kind in ("cancel", "modify"):
                if oids:
                    oid = oids[pick % len(oids)]
                    if kind == "cancel":
                        d.cancel(oid)
                    else:
                        d.modify(oid, price=price)
            else:
                oids.append(
                    d.submit(acct, SYM, side, qty * 1000, price=None if kind == "market" else price, order_type=kind)
                )

    desk.spawn(watch(desk))
    desk.spawn(client(desk), at=1.0)
    desk.run()
    assert not crossed
    fills = [r for r in desk.records if r["type"] == "fill"]
    assert all(float(q["bid"]) < float(q["ask"]) for q in desk.records if q["type"] == "quote")
    for acct in accounts:
        assert desk.position(acct, SYM) == sum(
            int(r["qty"]) * (1 if r["side"] == "buy" else -1) for r in fills if r["account"] == acct
        )
    for oid in oids:
        order = desk._orders[oid]
        assert order.filled == sum(int(r["qty"]) for r in fills if r["order_id"] == oid)
        assert order.filled <= order.qty
        assert desk.is_open(oid) == (order.left > 0 and order.live)
    stamps = [r["ts"] for r in desk.records]
    assert stamps == sorted(stamps)
