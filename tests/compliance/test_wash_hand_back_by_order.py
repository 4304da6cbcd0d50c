"""A colluding round trip's hand-back read on the tickets its orders carried, 2026-12-06 noon
(wip/lob45, docs/surveillance-rounds.md 12:00 round; ``WashTradeParams.hand_back_by_order``). On
a venue the colluder's resting order that takes the ticket back is exposed to everyone's flow: a
stranger takes a slice first and the partner's IOC meets the rest. The crossed volumes then
differ (2.30 against 1.54 lots), but the resting order carried the whole ticket back. Built
**off** on every market (it found no more washes on the CONFIRMATION order books). Pure: no
database."""

from __future__ import annotations

from tests.compliance.helpers import cross, cross_book, f, o, run

ONLY = {"wash_trade", "painting_the_tape"}
ON = {"wash_trade": {"hand_back_by_order": True}}


def ticket_back(t, tag, resting, hitting, side_of_resting, qty, stranger_qty, stranger="Z"):
    """``resting`` rests a ``qty`` limit; a stranger's IOC takes ``stranger_qty`` of it half a
    second later; ``hitting`` (the partner) meets the rest with an IOC one second after that."""
    other = "buy" if side_of_resting == "sell" else "sell"
    limit = "1.10010" if side_of_resting == "sell" else "1.10000"
    r_owner, h_owner = f"own-{resting}", f"own-{hitting}"
    rest = qty - stranger_qty
    return [
        o(t, "new", f"r{tag}", resting, side_of_resting, qty, limit, owner=r_owner),
        o(t + 0.5, "new", f"z{tag}", stranger, other, stranger_qty, limit, owner=f"own-{stranger}", otype="ioc"),
        f(t + 0.5, f"r{tag}", resting, side_of_resting, stranger_qty, limit, owner=r_owner),
        f(t + 0.5, f"z{tag}", stranger, other, stranger_qty, limit, owner=f"own-{stranger}"),
        o(t + 1.5, "new", f"h{tag}", hitting, other, rest, limit, owner=h_owner, otype="ioc"),
        f(t + 1.5, f"r{tag}", resting, side_of_resting, rest, limit, owner=r_owner),
        f(t + 1.5, f"h{tag}", hitting, other, rest, limit, owner=h_owner),
    ]


def test_a_ticket_taken_back_by_a_resting_order_strangers_sliced_is_a_colluding_wash():
    # X sells Y 2.3 lots by a cross; 190 s later X's resting 2.3-lot buy takes it back, a
    # stranger selling 0.76 of it first and Y the remaining 1.54
    rows = cross_book(
        cross(10.0, "1", "X", "Y", "sell", 230_000), ticket_back(200.0, "2", "X", "Y", "buy", 230_000, 76_000)
    )
    alerts = run(rows, only=ONLY, params=ON)
    assert [a["alert_type"] for a in alerts] == ["wash_trade"]
    assert set(alerts[0]["order_ids"]) == {"r1", "h1", "r2", "h2"}
    assert alerts[0]["evidence"]["collusive"] is True
    # the crossed volumes alone (the default on every market: the rule is built off, it found
    # no more washes on the CONFIRMATION order books): 2.30 against 1.54 lots, no alert
    assert run(rows, only=ONLY) == []
    assert run(rows, only=ONLY, market="order_book") == []


def test_near_miss_a_large_quote_nibbled_by_small_trades_is_not_a_ticket():
    # X's large resting quotes (10 lots each way), each filled whole by two strangers, of which Y
    # takes 0.03 lot and later gives back 0.04: the quotes' whole fills are not what Y traded
    rows = cross_book(
        ticket_back(10.0, "1", "X", "Y", "sell", 1_000_000, 997_000, stranger="Z1"),
        ticket_back(200.0, "2", "X", "Y", "buy", 1_000_000, 996_000, stranger="Z2"),
    )
    assert run(rows, only=ONLY, params=ON) == []


def test_near_miss_crossed_one_way_twice_is_not_handed_back():
    # Y buys from X's resting sells twice, the second sliced by a stranger first: nothing handed back
    rows = cross_book(
        cross(10.0, "1", "X", "Y", "sell", 230_000), ticket_back(200.0, "2", "X", "Y", "sell", 230_000, 76_000)
    )
    assert run(rows, only=ONLY, params=ON) == []
