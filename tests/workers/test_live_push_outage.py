"""The live-push stage rides out a Redis outage (issue 18): on a throwaway Redis of its own
(never the shared one), stopped and started again, the stage drops the screens' updates while
Redis is down (counted, one warning at each end, an exponential back-off between tries, nothing
raised so nothing is dead-lettered), resumes when it answers, and what it dropped is what a page
gets when it reconnects and catches up from the last event it saw."""

from __future__ import annotations

import json
import logging
import shutil
import socket
import subprocess
import time
import uuid
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync

from tradeops.bus.runner import Backoff
from tradeops.core import groups

pytestmark = [pytest.mark.redis, pytest.mark.postgres]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ThrowawayRedis:
    """A redis-server on its own port and folder, no persistence (a restart loses everything, as
    a Redis without a volume does)."""

    def __init__(self, directory):
        self.port = _free_port()
        self.directory = directory
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        argv = [shutil.which("redis-server") or "redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        argv += ["--save", "", "--appendonly", "no", "--dir", str(self.directory)]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"redis-server on {self.port} did not answer")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


@pytest.fixture
def redis_server(tmp_path):
    if shutil.which("redis-server") is None:
        from tests.conftest import service_unavailable

        service_unavailable("redis-server is not installed")
    server = ThrowawayRedis(tmp_path)
    server.start()
    yield server
    server.stop()


def _breaker_move(new: str, old: str, at):
    """A breaker move recorded as the worker records it (audit + outbox): a real trading event."""
    from tradeops.events import decode
    from tradeops.outbox.models import Outbox
    from trading.controls.services import trading_breaker_change_record

    trading_breaker_change_record(
        old=old,
        new=new,
        reason="test",
        at=at,
        source="execution-eu",
        actor="service:execution",
        auto_kill_on_loss=False,
    )
    row = Outbox.objects.filter(event_type="breaker.changed").order_by("-id").first()
    return decode(bytes(row.message))


@pytest.mark.django_db(transaction=True)
def test_live_push_drops_updates_while_redis_is_down_and_resumes(redis_server, caplog):
    from channels_redis.core import RedisChannelLayer
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from tradeops.core.clock import utcnow
    from tradeops.core.roles import Role
    from tradeops.observability import metrics
    from trading.consumers import catch_up_events
    from workers.live_push import LivePush

    layer = RedisChannelLayer(
        hosts=[{"address": f"redis://127.0.0.1:{redis_server.port}/0"}], prefix=f"t{uuid.uuid4().hex[:6]}"
    )
    attempts = []
    send = layer.group_send

    async def counted_send(group, message):
        attempts.append(message["text"])  # a frame (workers/live_push.py)
        await send(group, message)

    layer.group_send = counted_send
    push = LivePush(layer, backoff=Backoff(initial=0.3, maximum=0.3))
    screen = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(groups.LIVE_TRADING, screen)

    def received():
        frame = json.loads(async_to_sync(layer.receive)(screen)["text"])
        return frame["events"][-1] if frame["type"] == "batch" else frame

    trader = get_user_model().objects.create_user(f"t-{uuid.uuid4().hex[:6]}", password="a-long-test-password")
    Group.objects.get_or_create(name=str(Role.TRADER))[0].user_set.add(trader)
    at = utcnow() - timedelta(minutes=5)

    first = _breaker_move("open", "closed", at)
    push.handle(first)
    seen = received()
    assert seen["event_id"] == str(first.event_id)
    cursor = seen["pushed_at"]  # what the page keeps: where it catches up from

    dropped_before = metrics.live_push_dropped._value.get()
    redis_server.stop()
    caplog.set_level(logging.WARNING, logger="workers.live_push")
    during = [_breaker_move(new, old, at) for old, new in [("open", "half_open"), ("half_open", "open")] * 5]
    for event in during:
        assert push.handle(event) == []  # nothing raised: the runner dead-letters nothing
    assert push.flush()  # the frames are sent (here: dropped) by the stage's sender
    assert push.down_since is not None and push.dropped == len(during)
    assert metrics.live_push_dropped._value.get() - dropped_before == len(during)
    # Backed off: the first update tried Redis, the rest (within 0.3 s) did not.
    assert len(attempts) < 1 + len(during), attempts
    unreachable = [r for r in caplog.records if "channel layer unreachable" in r.getMessage()]
    assert len(unreachable) == 1, [r.getMessage() for r in caplog.records]

    redis_server.start()  # a fresh Redis: the groups are gone; the page re-joins as it reconnects
    async_to_sync(layer.group_add)(groups.LIVE_TRADING, screen)
    time.sleep(0.35)  # past the back-off
    after = _breaker_move("half_open", "open", at)
    push.handle(after)
    assert received()["event_id"] == str(after.event_id)
    assert push.flush()
    assert push.down_since is None
    back = [r.getMessage() for r in caplog.records if "channel layer back after" in r.getMessage()]
    assert len(back) == 1 and f"{len(during)} screen updates dropped" in back[0], back

    # The page reconnects and asks for everything since the last event it saw: it gets what the
    # stage dropped (and what came after), in order, rebuilt from the system of record (catch-up
    # reaches a little further back, so it may repeat the last seen one: upserts on the page).
    from datetime import datetime

    caught = catch_up_events(user=trader, since=datetime.fromisoformat(cursor))
    moves = [(e["payload"]["old"], e["payload"]["new"]) for e in caught if e["type"] == "breaker.changed"]
    expected = [(e.payload.old, e.payload.new) for e in [*during, after]]
    assert moves[-len(expected) :] == expected and len(moves) <= len(expected) + 1, moves
