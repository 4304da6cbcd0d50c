"""A fully populated example of every payload in tradeops.events.PAYLOADS: hand-written ones
below, generated from the field types for payloads added later."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import msgspec.inspect as mi

from tradeops import events as ev

TS = datetime(2026, 3, 2, 14, 30, 15, 654321, tzinfo=UTC)
CHECKS = (
    ev.CheckResult(name="max_order_value", passed=True),
    ev.CheckResult(name="price_collar", passed=False, code="collar", detail="2.1% off mid", rule_version="3"),
)

SAMPLES: dict[type, ev.Payload] = {
    ev.Tick: ev.Tick(
        symbol="EURUSD",
        bid=Decimal("1.08512"),
        ask=Decimal("1.08515"),
        ts=TS,
        received_at=TS,
        last=Decimal("1.08513"),
        volume=Decimal("2.5"),
        flags=("spike",),
    ),
    ev.Bar: ev.Bar(
        symbol="EURUSD",
        timeframe="H1",
        ts=TS,
        open=Decimal("1.1"),
        high=Decimal("1.2"),
        low=Decimal("1.0"),
        close=Decimal("1.15"),
        volume=Decimal(1200),
        spread=Decimal("0.00002"),
        received_at=TS,
        flags=("gap",),
    ),
    ev.Features: ev.Features(symbol="EURUSD", ts=TS, values={"rsi": 55.5, "atr": 0.0012}, price=Decimal("1.1")),
    ev.Prediction: ev.Prediction(
        symbol="EURUSD", ts=TS, model="gbm", model_version="7", direction=-1, probability=0.71, horizon="3"
    ),
    ev.Signal: ev.Signal(
        signal_id="sig-1",
        symbol="EURUSD",
        ts=TS,
        side="BUY",
        confidence=0.66,
        price=Decimal("1.08515"),
        model_versions={"gbm": "7", "lstm": "2"},
        algo_id="algo-7",
        atr=0.001,
        volatility=0.2,
    ),
    ev.OrderEvent: ev.OrderEvent(
        client_order_id="c-1",
        account_id=3,
        symbol="EURUSD",
        side="BUY",
        order_type="LIMIT",
        quantity=Decimal("0.10"),
        status="FILLED",
        previous_status="SUBMITTED",
        filled_quantity=Decimal("0.10"),
        limit_price=Decimal("1.08500"),
        stop_price=Decimal("1.08000"),
        time_in_force="IOC",
        average_fill_price=Decimal("1.08499"),
        broker_order_id="b-9",
        algo_id="algo-7",
        trader_id=4,
        desk="fx",
        signal_id="sig-1",
        reason="filled at the touch",
        ts=TS,
    ),
    ev.Fill: ev.Fill(
        client_order_id="c-1",
        broker_deal_id="d-1",
        account_id=3,
        symbol="EURUSD",
        side="BUY",
        quantity=Decimal("0.10"),
        price=Decimal("1.08499"),
        fee=Decimal("0.35"),
        venue="XOFF",
        arrival_mid=Decimal("1.08501"),
        arrival_bid=Decimal("1.08500"),
        arrival_ask=Decimal("1.08502"),
        ts=TS,
    ),
    ev.PositionChanged: ev.PositionChanged(
        account_id=3,
        symbol="EURUSD",
        net_quantity=Decimal("-0.3"),
        average_price=Decimal("1.085"),
        realised_pnl=Decimal("-12.5"),
        unrealised_pnl=Decimal("3.25"),
        ts=TS,
    ),
    ev.RiskDecision: ev.RiskDecision(
        client_order_id="c-1", account_id=3, symbol="EURUSD", approved=False, checks=CHECKS, ts=TS
    ),
    ev.ComplianceDecision: ev.ComplianceDecision(
        client_order_id="c-1", account_id=3, symbol="EURUSD", approved=True, checks=CHECKS[:1], ts=TS
    ),
    ev.Alert: ev.Alert(
        alert_type="spoofing",
        severity="high",
        symbol="EURUSD",
        account="3",
        owner="OWNER-1",
        order_ids=("c-1", "c-2"),
        score=0.93,
        start=TS,
        end=TS,
        evidence={"cancel_ratio": 0.97, "orders": [1, 2]},
        ts=TS,
    ),
    ev.KillSwitchChanged: ev.KillSwitchChanged(
        scope="account",
        scope_value="3",
        engaged=True,
        actor="risk-1",
        reason="drawdown",
        cancelled_orders=("c-2",),
        ts=TS,
    ),
}


def _value(t: mi.Type):
    """A non-default value of a msgspec type (so a payload added later still gets a full sample)."""
    if isinstance(t, mi.UnionType):
        return _value(next(x for x in t.types if not isinstance(x, mi.NoneType)))
    if isinstance(t, mi.StrType):
        return "sample"
    if isinstance(t, mi.BoolType):
        return True
    if isinstance(t, mi.IntType):
        return 7
    if isinstance(t, mi.FloatType):
        return 0.25
    if isinstance(t, mi.DecimalType):
        return Decimal("1.23456")
    if isinstance(t, mi.DateTimeType):
        return TS
    if isinstance(t, mi.VarTupleType | mi.ListType):
        return (_value(t.item_type),) if isinstance(t, mi.VarTupleType) else [_value(t.item_type)]
    if isinstance(t, mi.DictType):
        return {"k": _value(t.value_type) if not isinstance(t.value_type, mi.AnyType) else 1}
    if isinstance(t, mi.StructType):
        return t.cls(**{f.name: _value(f.type) for f in t.fields})
    if isinstance(t, mi.AnyType):
        return "any"
    raise NotImplementedError(f"no sample for {t!r}: add a hand-written sample to SAMPLES")


def sample_payload(payload_type: type) -> ev.Payload:
    if payload_type in SAMPLES:
        return SAMPLES[payload_type]
    return _value(mi.type_info(payload_type))


def sample_event(payload_type: type, *, key: str = "EURUSD", traceparent: str = "") -> ev.Envelope:
    return ev.make_event(sample_payload(payload_type), source="test", key=key, traceparent=traceparent)
