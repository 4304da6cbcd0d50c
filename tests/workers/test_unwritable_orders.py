"""A spool entry the execution worker cannot settle: an order the broker answered whose write
failed, that the worker cannot write now for a reason retrying will not change (its instrument not
loaded by the restarted worker; a row the database refuses).

Until 2026-12-07 (wip/spool53's report) such an entry kept failing each turn with an error logged
every time, and nothing else said why the account was blocked. Now the account stays blocked (we
cannot vouch for its orders), and that is said ONCE, across restarts too: an ``UnwritableOrder``
row the console's account row shows with the reason, one high ``reconciliation_order_unwritable``
operator alert, one error log, the gauge ``tradeops_execution_unrecorded_unwritable``. Later turns
retry it silently; once it is written the row goes, the gauge is 0 and the account trades.
On the real PostgreSQL (scripts/test.sh)."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.db import IntegrityError, OperationalError
from django.test import Client
from prometheus_client import REGISTRY

from tests.conftest import requires_postgres
from tests.screens.world import user_make
from tests.workers.conftest import make_worker, signal, tick
from tests.workers.test_unrecorded_orders import AT, alerts, send_with_failed_write, started
from tradeops.core.clock import ReplayClock
from tradeops.core.operator_alerts import alert_is_operator, operator_alert_explanation
from tradeops.core.roles import Role
from trading.brokers import OrderOutcome
from trading.models import Order, UnwritableOrder
from workers import execution

ALERT = "reconciliation_order_unwritable"


def unwritable_gauge(account) -> float | None:
    return REGISTRY.get_sample_value("tradeops_execution_unrecorded_unwritable", {"account": str(account.pk)})


def errors_naming(caplog, coid: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR and coid in r.getMessage()]


def console_html(user) -> str:
    client = Client()
    client.force_login(user)
    response = client.get("/console/")
    assert response.status_code == 200
    return response.content.decode()


def test_an_entry_whose_instrument_the_restarted_worker_does_not_load_is_said_once_and_keeps_the_account_blocked(
    instrument, account, monkeypatch, execution_state_dir, caplog
):
    requires_postgres()
    risk = user_make("rick", Role.RISK_MANAGER)
    worker, broker = started(instrument, account)
    broker.inject(OrderOutcome.REJECT, times=1, message="dealer says no")
    coid = send_with_failed_write(worker, monkeypatch, "refused")
    worker.close()  # stops before the database came back: the refusal is in the spool alone
    instrument.is_active = False  # and the instrument is withdrawn before the restart
    instrument.save()
    caplog.clear()

    restarted = make_worker(broker, account, clock=ReplayClock()).start()  # takes it back, cannot write it
    assert not Order.objects.filter(client_order_id=coid).exists()
    assert account.pk in restarted._needs_reconcile  # blocked: we cannot vouch for its orders
    row = UnwritableOrder.objects.get(client_order_id=coid)
    assert row.account_id == account.pk and row.symbol == "EURUSD" and row.broker_answer == "REJECT"
    assert "instrument EURUSD is not loaded" in row.reason
    assert row.occurred_at == AT  # event time: the order's
    assert row.recorded_at > AT + timedelta(days=30)  # recorded: the wall clock
    (alert,) = alerts(ALERT)
    assert alert.severity == "high" and alert.account == str(account.pk) and alert_is_operator(ALERT)
    assert alert.evidence["client_order_id"] == coid and alert.evidence["reason"] == row.reason
    explanation = operator_alert_explanation(ALERT, alert.evidence)  # what the console's panel says
    assert coid in explanation and "instrument EURUSD is not loaded" in explanation and "stays blocked" in explanation
    (error,) = errors_naming(caplog, coid)
    assert "cannot be written" in error and "instrument EURUSD is not loaded" in error
    assert unwritable_gauge(account) == 1

    html = console_html(risk)  # the account row: needs reconcile, and why
    assert 'data-field="needs-reconcile"' in html and 'data-field="unwritable"' in html
    assert coid in html and "instrument EURUSD is not loaded" in html

    # Later turns retry it without another word; so does the next restart (its row says it was said).
    caplog.clear()
    for _ in range(3):
        restarted.idle()
        restarted.reconcile(account.pk)
    restarted.close()
    again = make_worker(broker, account, clock=ReplayClock()).start()
    assert account.pk in again._needs_reconcile and len(alerts(ALERT)) == 1
    assert errors_naming(caplog, coid) == [] and UnwritableOrder.objects.count() == 1
    assert unwritable_gauge(account) == 1
    again.close()

    # The instrument is back: the next start writes the refusal once, and the account is free.
    instrument.is_active = True
    instrument.save()
    freed = make_worker(broker, account, clock=ReplayClock()).start()
    order = Order.objects.get(client_order_id=coid)
    assert order.status == "REJECTED" and order.created_at == AT
    assert not UnwritableOrder.objects.exists() and unwritable_gauge(account) == 0
    assert account.pk not in freed._needs_reconcile and len(alerts(ALERT)) == 1
    assert 'data-field="needs-reconcile"' not in console_html(risk)
    freed.handle(tick(at=AT + timedelta(seconds=4)))
    freed.handle(signal(signal_id="next", at=AT + timedelta(seconds=5)))
    assert Order.objects.get(signal_id="next").status == "FILLED"  # the account trades again
    freed.close()


def test_a_write_the_database_refuses_is_said_once_and_the_database_away_is_not(
    instrument, account, monkeypatch, caplog
):
    requires_postgres()
    worker, broker = started(instrument, account)
    broker.inject(OrderOutcome.REJECT, times=1, message="dealer says no")
    coid = send_with_failed_write(worker, monkeypatch, "refused")
    real = execution.order_commit
    failure = {"exc": OperationalError("the database went away")}

    def commit_fails(**kwargs):
        raise failure["exc"]

    monkeypatch.setattr(execution, "order_commit", commit_fails)
    caplog.clear()
    worker.idle()  # the database away: retried, a line each turn, nothing said to a person
    assert not UnwritableOrder.objects.exists() and not alerts(ALERT)
    assert [m for m in errors_naming(caplog, coid) if "failed again" in m]

    failure["exc"] = IntegrityError('new row violates check constraint "order_quantity_positive"')
    caplog.clear()
    for _ in range(3):
        worker.idle()
    (row,) = UnwritableOrder.objects.all()
    assert row.reason == (
        'the write fails with IntegrityError: new row violates check constraint "order_quantity_positive"'
    )
    assert len(alerts(ALERT)) == 1 and len(errors_naming(caplog, coid)) == 1  # once, not each turn
    assert account.pk in worker._needs_reconcile and unwritable_gauge(account) == 1

    monkeypatch.setattr(execution, "order_commit", real)  # fixed (a migration, a grant): written next turn
    worker.idle()
    assert Order.objects.get(client_order_id=coid).status == "REJECTED"
    assert not UnwritableOrder.objects.exists() and unwritable_gauge(account) == 0
    assert account.pk not in worker._needs_reconcile
    worker.close()


def test_a_row_whose_order_no_spool_holds_stops_blocking_the_account_at_the_next_start(instrument, account, caplog):
    requires_postgres()
    UnwritableOrder.objects.create(
        account=account,
        client_order_id="T" + "9" * 20,
        symbol="EURUSD",
        broker_answer="REJECT",
        reason="its instrument EURUSD is not loaded by this execution worker",
        occurred_at=AT,
        failed_at=AT,
        recorded_at=AT,
    )
    worker, _ = started(instrument, account)  # its spool is empty: removed by hand, say
    assert not UnwritableOrder.objects.exists() and not alerts(ALERT)
    assert any("T" + "9" * 20 in r.getMessage() and "no spool holds it" in r.getMessage() for r in caplog.records)
    worker.close()


@pytest.mark.parametrize(
    ("exc", "retried"),
    [
        (OperationalError("server closed the connection unexpectedly"), True),
        (OSError("No space left on device"), True),
        (IntegrityError("duplicate key"), False),
        (KeyError("GBPJPY"), False),
    ],
)
def test_which_failures_retrying_may_cure(exc, retried):
    assert (execution.unwritable_because(exc) is None) is retried
