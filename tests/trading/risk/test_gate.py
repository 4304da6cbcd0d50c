"""The gate composes checks of one signature: all run, every failure is named, errors fail closed."""

from __future__ import annotations

import pytest

from tests.trading.risk.helpers import EURUSD, T0, intent
from tradeops.events import CheckResult
from trading.gate import CHECK_ERROR, GateContext, PreTradeGate, failed, passed
from trading.intents import IntentAction


class PriceCollar:
    """What a compliance check looks like from the gate's side (the protocol in trading.gate)."""

    name = "price_collar"

    def __init__(self):
        self.sent = []
        self.events = []

    def __call__(self, intent, context):
        if intent.reference_price > 2:
            return failed(self.name, "compliance.price_collar", f"price {intent.reference_price} off", "v3")
        return passed(self.name)

    def on_sent(self, intent, context):
        self.sent.append(intent.client_order_id)

    def on_event(self, event):
        self.events.append(event)


class Broken:
    name = "broken"

    def __call__(self, intent, context):
        raise ZeroDivisionError("oops")


class Halt:
    name = "halt"
    applies_to_cancels = True

    def __call__(self, intent, context):
        return failed(self.name, "x.halt", "halted")


def ctx():
    return GateContext(now=T0, instrument=EURUSD)


def test_all_checks_run_and_the_decision_names_each_failure_with_rule_version():
    collar = PriceCollar()
    gate = PreTradeGate([collar, Broken()])
    d = gate.evaluate(intent(price="2.5"), ctx())
    assert not d.approved
    assert [(c.name, c.code) for c in d.failures] == [
        ("price_collar", "compliance.price_collar"),
        ("broken", CHECK_ERROR),
    ]
    assert d.failures[0].rule_version == "v3"
    assert "ZeroDivisionError: oops" in d.reason
    payload = d.to_payload(intent(), trading_state="ACTIVE")
    assert payload.approved is False and len(payload.checks) == 2


def test_hooks_are_called_and_cancels_skip_checks_that_do_not_opt_in():
    collar = PriceCollar()
    gate = PreTradeGate([collar, Halt()])
    i = intent()
    gate.on_sent(i, ctx())
    gate.on_event("evt")
    assert collar.sent == [i.client_order_id] and collar.events == ["evt"]
    d = gate.evaluate(intent(price="9", action=IntentAction.CANCEL), ctx())
    assert [c.name for c in d.checks] == ["halt"]


def test_gate_refuses_malformed_or_duplicate_checks():
    gate = PreTradeGate([PriceCollar()])
    with pytest.raises(ValueError, match="already"):
        gate.add(PriceCollar())
    with pytest.raises(TypeError):
        gate.add(object())
    assert isinstance(passed("x"), CheckResult)


def test_a_hook_with_event_types_hears_only_those_and_one_without_hears_everything():
    from datetime import UTC, datetime
    from decimal import Decimal

    from tradeops.events import ComplianceRuleChanged, Tick, make_event

    class Rules(PriceCollar):
        name = "rules"
        event_types = (ComplianceRuleChanged,)

    every, rules = PriceCollar(), Rules()
    gate = PreTradeGate([every, rules])
    at = datetime(2026, 1, 5, 10, tzinfo=UTC)
    tick = make_event(Tick(symbol="EURUSD", bid=Decimal("1.1"), ask=Decimal("1.1001"), ts=at), source="t", key="EURUSD")
    gate.on_event(tick)
    gate.on_event(tick)
    assert len(every.events) == 2 and rules.events == []
    late = Rules()
    late.name = "late"
    gate.add(late)  # a check added later is heard too (the per-type lists are rebuilt)
    gate.on_event(tick)
    assert len(every.events) == 3 and late.events == []


def test_every_compliance_check_that_keeps_state_from_events_names_its_event_types():
    """A subclass overriding ``on_event`` must not inherit a narrower list than it acts on."""
    from compliance.pretrade import checks

    for cls in vars(checks).values():
        if isinstance(cls, type) and "on_event" in vars(cls):
            assert "event_types" in vars(cls), f"{cls.__name__} overrides on_event without event_types"
