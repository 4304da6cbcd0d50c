"""Rules in force are cached (tradeops.observability.cache) and never older than an approval: a
rule approved after the cache was warm is seen by the next order's gate."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from prometheus_client import REGISTRY

from compliance import services
from compliance.pretrade.loading import pretrade_checks
from compliance.selectors import pretrade_rule_specs
from tradeops.events import ComplianceRuleChanged, make_event
from tradeops.observability import cache
from trading.gate import GateContext, PreTradeGate
from trading.intents import InstrumentSpec, OrderIntent, Quote

NOW = datetime(2026, 1, 5, 10, tzinfo=UTC)
SPEC = InstrumentSpec("EURUSD", Decimal(100000), Decimal("0.00001"), Decimal("0.01"), Decimal("0.01"), Decimal(100))


def _order(lots: str) -> tuple[OrderIntent, GateContext]:
    ctx = GateContext(now=NOW, instrument=SPEC, quote=Quote("EURUSD", Decimal("1.1"), Decimal("1.1001"), NOW))
    intent = OrderIntent(
        client_order_id=f"c{lots}",
        account_id=1,
        symbol="EURUSD",
        side="BUY",
        quantity=Decimal(lots),
        reference_price=Decimal("1.1"),
        ts=NOW,
    )
    return intent, ctx


def _hits() -> float:
    return sum(
        REGISTRY.get_sample_value("tradeops_cache_hits_total", {"cache": "rules", "level": lv}) or 0
        for lv in ("l1", "l2")
    )


def test_a_rule_approved_after_the_cache_is_warm_is_seen_by_the_next_gate(alice, bob, instrument):
    v1 = services.compliance_rule_propose(
        proposed_by=alice,
        rule_type="max_order_volume",
        scope="instrument",
        instrument=instrument,
        parameters={"max_lots": "5"},
    )
    services.compliance_rule_approve(rule=v1, approver=bob)
    assert PreTradeGate(pretrade_checks()).evaluate(*_order("3")).approved
    hits = _hits()
    assert PreTradeGate(pretrade_checks()).evaluate(*_order("3")).approved  # from the cache now
    assert _hits() == hits + 1

    v2 = services.compliance_rule_propose(
        proposed_by=alice,
        rule_type="max_order_volume",
        scope="instrument",
        instrument=instrument,
        parameters={"max_lots": "2"},
    )
    assert [s.version for s in pretrade_rule_specs()] == [1]  # pending: v1 still in force (cached)
    services.compliance_rule_approve(rule=v2, approver=bob)
    decision = PreTradeGate(pretrade_checks()).evaluate(*_order("3"))
    assert not decision.approved
    (failure,) = decision.failures
    assert failure.code == "compliance.max_order_volume" and failure.rule_version.endswith("@v2")


def test_generations_keep_other_processes_fresh_and_events_empty_l1(db):
    """A second process (its own L1, the shared L2) never serves a value older than a write
    committed elsewhere (strict), and a rule_changed event empties the consumer's L1."""
    loads = []
    here, there = cache.TwoLevelCache("rules", strict=True), cache.TwoLevelCache("rules", strict=True)
    assert there.get("k", lambda: loads.append(1) or "v1") == "v1"
    assert here.get("k", lambda: loads.append(1) or "never") == "v1"  # L2 hit
    assert here.get("k", lambda: "never") == "v1" and here.hits_l1 == 1
    here.invalidate()  # a write in this process, committed
    assert there.get("k", lambda: "v2") == "v2"  # the other process's L1 is not trusted past the new generation
    assert len(loads) == 1

    lenient = cache.reference_cache("limits")
    lenient.get("all", lambda: "old")
    before = REGISTRY.get_sample_value("tradeops_cache_invalidations_total", {"cache": "rules", "cause": "event"}) or 0
    event = make_event(
        ComplianceRuleChanged(
            rule_id=1, code="c", rule_type="max_order_volume", scope="firm", version=2, active=True, actor="bob", ts=NOW
        ),
        source="t",
        key="c",
    )
    cache.on_event(event)
    after = REGISTRY.get_sample_value("tradeops_cache_invalidations_total", {"cache": "rules", "cause": "event"})
    assert after == before + 1


def test_the_cache_falls_back_to_the_database_when_l2_is_down(db, settings):
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}
    }
    c = cache.TwoLevelCache("obs-down", strict=True)
    assert c.get("k", lambda: "from the database") == "from the database"
    assert c.get("k", lambda: "again") == "again"  # strict: nothing trusted without L2
