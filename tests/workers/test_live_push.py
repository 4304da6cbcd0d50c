"""The live-push stage against the real Redis channel layer: a batch goes to each group as one
frame in commit order, and a channel layer that does not take a frame in time costs that frame
(counted, logged, announced to the group by the next frame), never the stage (a Redis that is
down altogether: test_live_push_outage.py).

A stalled Redis is a TCP proxy in front of the real one that stops forwarding (the commands of a
``group_send`` wait in it, as they would behind a congested or paused server); the screen is a
second channel layer instance reading the group straight from Redis."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from urllib.parse import urlsplit, urlunsplit

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings
from prometheus_client import REGISTRY

from tests.conftest import service_unavailable
from tradeops.bus.runner import Backoff
from tradeops.core import groups
from tradeops.events import PositionChanged, make_event
from workers.live_push import LivePush


def _position(n: int):
    payload = PositionChanged(
        account_id=1,
        symbol="EURUSD",
        net_quantity=Decimal(n),
        average_price=Decimal("1.10123"),
        realised_pnl=Decimal("0"),
        ts=datetime(2026, 1, 5, 10, 0, n, tzinfo=UTC),
    )
    return make_event(payload, source="test", key="1")


class StallingProxy:
    """127.0.0.1:<port> -> the real Redis. ``stall()``: what clients send is held, not forwarded,
    until ``resume()``; a client that gave up meanwhile never gets its later commands through."""

    def __init__(self, host: str, port: int):
        self.target = (host, port)
        self.loop = asyncio.new_event_loop()
        self.flowing: asyncio.Event | None = None
        started = threading.Event()

        async def serve():
            self.flowing = asyncio.Event()
            self.flowing.set()
            self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
            self.port = self.server.sockets[0].getsockname()[1]
            started.set()

        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(serve(), self.loop)
        assert started.wait(10)

    async def _client(self, client_reader, client_writer):
        server_reader, server_writer = await asyncio.open_connection(*self.target)

        async def pipe(reader, writer, hold: bool):
            try:
                while data := await reader.read(65536):
                    if hold:
                        await self.flowing.wait()
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                writer.close()

        await asyncio.gather(
            pipe(client_reader, server_writer, hold=True), pipe(server_reader, client_writer, hold=False)
        )

    def stall(self):
        self.loop.call_soon_threadsafe(self.flowing.clear)

    def resume(self):
        self.loop.call_soon_threadsafe(self.flowing.set)

    def close(self):
        async def shut():
            self.server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shut(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture
def redis_url():
    import redis

    url = settings.REDIS_URL
    if not url:
        service_unavailable("needs Redis (REDIS_URL)")
    try:
        redis.Redis.from_url(url, socket_timeout=3).ping()
    except redis.RedisError as exc:
        service_unavailable(f"Redis at {url}: {exc}")
    return url


def _layer(url: str, prefix: str):
    from channels_redis.core import RedisChannelLayer

    return RedisChannelLayer(hosts=[{"address": url, "socket_timeout": 30}], prefix=prefix)


def _dropped() -> float:
    return REGISTRY.get_sample_value("tradeops_live_push_dropped_total") or 0.0


def _close_on(loop, layer) -> None:
    asyncio.run_coroutine_threadsafe(layer.close_pools(), loop).result(10)


def test_a_batch_goes_to_its_group_as_one_frame_in_commit_order(redis_url):
    prefix = f"test-live-{uuid.uuid4().hex[:8]}"
    screen = _layer(redis_url, prefix)
    push = LivePush(_layer(redis_url, prefix))
    events = [_position(n) for n in range(3)]

    async def scenario():
        channel = await screen.new_channel()
        await screen.group_add(groups.LIVE_TRADING, channel)
        try:
            assert push.handle_batch(events) == []
            await asyncio.to_thread(push.flush)
            message = await asyncio.wait_for(screen.receive(channel), 10)
            assert message["type"] == "live.frame"
            frame = json.loads(message["text"])
            assert frame["type"] == "batch" and "gap_since" not in frame
            assert [e["event_id"] for e in frame["events"]] == [str(e.event_id) for e in events]
            assert [e["payload"]["net_quantity"] for e in frame["events"]] == ["0", "1", "2"]
            # one event alone is sent as the event itself (what the page applied before batches)
            push.handle(_position(9))
            await asyncio.to_thread(push.flush)
            single = json.loads((await asyncio.wait_for(screen.receive(channel), 10))["text"])
            assert single["type"] == "position.changed" and single["pushed_at"]
        finally:
            await screen.flush()
            await screen.close_pools()

    async_to_sync(scenario)()
    _close_on(push.loop, push.channel_layer)


def test_a_send_timeout_drops_the_frame_and_the_stage_goes_on(redis_url, caplog):
    """Redis stalls under the stage: the frame waits ``send_timeout`` and is dropped (metric,
    warning), the stage is not stopped; once Redis answers again the next frame gets through
    and tells the group's pages where to catch up from (the first event dropped)."""
    parts = urlsplit(redis_url)
    proxy = StallingProxy(parts.hostname or "127.0.0.1", parts.port or 6379)
    via_proxy = urlunsplit(parts._replace(netloc=f"127.0.0.1:{proxy.port}"))
    prefix = f"test-live-{uuid.uuid4().hex[:8]}"
    screen = _layer(redis_url, prefix)
    push = LivePush(
        _layer(via_proxy, prefix), send_timeout=0.5, frame_interval=0.0, backoff=Backoff(initial=0.1, maximum=0.1)
    )
    first, lost, after = _position(1), _position(2), _position(3)
    before = _dropped()

    async def scenario():
        channel = await screen.new_channel()
        await screen.group_add(groups.LIVE_TRADING, channel)
        try:
            push.handle(first)
            assert await asyncio.to_thread(push.flush)
            got = json.loads((await asyncio.wait_for(screen.receive(channel), 10))["text"])
            assert got["event_id"] == str(first.event_id)

            proxy.stall()
            with caplog.at_level(logging.WARNING, logger="workers.live_push"):
                assert push.handle(lost) == []  # handed over; the stage does not wait for Redis
                assert await asyncio.to_thread(push.flush)  # the sender gave up on the frame
            assert push.dropped == 1
            assert _dropped() - before == 1 and push.down_since is not None
            assert any(
                "unreachable" in r.getMessage() and groups.LIVE_TRADING in r.getMessage() for r in caplog.records
            )
            gap = push.gap_since[groups.LIVE_TRADING]

            proxy.resume()
            await asyncio.sleep(0.2)  # past the back-off: the next frame tries the layer again
            push.handle(after)
            assert await asyncio.to_thread(push.flush)
            frame = json.loads((await asyncio.wait_for(screen.receive(channel), 10))["text"])
            assert frame["type"] == "batch" and frame["gap_since"] == gap
            assert [e["event_id"] for e in frame["events"]] == [str(after.event_id)]
            assert gap < frame["events"][0]["pushed_at"]  # the pages catch up from before the next event
            assert groups.LIVE_TRADING not in push.gap_since and push.down_since is None
            assert push.frames == 2
        finally:
            proxy.resume()
            await screen.flush()
            await screen.close_pools()

    try:
        async_to_sync(scenario)()
    finally:
        _close_on(push.loop, push.channel_layer)
        proxy.close()


def test_a_starting_stage_tells_every_group_to_catch_up_from_what_its_pages_saw(redis_url):
    """A stage process commits offsets once events are queued, so one that died may have
    committed updates it never sent. The next one to start sends every group a frame of no
    events with ``gap_since`` (now): each page catches up from the earlier of that and its own
    cursor, i.e. from the last update it saw (static/js/live.js)."""
    prefix = f"test-live-{uuid.uuid4().hex[:8]}"
    screen = _layer(redis_url, prefix)
    push = LivePush(_layer(redis_url, prefix))

    async def scenario():
        channels = {}
        for group in (groups.LIVE_TRADING, groups.LIVE_COMPLIANCE):
            channels[group] = await screen.new_channel()
            await screen.group_add(group, channels[group])
        try:
            before = datetime.now(UTC).isoformat()
            push.resync()
            assert await asyncio.to_thread(push.flush)
            for group, channel in channels.items():
                frame = json.loads((await asyncio.wait_for(screen.receive(channel), 10))["text"])
                assert frame["type"] == "batch" and frame["events"] == [], group
                assert frame["gap_since"] >= before, group
            assert push.gap_since == {} and push.down_since is None
            # what follows goes as usual: no gap announced twice
            push.handle(_position(1))
            assert await asyncio.to_thread(push.flush)
            single = json.loads((await asyncio.wait_for(screen.receive(channels[groups.LIVE_TRADING]), 10))["text"])
            assert single["type"] == "position.changed"
        finally:
            await screen.flush()
            await screen.close_pools()

    async_to_sync(scenario)()
    _close_on(push.loop, push.channel_layer)


def test_a_resync_the_layer_does_not_take_rides_on_the_next_frame(redis_url):
    """Redis does not take the start-up frame: the group keeps its ``gap_since`` and the first
    frame that gets through carries it."""
    parts = urlsplit(redis_url)
    proxy = StallingProxy(parts.hostname or "127.0.0.1", parts.port or 6379)
    via_proxy = urlunsplit(parts._replace(netloc=f"127.0.0.1:{proxy.port}"))
    prefix = f"test-live-{uuid.uuid4().hex[:8]}"
    screen = _layer(redis_url, prefix)
    push = LivePush(
        _layer(via_proxy, prefix), send_timeout=0.5, frame_interval=0.0, backoff=Backoff(initial=0.1, maximum=0.1)
    )

    async def scenario():
        channel = await screen.new_channel()
        await screen.group_add(groups.LIVE_TRADING, channel)
        try:
            proxy.stall()
            push.resync()
            assert await asyncio.to_thread(push.flush)
            gap = push.gap_since[groups.LIVE_TRADING]
            assert push.down_since is not None
            proxy.resume()
            await asyncio.sleep(0.2)  # past the back-off
            event = _position(5)
            push.handle(event)
            assert await asyncio.to_thread(push.flush)
            frame = json.loads((await asyncio.wait_for(screen.receive(channel), 10))["text"])
            while frame.get("events") == [] and "gap_since" in frame:  # a stalled resync let through late
                frame = json.loads((await asyncio.wait_for(screen.receive(channel), 10))["text"])
            assert frame["type"] == "batch" and frame["gap_since"] == gap
            assert [e["event_id"] for e in frame["events"]] == [str(event.event_id)]
        finally:
            proxy.resume()
            await screen.flush()
            await screen.close_pools()

    try:
        async_to_sync(scenario)()
    finally:
        _close_on(push.loop, push.channel_layer)
        proxy.close()
