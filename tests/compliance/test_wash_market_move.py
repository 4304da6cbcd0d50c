"""Wash trades whose first leg moves the market (the 2026-12-05 early-morning round): the price
test reads the round trip's cost against the mid each leg met, and a colluding pair's exclusive
share is counted by orders, not by the slices the broker filled them in (pure: no database)."""

from __future__ import annotations

import orjson
import pytest

from compliance.surveillance.records import record_decoder
from compliance.surveillance.state import STATE_VERSION
from tests.compliance.helpers import f, market, o, q, restarted_before, run


def moved_market_rows(buy_qty: int = 3_000_000):
    """An owner sells 3m at the bid; the sale takes the market down 7 bps; 10 s later the
    owner's other account buys ``buy_qty`` at the new ask (1.09940)."""
    return [
        q(0, "1.10000", "1.10010"),
        *market(1, "a1", "A", "sell", 3_000_000, "1.09998", owner="X"),
        q(1.5, "1.09930", "1.09940"),
        *market(11, "b1", "B", "buy", buy_qty, "1.09941", owner="X"),
        q(60, "1.09930", "1.09940"),
    ]


def test_wash_whose_first_leg_moved_the_market_is_a_wash():
    """The legs print 5.2 bps apart (over the 3-bps tolerance) only because the market fell
    between them: each leg traded at its own touch, and the owner's position did not change."""
    alerts = run(moved_market_rows(), only={"wash_trade"})
    assert len(alerts) == 1
    a = alerts[0]
    assert sorted(a["order_ids"]) == ["a1", "b1"] and a["owner"] == "X"
    # What is reported is the round trip's cost against the mids (0.64 + 0.55 bps), not 5.2.
    assert a["evidence"]["max_price_gap_bps"] == pytest.approx(1.18, abs=0.02)


def test_hedge_after_the_market_moved_is_no_wash():
    """The same fall, the other account buying 60% of the sale back: a hedge of part of the
    position, not a round trip (the size test, unchanged, still tells them apart)."""
    assert run(moved_market_rows(1_800_000), only={"wash_trade"}) == []


def test_the_mid_a_waiting_leg_met_survives_a_restart():
    """The first leg's mid is kept in the snapshot: a restart between the legs still pairs them."""
    rows = sorted(moved_market_rows(), key=lambda r: r["ts"])
    doc, engine, rest = restarted_before(rows, "b1", only={"wash_trade"})
    assert doc["version"] == STATE_VERSION >= 10
    for row in rest:
        engine.process(record_decoder.decode(orjson.dumps(row)))
    alerts = [a.as_dict() for a in engine.finish()]
    assert [sorted(a["order_ids"]) for a in alerts] == [["a1", "b1"]]


def sliced_crosses(other_orders: int, other_slices: int):
    """Two accounts of distinct owners crossing twice with large orders that the broker fills
    in slices of different sizes (four of 500k against 500k, 500k and 1m: two slices pair),
    and each account's other aggressive buys meanwhile, each filled in ``other_slices``."""
    rows = [q(0, "1.10000", "1.10010")]
    for i, t in enumerate((0.0, 120.0)):
        rows += [
            o(t, "new", f"c{i}", "C1", "buy", 2_000_000, owner="P"),
            o(t + 2, "new", f"d{i}", "C2", "sell", 2_000_000, owner="Q"),
        ]
        rows += [f(t + 0.05 + 0.001 * k, f"c{i}", "C1", "buy", 500_000, "1.10010", owner="P") for k in range(4)]
        rows += [
            f(t + 2.05 + 0.001 * k, f"d{i}", "C2", "sell", qty, "1.10000", owner="Q")
            for k, qty in enumerate((500_000, 500_000, 1_000_000))
        ]
    for j in range(other_orders):
        t = 30.0 + 20 * j
        for acct, owner in (("C1", "P"), ("C2", "Q")):  # both buying: they do not cross each other
            side, price = "buy", "1.10010"
            oid = f"{acct}-x{j}"
            rows.append(o(t, "new", oid, acct, side, 900_000, owner=owner))
            rows += [
                f(t + 0.05 + 0.001 * k, oid, acct, side, 900_000 // other_slices, price, owner=owner)
                for k in range(other_slices)
            ]
    return rows


def test_colluding_pair_share_is_counted_by_orders_not_slices():
    """Their two crosses are 4 of their 6 aggressive orders (one other order each, filled in
    three slices): exclusive. Counted by fills it was 8 paired slices of 20 (0.4): missed."""
    alerts = run(sliced_crosses(other_orders=1, other_slices=3), only={"wash_trade"})
    assert len(alerts) == 1
    assert alerts[0]["owner"] == "P+Q" and sorted(set(alerts[0]["order_ids"])) == ["c0", "c1", "d0", "d1"]
    assert alerts[0]["evidence"]["collusion_exclusive_share"] == pytest.approx(4 / 6, abs=1e-4)


def test_busy_accounts_crossing_twice_are_still_no_colluding_pair():
    """Three other orders each, filled whole: the two crosses are 4 of 10 orders (0.4 < 0.5)."""
    assert run(sliced_crosses(other_orders=3, other_slices=1), only={"wash_trade"}) == []


def parallel_round_trips(second_side: str):
    """An owner's two accounts both sell 60k within a second, then buy 60k back 7-8 s later
    (``second_side`` is what account B does first: "sell" is the same way as A)."""
    first_b = "1.10000" if second_side == "sell" else "1.10010"
    back_b = "buy" if second_side == "sell" else "sell"
    return [
        q(0, "1.10000", "1.10010"),
        *market(1.0, "a1", "A", "sell", 60_000, "1.10000", owner="X"),
        *market(1.7, "b1", "B", second_side, 60_000, first_b, owner="X"),
        *market(8.0, "a2", "A", "buy", 60_000, "1.10010", owner="X"),
        *market(9.2, "b2", "B", back_b, 60_000, "1.10010" if back_b == "buy" else "1.10000", owner="X"),
    ]


def test_two_accounts_each_turning_their_own_trade_round_is_no_wash():
    """Both accounts sold together and bought back together: each reversed its own trade (two
    scalps in parallel), neither took the other's side, so there is no trade between them."""
    assert run(parallel_round_trips("sell"), only={"wash_trade", "painting_the_tape"}) == []


def test_two_accounts_on_opposite_sides_then_back_is_a_wash():
    """A sells and B buys, then A buys and B sells: the owner's accounts on opposite sides of
    each other twice (the position passed to B and back): a wash, as before."""
    alerts = run(parallel_round_trips("buy"), only={"wash_trade"})
    assert len(alerts) == 1 and sorted(alerts[0]["order_ids"]) == ["a1", "a2", "b1", "b2"]
