"""A print of a series is the ticket its orders carried (the 2026-12-05 night round, wip/paint26,
from wip/dpaint25's diagnosis of the limit order book E): on a venue the painter's resting
ticket is exposed to everyone's flow, strangers take a slice of it first, and the owner's other
account meets what is left. The series test sizes each pair of orders by the larger of its two
orders' whole fills (``PaintingTheTapeParams.series_ticket_by_order``), not the volume the two
crossed, and counts one pair of orders once whichever leg filled first
(``series_pair_unordered``). Pure: no database."""

from __future__ import annotations

from tests.compliance.helpers import f, o, q, run

ONLY = {"wash_trade", "painting_the_tape"}
ASK = "1.10010"


def crosses(tickets):
    """Owner P's accounts A and B cross in turn, 90 s apart (the seller alternating): the seller
    rests a sell of ``ticket`` at the ask, the venue's other members take ``taken`` of it a
    second later (their side is not in the firm's records, as on the limit order book), and the
    other account's order meets the rest two seconds after that, at one instant and one price.
    ``tickets``: (ticket, taken) in EURUSD units."""
    rows = [q(0, "1.10000", ASK)]
    for i, (ticket, taken) in enumerate(tickets):
        t = 10.0 + 90 * i
        seller, buyer = ("A", "B") if i % 2 == 0 else ("B", "A")
        rows.append(o(t, "new", f"x{i}", seller, "sell", ticket, ASK, owner="P"))
        if taken:  # the venue's other members: only the painter's side is in the firm's records
            rows.append(f(t + 1.0, f"x{i}", seller, "sell", taken, ASK, owner="P"))
        rest = ticket - taken
        rows.append(o(t + 3.0, "new", f"y{i}", buyer, "buy", rest, ASK, owner="P", otype="ioc"))
        rows.append(f(t + 3.0, f"x{i}", seller, "sell", rest, ASK, owner="P"))
        rows.append(f(t + 3.0, f"y{i}", buyer, "buy", rest, ASK, owner="P"))
    rows.append(q(10.0 + 90 * len(tickets) + 900, "1.10000", ASK))
    return rows


def ids(n):
    return {f"{x}{i}" for x in "xy" for i in range(n)}


def test_a_series_whose_ticket_strangers_took_part_of_is_painting():
    """The minimal true episode (LOB E 92766 CL65960: 9.19, 9.19, 9.19 and 3.15 lots crossed):
    four 3-lot tickets, the fourth's resting sell taken 2 lots by a stranger first, the other
    account meeting the last lot. The tape printed four 3-lot tickets from the painter's orders:
    one painting alert naming the eight orders, no wash. By the volume crossed (the rule before)
    three like sizes among four pairs are not a series: a wash of the same eight orders."""
    tickets = [(300_000, 0)] * 3 + [(300_000, 200_000)]
    alerts = run(crosses(tickets), only=ONLY)
    assert [a["alert_type"] for a in alerts] == ["painting_the_tape"]
    assert set(alerts[0]["order_ids"]) == ids(4)
    before = run(crosses(tickets), only=ONLY, params={"painting_the_tape": {"series_ticket_by_order": False}})
    assert [a["alert_type"] for a in before] == ["wash_trade"]
    assert set(before[0]["order_ids"]) == ids(4)


def test_a_small_fourth_ticket_is_not_the_series():
    """The near-miss: the same three 3-lot crosses and a fourth of a 1-lot ticket (the resting
    order itself 1 lot, no stranger): the tape printed three tickets of one size and another
    trade, fewer than painting's four. A wash of the eight orders, as before."""
    tickets = [(300_000, 0)] * 3 + [(100_000, 0)]
    alerts = run(crosses(tickets), only=ONLY)
    assert [a["alert_type"] for a in alerts] == ["wash_trade"]
    assert set(alerts[0]["order_ids"]) == ids(4)


def test_one_ticket_met_in_two_slices_either_way_round_is_one_print():
    """The pair count (LOB E 15106 CL32637: an 11.04-lot FOK against a resting 11.04, its two
    slices paired with the legs in either order): three 3-lot crosses, the third filled in two
    slices of 1.5 lots, the resting order's fill first in one and the FOK's first in the other.
    Three prints, not four: a wash. Keyed by (first leg, second leg) (the rule before) the one
    ticket counted twice and made four alike: painting."""
    rows = crosses([(300_000, 0)] * 2)
    t = 10.0 + 90 * 2
    rows += [
        o(t, "new", "x2", "A", "sell", 300_000, ASK, owner="P"),
        o(t + 3.0, "new", "y2", "B", "buy", 300_000, ASK, owner="P", otype="fok"),
        f(t + 3.0, "x2", "A", "sell", 150_000, ASK, owner="P"),
        f(t + 3.0, "y2", "B", "buy", 150_000, ASK, owner="P"),
        f(t + 3.0, "y2", "B", "buy", 150_000, ASK, owner="P"),
        f(t + 3.0, "x2", "A", "sell", 150_000, ASK, owner="P"),
    ]
    alerts = run(rows, only=ONLY)
    assert [a["alert_type"] for a in alerts] == ["wash_trade"]
    assert set(alerts[0]["order_ids"]) == ids(3)
    before = run(rows, only=ONLY, params={"painting_the_tape": {"series_pair_unordered": False}})
    assert [a["alert_type"] for a in before] == ["painting_the_tape"]
