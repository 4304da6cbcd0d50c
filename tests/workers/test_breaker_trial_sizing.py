"""While an account's breaker is half-open with its one trial order out, the strategy skips the
account's signals with a recorded reason naming the trial (``strategy.breaker_trial``) instead
of sizing orders the gate refuses (``risk.breaker_open``), as it does while HALTED. In the worker
a trial stays out when its answer never reached the breaker: here the trial's write failed (the
database went away after the broker answered it), and the broker stays unreachable for the
reconciliation that would settle it. Until 2026-12-07 every signal meanwhile became a REJECTED
order.

Once reconciliation settles the account, the trial resolves as its outcome would have
(``TradingBreaker.trial_resolve``): filled at the broker (recovered by reconciliation), the
breaker closes and the account trades again; refused (no trace at the broker), it opens again.
Recorded like any other move (``trading_breaker.closed``/``.open``, ``breaker.changed``). Until
2026-12-07 nobody told the breaker, and the account's signals were skipped until a restart."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import OperationalError

from tests.workers.conftest import T0, make_worker, paper_broker, signal, tick
from tradeops.audit.models import AuditRecord
from tradeops.core.clock import ReplayClock
from tradeops.events import decode
from tradeops.outbox.models import Outbox
from trading.brokers import BrokerUnavailable, OrderOutcome
from trading.models import Order
from workers import execution

TRIAL_AT = T0 + timedelta(seconds=40)  # the 30 s cool-down is over on event time: one trial may go


def trial_whose_write_fails(instrument, account, monkeypatch, *, refused=False):
    """Five refusals open the account's breaker; after the cool-down the trial goes to the broker
    (filled, or refused when ``refused``) and its write fails. Returns (worker, broker, breaker)."""
    clock = ReplayClock()
    broker = paper_broker(instrument, clock=clock)
    worker = make_worker(broker, account, clock=clock).start()
    worker.handle(tick())
    broker.inject(OrderOutcome.REJECT, times=5, message="dealer says no")
    for i in range(5):
        worker.handle(signal(side="BUY" if i % 2 == 0 else "SELL", at=T0 + timedelta(seconds=i)))
    breaker = worker.risk.breakers.for_account(account.pk)
    assert breaker.state(T0 + timedelta(seconds=5)) == "open"

    worker.handle(tick(at=TRIAL_AT))
    if refused:
        broker.inject(OrderOutcome.REJECT, times=1, message="dealer still says no")
    real_commit = execution.order_commit

    def commit_fails(**kwargs):
        raise OperationalError("the database went away")

    monkeypatch.setattr(execution, "order_commit", commit_fails)
    with pytest.raises(OperationalError):
        worker.handle(signal(signal_id="trial", at=TRIAL_AT))
    monkeypatch.setattr(execution, "order_commit", real_commit)
    assert breaker.trial_out(TRIAL_AT)
    assert breaker.trial_order_id
    assert not Order.objects.filter(signal_id="trial").exists()
    return worker, broker, breaker


def broker_unreachable(broker, monkeypatch):
    def unreachable(*args, **kwargs):
        raise BrokerUnavailable("the trade server does not answer")

    monkeypatch.setattr(broker, "deals_since", unreachable)


def breaker_moves() -> list[tuple[str, str, str]]:
    rows = Outbox.objects.filter(event_type="breaker.changed").order_by("pk")
    return [(e.old, e.new, e.reason) for e in (decode(bytes(r.message)).payload for r in rows)]


def test_signals_while_the_trial_is_out_are_skipped_naming_it_not_refused(instrument, account, monkeypatch):
    worker, broker, breaker = trial_whose_write_fails(instrument, account, monkeypatch)
    trial_id = breaker.trial_order_id
    broker_unreachable(broker, monkeypatch)  # the reconciliation that would settle the trial cannot run
    trial_at = TRIAL_AT

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


def test_reconciliation_recovering_a_filled_trial_closes_the_breaker_and_the_account_trades_again(
    instrument, account, monkeypatch
):
    worker, broker, breaker = trial_whose_write_fails(instrument, account, monkeypatch)
    trial_id = breaker.trial_order_id
    before = len(breaker_moves())

    # The next signal reconciles the account first: the trial is recovered from the broker's deal.
    after = worker.handle(signal(signal_id="after", at=TRIAL_AT + timedelta(seconds=1)))
    recovered = Order.objects.get(client_order_id=trial_id)
    assert recovered.status == "FILLED"
    assert breaker.state(TRIAL_AT + timedelta(seconds=1)) == "closed"
    (closed,) = AuditRecord.objects.filter(action="trading_breaker.closed")
    assert closed.payload_data["after"]["account"] == str(account.pk)
    reason = closed.payload_data["after"]["reason"]
    assert f"trial order {trial_id} filled at the broker" in reason and "recovered by reconciliation" in reason
    assert breaker_moves()[before:] == [("half_open", "closed", reason)]

    # And the signal that came with it is sized and sent, not skipped.
    del after
    order = Order.objects.get(signal_id="after")
    assert order.status == "FILLED"
    assert not AuditRecord.objects.filter(action="signal.skipped", object_id="after").exists()
    assert worker.status()["accounts"][account.pk]["breaker"] == "closed"
    worker.close()


def test_reconciliation_finding_no_trace_of_a_refused_trial_opens_the_breaker_again(instrument, account, monkeypatch):
    worker, broker, breaker = trial_whose_write_fails(instrument, account, monkeypatch, refused=True)
    trial_id = breaker.trial_order_id
    before = len(breaker_moves())

    at = TRIAL_AT + timedelta(seconds=1)
    worker.handle(signal(signal_id="after", at=at))
    # The broker has no trace of it; since 2026-12-07 the refusal is written from the answer the
    # worker kept (until then it was lost: test_unrecorded_orders.py).
    trial = Order.objects.get(client_order_id=trial_id)
    assert trial.status == "REJECTED" and trial.reject_reason == "broker REJECT: dealer still says no"
    assert breaker.state(at) == "open" and not breaker.trial_out(at)
    opened = AuditRecord.objects.filter(action="trading_breaker.open").latest("sequence")
    reason = opened.payload_data["after"]["reason"]
    assert f"trial order {trial_id} refused by the broker (REJECT)" in reason, reason
    assert breaker_moves()[before:] == [("half_open", "open", reason)]
    # Open again: the signal is skipped as HALTED (a new cool-down), not sent.
    assert not Order.objects.filter(signal_id="after", status="FILLED").exists()
    assert worker.status()["accounts"][account.pk]["trading_state"] == "HALTED"

    # After the new cool-down one trial goes again and, filled this time, closes the breaker.
    later = at + timedelta(seconds=40)
    worker.handle(tick(at=later))
    worker.handle(signal(signal_id="second-trial", at=later))
    assert Order.objects.get(signal_id="second-trial").status == "FILLED"
    assert breaker.state(later) == "closed"
    worker.close()
