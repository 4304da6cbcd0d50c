"""Kill switch (RTS 6 Art. 12): cancels every unexecuted order in its scope at once, blocks new
ones, is reachable from the service, the API, the command and automatically; release needs the
risk role and a reason; every change is audited and published."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.test import APIClient

from tests.workers.conftest import T0, make_worker, signal, tick
from tradeops.audit.models import AuditRecord
from tradeops.core.errors import PermissionDenied
from tradeops.core.roles import Role
from tradeops.events import KillSwitchChanged, decode
from tradeops.outbox.models import Outbox
from trading.controls.services import kill_switch_engage, kill_switch_release
from trading.intents import OrderIntent
from trading.models import KillSwitch, Order


def resting(worker, account, n, *, symbol="EURUSD", algo="algo-1", price="1.09000"):
    """Send a resting BUY LIMIT through the worker's order path; returns its order."""
    intent = OrderIntent(
        client_order_id=f"L-{symbol}-{algo}-{n}",
        account_id=account.pk,
        symbol=symbol,
        side="BUY",
        quantity=Decimal("0.10"),
        reference_price=Decimal(price),
        ts=T0,
        order_type="LIMIT",
        limit_price=Decimal(price),
        algo_id=algo,
    )
    order = worker.execute(intent)
    assert order.status == "SUBMITTED" and order.broker_order_id
    return order


def user_with(role: Role | None, name: str) -> User:
    user = User.objects.create_user(name, password="x" * 16)
    if role:
        user.groups.add(Group.objects.get_or_create(name=str(role))[0])
    return user


def published() -> list[KillSwitchChanged]:
    rows = Outbox.objects.filter(event_type="killswitch.changed").order_by("id")
    return [decode(bytes(r.message)).payload for r in rows]


def test_engage_cancels_every_open_order_in_scope_at_the_broker_and_blocks_new_ones(worker, broker, account):
    eur = [resting(worker, account, n) for n in range(3)]
    gbp = resting(worker, account, 0, symbol="GBPUSD", price="1.29000")
    assert len(broker.open_orders()) == 4
    result = kill_switch_engage(
        scope="instrument",
        scope_value="EURUSD",
        actor="user:olga",
        reason="runaway quotes",
        source="admin",
        broker_for=worker.broker_for,
    )
    assert sorted(result.cancelled) == sorted(o.client_order_id for o in eur) and result.failed == {}
    assert [o.comment for o in broker.open_orders()] == [gbp.client_order_id]
    for order in eur:
        order.refresh_from_db()
        assert order.status == "CANCELLED"
    assert Order.objects.get(pk=gbp.pk).status == "SUBMITTED"
    (event,) = published()
    assert event.engaged and sorted(event.cancelled_orders) == sorted(result.cancelled) and event.actor == "user:olga"
    # the worker learns it from the event and refuses new orders in scope, not others
    worker.handle(decode(bytes(Outbox.objects.filter(event_type="killswitch.changed").get().message)))
    worker.handle(signal(signal_id="blocked"))
    assert "risk.kill_switch_engaged" in Order.objects.get(signal_id="blocked").reject_reason
    worker.handle(tick("GBPUSD", "1.30000", "1.30002", at=T0 + timedelta(seconds=1)))
    worker.handle(signal(symbol="GBPUSD", price="1.30001", signal_id="other", at=T0 + timedelta(seconds=1)))
    assert Order.objects.get(signal_id="other").status == "FILLED"
    actions = list(AuditRecord.objects.filter(object_type="killswitch").values_list("action", flat=True))
    assert actions == ["killswitch.engaged", "killswitch.changed"]


@pytest.mark.parametrize(
    "scope,value,expect_cancelled",
    [("all", "", 3), ("account", None, 3), ("algo", "algo-2", 1), ("instrument", "GBPUSD", 1)],
)
def test_each_scope_cancels_exactly_what_it_covers(worker, account, scope, value, expect_cancelled):
    resting(worker, account, 1, algo="algo-1")
    resting(worker, account, 2, algo="algo-2")
    resting(worker, account, 3, symbol="GBPUSD", price="1.29000")
    value = str(account.pk) if value is None else value
    result = kill_switch_engage(
        scope=scope,
        scope_value=value,
        actor="user:x",
        reason="test",
        source="api",
        broker_for=worker.broker_for,
        user=user_with(Role.RISK_MANAGER, "rm"),  # the whole firm needs the risk role
    )
    assert len(result.cancelled) == expect_cancelled
    assert Order.objects.filter(status="SUBMITTED").count() == 3 - expect_cancelled


def test_trader_scope(worker, account):
    trader = user_with(Role.TRADER, "tina")
    order = resting(worker, account, 1)
    Order.objects.filter(pk=order.pk).update(trader=trader)
    resting(worker, account, 2)
    result = kill_switch_engage(
        scope="trader",
        scope_value=str(trader.pk),
        actor="user:x",
        reason="t",
        source="api",
        broker_for=worker.broker_for,
    )
    assert result.cancelled == [order.client_order_id]


def test_without_a_broker_session_the_worker_cancels_on_the_event(worker, broker, account):
    order = resting(worker, account, 1)
    rm = user_with(Role.RISK_MANAGER, "rm")
    result = kill_switch_engage(scope="all", actor="user:rm", reason="fire", source="command", user=rm)
    assert order.client_order_id in result.failed and result.cancelled == []
    assert len(broker.open_orders()) == 1
    (event,) = [decode(bytes(r.message)) for r in Outbox.objects.filter(event_type="killswitch.changed")]
    worker.handle(event)
    assert broker.open_orders() == []
    order.refresh_from_db()
    assert order.status == "CANCELLED"
    assert worker.risk.trading_state(account.pk) == "HALTED"
    assert worker.risk.account(account.pk).open_orders == {}


def test_engaging_twice_is_one_engagement_and_engage_needs_a_reason(worker, account):
    x, y = user_with(Role.RISK_MANAGER, "x"), user_with(Role.RISK_MANAGER, "y")
    a = kill_switch_engage(scope="all", actor="user:x", reason="one", source="api", user=x)
    b = kill_switch_engage(scope="all", actor="user:y", reason="two", source="api", user=y)
    assert a.switch.pk == b.switch.pk and a.created and not b.created
    assert KillSwitch.objects.filter(engaged=True).count() == 1
    with pytest.raises(Exception, match="reason"):
        kill_switch_engage(scope="algo", scope_value="a", actor="user:x", reason=" ", source="api")


def test_release_needs_the_risk_role_and_a_reason_and_is_audited_and_published(worker, account):
    switch = kill_switch_engage(scope="account", scope_value=str(account.pk), actor="user:x", reason="r", source="api")
    trader = user_with(Role.TRADER, "tom")
    with pytest.raises(PermissionDenied):
        kill_switch_release(switch=switch.switch, user=trader, reason="please")
    risk = user_with(Role.RISK_MANAGER, "rhea")
    with pytest.raises(Exception, match="reason"):
        kill_switch_release(switch=switch.switch, user=risk, reason="")
    released = kill_switch_release(switch=switch.switch, user=risk, reason="all clear after review")
    assert not released.engaged and released.released_by == risk
    record = AuditRecord.objects.get(action="killswitch.released")
    assert record.payload_data["before"]["engaged"] is True and record.payload_data["after"]["engaged"] is False
    assert record.actor_id == "rhea"
    events = published()
    assert [e.engaged for e in events] == [True, False] and events[1].reason == "all clear after review"
    worker.handle(decode(bytes(Outbox.objects.filter(event_type="killswitch.changed").last().message)))
    assert worker.risk.trading_state(account.pk) == "ACTIVE"


def test_api_engage_and_release(worker, account):
    client = APIClient()
    trader = user_with(Role.TRADER, "tess")
    client.force_authenticate(trader)
    response = client.post("/api/trading/kill-switch/", {"scope": "all", "reason": "panic"}, format="json")
    assert response.status_code == 403 and response.json()["error"]["code"] == "kill_switch_scope_forbidden"
    risk = user_with(Role.RISK_MANAGER, "ron")
    client.force_authenticate(risk)
    response = client.post("/api/trading/kill-switch/", {"scope": "all", "reason": "panic"}, format="json")
    assert response.status_code == 201, response.content
    pk = response.json()["switch"]["id"]
    assert [s["id"] for s in client.get("/api/trading/kill-switch/").json()] == [pk]
    client.force_authenticate(trader)
    response = client.post(f"/api/trading/kill-switch/{pk}/release/", {"reason": "ok"}, format="json")
    assert response.status_code == 403 and response.json()["error"]["code"] == "kill_switch_release_forbidden"
    client.force_authenticate(risk)
    response = client.post(f"/api/trading/kill-switch/{pk}/release/", {"reason": "reviewed"}, format="json")
    assert response.status_code == 200 and response.json()["engaged"] is False
    client.force_authenticate(user_with(None, "nobody"))
    assert client.post("/api/trading/kill-switch/", {"scope": "all", "reason": "x"}, format="json").status_code == 403


def test_command_engage_list_release(worker, account, capsys):
    resting(worker, account, 1)
    user_with(Role.TRADER, "ops")
    call_command(
        "kill_switch", "engage", "--scope", "algo", "--value", "algo-1", "--reason", "bad model", "--user", "ops"
    )
    out = capsys.readouterr().out
    assert "engaged" in out and "still open" in out  # at the broker: the worker cancels it on the event
    call_command("kill_switch", "list")
    assert "algo algo-1" in capsys.readouterr().out
    with pytest.raises(CommandError, match="kill_switch_release_forbidden"):
        call_command("kill_switch", "release", "--scope", "algo", "--value", "algo-1", "--reason", "x", "--user", "ops")
    user_with(Role.RISK_MANAGER, "rm")
    call_command("kill_switch", "release", "--scope", "algo", "--value", "algo-1", "--reason", "fixed", "--user", "rm")
    assert not KillSwitch.objects.get().engaged


def test_losses_beyond_the_threshold_engage_the_kill_switch_automatically(broker, account):
    w = make_worker(broker, account, loss_threshold=Decimal(100)).start()
    w.handle(tick())
    w.handle(signal(side="BUY"))  # 2.5 lots at 1.10002
    w.handle(tick(bid="1.09900", ask="1.09902", at=T0 + timedelta(seconds=1)))
    w.handle(signal(side="SELL", price="1.09901", at=T0 + timedelta(seconds=1)))  # closes 2.5 at 1.09900: -255
    switch = KillSwitch.objects.get(engaged=True)
    assert (switch.scope, switch.scope_value) == ("account", str(account.pk))  # that account only
    assert switch.source == "automatic" and "loss_threshold" in switch.engage_reason
    assert w.risk.trading_state(account.pk) == "HALTED"
    assert AuditRecord.objects.filter(action="trading_breaker.open").exists()
    assert Outbox.objects.filter(event_type="alert.raised").exists()
