"""Marking the close, property-based (hypothesis): whatever the account's fills before a print,
the alert names exactly its push (the account's net flow one way that ends at the print, from
where that flow was largest: a smaller trade the other way inside it does not end it) and never
an order before it; and a save-and-restore anywhere (the fills kept for the look-back,
the pushes waiting after the print) changes no alert."""

from __future__ import annotations

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compliance.surveillance.engine import SurveillanceEngine
from compliance.surveillance.records import record_decoder
from compliance.surveillance.state import state_dump, state_load
from tests.compliance.helpers import close, market, q

CLOSE_T = 3600.0


def _rows(held: int, fills: list[tuple[float, str, int]], carry_on: bool):
    rows = [q(t, f"{1.1 + 0.00001 * (t % 7):.5f}", f"{1.1001 + 0.00001 * (t % 7):.5f}") for t in range(0, 3400, 30)]
    rows += market(100, "h", "C", "buy" if held > 0 else "sell", abs(held), "1.10010")
    price = 1.10010
    for i, (dt, side, lots) in enumerate(sorted(fills)):
        t = CLOSE_T - 300 + dt
        price += 0.00003 if side == "buy" else -0.00003
        rows += market(t, f"p{i}", "C", side, lots * 100_000, f"{price:.5f}")
        rows.append(q(t + 0.5, f"{price - 0.00005:.5f}", f"{price + 0.00005:.5f}"))
    rows.append(close(CLOSE_T, f"{price:.5f}"))
    if carry_on:
        rows += market(CLOSE_T + 60, "after", "C", "buy", 40 * 100_000, "1.10100")
    rows.append(q(CLOSE_T + 400, f"{price - 0.0002:.5f}", f"{price - 0.0001:.5f}"))
    return sorted(rows, key=lambda r: r["ts"])


def _surveil(records, restart_at=None, gate=True):
    """The FX profile (``otc``), its learned gate on (the default) or the hand rules alone."""
    params = None if gate else {"marking_the_close": {"close_gate": False}}
    engine = SurveillanceEngine(only={"marking_the_close"}, params=params)
    out = []
    for i, rec in enumerate(records):
        if restart_at is not None and i == restart_at:
            data = state_dump(engine)
            engine = SurveillanceEngine(only={"marking_the_close"}, params=params)
            state_load(engine, data)
        engine.process(rec)
        out += [a.as_dict() for a in engine.take_alerts()]
    return out + [a.as_dict() for a in engine.finish()]


fills_st = st.lists(
    st.tuples(st.floats(1, 295, allow_nan=False), st.sampled_from(["buy", "buy", "buy", "sell"]), st.integers(1, 30)),
    min_size=1,
    max_size=8,
    unique_by=lambda f: round(f[0], 3),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    held=st.sampled_from([-2_000_000, 500_000, 3_000_000]),
    fills=fills_st,
    carry_on=st.booleans(),
    cut=st.floats(0.0, 1.0),
    gate=st.booleans(),
)
def test_the_alert_names_the_push_only_and_a_restart_changes_nothing(held, fills, carry_on, cut, gate):
    rows = _rows(held, fills, carry_on)
    records = [record_decoder.decode(orjson.dumps(r)) for r in rows]
    whole = _surveil(records, gate=gate)
    assert _surveil(records, restart_at=int(cut * (len(records) - 1)), gate=gate) == whole

    ordered = sorted(fills)
    names = [f"p{i}" for i in range(len(ordered))]
    assert len(whole) <= 1
    if whole:
        (alert,) = whole
        ev = alert["evidence"]
        direction = "buy" if ev["net_aggressive_qty_in_window"] > 0 else "sell"
        # the push: from where the net flow this way, counted back from the print, was largest
        sign = 1 if direction == "buy" else -1
        acc, best, run_from = 0.0, 0.0, len(ordered)
        for i in range(len(ordered) - 1, -1, -1):
            acc += (1 if ordered[i][1] == "buy" else -1) * sign * ordered[i][2]
            if acc > best:
                run_from, best = i, acc
        push = names[run_from:]
        assert set(alert["order_ids"]) == set(push)
        assert ev["push_orders"] == sum(f[1] == direction for f in ordered[run_from:]) >= ev["min_orders"]
        assert "h" not in alert["order_ids"] and "after" not in alert["order_ids"]
        assert ev["position_before_push"] * (1 if direction == "buy" else -1) > 0
        assert ("close_gate_score" in ev) is gate
        if gate:
            # the learned gate judged it (on by default in the FX profile, ``otc``): the flow after
            # the print and the print's move are features it weighs, not tests of their own, so
            # a push whose flow went on through the print may pass on its other figures (found
            # at 3,000 examples, 2026-12-06: continuation 0.70 against the hand rules' 0.5)
            assert ev["close_gate_score"] >= ev["close_gate_threshold"]
            return
        assert ev["continuation_after_print"] <= ev["max_continuation"]
        # the print moved the push's way (or back after it), or the push was dominant: an
        # attempted mark is alerted whatever the print did (MAR Art. 12(2)(b), Art. 15)
        assert max(ev["move_bps"], ev["reversal_after_print_bps"]) >= ev["move_threshold_bps"] or ev["dominant_push"]


def test_a_small_trade_the_other_way_does_not_end_the_push_a_larger_one_does():
    # 2 lots sold between 10 and 30 bought: one push of five orders
    fills = [(50, "buy", 10), (100, "sell", 2), (200, "buy", 10), (240, "buy", 10), (280, "buy", 10)]
    records = [record_decoder.decode(orjson.dumps(r)) for r in _rows(3_000_000, fills, carry_on=False)]
    (alert,) = _surveil(records)
    assert alert["order_ids"] == ["p0", "p1", "p2", "p3", "p4"] and alert["evidence"]["push_orders"] == 4
    assert alert["evidence"]["one_sided"] == round(38 / 42, 4)
    # 3 lots sold after 2 bought: the push starts after the sale
    fills = [(50, "buy", 2), (100, "sell", 3), (200, "buy", 10), (240, "buy", 10), (280, "buy", 10)]
    records = [record_decoder.decode(orjson.dumps(r)) for r in _rows(3_000_000, fills, carry_on=False)]
    (alert,) = _surveil(records)
    assert alert["order_ids"] == ["p2", "p3", "p4"] and alert["evidence"]["push_orders"] == 3
    assert _surveil([record_decoder.decode(orjson.dumps(r)) for r in _rows(3_000_000, fills, carry_on=True)]) == []
