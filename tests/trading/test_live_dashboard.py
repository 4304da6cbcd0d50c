"""The live screens' WebSocket: authentication and role-scoped groups (the screens in Chromium:
tests/screens/test_browser.py)."""

from __future__ import annotations

import asyncio
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
        anon, ok = await _bounded(_connect(AnonymousUser()), "the anonymous screen's connect")
        assert not ok
        communicators = [anon]
        try:
            trader, ok = await _bounded(_connect(await _async_user(Role.TRADER)), "the trader's connect")
            communicators.append(trader)
            officer, ok2 = await _bounded(_connect(await _async_user(Role.COMPLIANCE_OFFICER)), "the officer's connect")
            communicators.append(officer)
            assert ok and ok2
            assert (await _bounded(trader.receive_json_from(), "the trader's hello"))["groups"] == ["live.trading"]
            hello = await _bounded(officer.receive_json_from(), "the officer's hello")
            assert hello["groups"] == ["live.trading", "live.compliance"]
            push = LivePush()
            await _async(push.handle)(_alert())
            kill = KillSwitchChanged(scope="all", engaged=True, actor="risk", reason="test", ts=NOW)
            await _async(push.handle)(make_event(kill, source="t", key="all"))
            # the officer is in both groups: the alert, and the kill switch once from each
            got_officer = await _bounded(_events(officer, 3), "the officer's three events")
            assert sorted(m["type"] for m in got_officer) == [
                "alert.raised",
                "killswitch.changed",
                "killswitch.changed",
            ]
            got_trader = await _bounded(_events(trader, 1), "the trader's event")
            assert [m["type"] for m in got_trader] == ["killswitch.changed"]  # the kill switch, never the alert
            assert await _bounded(trader.receive_nothing(timeout=0.3), "the trader's silence")
        finally:
            # Every screen goes, the refused one too: none is left for async_to_sync's loop to
            # cancel on its way out, where that wait has no bound (docs/screens.md, "An
            # intermittent hang of the live screens' test").
            for communicator in communicators:
                await _bounded(communicator.disconnect(), "a screen's disconnect")
            await _bounded(_settled(asyncio.current_task()), "the screens' consumers ending")

    async_to_sync(scenario)()


BOUND_S = 20.0  # far past any step's normal time (< 1 s); a step that takes this long is stuck


async def _bounded(awaitable, what: str, timeout: float = BOUND_S):
    """Await ``awaitable`` for ``timeout`` seconds at most, and fail with ``what`` and the stacks of
    the tasks still running if it did not finish. Not ``asyncio.wait_for``: on a timeout it waits,
    without a bound, for the cancelled awaitable to end, and a channels_redis receive caught in a
    Redis read has been seen to outlive its cancellation (the hang this guards against). Before
    failing, this loop's Redis connections are closed: a read stuck on one ends with an error, so
    the loop ``async_to_sync`` runs on can finish and the failure is reported, not a hang."""
    task = asyncio.ensure_future(awaitable)
    done, _ = await asyncio.wait({task}, timeout=timeout)
    if done:
        return task.result()
    stacks = _task_stacks()
    await _close_this_loops_redis()
    task.cancel()
    await asyncio.wait({task}, timeout=timeout)
    raise AssertionError(f"{what}: not done after {timeout:.0f} s; tasks still running:\n{stacks}")


async def _settled(scenario: asyncio.Task) -> None:
    """Wait for every task on this loop but ``scenario`` (the consumers, their channel-layer
    receives) to end."""
    while others := asyncio.all_tasks() - {asyncio.current_task(), scenario}:
        await asyncio.wait(others)


def _task_stacks() -> str:
    import io

    out = io.StringIO()
    for task in asyncio.all_tasks():
        if task is not asyncio.current_task():
            out.write(f"{task!r}\n")
            task.print_stack(limit=5, file=out)
    return out.getvalue()


async def _close_this_loops_redis() -> None:
    """Close the default channel layer's Redis connections of this event loop only (never
    ``close_pools()``: it also closes those of other loops, the live-push stage's among them,
    from the wrong loop)."""
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    loop_layer = getattr(layer, "_layers", {}).pop(asyncio.get_running_loop(), None)
    if loop_layer is not None:
        await loop_layer.flush()


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


@needs_redis
def test_a_screens_channel_layer_receive_ends_when_cancelled_as_a_redis_command_goes_out(monkeypatch):
    """A screen's consumer whose page goes away is cancelled in the middle of the channel layer's
    receive. Cancelled just as one of its Redis commands is written, the receive must still end:
    with a socket timeout redis-py writes through ``asyncio.wait_for``, which on Python 3.11 loses
    that cancellation, and the receive stayed in channels_redis's BZPOPMIN loop for good (the
    live screens' test then hung until pytest-timeout: docs/screens.md, "An intermittent hang of
    the live screens' test"). Deterministic: the cancel is made from inside the write's drain."""
    from channels.layers import get_channel_layer

    state: dict = {}
    drain = asyncio.StreamWriter.drain

    async def drain_then_cancel(writer):
        await drain(writer)
        receiving = state.pop("receiving", None)  # the first write of the receive only
        if receiving is not None:
            receiving.cancel()

    async def scenario() -> str:
        layer = get_channel_layer()
        channel = await layer.new_channel()
        try:
            monkeypatch.setattr(asyncio.StreamWriter, "drain", drain_then_cancel)
            receiving = asyncio.ensure_future(layer.receive(channel))
            state["receiving"] = receiving
            # BZPOPMIN gives up after brpop_timeout (5 s) and a receive that lost its cancellation
            # starts another: two rounds are more than enough for one that did not
            done, _ = await asyncio.wait({receiving}, timeout=2 * layer.brpop_timeout + 2)
            monkeypatch.setattr(asyncio.StreamWriter, "drain", drain)
            assert "receiving" not in state, "the receive wrote nothing to Redis"
            if not done:
                await _close_this_loops_redis()  # let the stuck receive end so this loop can close
                await asyncio.wait({receiving}, timeout=layer.brpop_timeout + 2)
                if receiving.done() and not receiving.cancelled():
                    receiving.exception()  # the closed connection's error: retrieved, not logged
                return "still receiving"
            return "cancelled" if receiving.cancelled() else f"ended: {receiving.exception()!r}"
        finally:
            monkeypatch.setattr(asyncio.StreamWriter, "drain", drain)
            await _close_this_loops_redis()

    assert async_to_sync(scenario)() == "cancelled"


@pytest.mark.django_db(transaction=True)
def test_operator_alerts_reach_the_trading_screens_and_surveillance_alerts_do_not():
    """A reconciliation mismatch is pushed to a trader's screen (the console's operator alerts);
    the spoofing alert pushed beside it still reaches only the compliance officer's."""

    async def scenario():
        communicators = []
        try:
            trader, ok = await _bounded(_connect(await _async_user(Role.RISK_MANAGER)), "the risk manager's connect")
            communicators.append(trader)
            officer, ok2 = await _bounded(_connect(await _async_user(Role.COMPLIANCE_OFFICER)), "the officer's connect")
            communicators.append(officer)
            assert ok and ok2
            await _bounded(trader.receive_json_from(), "the risk manager's hello")
            await _bounded(officer.receive_json_from(), "the officer's hello")
            push = LivePush()
            await _async(push.handle)(_alert())  # spoofing: surveillance's
            mismatch = Alert(alert_type="reconciliation_position_mismatch", severity="high", account="7", ts=NOW)
            await _async(push.handle)(make_event(mismatch, source="execution", key="7"))
            got_trader = await _bounded(_events(trader, 1), "the risk manager's event")
            assert [m["payload"]["alert_type"] for m in got_trader] == ["reconciliation_position_mismatch"]
            assert await _bounded(trader.receive_nothing(timeout=0.3), "the risk manager's silence")
            # the officer is in both groups: spoofing once, the operator alert once from each
            got_officer = await _bounded(_events(officer, 3), "the officer's three events")
            assert sorted(m["payload"]["alert_type"] for m in got_officer) == [
                "reconciliation_position_mismatch",
                "reconciliation_position_mismatch",
                "spoofing",
            ]
        finally:
            for communicator in communicators:
                await _bounded(communicator.disconnect(), "a screen's disconnect")
            await _bounded(_settled(asyncio.current_task()), "the screens' consumers ending")

    async_to_sync(scenario)()
