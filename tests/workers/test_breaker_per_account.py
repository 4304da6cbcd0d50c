"""One execution worker, two accounts, a breaker each: the first account's broker refuses five
orders in a row, which opens that account's breaker (audited, alerted, shown on the console as
that account's) while the second account's orders go on filling. Before 2026-12-06 the worker
held one breaker and the five refusals halted both accounts."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, User

from tests.workers.conftest import T0, paper_broker, signal, tick
from tradeops.audit.models import AuditRecord
from tradeops.core.clock import ReplayClock
from tradeops.core.roles import Role
from tradeops.events import decode
from tradeops.outbox.models import Outbox
from trading.brokers import OrderOutcome
from trading.console.selectors import trading_breakers
from trading.models import AccountRiskSnapshot, KillSwitch, Order, TradingAccount
from trading.risk import RiskLimits
from trading.strategy import StrategyConfig
from workers.execution import ExecutionConfig, ExecutionWorker


@pytest.fixture
def second(account):
    return TradingAccount.objects.create(
        name="Second account",
        mt5_login=7000002,
        mt5_server="test-server",
        firm_lei=account.firm_lei,
        client_id="CLIENT-2",
        beneficial_owner="OWNER-2",
    )


def two_account_worker(instrument, gbpusd, account, second, **config) -> tuple[ExecutionWorker, object, object]:
    clock = ReplayClock()  # event time is the replayed market time: the breakers' cool-downs run on it
    brokers = {
        account.pk: paper_broker(instrument, gbpusd, clock=clock),
        second.pk: paper_broker(instrument, gbpusd, clock=clock),
    }
    cfg = ExecutionConfig(
        strategy=StrategyConfig(risk_fraction=Decimal("0.005")),
        default_limits=RiskLimits(duplicate_window_ms=None),
        **config,
    )
    worker = ExecutionWorker(brokers=brokers, config=cfg, clock=clock).start()
    worker.handle(tick())
    return worker, brokers[account.pk], brokers[second.pk]


def orders_of(account) -> list[Order]:
    """The account's orders as written (orders written at one event time tie on created_at;
    the primary key breaks the tie the same way on every database)."""
    return list(Order.objects.filter(account=account).order_by("created_at", "pk"))


def halted_skip(signal_id: str, account) -> str:
    """The reason of the audit record of a signal the strategy skipped for ``account`` while it
    was HALTED (``strategy.trading_halted``)."""
    record = AuditRecord.objects.get(action="signal.skipped", object_id=f"{signal_id}:{account.pk}")
    assert record.payload_data["code"] == "strategy.trading_halted"
    return record.payload_data["reason"]


def test_five_refusals_open_one_accounts_breaker_and_the_other_account_trades_on(
    instrument, gbpusd, account, second, client
):
    worker, first_broker, _ = two_account_worker(instrument, gbpusd, account, second)
    first_broker.inject(OrderOutcome.REJECT, times=5, message="dealer says no")
    for i in range(5):
        worker.handle(signal(side="BUY" if i % 2 == 0 else "SELL", at=T0 + timedelta(seconds=i)))
    refused, filled = orders_of(account), orders_of(second)
    assert [o.status for o in refused] == ["REJECTED"] * 5
    assert all(o.reject_reason == "broker REJECT: dealer says no" for o in refused)
    assert [o.status for o in filled] == ["FILLED"] * 5

    at = T0 + timedelta(seconds=5)
    assert worker.risk.breakers.for_account(account.pk).state(at) == "open"
    assert worker.risk.breakers.for_account(second.pk).state(at) == "closed"
    worker.handle(tick(at=at))
    worker.handle(signal(signal_id="while-open", at=at))
    # the first account is HALTED: its strategy sends nothing and says why; the second trades on
    assert len(orders_of(account)) == 5
    assert "trading breaker open (consecutive_failures:REJECT)" in halted_skip("while-open", account)
    assert orders_of(second)[-1].status == "FILLED"
    status = worker.status()
    assert status["breaker"] == "open"  # the worst of the worker's breakers
    assert status["accounts"][account.pk]["breaker"] == "open"
    assert status["accounts"][account.pk]["trading_state"] == "HALTED"
    assert status["accounts"][second.pk]["breaker"] == "closed"
    assert status["accounts"][second.pk]["trading_state"] == "ACTIVE"

    # The record names the account: audit record, alert, and the snapshot's breaker column.
    (opened,) = AuditRecord.objects.filter(action="trading_breaker.open")
    assert opened.object_id == f"execution-worker:{account.pk}"
    assert opened.payload_data["after"] == {
        "state": "open",
        "reason": "consecutive_failures:REJECT",
        "account": str(account.pk),
    }
    (alert,) = [decode(bytes(r.message)).payload for r in Outbox.objects.filter(event_type="alert.raised")]
    assert alert.alert_type == "trading_breaker_open" and alert.account == str(account.pk)
    (moved,) = [decode(bytes(r.message)).payload for r in Outbox.objects.filter(event_type="breaker.changed")]
    assert (moved.account, moved.new) == (str(account.pk), "open")
    assert not KillSwitch.objects.exists()
    worker.close()
    snapshots = dict(AccountRiskSnapshot.objects.values_list("account_id", "breaker_state"))
    assert snapshots == {account.pk: "open", second.pk: "closed"}

    # The console says whose breaker is open.
    assert trading_breakers() == [
        {
            "source": "execution-worker",
            "account": "Test account",
            "state": "open",
            "reason": "consecutive_failures:REJECT",
            "at": opened.occurred_at,
            "extended": False,
        }
    ]
    trader = User.objects.create_user("trader", password="x" * 16)
    trader.groups.add(Group.objects.get_or_create(name=str(Role.TRADER))[0])
    client.force_login(trader)
    fragment = client.get("/console/?fragment=breakers").content.decode()
    breakers_table = fragment.split('id="trading-breakers"')[1].split("</table>")[0]
    assert "<td>execution-worker</td><td>Test account</td>" in breakers_table
    assert 'class="badge open"' in breakers_table and "Second account" not in breakers_table


def test_one_accounts_losses_engage_that_accounts_kill_switch_only(instrument, gbpusd, account, second):
    """A loss-threshold opening engages the kill switch on the account whose breaker opened; the
    other account trades on (before 2026-12-06: the kill switch on everything)."""
    worker, first_broker, second_broker = two_account_worker(
        instrument, gbpusd, account, second, loss_threshold=Decimal(100)
    )
    second_broker.inject(OrderOutcome.REJECT, times=1, message="not this one")  # so only the first closes at a loss
    worker.handle(signal(side="BUY"))  # 2.5 lots at 1.10002 for the first account
    later = T0 + timedelta(seconds=1)
    worker.handle(tick(bid="1.09900", ask="1.09902", at=later))
    worker.handle(signal(side="SELL", price="1.09901", at=later))  # the first closes at 1.09900: -255
    switch = KillSwitch.objects.get(engaged=True)
    assert (switch.scope, switch.scope_value, switch.source) == ("account", str(account.pk), "automatic")
    assert f"account {account.pk} trading breaker opened on loss_threshold" in switch.engage_reason
    assert worker.risk.trading_state(account.pk, later) == "HALTED"
    assert worker.risk.trading_state(second.pk, later) == "ACTIVE"
    worker.handle(signal(side="BUY", signal_id="switched-off", at=later + timedelta(seconds=1)))
    assert orders_of(second)[-1].status == "FILLED"
    assert f"kill switch engaged on account={account.pk}" in halted_skip("switched-off", account)
    assert not Order.objects.filter(account=account, signal_id="switched-off").exists()
