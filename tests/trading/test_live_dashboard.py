"""The live dashboard: WebSocket auth and role-scoped groups, then real Chromium end to end."""

from __future__ import annotations

import os
import shutil
import uuid
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
from asgiref.sync import async_to_sync
from channels.testing import ChannelsLiveServerTestCase, WebsocketCommunicator
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from tradeops.asgi import application
from tradeops.core.roles import Role
from tradeops.events import Alert, KillSwitchChanged, PositionChanged, make_event
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
        got_officer = [await officer.receive_json_from(timeout=5), await officer.receive_json_from(timeout=5)]
        assert {m["type"] for m in got_officer} == {"alert.raised", "killswitch.changed"}
        got_trader = await trader.receive_json_from(timeout=5)
        assert got_trader["type"] == "killswitch.changed"  # the kill switch, never the alert
        assert await trader.receive_nothing(timeout=0.3)
        await trader.disconnect()
        await officer.disconnect()

    async_to_sync(scenario)()


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


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@needs_redis
@pytest.mark.browser
@pytest.mark.skipif(
    not os.path.exists(CHROMIUM), reason="needs Debian's chromium (scripts/services.sh / .ci/run install it)"
)
class LiveDashboardInChromium(ChannelsLiveServerTestCase):
    """Log in, open the dashboard in headless Chromium, push a position event, see it appear."""

    serve_static = False

    def test_position_update_appears_live(self):
        from django.test import Client
        from playwright.sync_api import sync_playwright

        user = _user(Role.COMPLIANCE_OFFICER)
        client = Client()
        client.force_login(user)
        cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
            )
            try:
                context = browser.new_context()
                context.add_cookies(
                    [{"name": settings.SESSION_COOKIE_NAME, "value": cookie, "url": self.live_server_url}]
                )
                page = context.new_page()
                page.goto(self.live_server_url + "/dashboard/")
                page.wait_for_selector("#status.live", timeout=15000)
                event = PositionChanged(
                    account_id=42,
                    symbol="EURUSD",
                    net_quantity=D("1.50"),
                    average_price=D("1.10012"),
                    realised_pnl=D("-12.5"),
                    unrealised_pnl=D("30"),
                    ts=NOW,
                )
                # Playwright's sync API owns this thread's event loop: push from another thread.
                _in_thread(lambda: LivePush().handle(make_event(event, source="test", key="42")))
                _in_thread(lambda: LivePush().handle(_alert()))
                row = page.wait_for_selector('#positions tr[data-key="42:EURUSD"]', timeout=10000)
                assert "1.50" in row.inner_text() and "-12.50" in row.inner_text()
                page.wait_for_selector("#alerts tbody tr", timeout=10000)
                assert "spoofing" in page.inner_text("#alerts")
            finally:
                browser.close()
