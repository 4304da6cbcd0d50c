"""A colluding round trip by crosses is a wash at any size (the 2026-12-05 night round,
wip/wash28): a colluding run needs one pair of orders of a lot or more, unless its crosses
themselves hand the position back (``WashTradeParams.collusion_cross_back_any_size``). The limit
order book's colluders (seed 62562 GBPUSD): account X rests a 0.64-lot sell that Y's IOC meets at
one instant and one price, three minutes later X rests a 0.64-lot buy that Y's IOC sells into:
X and Y traded with each other both ways and neither holds anything. Pure: no database."""

from __future__ import annotations

from tests.compliance.helpers import cross, cross_book, f, o, q, run

ONLY = {"wash_trade", "painting_the_tape"}


def test_a_small_position_crossed_over_and_back_is_a_colluding_wash():
    """The minimal true episode: 0.64 lot crossed from X to Y and, 190 s later, crossed back at
    the same size: a colluding wash naming the four orders. The rule before (one pair of a lot
    or more) left it to painting, whose count (four) it never reaches: no alert."""
    rows = cross_book(cross(10.0, "1", "X", "Y", "sell", 64_000), cross(200.0, "2", "X", "Y", "buy", 64_000))
    alerts = run(rows, only=ONLY)
    assert [a["alert_type"] for a in alerts] == ["wash_trade"]
    assert set(alerts[0]["order_ids"]) == {"r1", "h1", "r2", "h2"}
    assert alerts[0]["evidence"]["collusive"] is True
    assert run(rows, only=ONLY, params={"wash_trade": {"collusion_cross_back_any_size": False}}) == []


def test_small_crosses_that_do_not_hand_anything_back_are_not_a_wash():
    """The near-miss: Y buys 0.64 lot from X's resting sell twice (a client meeting a market
    maker's quote the same way): crosses, but nothing handed back. No alert."""
    rows = cross_book(cross(10.0, "1", "X", "Y", "sell", 64_000), cross(200.0, "2", "X", "Y", "sell", 64_000))
    assert run(rows, only=ONLY) == []


def test_small_trades_both_ways_that_never_met_stay_chance():
    """The near-miss at a broker: X and Y each send a 0.64-lot market order the other way
    seconds apart, then both turn round (both legs aggressive, no cross between them): the
    size rule stands, two strangers' small trades the other way are chance. No alert."""
    rows = [q(0, "1.10000", "1.10010")]
    for t, tag, side in ((10.0, "1", "sell"), (200.0, "2", "buy")):
        other = "buy" if side == "sell" else "sell"
        px, opx = ("1.10000", "1.10010") if side == "sell" else ("1.10010", "1.10000")
        rows += [o(t, "new", f"x{tag}", "X", side, 64_000), f(t + 0.05, f"x{tag}", "X", side, 64_000, px)]
        rows += [o(t + 2, "new", f"y{tag}", "Y", other, 64_000), f(t + 2.05, f"y{tag}", "Y", other, 64_000, opx)]
    rows.append(q(1000.0, "1.10000", "1.10010"))
    assert run(rows, only=ONLY) == []
