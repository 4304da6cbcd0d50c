"""A wash's two orders offset (the 2026-12-05 evening round, wip/wash22): a pair of orders that
never crossed each other is a wash only when each order's whole fill and the whole fills of the
orders it paired with are alike (the smaller at least ``WashTradeParams.order_matched_share``,
0.9, of the larger). The independent book's
legitimate hedges (an owner's 11-lot sale filled in two slices, his other account buying 5.6
lots two seconds later: one slice pairs within the size tolerance) were wash alerts. Two orders
that crossed (one instant, one price, as on a venue) stay a wash whatever else they filled.
Pure: no database."""

from __future__ import annotations

import orjson

from compliance.surveillance.engine import SurveillanceEngine
from compliance.surveillance.records import record_decoder
from compliance.surveillance.state import state_dump
from tests.compliance.helpers import f, o, q, run, surveil_restarted

ONLY = {"wash_trade", "painting_the_tape"}


def _sold_in_slices(slices, bought, *, later=2.0):
    """Owner P's account A sells ``slices`` (one order, every slice filled at once at the bid),
    then account B buys ``bought`` (one order, its slices filled at once) ``later`` seconds
    after, at the ask."""
    rows = [q(0, "1.10000", "1.10010"), o(10.0, "new", "x", "A", "sell", sum(slices), owner="P")]
    rows += [f(10.05, "x", "A", "sell", qty, "1.10000", owner="P") for qty in slices]
    rows += [o(10.0 + later, "new", "y", "B", "buy", sum(bought), owner="P")]
    rows += [f(10.05 + later, "y", "B", "buy", qty, "1.10010", owner="P") for qty in bought]
    rows.append(q(1000.0, "1.10000", "1.10010"))
    return rows


def test_an_order_answered_whole_by_the_other_account_is_a_wash():
    """The minimal true episode: a 2-lot sale filled in two 1-lot slices, the other account
    buying the 2 lots two seconds later, also in two slices (each order wholly paired): a wash
    naming both orders."""
    alerts = run(_sold_in_slices([100_000, 100_000], [100_000, 100_000]), only=ONLY)
    assert [a["alert_type"] for a in alerts] == ["wash_trade"]
    assert sorted(alerts[0]["order_ids"]) == ["x", "y"]
    assert alerts[0]["evidence"]["matched_pairs"] == 2


def test_a_slice_answered_by_a_partial_hedge_is_not_a_wash():
    """The near-miss (the independent book 52616, FAM-9002 GBPUSD): an 11.09-lot sale filled in
    slices of 5.54 and 5.55 lots, the other account buying 5.57 lots two seconds later. One
    slice pairs with the purchase within the 5% size tolerance, but the purchase is half the
    sale: the owner's position moved 5.5 lots, a hedge at another size. No alert; with
    the rule off (``order_matched_share`` None) it was a wash."""
    rows = _sold_in_slices([554_000, 555_000], [557_000])
    assert run(rows, only=ONLY) == []
    before = run(rows, only=ONLY, params={"wash_trade": {"order_matched_share": None}})
    assert [a["alert_type"] for a in before] == ["wash_trade"]


def test_two_orders_that_crossed_stay_a_wash_whatever_else_they_filled():
    """On a venue (the limit order book's one-way wash, seed 15097 XAUUSD): account A's buy of
    73 ounces fills 61 against strangers at once, and B's sell of 12 then meets A's remaining 12
    at one instant and one price. A's order is paired for 12 of 73, but the two orders crossed:
    a trade with no change of beneficial ownership, a wash."""
    rows = [q(0, "2684.70", "2684.90", sym="XAUUSD")]
    rows += [o(10.0, "new", "x", "A", "buy", 73, "2684.82", owner="P", sym="XAUUSD")]
    rows += [f(10.0, "x", "A", "buy", 61, "2684.82", owner="P", sym="XAUUSD")]
    rows += [o(11.0, "new", "y", "B", "sell", 12, "2684.82", owner="P", sym="XAUUSD", otype="fok")]
    rows += [f(11.0, "x", "A", "buy", 12, "2684.82", owner="P", sym="XAUUSD")]
    rows += [f(11.0, "y", "B", "sell", 12, "2684.82", owner="P", sym="XAUUSD")]
    rows.append(q(1000.0, "2684.70", "2684.90", sym="XAUUSD"))
    alerts = run(rows, only=ONLY)
    assert [a["alert_type"] for a in alerts] == ["wash_trade"]
    assert set(alerts[0]["order_ids"]) == {"x", "y"}


def _surveil(rows, restart_at=None):
    return surveil_restarted(rows, only=ONLY, restart_at=restart_at)


def test_the_orders_filled_volume_survives_a_restart():
    """The stage restarts after the pair (the run open); the sale's third slice comes after the
    restart. The restored run still knows the sale's filled volume and keeps counting it: a
    3-lot sale against a 2-lot purchase (0.67), no wash, as without a restart.
    The snapshot holds the leg orders' volumes."""
    rows = [q(0, "1.10000", "1.10010"), o(10.0, "new", "x", "A", "sell", 300_000, owner="P")]
    rows += [f(10.05, "x", "A", "sell", 200_000, "1.10000", owner="P")]
    rows += [o(12.0, "new", "y", "B", "buy", 200_000, owner="P")]
    rows += [f(12.05, "y", "B", "buy", 200_000, "1.10010", owner="P")]
    rows += [f(15.0, "x", "A", "sell", 100_000, "1.10000", owner="P")]
    rows.append(q(1000.0, "1.10000", "1.10010"))
    cut = next(i for i, r in enumerate(sorted(rows, key=lambda r: r["ts"])) if r["ts"] == rows[-2]["ts"])
    assert _surveil(rows) == []
    assert _surveil(rows, restart_at=cut) == []
    engine = SurveillanceEngine(only=ONLY)
    for row in sorted(rows, key=lambda r: r["ts"])[:cut]:
        engine.process(record_decoder.decode(orjson.dumps(row)))
    doc = orjson.loads(state_dump(engine))
    (wash_runs,) = [inst["state"]["runs"] for inst in doc["detectors"]["wash_trade"]["instances"].values()]
    assert wash_runs[0]["filled"] == {"x": 200_000.0, "y": 200_000.0}
    # without the third slice the purchase answers the whole sale: a wash
    assert [a["alert_type"] for a in _surveil(rows[:-2] + rows[-1:])] == ["wash_trade"]


# A colluding pair on a venue (wip/wash22): one leg rests, the other meets it.


def _cross(t, tag, resting, hitting, side_of_resting, qty, price="1.10010"):
    """``resting`` (its own owner) rests a limit at ``price`` (at the ask: not marketable for a
    sell, so passive), ``hitting`` meets it with an IOC one second later: the two fills at one
    instant and one price."""
    other = "buy" if side_of_resting == "sell" else "sell"
    r_owner, h_owner = f"own-{resting}", f"own-{hitting}"
    limit = price if side_of_resting == "sell" else "1.10000"
    return [
        o(t, "new", f"r{tag}", resting, side_of_resting, qty, limit, owner=r_owner),
        o(t + 1.0, "new", f"h{tag}", hitting, other, qty, limit, owner=h_owner, otype="ioc"),
        f(t + 1.0, f"r{tag}", resting, side_of_resting, qty, limit, owner=r_owner),
        f(t + 1.0, f"h{tag}", hitting, other, qty, limit, owner=h_owner),
    ]


def test_a_position_handed_over_and_back_through_resting_orders_is_a_colluding_wash():
    """The minimal true episode (the limit order book's colluders, seed 91127 GBPUSD): X rests
    a 2-lot sell that Y's IOC meets; 100 s later Y rests a 2-lot sell that X's IOC meets (X has
    its 2 lots back, Y none). Two distinct owners, one leg resting each time: a colluding wash
    naming the four orders. The rule before (both legs aggressive only) saw no pair."""
    rows = [q(0, "1.10000", "1.10010")]
    rows += _cross(10.0, "1", "X", "Y", "sell", 200_000)
    rows += _cross(110.0, "2", "Y", "X", "sell", 200_000)
    rows.append(q(1000.0, "1.10000", "1.10010"))
    alerts = run(rows, only=ONLY)
    assert [a["alert_type"] for a in alerts] == ["wash_trade"]
    assert set(alerts[0]["order_ids"]) == {"r1", "h1", "r2", "h2"}
    assert alerts[0]["evidence"]["collusive"] is True
    assert run(rows, only=ONLY, params={"wash_trade": {"collusion_crosses": False}}) == []


def test_a_client_meeting_a_resting_quote_both_ways_at_other_sizes_is_not_collusion():
    """The near-miss (seed 91127 XAUUSD: a busy market maker's resting quotes met by a client,
    1.75 then 0.92 lots): the two crossed both ways, but nothing was handed back whole. No
    alert."""
    rows = [q(0, "1.10000", "1.10010")]
    rows += _cross(10.0, "1", "M", "C", "sell", 175_000)
    rows += _cross(210.0, "2", "M", "C", "buy", 92_000)
    rows.append(q(1000.0, "1.10000", "1.10010"))
    assert run(rows, only=ONLY) == []
