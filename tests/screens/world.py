"""A small firm for the screens' tests: users of every role, an instrument, two accounts, limits,
an order with its fill (through the real trading services), a surveillance case with alerts
(through the real compliance services), a pending rule change and a validated report run.

``pump_live`` plays the part of the outbox relay and the live-push stage: it publishes the
unsent outbox rows' events to the Channels groups exactly as ``workers.live_push`` does."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from tradeops.core.identifiers import lei_with_check_digits
from tradeops.core.roles import Role

PASSWORD = "a-long-test-password-1"
T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


def user_make(username: str, *roles: Role, staff: bool = False, superuser: bool = False):
    User = get_user_model()
    if superuser:
        user = User.objects.create_superuser(username=username, password=PASSWORD, email=f"{username}@example.com")
    else:
        user = User.objects.create_user(username=username, password=PASSWORD, is_staff=staff)
    for role in roles:
        user.groups.add(Group.objects.get_or_create(name=str(role))[0])
    return user


@dataclass
class World:
    users: dict
    instrument: object
    accounts: list
    order: object
    case: object
    rule: object


def instrument_make(symbol="EURUSD"):
    from trading.models import Instrument

    return Instrument.objects.create(
        symbol=symbol,
        description="Euro vs US Dollar",
        asset_class="FX",
        currency="EUR",
        quote_currency="USD",
        digits=5,
        tick_size=D("0.00001"),
        contract_size=D(100000),
        min_volume=D("0.01"),
        max_volume=D("100"),
        volume_step=D("0.01"),
        venue_mic="XOFF",
    )


def account_make(name: str, login: int):
    from trading.models import TradingAccount

    return TradingAccount.objects.create(
        name=name,
        mt5_login=login,
        mt5_server="test-server",
        firm_lei=lei_with_check_digits("TRADEOPSTEST000000"),
        client_id=f"CLIENT-{login}",
        beneficial_owner=f"OWNER-{login}",
    )


def order_filled(
    *,
    account,
    instrument,
    side="BUY",
    quantity=D("1.25"),
    price=D("1.10123"),
    at=None,
    coid=None,
    arrival_bid=None,
    arrival_ask=None,
):
    """An order through the trading services, filled in full: order, fill and position rows, the
    audit records and the outbox events, as the execution worker writes them. ``arrival_bid`` and
    ``arrival_ask``: the touch the order arrived on (None: a fill recorded before trading 0009)."""
    from trading.orders import services
    from trading.orders.plan import FillDraft

    at = at or T0
    coid = coid or f"T{uuid.uuid4().hex[:16]}"
    order, _created = services.order_create(
        client_order_id=coid,
        account=account,
        instrument=instrument,
        side=side,
        quantity=quantity,
        algo_id="algo-test",
        at=at,
    )
    order = services.order_transition(order=order, to="RISK_APPROVED", at=at)
    order = services.order_transition(order=order, to="SUBMITTED", at=at)
    services.execution_record(
        order=order,
        fill=FillDraft(
            broker_deal_id=f"D{uuid.uuid4().hex[:10]}",
            quantity=quantity,
            price=price,
            executed_at=at + timedelta(milliseconds=40),
            arrival_mid=price - D("0.00002"),
            arrival_bid=arrival_bid,
            arrival_ask=arrival_ask,
        ),
    )
    order.refresh_from_db()
    return order


def spoofing_alert(*, account_id: str, order_ids: list[str], start=T0):
    """An alert dict as surveillance records it (the spoofing detector's evidence shape)."""
    placed = start.isoformat()
    return {
        "alert_type": "spoofing",
        "severity": "high",
        "account": account_id,
        "owner": f"OWNER-{account_id}",
        "symbol": "EURUSD",
        "order_ids": order_ids,
        "score": 0.91,
        "start": placed,
        "end": (start + timedelta(seconds=9)).isoformat(),
        "evidence": {
            "fill": {
                "order_id": order_ids[-1],
                "side": "buy",
                "qty": 1.0,
                "price": 1.10123,
                "ts": (start + timedelta(seconds=6)).isoformat(),
            },
            "cancelled_orders": [
                {
                    "order_id": oid,
                    "side": "sell",
                    "qty": 5.0,
                    "price": 1.1016 + n * 0.0001,
                    "away_from_touch_bps": 2.5,
                    "placed": (start + timedelta(seconds=n)).isoformat(),
                    "cancelled": (start + timedelta(seconds=8)).isoformat(),
                }
                for n, oid in enumerate(order_ids[:-1])
            ],
            "size_ratio": 4.2,
            "min_size_ratio": 3.0,
        },
    }


def world_build() -> World:
    from compliance.services import alerts_record, compliance_rule_approve, compliance_rule_propose
    from trading.controls.services import risk_limit_save

    users = {
        "trader": user_make("tina", Role.TRADER),
        "risk": user_make("rick", Role.RISK_MANAGER),
        "officer": user_make("olga", Role.COMPLIANCE_OFFICER, staff=True),
        "officer2": user_make("oscar", Role.COMPLIANCE_OFFICER, staff=True),
        "auditor": user_make("audrey", Role.AUDITOR),
        "nobody": user_make("nora"),
        "admin": user_make("adam", superuser=True),
    }
    instrument = instrument_make()
    accounts = [account_make("Alpha fund", 7100001), account_make("Beta book", 7100002)]
    risk_limit_save(actor="user:rick", account=accounts[0], max_gross_exposure=D("1000000"), max_position_lots=D("2"))
    order = order_filled(account=accounts[0], instrument=instrument)
    alerts_record(
        alerts=[spoofing_alert(account_id=str(accounts[0].pk), order_ids=["s1", "s2", order.client_order_id])],
        source="surveillance-stream",
    )
    from compliance.models import Case

    case = Case.objects.get()
    active = compliance_rule_propose(
        proposed_by=users["officer"],
        rule_type="max_order_value",
        parameters={"max_value": "500000"},
        code="max-order-value-firm",
        reason="initial limit",
    )
    compliance_rule_approve(rule=active, approver=users["officer2"], note="agreed")
    pending = compliance_rule_propose(
        proposed_by=users["officer"],
        rule_type="max_order_value",
        parameters={"max_value": "250000"},
        code="max-order-value-firm",
        reason="halve it after the review",
    )
    return World(users=users, instrument=instrument, accounts=accounts, order=order, case=case, rule=pending)


# How long the harness lets the channel layer take a frame. The stage's own SEND_TIMEOUT_S (2 s)
# drops a frame the layer is slow to take and counts on the next frame's ``gap_since`` to make the
# pages catch up; the harness's push is one-shot, so a frame dropped on a loaded machine was simply
# lost and a page waited in vain for it (the kill switch browser test, once). Here nothing is
# dropped: a slow layer is waited for, and a frame that still does not go fails loudly.
PUMP_SEND_TIMEOUT_S = 30.0


def pump_live() -> int:
    """Publish the unsent outbox rows to the live screens (what the relay and the live-push
    stage do between them) and mark them sent. Returns how many events went out. Raises
    ``AssertionError`` if the channel layer did not take them all (never a silent drop)."""
    from tradeops.core.clock import utcnow
    from tradeops.events import decode
    from tradeops.outbox.models import Outbox
    from tradeops.outbox.services import outbox_mark_sent
    from workers.live_push import LivePush

    rows = list(Outbox.objects.filter(sent_at__isnull=True).order_by("id"))
    if not rows:
        return 0
    push = LivePush(send_timeout=PUMP_SEND_TIMEOUT_S)
    push.handle_batch([decode(bytes(row.message)) for row in rows])
    # the frames are out before the caller looks at a screen
    drained = push.flush(timeout=2 * PUMP_SEND_TIMEOUT_S)
    assert drained and not push.dropped, f"live push: {push.dropped} screen updates dropped (drained: {drained})"
    outbox_mark_sent(ids=[r.id for r in rows], at=utcnow())
    return len(rows)


async def live_connect(user):
    """An open screen of ``user`` on the desk's live socket (``/ws/live/``), past its hello."""
    from channels.testing import WebsocketCommunicator

    from tradeops.asgi import application

    communicator = WebsocketCommunicator(application, "/ws/live/", headers=[(b"origin", b"http://localhost")])
    communicator.scope["user"] = user
    connected, _ = await communicator.connect()
    assert connected
    assert (await communicator.receive_json_from())["type"] == "hello"
    return communicator


async def live_received(communicator, count: int) -> list[dict]:
    """The next ``count`` events pushed to an open screen (frames of one or a batch)."""
    got: list[dict] = []
    while len(got) < count:
        frame = await communicator.receive_json_from(timeout=5)
        got += frame["events"] if frame["type"] == "batch" else [frame]
    return got
