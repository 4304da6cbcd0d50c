"""Orders the broker answered whose write failed (the database went away after the answer): the
worker keeps what the write would have written (``ExecutionWorker._unrecorded``) and the account
marked "needs reconcile" until each is found at the broker or written.

1. A refused order leaves no trace at the broker, so reconciliation had nothing to recover and,
   until 2026-12-07, the refusal was lost (RTS 25 / RTS 6 keep every order, refused ones too).
   Now the next reconciliation writes the REJECTED order from the answer kept: its event times
   those of the refusal, its recorded time the wall clock of the late write, its decision and
   audit records, exactly once.
2. An order the broker accepted that does not show in its deal history yet (MT5's history lags)
   cleared the account's flag at the first reconciliation and was never recorded until something
   else reconciled. Now the account stays marked until the order shows (recovered from the
   broker) or ``unrecorded_wait`` of wall clock passes: then it is written from the answer kept,
   with an error log and a ``reconciliation_order_not_at_broker`` alert.

Each entry is in the worker's spool on disk too (``workers.unrecorded_spool``) before the failure
is raised, so a restart in between settles it at start-up by the same rules, and the redelivered
signal is a duplicate (until 2026-12-07 the restart lost the refusal: the signal was sent again
and only its second answer was recorded). The spool across a real process kill, its corrupt
lines and its line format: tests/workers/test_unrecorded_spool.py."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import OperationalError, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.workers.conftest import T0, make_worker, paper_broker, signal, tick
from tradeops.audit.models import AuditRecord
from tradeops.core.clock import ReplayClock
from tradeops.core.operator_alerts import alert_is_operator
from tradeops.events import decode
from tradeops.outbox.models import Outbox
from trading.brokers import OrderOutcome
from trading.models import Order
from workers import execution

AT = T0 + timedelta(seconds=1)


def failing_write(monkeypatch):
    """Make ``order_commit`` fail as a database that went away; returns a function restoring it."""
    real = execution.order_commit

    def commit_fails(**kwargs):
        raise OperationalError("the database went away")

    monkeypatch.setattr(execution, "order_commit", commit_fails)
    return lambda: monkeypatch.setattr(execution, "order_commit", real)


def started(instrument, account, **config):
    clock = ReplayClock()
    broker = paper_broker(instrument, clock=clock)
    worker = make_worker(broker, account, clock=clock, **config).start()
    worker.handle(tick())
    return worker, broker


def send_with_failed_write(worker, monkeypatch, signal_id, at=AT) -> str:
    """The signal's order goes to the broker and its write fails; returns its client order id
    (an order recovered from the broker has no signal id: find it by this)."""
    restore = failing_write(monkeypatch)
    with pytest.raises(OperationalError):
        worker.handle(signal(signal_id=signal_id, at=at))
    restore()
    assert not Order.objects.filter(signal_id=signal_id).exists()
    (coid,) = [c for c, e in worker._unrecorded.items() if e.intent.signal_id == signal_id]
    return coid


def history_lags(broker, monkeypatch):
    """The broker's deal history (and positions) do not show the newest deals yet; returns the undo."""
    real_deals, real_positions = broker.deals_since, broker.positions
    monkeypatch.setattr(broker, "deals_since", lambda since: [])
    monkeypatch.setattr(broker, "positions", lambda: [])

    def catch_up():
        monkeypatch.setattr(broker, "deals_since", real_deals)
        monkeypatch.setattr(broker, "positions", real_positions)

    return catch_up


def alerts(alert_type):
    rows = Outbox.objects.filter(event_type="alert.raised").order_by("pk")
    payloads = [decode(bytes(r.message)).payload for r in rows]
    return [p for p in payloads if p.alert_type == alert_type]


def test_a_refusal_whose_write_failed_is_written_by_the_next_reconciliation_once(instrument, account, monkeypatch):
    worker, broker = started(instrument, account)
    broker.inject(OrderOutcome.REJECT, times=1, message="dealer says no")
    send_with_failed_write(worker, monkeypatch, "refused")
    assert account.pk in worker._needs_reconcile

    breaker = worker.risk.breakers.for_account(account.pk)
    assert breaker.consecutive_failures == 0  # the failed write never told it

    worker.idle()  # nothing else comes: the idle turn reconciles
    order = Order.objects.get(signal_id="refused")
    assert breaker.consecutive_failures == 1  # the refusal counts, as it would have
    assert order.status == "REJECTED"
    assert order.reject_reason == "broker REJECT: dealer says no"
    # Both times: the refusal's event time (the replayed market time), the write's wall clock.
    assert order.created_at == AT and order.closed_at == AT
    assert order.recorded_at > AT + timedelta(days=30)
    records = AuditRecord.objects.filter(object_type="order", object_id=str(order.pk))
    assert "order.rejected" in {r.action for r in records}
    assert {r.occurred_at for r in records} == {AT}
    assert all(r.recorded_at > AT + timedelta(days=30) for r in records)
    decisions = [decode(bytes(r.message)).payload for r in Outbox.objects.filter(event_type="risk.decision")]
    (decision,) = [d for d in decisions if d.client_order_id == order.client_order_id]
    assert decision.approved and decision.ts == AT  # the gate approved it; the broker refused it
    assert worker.stats.unrecorded_written == 1 and not worker._unrecorded
    assert account.pk not in worker._needs_reconcile
    worker.handle(signal(signal_id="next", at=AT + timedelta(seconds=5)))
    assert Order.objects.get(signal_id="next").status == "FILLED"  # the account trades again

    # Exactly once: later reconciliations and a redelivered signal write nothing more.
    count = AuditRecord.objects.count()
    worker.reconcile(account.pk)
    worker.handle(signal(signal_id="refused", at=AT))
    assert Order.objects.filter(signal_id="refused").count() == 1
    assert AuditRecord.objects.count() == count
    worker.close()


def test_a_refusal_kept_while_the_database_stays_down_is_written_when_it_is_back(instrument, account, monkeypatch):
    worker, broker = started(instrument, account)
    broker.inject(OrderOutcome.REJECT, times=1, message="dealer says no")
    send_with_failed_write(worker, monkeypatch, "refused")

    restore = failing_write(monkeypatch)  # the database is still down at the first reconciliation
    worker.reconcile(account.pk)
    assert "refused" not in set(Order.objects.values_list("signal_id", flat=True))
    assert len(worker._unrecorded) == 1 and account.pk in worker._needs_reconcile
    restore()

    worker.idle()  # nothing else comes: the idle turn retries
    assert Order.objects.get(signal_id="refused").status == "REJECTED"
    assert account.pk not in worker._needs_reconcile
    worker.close()


def test_a_restart_before_the_refusal_is_written_writes_it_from_the_spool_once(
    instrument, account, monkeypatch, execution_state_dir
):
    worker, broker = started(instrument, account)
    broker.inject(OrderOutcome.REJECT, times=1, message="dealer says no")
    coid = send_with_failed_write(worker, monkeypatch, "refused")
    spool = execution_state_dir / f"unrecorded-account-{account.pk}.jsonl"
    assert len(spool.read_bytes().splitlines()) == 1  # on disk before the failure was raised
    worker.close()  # stops before the database came back: what it kept in memory is gone

    # Until 2026-12-07 (no spool) the refusal was lost here and the redelivered signal sent again.
    restarted = make_worker(broker, account, clock=ReplayClock()).start()  # reads the spool, settles it
    order = Order.objects.get(client_order_id=coid)
    assert order.status == "REJECTED" and order.reject_reason == "broker REJECT: dealer says no"
    assert order.created_at == AT and order.closed_at == AT  # the refusal's event time
    assert order.recorded_at > AT + timedelta(days=30)  # the late write's wall clock
    assert restarted.stats.unrecorded_written == 1 and not spool.exists()  # left the spool once written
    assert restarted.risk.breakers.for_account(account.pk).consecutive_failures == 1  # counts, as it would have

    restarted.handle(tick(at=AT))
    restarted.handle(signal(signal_id="refused", at=AT))  # not committed: delivered again
    assert restarted.stats.duplicates == 1 and restarted.stats.sent == 0  # never sent a second time
    assert Order.objects.filter(signal_id="refused").count() == 1
    restarted.close()
    again = make_worker(broker, account, clock=ReplayClock()).start()
    assert again.stats.unrecorded_written == 0 and Order.objects.filter(signal_id="refused").count() == 1
    again.close()


def test_an_accepted_order_missing_from_a_lagging_history_keeps_the_account_marked_until_it_shows(
    instrument, account, monkeypatch
):
    worker, broker = started(instrument, account)
    coid = send_with_failed_write(worker, monkeypatch, "accepted")
    catch_up = history_lags(broker, monkeypatch)

    worker.reconcile(account.pk)
    assert account.pk in worker._needs_reconcile  # until 2026-12-07: cleared here, the order never recorded
    worker.handle(signal(signal_id="meanwhile", at=AT + timedelta(seconds=2)))
    assert Order.objects.get(signal_id="meanwhile").reject_reason.startswith(
        "execution.reconciliation_pending"
    )  # nothing sent

    catch_up()
    worker.idle()
    order = Order.objects.get(client_order_id=coid)
    assert order.status == "FILLED" and worker.stats.reconciled_orders == 1  # recovered from the broker
    assert account.pk not in worker._needs_reconcile and not worker._unrecorded
    assert worker.stats.unrecorded_written == 0
    worker.close()


def test_an_accepted_order_that_never_shows_is_written_from_the_answer_past_the_bound_with_an_alert(
    instrument, account, monkeypatch, caplog
):
    worker, broker = started(instrument, account, unrecorded_wait=timedelta(seconds=60))
    now = [1000.0]
    worker._monotonic = lambda: now[0]
    send_with_failed_write(worker, monkeypatch, "accepted")
    history_lags(broker, monkeypatch)

    now[0] += 59
    worker.idle()
    assert account.pk in worker._needs_reconcile and not alerts("reconciliation_order_not_at_broker")
    now[0] += 2
    worker.idle()
    order = Order.objects.get(signal_id="accepted")
    assert order.status == "FILLED" and order.filled_quantity == order.quantity
    (alert,) = alerts("reconciliation_order_not_at_broker")
    assert alert.evidence["client_order_id"] == order.client_order_id and alert.evidence["written_as"] == "FILLED"
    assert (
        alert.severity == "high"
        and "written from the answer the worker kept, as FILLED" in alert.evidence["explanation"]
    )
    assert alert_is_operator("reconciliation_order_not_at_broker")  # on the operations console
    assert "not in the broker's history after 61 s" in caplog.text
    assert account.pk not in worker._needs_reconcile and worker.stats.unrecorded_gave_up == 1
    worker.reconcile(account.pk)
    assert Order.objects.filter(signal_id="accepted").count() == 1
    worker.close()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    steps=st.lists(
        st.sampled_from(["down", "up", "reconcile", "idle", "lag", "catch_up", "wait", "restart"]), max_size=8
    ),
    refused=st.booleans(),
)
def test_every_answered_order_is_recorded_exactly_once_whatever_comes_between(
    instrument, account, monkeypatch, steps, refused
):
    """A state machine of the database going and coming, the history lagging and catching up,
    reconciliations, wall-clock time and restarts (a new worker on the same broker and spool; since
    2026-12-07) between the failed write and the end: at no point is the
    order written twice, and once the database is up, the history caught up (or the bound passed)
    and the account reconciled, it is written exactly once and the account trades again."""
    with monkeypatch.context() as m, transaction.atomic():
        worker, broker = started(instrument, account)
        now = [0.0]
        worker._monotonic = lambda: now[0]
        if refused:
            broker.inject(OrderOutcome.REJECT, times=1, message="dealer says no")
        coid = send_with_failed_write(worker, m, "answered")
        restore_write = catch_up = None
        for step in steps:
            if step == "down" and restore_write is None:
                restore_write = failing_write(m)
            elif step == "up" and restore_write is not None:
                restore_write()
                restore_write = None
            elif step == "lag" and catch_up is None:
                catch_up = history_lags(broker, m)
            elif step == "catch_up" and catch_up is not None:
                catch_up()
                catch_up = None
            elif step == "wait":
                now[0] += 61
            elif step == "restart":  # the process stops: the next one has the spool, not the memory
                worker.close()
                worker = make_worker(broker, account, clock=worker.clock)
                worker._monotonic = lambda: now[0]
                worker.start()
            elif step == "reconcile":
                try:
                    worker.reconcile(account.pk)
                except OperationalError:
                    pass
            elif step == "idle":
                try:
                    worker.idle()
                except OperationalError:
                    pass
            assert Order.objects.filter(client_order_id=coid).count() <= 1
        if restore_write is not None:
            restore_write()
        if catch_up is not None:
            catch_up()
        worker.reconcile(account.pk)
        (order,) = Order.objects.filter(client_order_id=coid)
        assert order.status == ("REJECTED" if refused else "FILLED")
        assert account.pk not in worker._needs_reconcile and not worker._unrecorded
        worker.close()
        transaction.set_rollback(True)  # the next example starts from an empty book
