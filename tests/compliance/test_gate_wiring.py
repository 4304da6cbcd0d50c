"""The execution worker's gate picks up the compliance controls through PRETRADE_COMPLIANCE_CHECKS."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from compliance import services
from trading.gate import GateContext, PreTradeGate
from trading.intents import InstrumentSpec, OrderIntent, Quote
from workers.execution import compliance_checks

NOW = datetime(2026, 1, 5, 10, tzinfo=UTC)


def test_worker_loads_compliance_checks_with_the_rules_in_force(alice, bob, instrument, settings):
    settings.PRETRADE_COMPLIANCE_CHECKS = ["compliance.pretrade.loading.pretrade_checks"]
    rule = services.compliance_rule_propose(
        proposed_by=alice,
        rule_type="max_order_volume",
        scope="instrument",
        instrument=instrument,
        parameters={"max_lots": "2"},
    )
    pending_gate = PreTradeGate(compliance_checks())  # not approved yet: no rule in force
    services.compliance_rule_approve(rule=rule, approver=bob)
    gate = PreTradeGate(compliance_checks())

    spec = InstrumentSpec("EURUSD", Decimal(100000), Decimal("0.00001"), Decimal("0.01"), Decimal("0.01"), Decimal(100))
    ctx = GateContext(now=NOW, instrument=spec, quote=Quote("EURUSD", Decimal("1.1"), Decimal("1.1001"), NOW))
    intent = OrderIntent(
        client_order_id="c1",
        account_id=1,
        symbol="EURUSD",
        side="BUY",
        quantity=Decimal(3),
        reference_price=Decimal("1.1"),
        ts=NOW,
    )
    assert pending_gate.evaluate(intent, ctx).approved
    decision = gate.evaluate(intent, ctx)
    assert not decision.approved
    (failure,) = decision.failures
    assert failure.code == "compliance.max_order_volume" and failure.rule_version.endswith("@v1")
