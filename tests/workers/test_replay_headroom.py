"""Replay-level: the real EURUSD bars through the embedded pipeline (collector → features →
models → validator → execution worker → outbox), with the seeded demo account and its limits.
The strategy sizes within the headroom, so the 5-lot position limit shapes the orders instead of
refusing them: before the headroom, 141 of 260 orders of a full replay were refused by
``risk.max_position``."""

from __future__ import annotations

import collections
import io

import pytest
from django.core.management import call_command

from tests.mlmodels.conftest import FAST, NO_EDGE
from tradeops.audit.models import AuditRecord
from tradeops.bus.memory import MemoryBus
from tradeops.bus.runner import pipeline_run
from tradeops.outbox.relay import OutboxRelay
from tradeops.stages import stage_get
from trading.models import Order

BARS = 400


@pytest.mark.slow
def test_a_replay_of_real_bars_sizes_within_the_position_limit_instead_of_being_refused(
    db, settings, tmp_path, monkeypatch
):
    from mlmodels.services import model_training_run, validator_config_update
    from tradeops.core.clock import ReplayClock
    from workers.collector import embedded_source
    from workers.execution import execution_stage

    settings.ML_MODEL_DIR = str(tmp_path / "models")
    settings.EXECUTION_PAPER_JOURNAL_DIR = ""
    monkeypatch.setenv("REPLAY_LIMIT", str(BARS))
    monkeypatch.setenv("REPLAY_QUARANTINE", str(tmp_path / "quarantine.jsonl"))
    call_command("seed", stdout=io.StringIO())  # the demo account and its limits: 5 lots per instrument
    model_training_run(actor="service:test", config=FAST, activate=True, allow_no_edge=True, reason=NO_EDGE)
    validator_config_update(actor="service:test", min_confidence=0.5)  # every agreeing pair is a signal

    bus = MemoryBus()
    result = pipeline_run(
        embedded_source(),
        stages=[stage_get("ml-features"), stage_get("ml-predict"), stage_get("execution")],
        # A replay's execution runs on the replayed market time, as run_embedded and run_pipeline
        # build it: on the wall clock the paper broker would judge 2019's bars by today's hours.
        handlers={"execution": execution_stage(clock=ReplayClock())},
        bus=bus,
        batch_size=1,
        relay=OutboxRelay(bus=bus, use_lock=False),
    )
    assert result.dead_letters == 0

    orders = list(Order.objects.all())
    refused = collections.Counter(
        code for o in orders if o.status == "REJECTED" for code in o.reject_reason.split() if code.startswith("risk.")
    )
    skips = collections.Counter(
        r.payload_data["limit_code"] or r.payload_data["code"]
        for r in AuditRecord.objects.filter(action="signal.skipped")
    )
    filled = sum(o.status == "FILLED" for o in orders)
    print(f"{len(orders)} orders, {filled} filled, refused {dict(refused)}, skipped {dict(skips)}")
    assert len(orders) >= 20
    assert skips["risk.max_position"] >= 5  # the limit was reached: the test is not vacuous
    assert refused["risk.max_position"] == 0
    assert sum(o.status == "REJECTED" for o in orders) <= len(orders) // 20  # refusals are the exception
