"""A colluding pair printing to each other both ways is painting, hand-back or not (the
2026-12-05 late-night round, wip/lob30, ``PaintingTheTapeParams.colluders_cross_both_ways``).
The limit order book's colluders (seed 54491 XAUUSD, CL74383+CL15681): five crosses between two
owners' accounts, one order resting and the other's IOC meeting it, at a painter's drawn sizes
(44, 47, 38, 26, 34), each account buying from the other: no two of them one size within 5%, so
the hand-back test (wash22's, for a market maker and its customer meeting twice) left the series
unreported. Pure: no database."""

from __future__ import annotations

from tests.compliance.helpers import cross, cross_book, run

ONLY = {"wash_trade", "painting_the_tape"}
BEFORE = {"painting_the_tape": {"colluders_cross_both_ways": False}}


SERIES = [  # (resting account, hitting account, resting side, size): X sells, buys, sells; Y sells, buys
    ("X", "Y", "sell", 44_000),
    ("X", "Y", "buy", 47_000),
    ("X", "Y", "sell", 38_000),
    ("Y", "X", "sell", 26_000),
    ("Y", "X", "buy", 34_000),
]


def test_colluders_crossing_both_ways_at_drawn_sizes_are_painting():
    """The minimal true episode: five crosses both ways, 30 s apart, no size handed back whole:
    painting naming the ten orders. The rule before: no alert."""
    rows = cross_book(*(cross(10.0 + 30 * i, str(i), *leg) for i, leg in enumerate(SERIES)))
    alerts = run(rows, only=ONLY)
    assert [a["alert_type"] for a in alerts] == ["painting_the_tape"]
    assert len(alerts[0]["order_ids"]) == 10 and alerts[0]["evidence"]["collusive"] is True
    assert run(rows, only=ONLY, params=BEFORE) == []


def test_one_account_meeting_the_other_the_same_way_is_not_painting():
    """The near-miss: Y buys from X's resting sells five times (a client meeting a market
    maker's quote, always the same way): crosses, but never both ways. No alert."""
    rows = cross_book(*(cross(10.0 + 30 * i, str(i), "X", "Y", "sell", qty) for i, (*_, qty) in enumerate(SERIES)))
    assert run(rows, only=ONLY) == []


def test_three_crosses_both_ways_are_under_paintings_count():
    """The near-miss by count: three crosses both ways are fewer than ``min_pairs`` (4). No alert."""
    rows = cross_book(*(cross(10.0 + 30 * i, str(i), *leg) for i, leg in enumerate(SERIES[:3])))
    assert run(rows, only=ONLY) == []
