"""The live screens' WebSocket: authentication and role-scoped groups (the screens in Chromium:
tests/screens/test_browser.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from tradeops.asgi import application
from tradeops.core.roles import Role
from tradeops.events import Alert, KillSwitchChanged, make_event
from workers.live_push import LivePush

NOW = datetime(2026, 1, 5, 10, 0, 0, 123456, tzinfo=UTC)
needs_redis = pytest.mark.skipif(not settings.REDIS_URL, reason="needs Redis (REDIS_URL) so processes share a layer")


def _user(role: Role | None):
    user = get_user_model().objects.create_user(f"u-{uuid.uuid4().hex[:8]}", password="a-long-test-password")
    if role:
        Group.objects.get_or_create(name=str(role))[0].user_set.add(user)
    return user


async def _connect(user):
    communicator = WebsocketCommunicator(application, "/ws/live/", headers=[(b"origin", b"http://localhost")])
    communicator.scope["user"] = user
    connected, _ = await communicator.connect()
    return communicator, connected


def _alert():
    return make_event(Alert(alert_type="spoofing", symbol="EURUSD", account="7000001", ts=NOW), source="t", key="x")


@pytest.mark.django_db(transaction=True)
def test_anonymous_is_refused_and_traders_never_get_surveillance_alerts():
    from django.contrib.auth.models import AnonymousUser

    async def scenario():
        anon, ok = await _connect(AnonymousUser())
        assert not ok
        trader, ok = await _connect(await _async_user(Role.TRADER))
        officer, ok2 = await _connect(await _async_user(Role.COMPLIANCE_OFFICER))
        assert ok and ok2
        assert (await trader.receive_json_from())["groups"] == ["live.trading"]
        assert (await officer.receive_json_from())["groups"] == ["live.trading", "live.compliance"]
        push = LivePush()
        await _async(push.handle)(_alert())
        kill = KillSwitchChanged(scope="all", engaged=True, actor="risk", reason="test", ts=NOW)
        await _async(push.handle)(make_event(kill, source="t", key="all"))
        # the officer is in both groups: the alert, and the kill switch once from each
        got_officer = await _events(officer, 3)
        assert sorted(m["type"] for m in got_officer) == ["alert.raised", "killswitch.changed", "killswitch.changed"]
        got_trader = await _events(trader, 1)
        assert [m["type"] for m in got_trader] == ["killswitch.changed"]  # the kill switch, never the alert
        assert await trader.receive_nothing(timeout=0.3)
        await trader.disconnect()
        await officer.disconnect()

    async_to_sync(scenario)()


async def _events(communicator, n: int) -> list[dict]:
    """The next ``n`` events, from frames of one event or batches of several (workers/live_push.py)."""
    events: list[dict] = []
    while len(events) < n:
        frame = await communicator.receive_json_from(timeout=5)
        events.extend(frame["events"] if frame["type"] == "batch" else [frame])
    return events


def _async(fn):
    from asgiref.sync import sync_to_async

    return sync_to_async(fn, thread_sensitive=False)


async def _async_user(role):
    from channels.db import database_sync_to_async

    return await database_sync_to_async(_user)(role)


def _in_thread(fn) -> None:
    import threading

    thread = threading.Thread(target=fn)
    thread.start()
    thread.join(10)
