"""Close and fixing prints derived from the quote stream, and marking the close on the live stage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from compliance.consumers import SurveillanceConsumer
from compliance.surveillance.fixings import DEFAULT_FIXINGS, FixingClock, FixingSpec, fixing_spec
from compliance.surveillance.records import Quote
from tradeops.events import Fill, OrderEvent, Tick, make_event

T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


def _quote(t, mid, sym="EURUSD", half_spread=0.00005):
    return Quote(ts=T0 + timedelta(seconds=t), symbol=sym, bid=mid - half_spread, ask=mid + half_spread)


def test_schedule_per_symbol_exact_then_prefix_then_default():
    specs = {**DEFAULT_FIXINGS, "USDJPY": FixingSpec(every_s=900.0)}
    assert fixing_spec(specs, "XAUUSD").every_s == 1800.0
    assert fixing_spec(specs, "EURUSD").every_s == 3600.0
    assert fixing_spec(specs, "USDJPY") == FixingSpec(every_s=900.0)
    assert fixing_spec({"XAU*": FixingSpec(1800.0)}, "EURUSD") is None
    with pytest.raises(ValueError):
        FixingSpec(every_s=60.0, window_s=60.0)


def test_the_fixing_is_the_time_weighted_average_mid_of_the_window_before_the_hour():
    clock = FixingClock({"*": FixingSpec(every_s=3600.0, window_s=30.0)})
    assert clock.on_quote(_quote(3000, 1.1000)) == []
    assert clock.on_quote(_quote(3560, 1.1010)) == []  # in force from before the window (10:59:30)
    assert clock.on_quote(_quote(3590, 1.1040)) == []  # the last 10 s of the window
    (fix,) = clock.on_quote(_quote(3605, 1.2000))  # the first quote past 11:00 (not in the window)
    assert fix.ts == T0 + timedelta(hours=1) and fix.symbol == "EURUSD"
    assert fix.price == pytest.approx((1.1010 * 20 + 1.1040 * 10) / 30)
    assert clock.on_quote(_quote(3700, 1.2)) == []  # one print per fixing


def test_gold_fixes_each_half_hour_a_close_is_the_last_mid_and_a_gap_skips_prints():
    clock = FixingClock({"*": FixingSpec(every_s=3600.0), "XAU*": FixingSpec(every_s=1800.0, window_s=30.0)})
    clock.on_quote(_quote(1700, 2000.0, "XAUUSD", 0.1))
    (fix,) = clock.on_quote(_quote(1801, 2001.0, "XAUUSD", 0.1))
    assert fix.ts == T0 + timedelta(minutes=30) and fix.price == pytest.approx(2000.0)
    clock.on_quote(_quote(3590, 1.1, "EURUSD"))
    (close,) = clock.on_quote(_quote(3601, 1.2, "EURUSD"))
    assert close.price == pytest.approx(1.1)  # window 0: the last mid before the print
    # three hours without a quote: no string of stale prints, the schedule picks up after
    (stale,) = clock.on_quote(_quote(3 * 3600 + 3700, 1.3, "EURUSD"))
    assert stale.ts == T0 + timedelta(hours=2)
    assert clock.on_quote(_quote(3 * 3600 + 3800, 1.3, "EURUSD")) == []
    (nxt,) = clock.on_quote(_quote(5 * 3600 + 10, 1.3, "EURUSD"))
    assert nxt.ts == T0 + timedelta(hours=5)


def test_a_restart_inside_the_window_keeps_the_average():
    whole = FixingClock()
    restarted = FixingClock()
    quotes = [_quote(3400 + 7 * k, 1.1 + 0.0001 * (k % 5)) for k in range(40)]
    out_whole = [p for qt in quotes for p in whole.on_quote(qt)]
    out = [p for qt in quotes[:27] for p in restarted.on_quote(qt)]
    again = FixingClock()
    again.load(restarted.dump())
    out += [p for qt in quotes[27:] for p in again.on_quote(qt)]
    assert out == out_whole and len(out) == 1


# ---------------------------------------------------------------- the live stage


def _tick(consumer, t, mid):
    tick = Tick(
        symbol="EURUSD",
        bid=Decimal(f"{mid - 0.00005:.5f}"),
        ask=Decimal(f"{mid + 0.00005:.5f}"),
        ts=T0 + timedelta(seconds=t),
    )
    return consumer.handle(make_event(tick, source="md", key="EURUSD"))


def _buy(consumer, t, cid, lots, price, account_id=1):
    ts = T0 + timedelta(seconds=t)
    order = OrderEvent(
        client_order_id=cid,
        account_id=account_id,
        symbol="EURUSD",
        side="BUY",
        order_type="MARKET",
        quantity=Decimal(lots),
        status="SUBMITTED",
        previous_status="RISK_APPROVED",
        ts=ts,
    )
    fill = Fill(
        client_order_id=cid,
        broker_deal_id=f"d-{cid}",
        account_id=account_id,
        symbol="EURUSD",
        side="BUY",
        quantity=Decimal(lots),
        price=Decimal(f"{price:.5f}"),
        ts=ts + timedelta(milliseconds=40),
    )
    out = consumer.handle(make_event(order, source="execution", key=str(account_id)))
    return out + consumer.handle(make_event(fill, source="execution", key=str(account_id)))


def _marking_episode(held: bool):
    """Quotes every 5 s from 10:00 to 11:10 with a little noise; a position bought at 10:30 (or
    none); three buys from 10:57 that lift the mid 2 pips each into the 11:00 fixing; the mid
    back where it was after it."""
    consumer = SurveillanceConsumer(contract_sizes={"EURUSD": 100000.0}, record=False)
    out = []
    base = 1.10000
    push = {3420: ("p1", 20), 3510: ("p2", 20), 3570: ("p3", 20)}
    lift = 0.0
    for t in range(0, 4200, 5):
        if held and t == 1800:
            out += _buy(consumer, t, "held", "10", base + 0.00005)
        if t in push:
            cid, lots = push[t]
            out += _buy(consumer, t, cid, str(lots), base + lift + 0.00005)
            lift += 0.0002
        noise = 0.00001 * ((t // 5) % 5 - 2)
        mid = base + noise + (lift if t < 3660 else 0.0)
        out += _tick(consumer, t, mid)
    return [e.payload for e in out]


def test_a_marking_episode_streamed_through_the_stage_alerts():
    alerts = [a for a in _marking_episode(held=True) if a.alert_type == "marking_the_close"]
    assert alerts, "the fixing derived from the quotes must let marking the close run live"
    alert = alerts[0]
    assert set(alert.order_ids) == {"p1", "p2", "p3"}
    ev = alert.evidence
    assert ev["close_ts"] == "2026-01-05T11:00:00.000000Z"
    assert ev["close_price"] == pytest.approx(1.1006, abs=0.00002)  # the average mid of 10:59:30-11:00
    assert ev["position_before_push"] == 10 * 100000.0
    assert ev["move_bps"] >= ev["move_threshold_bps"]


def test_a_client_fixing_order_from_a_flat_account_is_not_marking_on_the_stage():
    assert [a for a in _marking_episode(held=False) if a.alert_type == "marking_the_close"] == []


def test_the_stage_snapshot_keeps_the_fixing_window_across_a_restart():
    first = SurveillanceConsumer(contract_sizes={"EURUSD": 100000.0}, record=False)
    for t in (3400, 3575, 3590):
        _tick(first, t, 1.1 + 0.0001 * (t % 3))
    again = SurveillanceConsumer(contract_sizes={"EURUSD": 100000.0}, record=False, state=first.state_snapshot())
    assert again.restore_report["restored"] is not None and "discarded" not in again.restore_report
    assert again.fixings.dump() == first.fixings.dump() != {}
