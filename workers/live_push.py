"""Runner: forwards trading-events and compliance-events to the Channels groups of the live
screens. No business rule here: it picks the group by topic and sends the decoded event.

A channel layer (Redis) outage is ridden out, never dead-lettered: a live update is worth
something only now, and every one of them is recorded (outbox) before it reaches this stage. So
while the layer does not answer, the stage drops the screens' updates (counted in
``tradeops_live_push_dropped_total``, one warning when the outage starts, one when it ends),
tries the layer again after an exponential back-off (0.5 s doubling to 30 s), keeps consuming
and committing, and resumes as soon as a send succeeds. Nothing stale is pushed afterwards: the
pages reconnect and catch up from the last event they saw (``trading/consumers.py``).
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

import msgspec
from channels.layers import get_channel_layer
from redis.exceptions import RedisError

from tradeops.bus.runner import Backoff
from tradeops.core import groups
from tradeops.events import Envelope, KillSwitchChanged, Topic
from tradeops.observability import metrics

logger = logging.getLogger(__name__)

# The channel layer unreachable, refusing or hung (Redis down, restarting, a send past its
# timeout): an outage of the screens' transport, not a fault of the event.
LAYER_ERRORS = (RedisError, OSError, TimeoutError)

GROUP_BY_TOPIC = {Topic.TRADING: groups.LIVE_TRADING, Topic.COMPLIANCE: groups.LIVE_COMPLIANCE}
# Operators must see the kill switch although it travels on compliance-events; surveillance
# alerts stay on the compliance screens only (no tipping off).
ALSO_TO_TRADING = {KillSwitchChanged.TYPE}


def event_for_screen(event: Envelope) -> dict:
    """The JSON a screen gets: envelope fields plus the payload, Decimals as strings, and
    ``pushed_at`` (wall clock, after the commit): the cursor a screen catches up from after a
    dropped connection (trading/consumers.py)."""
    return {
        "event_id": str(event.event_id),
        "type": event.type,
        "occurred_at": event.occurred_at.isoformat(),
        "key": event.key,
        "payload": msgspec.to_builtins(event.payload),
        "pushed_at": datetime.now(UTC).isoformat(),
    }


_LOOP: dict = {}


def _background_loop():
    """One event loop per process, on a daemon thread, for the channel layer's sends. Sending
    through ``async_to_sync`` made a new loop (and a new Redis connection) per event: about 10 ms
    each, so a live-push stage topped out near 100 events/s (bench/live_fanout.py); on one
    long-lived loop the layer keeps its connections."""
    import asyncio
    import threading

    loop = _LOOP.get("loop")
    if loop is None or loop.is_closed():
        loop = asyncio.new_event_loop()
        threading.Thread(target=loop.run_forever, name="live-push-loop", daemon=True).start()
        _LOOP["loop"] = loop
    return loop


class LivePush:
    """Sends are scheduled on an event loop: with ``loop`` (the ASGI server's own, embedded run)
    an in-memory channel layer is only ever touched from the loop its consumers await on;
    without it (a stage process beside a Redis layer) on this process's background loop."""

    def __init__(self, channel_layer=None, *, loop=None, backoff: Backoff | None = None):
        self.channel_layer = channel_layer or get_channel_layer()
        self.loop = loop or _background_loop()
        self.backoff = backoff or Backoff(initial=0.5, maximum=30.0)
        self.down_since: float | None = None  # monotonic; None while the layer answers
        self.retry_at = 0.0
        self.dropped = 0  # updates dropped in the current (or last) outage
        self._dropped_metric = metrics.live_push_dropped

    def handle(self, event: Envelope) -> list[Envelope]:
        return self.handle_batch([event])

    def handle_batch(self, events) -> list[Envelope]:
        """Send a batch of events in one hop to the channel layer (one scheduled coroutine for
        the batch, not one per event)."""
        sends = []
        for event in events:
            targets = {GROUP_BY_TOPIC.get(event.topic)}
            if event.type in ALSO_TO_TRADING:
                targets.add(groups.LIVE_TRADING)
            targets.discard(None)
            if targets:
                message = {"type": "live.event", "event": event_for_screen(event)}
                sends.extend((group, message) for group in sorted(targets))
        if sends:
            self._deliver(sends)
        return []

    def _deliver(self, sends) -> None:
        """Send, or drop while the layer is down and its next try is not due (see module doc)."""
        now = time.monotonic()
        if self.down_since is not None and now < self.retry_at:
            self._drop(len(sends))
            return
        try:
            self._send_all(sends)
        except LAYER_ERRORS as exc:
            if self.down_since is None:
                self.down_since, self.dropped = now, 0
                logger.warning(
                    "live-push: channel layer unreachable (%s: %s); dropping screen updates until it "
                    "answers (pages catch up from their last seen event when they reconnect)",
                    type(exc).__name__,
                    exc,
                )
            self.retry_at = now + self.backoff.next()
            self._drop(len(sends))
            return
        if self.down_since is not None:
            logger.warning(
                "live-push: channel layer back after %.1f s; %d screen updates dropped meanwhile",
                now - self.down_since,
                self.dropped,
            )
            self.down_since = None
            self.backoff.reset()

    def _drop(self, n: int) -> None:
        self.dropped += n
        self._dropped_metric.inc(n)

    async def _group_send_all(self, sends) -> None:
        for group, message in sends:
            await self.channel_layer.group_send(group, message)

    def _send_all(self, sends) -> None:
        import asyncio

        future = asyncio.run_coroutine_threadsafe(self._group_send_all(sends), self.loop)
        try:
            future.result(timeout=5)
        except TimeoutError:
            future.cancel()  # a hung layer: the send must not complete behind our back later
            raise
