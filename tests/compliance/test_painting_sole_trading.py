"""Accounts that trade nothing else print to each other (the 2026-12-05 23:00 round, wip/paint32,
``PaintingTheTapeParams.sole_trading_fewer_pairs``). Our held-out generator's painters print 3-13
times; a colluding pair's three small crosses were neither painting (under ``min_pairs``, 4) nor a
wash (no pair of a lot or more), and one owner's three were a wash. A run whose accounts' every
aggressive order in the symbol, from its first pair on, was a leg of its pairs is painting one
pair short of the count; accounts that trade besides keep the approved count (a few small
crosses among other trading are chance). Pure: no database."""

from __future__ import annotations

from tests.compliance.helpers import market, q, run, surveil_restarted

ONLY = {"wash_trade", "painting_the_tape"}
BEFORE = {"painting_the_tape": {"sole_trading_fewer_pairs": None}}
SIZES = (14_000, 19_000, 9_000)  # held-out 81128 USDJPY, CLDA + CLDB


def three_prints(owner_b: str = "Q", *, besides: bool = False, sizes=SIZES):
    """A (owner P) and B (``owner_b``) trade small sizes to each other three times, 40 s apart,
    both at the market, the second leg 0.4 s after the first, A selling, buying, selling.
    ``besides``: A also buys 250,000 on its own between the second and the third print."""
    rows = [q(0, "1.10000", "1.10010")]
    for i, qty in enumerate(sizes):
        t = 10.0 + 40 * i
        side, other = ("sell", "buy") if i % 2 == 0 else ("buy", "sell")
        price, other_price = ("1.10000", "1.10010") if side == "sell" else ("1.10010", "1.10000")
        rows += market(t, f"a{i}", "A", side, qty, price, owner="P")
        rows += market(t + 0.4, f"b{i}", "B", other, qty, other_price, owner=owner_b)
    if besides:
        rows += market(70.0, "own", "A", "buy", 250_000, "1.10010", owner="P")
    rows.append(q(900, "1.10000", "1.10010"))
    return rows


def test_colluders_printing_three_times_and_nothing_else_are_painting():
    """The minimal true episode: two owners' accounts whose only trades in the symbol are three
    small crosses with each other: painting naming the six orders. The rule before: no alert."""
    alerts = run(three_prints(), only=ONLY)
    assert [a["alert_type"] for a in alerts] == ["painting_the_tape"]
    assert set(alerts[0]["order_ids"]) == {f"{x}{i}" for x in "ab" for i in range(3)}
    assert alerts[0]["evidence"]["collusive"] is True and alerts[0]["evidence"]["sole_trading"] is True
    assert run(three_prints(), only=ONLY, params=BEFORE) == []


def test_colluders_trading_besides_keep_paintings_count():
    """The near-miss: the same three crosses, but A also trades on its own in the symbol between
    them: three small crosses among other trading are under painting's four. No alert."""
    assert run(three_prints(besides=True), only=ONLY) == []


def test_one_owners_three_prints_are_painting_not_a_wash():
    """One owner's two accounts printing three small trades to each other and nothing else:
    painting (before: a wash, three pairs being under painting's count); with a trade besides,
    the count governs and they stay a wash."""
    assert [a["alert_type"] for a in run(three_prints("P"), only=ONLY)] == ["painting_the_tape"]
    assert [a["alert_type"] for a in run(three_prints("P"), only=ONLY, params=BEFORE)] == ["wash_trade"]
    assert [a["alert_type"] for a in run(three_prints("P", besides=True), only=ONLY)] == ["wash_trade"]


def test_one_ticket_handed_back_and_forth_stays_a_wash():
    """The near-miss by kind: one owner's accounts pass one 34,000 ticket back and forth three
    times and trade nothing else (the limit order book's ``round_trip`` wash, seed 29191): the
    position is handed back whole, a wash's round trips, not painting."""
    rows = three_prints("P", sizes=(34_000, 34_000, 34_000))
    assert [a["alert_type"] for a in run(rows, only=ONLY)] == ["wash_trade"]


def test_the_verdict_survives_a_restart():
    """The run's mark (``_Run.sole_at``) is in the snapshot: restored before the record that
    closes the run, the wash detector still leaves its three prints to painting."""
    rows = three_prints("P")
    alerts = surveil_restarted(rows, only=ONLY, restart_at=len(rows) - 1)
    assert [a["alert_type"] for a in alerts] == ["painting_the_tape"]
