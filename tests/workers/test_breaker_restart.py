"""An open trading breaker survives a worker restart (since 2026-12-06, wip/breaker48): a new worker
on the same database restores each account's breaker from the audit trail's latest
``trading_breaker.*`` record of its source. Before, a restarted worker's breakers started closed,
and an account whose broker had refused five orders in a row traded again the moment the worker
came back."""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection

from tests.workers.conftest import T0, paper_broker, signal, tick
from tests.workers.test_breaker_per_account import halted_skip, orders_of, second  # noqa: F401 - the second account's fixture
from tradeops.audit.models import AuditRecord
from tradeops.core.clock import ReplayClock, utcnow
from tradeops.events import decode
from tradeops.outbox.models import Outbox
from trading.brokers import OrderOutcome
from trading.console.selectors import trading_breakers
from trading.controls.selectors import trading_breakers_last_moves
from trading.controls.services import trading_breaker_change_record
from trading.models import AccountRiskSnapshot
from trading.risk import RiskLimits
from trading.strategy import StrategyConfig
from workers.execution import ExecutionConfig, ExecutionWorker

COOL_DOWN = timedelta(seconds=30)


class Desk:
    """Both accounts' paper brokers, which outlive the workers (a broker does not restart with
    the worker), and the worker currently running on them."""

    def __init__(self, instrument, gbpusd, account, second):  # noqa: F811
        self.clock = ReplayClock()
        self.brokers = {a.pk: paper_broker(instrument, gbpusd, clock=self) for a in (account, second)}
        self.first = self.brokers[account.pk]

    def now(self):
        return self.clock.now()  # the running worker's event time

    def start(self, *, at=T0) -> ExecutionWorker:
        """A new worker (a new process: a new replay clock), started, its clock at ``at``."""
        self.clock = ReplayClock()
        cfg = ExecutionConfig(
            strategy=StrategyConfig(risk_fraction=Decimal("0.005")),
            default_limits=RiskLimits(duplicate_window_ms=None),
            breaker_cool_down=COOL_DOWN,
        )
        worker = ExecutionWorker(brokers=self.brokers, config=cfg, clock=self.clock).start()
        worker.handle(tick(at=at))
        return worker


@pytest.fixture
def desk(instrument, gbpusd, account, second):  # noqa: F811
    return Desk(instrument, gbpusd, account, second)


def refuse_five_orders(desk, account):
    """Five refusals at the first account's broker open its breaker; the worker, still running."""
    worker = desk.start()
    desk.first.inject(OrderOutcome.REJECT, times=5, message="dealer says no")
    for i in range(5):
        worker.handle(signal(side="BUY" if i % 2 == 0 else "SELL", at=T0 + timedelta(seconds=i)))
    assert worker.risk.breakers.for_account(account.pk).state(T0 + timedelta(seconds=5)) == "open"
    return worker


def open_first_accounts_breaker(desk, account):
    """Five refusals at the first account's broker open its breaker; the worker stops."""
    refuse_five_orders(desk, account).close()
    return AuditRecord.objects.get(action="trading_breaker.open")


def breaker_events() -> list:
    return [
        decode(bytes(r.message)).payload for r in Outbox.objects.filter(event_type="breaker.changed").order_by("pk")
    ]


def test_a_restarted_worker_keeps_the_open_breaker_then_lets_one_trial_through_after_the_cool_down(
    desk,
    account,
    second,  # noqa: F811
    caplog,
):
    opened = open_first_accounts_breaker(desk, account)
    later = T0 + timedelta(seconds=6)

    caplog.set_level(logging.WARNING, logger="workers.execution")
    worker = desk.start(at=later)
    breaker = worker.risk.breakers.for_account(account.pk)
    assert breaker.state(later) == "open" and breaker.reason == "consecutive_failures:REJECT"
    assert worker.risk.breakers.for_account(second.pk).state(later) == "closed"
    assert f"account {account.pk}'s trading breaker restored open (consecutive_failures:REJECT" in caplog.text

    # Still halted: the first account's strategy sends nothing and records the breaker's reason;
    # the second's fills.
    sent = len(orders_of(account))
    worker.handle(signal(signal_id="restored", at=later))
    assert len(orders_of(account)) == sent
    reason = halted_skip("restored", account)
    assert f"account {account.pk}'s trading breaker open (consecutive_failures:REJECT)" in reason
    assert orders_of(second)[-1].status == "FILLED"
    status = worker.status()["accounts"]
    assert (status[account.pk]["breaker"], status[account.pk]["trading_state"]) == ("open", "HALTED")
    assert (status[second.pk]["breaker"], status[second.pk]["trading_state"]) == ("closed", "ACTIVE")

    # Audited, published, in the risk snapshot and on the console at once.
    (restored,) = AuditRecord.objects.filter(action="trading_breaker.restored")
    assert restored.object_id == f"execution-worker:{account.pk}"
    payload = restored.payload_data
    assert payload["before"] == {"state": "closed"}
    assert payload["after"] == {
        "state": "open",
        "reason": "consecutive_failures:REJECT",
        "account": str(account.pk),
        "opened_recorded_at": opened.recorded_at.isoformat(),
        "restored_from": opened.sequence,
    }
    moved = breaker_events()[-1]
    assert (moved.account, moved.old, moved.new, moved.reason) == (
        str(account.pk),
        "closed",
        "open",
        "consecutive_failures:REJECT",
    )
    assert AccountRiskSnapshot.objects.get(account=account).breaker_state == "open"
    (row,) = trading_breakers()
    assert (row["account"], row["state"], row["reason"]) == ("Test account", "open", "consecutive_failures:REJECT")

    # Event time alone does not end a restored cool-down (the opening's event time is another
    # process's clock); the wall clock does: one trial goes, the broker accepts, it closes.
    much_later = later + timedelta(minutes=5)
    worker.handle(tick(at=much_later))
    worker.handle(signal(signal_id="event-time-only", at=much_later))
    assert "trading breaker open" in halted_skip("event-time-only", account)
    worker._monotonic = lambda: time.monotonic() + COOL_DOWN.total_seconds()
    assert breaker.state(much_later) == "half_open"
    worker.handle(signal(side="SELL", at=much_later))
    trial = orders_of(account)[-1]
    assert trial.status == "FILLED", trial.reject_reason
    assert breaker.state(much_later) == "closed"
    moves = list(
        AuditRecord.objects.filter(object_id=f"execution-worker:{account.pk}").values_list("action", flat=True)
    )
    assert moves == [
        "trading_breaker.open",
        "trading_breaker.restored",
        "trading_breaker.half_open",
        "trading_breaker.closed",
    ]
    worker.close()

    # And the next restart restores nothing: its latest record says closed.
    worker = desk.start(at=much_later)
    assert worker.risk.breakers.for_account(account.pk).state(much_later) == "closed"
    assert AuditRecord.objects.filter(action="trading_breaker.restored").count() == 1


def test_a_breaker_whose_cool_down_passed_while_the_worker_was_down_comes_back_half_open(
    desk,
    account,
    second,  # noqa: F811
    monkeypatch,
):
    opened = open_first_accounts_breaker(desk, account)
    down_for = COOL_DOWN + timedelta(seconds=1)
    monkeypatch.setattr("workers.execution.utcnow", lambda: utcnow() + down_for)
    later = T0 + timedelta(seconds=6)
    worker = desk.start(at=later)
    breaker = worker.risk.breakers.for_account(account.pk)
    assert breaker.state(later) == "half_open" and breaker.allow(later)
    (restored,) = AuditRecord.objects.filter(action="trading_breaker.restored")
    assert restored.payload_data["after"]["state"] == "half_open"
    assert AccountRiskSnapshot.objects.get(account=account).breaker_state == "half_open"

    # Its one trial goes; the broker refuses it and the breaker opens again for a cool-down.
    desk.first.inject(OrderOutcome.REJECT, times=1, message="still no")
    worker.handle(signal(at=later))
    assert orders_of(account)[-1].reject_reason == "broker REJECT: still no"
    assert breaker.state(later) == "open"
    worker.close()

    # A restart now counts the new opening's cool-down, not the first one's.
    reopened = AuditRecord.objects.filter(action="trading_breaker.open").latest("sequence")
    assert reopened.sequence > opened.sequence
    monkeypatch.setattr("workers.execution.utcnow", utcnow)
    worker = desk.start(at=later)
    assert worker.risk.breakers.for_account(account.pk).state(later) == "open"
    latest = AuditRecord.objects.filter(action="trading_breaker.restored").latest("sequence")
    assert latest.payload_data["after"]["restored_from"] == reopened.sequence


def test_a_trip_of_the_open_breaker_is_recorded_as_an_extension_and_a_restart_counts_from_it(
    desk,
    account,
    second,  # noqa: F811
):
    """An open breaker tripped again restarts its cool-down: until 2026-12-06 nothing recorded it,
    so the trail and the console said it opened at T while it stayed open past T + cool-down, and
    a restart restored it with the first opening's time. Now: ``trading_breaker.extended``
    (audited, published, on the console's panel; no second alert), and a restart counts from it."""
    worker = refuse_five_orders(desk, account)
    opened = AuditRecord.objects.get(action="trading_breaker.open")
    worker.risk.breakers.trip("operator: desk review", account_id=account.pk, now=T0 + timedelta(seconds=20))

    extended = AuditRecord.objects.get(action="trading_breaker.extended")
    assert extended.object_id == f"execution-worker:{account.pk}" and extended.sequence > opened.sequence
    assert extended.payload_data["before"] == {"state": "open"}
    assert extended.payload_data["after"] == {
        "state": "open",
        "reason": "operator: desk review",
        "account": str(account.pk),
        "extended": True,
    }
    moved = breaker_events()[-1]
    assert (moved.account, moved.old, moved.new, moved.reason) == (
        str(account.pk),
        "open",
        "open",
        "operator: desk review",
    )
    alerts = [decode(bytes(r.message)).payload.alert_type for r in Outbox.objects.filter(event_type="alert.raised")]
    assert alerts.count("trading_breaker_open") == 1  # the opening's; the extension raises none
    (row,) = trading_breakers()
    assert (row["state"], row["reason"], row["extended"]) == ("open", "operator: desk review", True)
    worker.close()

    worker = desk.start(at=T0 + timedelta(seconds=21))
    breaker = worker.risk.breakers.for_account(account.pk)
    assert breaker.state(T0 + timedelta(seconds=21)) == "open" and breaker.reason == "operator: desk review"
    (restored,) = AuditRecord.objects.filter(action="trading_breaker.restored")
    assert restored.payload_data["after"]["opened_recorded_at"] == extended.recorded_at.isoformat()
    assert restored.payload_data["after"]["restored_from"] == extended.sequence
    (row,) = trading_breakers()
    assert (row["state"], row["extended"]) == ("open", False)  # the restore is the latest move now


def test_losses_that_hold_an_open_breaker_open_engage_the_accounts_kill_switch(
    desk,
    account,
    second,  # noqa: F811
):
    """A breaker opened on broker refusals and then held open by losses past the threshold engages
    the account's kill switch, as an opening on losses does: until 2026-12-06 the extension
    engaged none, so the trial order went out after the cool-down whatever the losses."""
    from trading.models import KillSwitch

    worker = refuse_five_orders(desk, account)
    assert not KillSwitch.objects.exists()  # refusals open the breaker; they engage nothing
    later = T0 + timedelta(seconds=20)
    worker.risk.breakers.trip("loss_threshold:-255>100", account_id=account.pk, now=later)

    assert AuditRecord.objects.filter(action="trading_breaker.extended").count() == 1
    switch = KillSwitch.objects.get(engaged=True)
    assert (switch.scope, switch.scope_value, switch.source) == ("account", str(account.pk), "automatic")
    assert f"account {account.pk} trading breaker held open on loss_threshold" in switch.engage_reason
    assert worker.risk.trading_state(account.pk, later) == "HALTED"
    alerts = [decode(bytes(r.message)).payload.alert_type for r in Outbox.objects.filter(event_type="alert.raised")]
    assert alerts.count("trading_breaker_open") == 1  # the opening's; the extension raises none
    worker.close()


def test_a_closed_breaker_restores_nothing(desk):
    worker = desk.start()
    worker.handle(signal())
    worker.close()
    worker = desk.start()
    assert {str(b.state(T0)) for _, b in worker.risk.breakers.items()} == {"closed"}
    assert not AuditRecord.objects.filter(object_type="trading_breaker").exists()
    assert breaker_events() == []


def test_a_record_from_before_breakers_were_per_account_restores_nothing(
    desk,
    account,
    second,  # noqa: F811
    caplog,
):
    """Before 2026-12-06 one breaker guarded every account of the worker, and its record names
    none: it cannot say whose conduct opened it, and restoring it on every account would bring
    back the halt of all of them that per-account breakers ended. A log line says so."""
    trading_breaker_change_record(
        old="closed",
        new="open",
        reason="consecutive_failures:REJECT",
        at=T0,
        source="execution-worker",
        actor="execution-worker",
        auto_kill_on_loss=False,
    )
    caplog.set_level(logging.WARNING, logger="workers.execution")
    worker = desk.start()
    assert {str(b.state(T0)) for _, b in worker.risk.breakers.items()} == {"closed"}
    assert not AuditRecord.objects.filter(action="trading_breaker.restored").exists()
    assert "a record from before breakers were per account names no account" in caplog.text


@pytest.mark.django_db
def test_the_last_moves_are_read_in_one_query_on_postgresql(django_assert_num_queries, account, second):  # noqa: F811
    for account_id, moves in ((account.pk, ("open", "half_open", "open")), (second.pk, ("open", "half_open"))):
        old = "closed"
        for new in moves:
            trading_breaker_change_record(
                account_id=account_id,
                old=old,
                new=new,
                reason="consecutive_failures:TIMEOUT",
                at=T0,
                source="execution-worker",
                actor="execution-worker",
                auto_kill_on_loss=False,
            )
            old = new
    trading_breaker_change_record(  # another worker's: not ours
        account_id=account.pk,
        old="open",
        new="closed",
        reason="",
        at=T0,
        source="execution-worker-2",
        actor="execution-worker",
        auto_kill_on_loss=False,
    )
    # One statement on PostgreSQL; SQLite (the embedded default) allows no LIMIT in a UNION's
    # parts, so a probe per breaker there: the three accounts' and the worker's pre-2026-12-06 one.
    union = connection.features.supports_slicing_ordering_in_compound
    with django_assert_num_queries(1 if union else 4):
        moves = trading_breakers_last_moves(source="execution-worker", account_ids=[account.pk, second.pk, 999])
    assert [(m.account_id, m.state, m.opened_recorded_at is None) for m in moves] == [
        (account.pk, "open", False),
        (second.pk, "half_open", True),
    ]
