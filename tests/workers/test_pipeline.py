"""The execution stage as the embedded run wires it: registry factory, memory bus, outbox relay."""

from __future__ import annotations

from datetime import timedelta

from tests.workers.conftest import T0, signal, tick
from tradeops.bus.memory import MemoryBus
from tradeops.bus.runner import pipeline_run
from tradeops.outbox.relay import OutboxRelay
from tradeops.stages import stage_get
from trading.models import Order


def test_execution_stage_trades_signals_and_its_events_reach_the_bus(instrument, account, settings):
    settings.EXECUTION_PAPER_JOURNAL_DIR = ""
    bus = MemoryBus()
    seen = []
    source = [
        tick(),
        signal(signal_id="embedded-1"),
        tick(bid="1.10100", ask="1.10102", at=T0 + timedelta(seconds=2)),
        signal(side="SELL", price="1.10101", signal_id="embedded-2", at=T0 + timedelta(seconds=2)),
    ]
    result = pipeline_run(
        source,
        stages=[stage_get("execution")],  # built by its registry factory, brokers from settings
        bus=bus,
        batch_size=1,
        relay=OutboxRelay(bus=bus, use_lock=False),
        on_event=seen.append,
    )
    orders = {o.signal_id: o for o in Order.objects.all()}
    assert orders["embedded-1"].status == "FILLED" and orders["embedded-2"].status == "FILLED"
    types = [e.type for e in seen]
    assert types.count("execution.fill") == 2 and types.count("risk.decision") == 2
    assert result.stages["execution"].dead_lettered == 0
    assert result.outbox_events >= 12  # 2 x (decision, 4 order states, fill, position)


def test_run_execution_worker_reconcile_only_reports_state(instrument, account, settings, capsys):
    import json

    from django.core.management import call_command

    settings.EXECUTION_PAPER_JOURNAL_DIR = ""
    call_command("run_execution_worker", "--reconcile-only", "--accounts", str(account.pk))
    out = capsys.readouterr().out
    assert "gate: trading_state, kill_switch" in out
    status = json.loads(out[out.index("{") :])
    assert status["breaker"] == "closed"
    assert status["accounts"][str(account.pk)]["trading_state"] == "ACTIVE"
    assert status["accounts"][str(account.pk)]["equity"] == "100000"
