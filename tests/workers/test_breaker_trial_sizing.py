"""While an account's breaker is half-open with its one trial order out, the strategy skips the
account's signals with a recorded reason naming the trial (``strategy.breaker_trial``) instead
of sizing orders the gate refuses (``risk.breaker_open``), as it does while HALTED. In the worker
a trial stays out when its answer never reached the breaker: here the trial's write failed (the
database went away after the broker filled it), and reconciliation recorded it afterwards.
Until 2026-12-07 every signal meanwhile became a REJECTED order."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import OperationalError

from tests.workers.conftest import T0, make_worker, paper_broker, signal, tick
from tradeops.audit.models import AuditRecord
from tradeops.core.clock import ReplayClock
from trading.brokers import OrderOutcome
from trading.models import Order
from workers import execution


def test_signals_while_the_trial_is_out_are_skipped_naming_it_not_refused(instrument, account, monkeypatch):
    clock = ReplayClock()
    broker = paper_broker(instrument, clock=clock)
    worker = make_worker(broker, account, clock=clock).start()
    worker.handle(tick())
    broker.inject(OrderOutcome.REJECT, times=5, message="dealer says no")
    for i in range(5):
        worker.handle(signal(side="BUY" if i % 2 == 0 else "SELL", at=T0 + timedelta(seconds=i)))
    breaker = worker.risk.breakers.for_account(account.pk)
    assert breaker.state(T0 + timedelta(seconds=5)) == "open"

    trial_at = T0 + timedelta(seconds=40)  # the 30 s cool-down is over on event time: one trial may go
    worker.handle(tick(at=trial_at))
    real_commit = execution.order_commit

    def commit_fails(**kwargs):
        raise OperationalError("the database went away")

    monkeypatch.setattr(execution, "order_commit", commit_fails)
    with pytest.raises(OperationalError):
        worker.handle(signal(signal_id="trial", at=trial_at))
    monkeypatch.setattr(execution, "order_commit", real_commit)
    assert breaker.trial_out(trial_at)
    trial_id = breaker.trial_order_id
    assert trial_id

    for n in range(3):
        worker.handle(signal(signal_id=f"during-{n}", at=trial_at + timedelta(seconds=1 + n)))
    assert not Order.objects.filter(signal_id__startswith="during").exists()  # no refused order either
    assert not Order.objects.filter(reject_reason__contains="breaker").exists()
    skips = AuditRecord.objects.filter(action="signal.skipped", object_id__startswith="during").order_by("sequence")
    assert [r.payload_data["code"] for r in skips] == ["strategy.breaker_trial"] * 3
    assert {r.payload_data["limit_code"] for r in skips} == {"risk.breaker_open"}
    reason = skips[0].payload_data["reason"]
    assert f"trial order {trial_id} is still out" in reason and "half-open" in reason

    assert worker.status()["accounts"][account.pk]["trading_state"] == "ACTIVE"  # not HALTED: not OPEN
    worker.close()
