"""The stage summary counts what was dead-lettered on decode too (issue 19: it said
"dead-lettered 0" after 5 records that did not decode had been dead-lettered)."""

from __future__ import annotations

import io

from tests.tradeops.conftest import tick
from tests.tradeops.test_runner import FEATURES, toy_registry  # noqa: F401  (fixture)
from tradeops.bus.memory import MemoryBus
from tradeops.events import Topic, encode


def test_run_stage_reports_the_records_dead_lettered_on_decode(monkeypatch, toy_registry):  # noqa: F811
    from django.core.management import call_command

    import tradeops.bus

    bus = MemoryBus()
    monkeypatch.setattr(tradeops.bus, "_memory_bus", bus)
    for i in range(3):
        bus.publish_raw(Topic.MARKET_DATA, encode(tick("EURUSD", i)), key="EURUSD")
    for i in range(5):
        bus.publish_raw(Topic.MARKET_DATA, b'{"not": "an envelope", "n": %d}' % i, key="EURUSD")
    bus.publish_raw(Topic.MARKET_DATA, encode(tick("POISON", 9)), key="POISON")  # the handler raises
    out = io.StringIO()
    call_command("run_stage", "toy-features", "--bus", "memory", "--idle-exit", "0.3", stdout=out)
    assert "consumed 4" in out.getvalue()
    assert "dead-lettered 6 (5 on decode, 1 by the handler)" in out.getvalue()
    assert len(bus.dead_letters(Topic.MARKET_DATA)) == 6
