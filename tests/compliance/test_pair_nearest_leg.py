"""Which earlier fill a leg answers (the 2026-12-05 late-morning round, wip/paint17): when a
stranger traded the same size the same way a moment before the colluder's first leg, the
colluder's second leg is paired with the first leg just before it, not with the stranger's older
trade (pure: no database)."""

from __future__ import annotations

from tests.compliance.helpers import market, q, run


def painting_rows(crosses: int = 4, *, stranger: bool = True):
    """Accounts A (owner P) and B (owner Q) cross small sizes ``crosses`` times, a minute or so
    apart; before the first cross, stranger S (owner R) bought the same 18,000 1 s before A did."""
    rows = [q(0, "1.10000", "1.10010")]
    if stranger:
        rows += market(9.0, "s1", "S", "buy", 18_000, "1.10010", owner="R")
    for i in range(crosses):
        t = 10.0 + 60 * i
        side, other = ("buy", "sell") if i % 2 == 0 else ("sell", "buy")
        price, other_price = ("1.10010", "1.10000") if side == "buy" else ("1.10000", "1.10010")
        qty = (18_000, 8_000, 41_000, 35_000, 12_000)[i]
        rows += market(t, f"a{i}", "A", side, qty, price, owner="P")
        rows += market(t + 1.0, f"b{i}", "B", other, qty, other_price, owner="Q")
    rows.append(q(900, "1.10000", "1.10010"))
    return rows


def test_the_colluders_second_leg_answers_the_first_leg_just_before_it():
    """B's sale 1 s after A's buy is A's leg, not the stranger's buy 2 s before it: four small
    crosses of the same two accounts, painting the tape, naming neither of the stranger's orders."""
    alerts = run(painting_rows(), only={"wash_trade", "painting_the_tape"})
    assert [a["alert_type"] for a in alerts] == ["painting_the_tape"]
    ids = set(alerts[0]["order_ids"])
    assert ids == {f"{x}{i}" for x in "ab" for i in range(4)}
    assert alerts[0]["evidence"]["accounts"] == ["A", "B"]


def test_the_oldest_leg_rule_lets_the_stranger_take_the_first_cross():
    """The rule before (``pair_nearest`` off): B's first sale pairs with the stranger's older buy,
    the colluders' run keeps three crosses, under painting's four: no alert."""
    params = {"wash_trade": {"pair_nearest": False}, "painting_the_tape": {"sole_trading_fewer_pairs": None}}
    assert run(painting_rows(), only={"wash_trade", "painting_the_tape"}, params=params) == []


def test_three_crosses_and_a_stranger_are_no_painting():
    """The near-miss on the approved count alone: three small crosses (under painting's four) with
    the stranger's trade before them; the nearer leg does not make a painting of them, and no
    stranger is named."""
    params = {"painting_the_tape": {"sole_trading_fewer_pairs": None}}  # the approved count alone
    assert run(painting_rows(3), only={"wash_trade", "painting_the_tape"}, params=params) == []


def test_three_crosses_of_accounts_that_trade_nothing_else_are_painting_and_name_no_stranger():
    """By default (wip/paint32's ``sole_trading_fewer_pairs``) A and B, whose every aggressive
    order is a leg of their crosses, paint at three; the stranger's earlier buy is not one of them."""
    alerts = run(painting_rows(3), only={"wash_trade", "painting_the_tape"})
    assert [a["alert_type"] for a in alerts] == ["painting_the_tape"]
    assert set(alerts[0]["order_ids"]) == {f"{x}{i}" for x in "ab" for i in range(3)}
    assert alerts[0]["evidence"]["accounts"] == ["A", "B"]
