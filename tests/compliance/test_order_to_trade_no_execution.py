"""Order-to-trade (RTS 9), a remainder with no execution (2026-12-05 night, wip/qs28).

A breach must hold without the ``sustained_excluding_slots`` busiest slots. With no transaction
the count ratio is the number of orders; the volume ratio had no denominator and was read as no
breach. An account whose only fills fell in its busiest minutes then escaped the volume test
however many orders the rest of the window held. The volume ratio there is now read as the count
ratio is: the rest of the window's orders, over ``max_count_ratio`` with nothing executed. On
the limit order book 62562 a ``modify_chase`` (201 orders, 2 small fills, a volume ratio of
2,037) was missed so.
"""

from __future__ import annotations

from tests.compliance.helpers import f, o, q, run

ONLY = {"excessive_order_to_trade"}


def _chase(per_minute: int, minutes: int = 20):
    """Account C rests a bid three spreads behind the touch and re-prices it ``per_minute``
    times a minute; in minutes 5 and 8 it also sends one small IOC that fills and nine more
    modifications (its two busiest minutes, the only ones with an execution)."""
    rows = [q(0, "1.10000", "1.10010"), o(1, "new", "c0", "C", "buy", 100_000, "1.09970")]
    for m in range(minutes):
        for j in range(per_minute):
            rows.append(o(60 * m + 2 + j * 50 / per_minute, "modify", "c0", "C", "buy", 100_000, "1.09970"))
        if m in (5, 8):
            rows.append(o(60 * m + 55, "new", f"i{m}", "C", "buy", 10_000, "1.10010", otype="ioc"))
            rows.append(f(60 * m + 55.01, f"i{m}", "C", "buy", 10_000, "1.10010"))
            for j in range(9):
                rows.append(o(60 * m + 56 + j * 0.3, "modify", "c0", "C", "buy", 100_000, "1.09970"))
    rows.append(q(1300, "1.10000", "1.10010"))
    return rows


def test_orders_with_nothing_executed_outside_the_busiest_minutes_breach_by_volume():
    (alert,) = run(_chase(9), only=ONLY)
    ev = alert["evidence"]
    assert ev["transactions"] == 2 and ev["count_ratio"] <= ev["max_count_ratio"]
    assert ev["breached"] == ["volume"] and ev["volume_ratio"] > ev["max_volume_ratio"]
    # the rule off: no execution outside the busiest minutes, no volume breach there
    assert run(_chase(9), only=ONLY, params={"excessive_order_to_trade": {"no_execution_volume_as_count": False}}) == []


def test_a_remainder_under_the_bar_of_orders_is_not_sustained():
    # 5 a minute: 76 orders outside the five busiest minutes (<= 100), the volume ratio as high
    assert run(_chase(5), only=ONLY) == []
