"""The engine's live orders stay bounded (issue 16): an IOC/FOK is over ``IOC_SETTLE_S`` after
entry (or once filled in full), whatever the feed says next; a resting order past the age or count
bound is evicted, counted and logged; a snapshot carries all of it across a restart. Pure, fast."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from compliance.surveillance.engine import IOC_SETTLE_S, SurveillanceEngine
from compliance.surveillance.records import FillRecord, OrderMessage, Quote
from compliance.surveillance.state import state_dump, state_load

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SYMBOL = "EURUSD"


def _ts(t: float) -> datetime:
    return T0 + timedelta(seconds=t)


def _quote(t):
    return Quote(ts=_ts(t), symbol=SYMBOL, bid=1.1000, ask=1.1001)


def _order(t, oid, action="new", *, order_type="ioc", side="buy", qty=100_000.0, price=1.1001, account="A1"):
    return OrderMessage(
        ts=_ts(t),
        action=action,
        order_id=oid,
        account=account,
        owner="O-" + account,
        symbol=SYMBOL,
        side=side,
        qty=qty,
        price=price,
        order_type=order_type,
    )


def _fill(t, oid, qty, *, side="buy", account="A1"):
    return FillRecord(
        ts=_ts(t), order_id=oid, account=account, owner="O-" + account, symbol=SYMBOL, side=side, qty=qty, price=1.1001
    )


def _ioc_hour():
    """An hour of IOCs, two a second, none ever cancelled by the feed: one in three partly filled
    at entry, one in three filled in full in two slices, the rest unfilled."""
    for i in range(7200):
        t = i * 0.5
        if i % 2 == 0:
            yield _quote(t)
        oid = f"ioc{i}"
        yield _order(t, oid)
        if i % 3 == 1:
            yield _fill(t, oid, 40_000.0)
        elif i % 3 == 2:
            yield _fill(t, oid, 60_000.0)
            yield _fill(t, oid, 40_000.0)


def test_an_hour_of_iocs_never_cancelled_keeps_the_live_orders_bounded():
    engine = SurveillanceEngine()
    most = most_queued = 0
    for rec in _ioc_hour():
        engine.process(rec)
        most = max(most, len(engine.orders))
        most_queued = max(most_queued, len(engine._immediate))
    engine.finish()
    # two a second, each over within IOC_SETTLE_S (the sweep runs once a second): a handful live
    assert most <= 2 * (2 * IOC_SETTLE_S + 1)
    assert most_queued <= 2 * (2 * IOC_SETTLE_S + 1)
    assert len(engine.orders) <= 5
    # the unfilled and the partly filled are over without a cancel; the fully filled left at their fill
    assert engine.evicted["immediate"] >= 2 * 7200 // 3 - 5
    assert engine.evicted["aged"] == engine.evicted["over_count"] == engine.evicted_resting == 0
    # every fill counted once in the position
    assert engine.positions[("A1", SYMBOL)] == 2400 * 40_000.0 + 2400 * 100_000.0


def test_the_fills_of_one_matching_count_and_a_late_cancel_or_fill_is_an_unknown_orders():
    engine = SurveillanceEngine()
    engine.process(_quote(0.0))
    engine.process(_order(1.0, "x", qty=100_000.0, price=1.1002))
    engine.process(_fill(1.0, "x", 30_000.0))  # the matching's first fill report
    engine.process(_fill(1.0, "x", 20_000.0))  # the next level, same instant: its own
    engine.process(_fill(1.004, "x", 10_000.0))  # a level reported 4 ms later: still its own
    state = engine.orders["x"]
    assert state.filled == 60_000.0 and state.until == _ts(1.0).timestamp() + IOC_SETTLE_S
    engine.process(_fill(2.2, "x", 10_000.0))  # past its second: the venue killed the rest long ago
    assert "x" not in engine.orders and engine.evicted["immediate"] == 1
    assert state.filled == 60_000.0  # the closed order is not touched again
    engine.process(_order(2.5, "x", "cancel"))  # the feed's cancel of the rest, late: no error
    engine.process(_fill(3.0, "x", 5_000.0))
    assert engine.evicted["immediate"] == 1  # dropped once
    assert engine.positions[("A1", SYMBOL)] == 75_000.0  # each fill once
    engine.finish()


def test_an_unfilled_ioc_counts_once_as_a_ping_whatever_cancel_comes_late():
    engine = SurveillanceEngine(only={"ping_orders"})
    engine.process(_quote(0.0))
    engine.process(_order(1.0, "p", qty=1_000.0, price=1.1000))  # at the bid: a probe that does not trade
    engine.process(_quote(2.5))  # the settle second has passed: the IOC is over, the engine drops it
    assert "p" not in engine.orders and engine.evicted["immediate"] == 1
    engine.process(_order(2.6, "p", "cancel"))  # the feed's cancel after all: an unknown order now
    pings = engine.units["ping_orders"].pings[("A1", SYMBOL)]
    assert [e[1].order_id for e in pings] == ["p"]
    engine.finish()


def test_an_ioc_cancelled_within_its_second_is_cancelled_as_before():
    engine = SurveillanceEngine(only={"ping_orders"})
    engine.process(_quote(0.0))
    engine.process(_order(1.0, "p", qty=1_000.0, price=1.1000))  # at the bid: a probe that does not trade
    engine.process(_order(1.3, "p", "cancel"))
    assert "p" not in engine.orders and engine.evicted["immediate"] == 0
    pings = engine.units["ping_orders"].pings[("A1", SYMBOL)]
    assert [(e[1].order_id, round(e[3], 6)) for e in pings] == [("p", 0.3)]  # the cancel counts, once


def test_a_resting_order_past_the_age_bound_is_evicted_counted_and_no_longer_a_quote():
    engine = SurveillanceEngine(order_max_age_s=60.0, only={"excessive_order_to_trade"})
    engine.process(_quote(0.0))
    engine.process(_order(0.0, "bid", order_type="limit", price=1.1000))
    engine.process(_order(0.0, "ask", order_type="limit", side="sell", price=1.1001))
    otr = engine.units["excessive_order_to_trade"].keys[("A1", SYMBOL)]
    assert set(otr.quotes) == {"bid", "ask"}
    engine.process(_quote(59.0))
    assert set(engine.orders) == {"bid", "ask"}
    engine.process(_quote(61.0))
    assert engine.orders == {}
    assert engine.evicted["aged"] == 2 and engine.evicted_resting == 2
    assert otr.quotes == {} and otr.n_buy == otr.n_sell == 0
    engine.process(_fill(62.0, "bid", 1_000.0))  # a fill of an evicted order: an unknown order's
    engine.finish()


def test_past_the_count_bound_the_oldest_live_order_is_evicted():
    engine = SurveillanceEngine(max_open_orders=3, only={"spoofing"})
    engine.process(_quote(0.0))
    for i in range(5):
        engine.process(_order(float(i), f"o{i}", order_type="limit", price=1.0990))
    assert list(engine.orders) == ["o2", "o3", "o4"]
    assert engine.evicted["over_count"] == 2 and engine.evicted_resting == 2


def test_an_ioc_is_no_market_making_quote():
    engine = SurveillanceEngine(only={"excessive_order_to_trade"})
    engine.process(_quote(0.0))
    engine.process(_order(0.0, "i", price=1.1000))  # a passive IOC: at the bid, it does not rest
    assert engine.units["excessive_order_to_trade"].keys[("A1", SYMBOL)].quotes == {}


def _restart_stream():
    yield _quote(0.0)
    yield _order(0.0, "gtc", order_type="limit", price=1.0990)
    yield _order(0.5, "a", qty=1_000.0, price=1.0990)  # unfilled IOC
    yield _order(0.8, "b")
    yield _fill(0.8, "b", 40_000.0)  # partly filled IOC: live until 1.8
    # -- the snapshot is taken here, both IOCs still live
    yield _fill(0.9, "b", 10_000.0)  # within its second: its own
    yield _quote(1.2)
    yield _order(1.3, "a", "cancel")  # within its second: a cancel
    yield _fill(1.9, "b", 10_000.0)  # past b's second: an unknown order's
    yield _quote(2.0)
    yield _order(2.1, "c", qty=1_000.0, price=1.0990)
    yield _quote(3.5)
    yield _order(3.6, "c", "cancel")  # late: an unknown order's
    yield _quote(100.0)


def test_a_restart_with_live_iocs_carries_them_as_an_uninterrupted_run_would():
    def run(split):
        engine = SurveillanceEngine(order_max_age_s=60.0)
        trace = []
        for i, rec in enumerate(_restart_stream()):
            if i == split:
                restored = SurveillanceEngine(order_max_age_s=60.0)
                state_load(restored, state_dump(engine))
                assert {k: s.until for k, s in restored.orders.items()} == {
                    k: s.until for k, s in engine.orders.items()
                }
                engine = restored
            engine.process(rec)
            trace.append((sorted(engine.orders), dict(engine.positions)))
        return trace, engine

    whole, engine = run(split=None)
    for split in range(1, 14):
        trace, restarted = run(split)
        assert trace == whole, split
        assert restarted.orders == {}
    assert engine.evicted["aged"] == 1  # the GTC, past 60 s
    assert engine.positions[("A1", SYMBOL)] == 60_000.0  # b's three fills, each once


def test_the_stage_logs_evicted_resting_orders(caplog):
    from compliance.consumers import SurveillanceConsumer
    from tradeops.events import Tick, make_event

    consumer = SurveillanceConsumer(record=False)
    engine = consumer.engine
    engine.order_max_age_s = 60.0
    engine.process(_quote(0.0))
    engine.process(_order(0.0, "gtc", order_type="limit", price=1.0990))
    engine.process(_quote(61.0))
    assert engine.evicted_resting == 1
    with caplog.at_level(logging.WARNING, logger="compliance.consumers"):
        for t in (62.0, 63.0):  # logged at the next event handled, once
            tick = Tick(symbol=SYMBOL, bid=Decimal("1.1"), ask=Decimal("1.1001"), ts=_ts(t))
            consumer.handle(make_event(tick, source="md", key=SYMBOL))
    warnings = [r for r in caplog.records if "evicted without a cancel or fill" in r.getMessage()]
    assert len(warnings) == 1 and "1 live order(s)" in warnings[0].getMessage()
