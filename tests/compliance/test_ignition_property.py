"""Momentum ignition, property-based (hypothesis): whatever small trading the account does
between its ignition burst and the reversal (trades either way, new chains of its own), the
burst is found exactly once, with its reversal, and a save-and-restore anywhere (the chains,
the parked bursts waiting for their reversal) changes no alert. Small trades alone, with no
reversal, are never ignition."""

from __future__ import annotations

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.compliance.helpers import market, q, surveil_restarted


def _rows(between: list[tuple[float, str, int]], reverse_at: float | None):
    rows = [q(0, "1.10000", "1.10010")]
    for i in range(5):  # five buys, 4 s apart, that move the mid 14 pips
        rows += market(4 * i, f"m{i}", "M", "buy", 1_000_000, f"1.100{10 + 8 * i}")
        rows.append(q(4 * i + 0.5, f"1.100{10 + 8 * i}", f"1.100{20 + 8 * i}"))
    for i, (t, side, thousands) in enumerate(sorted(between)):  # the account's other trading
        rows += market(20 + t, f"x{i}", "M", side, thousands * 1_000, "1.10045")
    if reverse_at is not None:
        rows += market(20 + reverse_at, "rev", "M", "sell", 3_000_000, "1.10040")
    return sorted(rows, key=lambda r: r["ts"])


def _surveil(rows, restart_at=None):
    return surveil_restarted(rows, only={"momentum_ignition"}, restart_at=restart_at)


between_st = st.lists(
    st.tuples(st.floats(1, 200, allow_nan=False), st.sampled_from(["buy", "sell"]), st.integers(1, 100)),
    max_size=6,
    unique_by=lambda b: round(b[0], 3),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(between=between_st, reverse_at=st.floats(205, 270, allow_nan=False), cut=st.floats(0, 1))
def test_ignition_is_found_once_whatever_the_account_trades_in_between(between, reverse_at, cut):
    rows = _rows(between, reverse_at)
    alerts = _surveil(rows)
    assert len(alerts) == 1
    ev = alerts[0]["evidence"]
    assert ev["burst_side"] == "buy" and ev["burst_orders"] >= 5 and "rev" in ev["reversal_order_ids"]
    assert set(alerts[0]["order_ids"]) >= {f"m{i}" for i in range(5)} | {"rev"}
    restarted = _surveil(rows, restart_at=int(cut * (len(rows) - 1)) + 1)
    assert orjson.dumps(restarted) == orjson.dumps(alerts)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(between=between_st)
def test_small_trades_after_a_held_burst_are_no_ignition(between):
    """Six small trades of at most 100,000 are under half the 5,000,000 burst: no reversal."""
    assert _surveil(_rows(between, None)) == []
