"""Runner: forwards trading-events and compliance-events to the Channels groups of the live
screens. No business rule here: it picks the group by topic and sends the decoded event.

A channel layer (Redis) outage is ridden out, never dead-lettered: a live update is worth
something only now, and every one of them is recorded (outbox) before it reaches this stage. So
while the layer does not answer (or does not take a frame within ``SEND_TIMEOUT_S``), the
stage's sender drops the screens' updates (counted in ``tradeops_live_push_dropped_total``, one
warning when the outage starts, one when it ends), tries the layer again after an exponential
back-off (0.5 s doubling to 30 s), and resumes as soon as a send succeeds; the stage itself keeps
consuming and committing. Nothing stale is pushed afterwards: the next frame to a group that
missed updates carries ``gap_since`` and its pages catch up from there, as they do after a
reconnect (``trading/consumers.py``).

The stage commits a batch's offsets once its events are queued for the senders, not once they
are sent: a stage process that dies (SIGKILL, OOM) loses what was queued, up to a frame interval
of updates its pages would never hear of. So a stage process that starts
(``live_push_stage``) first tells every group's pages to catch up from the last update each of
them saw (a frame of no events with ``gap_since``), the same catch-up as after a reconnect.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime

import msgspec
from channels.layers import get_channel_layer
from redis.exceptions import RedisError

from tradeops.bus.runner import Backoff
from tradeops.core import groups
from tradeops.core.operator_alerts import alert_is_operator
from tradeops.events import Alert, Envelope, KillSwitchChanged, Topic
from tradeops.observability import metrics

logger = logging.getLogger(__name__)

# The channel layer unreachable, refusing or hung (Redis down, restarting, a send past its
# timeout): an outage of the screens' transport, not a fault of the event.
LAYER_ERRORS = (RedisError, OSError, TimeoutError)

# How long one group's frame may take to reach the channel layer (Redis). Past it the frame is
# dropped (counted, logged) and the stage goes on: a live screen is a view of the system of
# record, and the next frame to that group tells its pages to catch up on what they missed.
SEND_TIMEOUT_S = 2.0
# One frame per group per FRAME_INTERVAL_S at most: what arrives meanwhile joins the next frame.
# A frame costs Daphne a wake-up of every screen's consumer (channels_redis) and a WebSocket
# frame each, whatever it holds; at 200 events/s to 100 screens, frame-per-event ran seconds
# behind (bench/live_fanout.py); on the shared host a frame every 250 ms took p50 from ~20 s
# (50 ms) to ~2 s at 20 events/s. An event after a quiet spell goes at once (no added wait);
# under a stream an event waits up to this long for its frame.
FRAME_INTERVAL_S = 0.2
# Events per frame at most: a backlog (the embedded run's first pump, a stall) goes in frames of
# this many, not one frame of thousands.
MAX_FRAME_EVENTS = 250
# Events held for one group at most while its frames do not get through (a stalled layer): past
# it the oldest are dropped (counted as "backlog") and the group's pages catch up instead.
MAX_PENDING_EVENTS = 20_000

GROUP_BY_TOPIC = {Topic.TRADING: groups.LIVE_TRADING, Topic.COMPLIANCE: groups.LIVE_COMPLIANCE}
# Operators must see the kill switch and their own alerts (reconciliation, breaker, drift,
# market data, anomalies: tradeops.core.operator_alerts) although they travel on
# compliance-events; surveillance alerts stay on the compliance screens only (no tipping off).
ALSO_TO_TRADING = {KillSwitchChanged.TYPE}


def also_to_trading(event: Envelope) -> bool:
    """A compliance-events event the trading screens get too: the kill switch, an operator alert."""
    if event.type in ALSO_TO_TRADING:
        return True
    return event.type == Alert.TYPE and alert_is_operator(event.payload.alert_type)


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
    """The live-push stage's handler: hands each batch's events to a sender on an event loop and
    returns at once; the stage never waits for the channel layer. With ``loop`` (the ASGI
    server's own, embedded run) an in-memory channel layer is only ever touched from the loop its
    consumers await on; without it (a stage process beside a Redis layer) on this process's
    background loop.

    Per group, one sender sends frames in commit order: a frame holds what was pending for the
    group (``MAX_FRAME_EVENTS`` at most), sent at once after a quiet spell and at most every
    ``frame_interval`` while events keep coming. A frame of one event is the event itself; of
    several, ``{"type": "batch", "events": [...]}``, applied in order by the page
    (static/js/live.js). Its JSON is encoded here once (``live.frame``), not by each screen's
    consumer.

    A send that fails or that the layer does not take within ``send_timeout`` starts an outage
    (see the module doc): the frame is dropped, and until the back-off's next try is due so is
    every frame, without trying; the stage is never held up or stopped. The next frame that
    reaches a group that missed updates carries ``gap_since`` (the ``pushed_at`` of the first
    event dropped) and its pages catch up from there over the open connection."""

    def __init__(
        self,
        channel_layer=None,
        *,
        loop=None,
        send_timeout: float = SEND_TIMEOUT_S,
        frame_interval: float = FRAME_INTERVAL_S,
        backoff: Backoff | None = None,
    ):
        self.channel_layer = channel_layer or get_channel_layer()
        self.loop = loop or _background_loop()
        self.send_timeout = send_timeout
        self.frame_interval = frame_interval
        self.backoff = backoff or Backoff(initial=0.5, maximum=30.0)
        # the rest is only touched on ``loop``
        self.pending: dict[str, list[dict]] = {}
        self.senders: dict[str, asyncio.Task] = {}
        self.announcing: set[asyncio.Task] = set()  # resync frames on their way
        self.gap_since: dict[str, str] = {}  # group -> pushed_at of the first event dropped for it
        self.last_frame: dict[str, float] = {}
        self.frames = 0  # frames the layer took
        self.down_since: float | None = None  # monotonic; None while the layer answers
        self.retry_at = 0.0
        self.dropped = 0  # updates dropped in the current (or last) outage, or as a backlog
        self._dropped_metric = metrics.live_push_dropped

    def handle(self, event: Envelope) -> list[Envelope]:
        return self.handle_batch([event])

    def resync(self) -> None:
        """Tell every group's pages to catch up from the last update each of them saw: a frame of
        no events whose ``gap_since`` is now (a page catches up from the earlier of it and its own
        cursor, static/js/live.js). A sender that starts cannot know what the process before it
        committed but never sent. If the channel layer does not take the frame, the group keeps
        its ``gap_since`` and the next frame that gets through carries it."""
        since = datetime.now(UTC).isoformat()
        self.loop.call_soon_threadsafe(self._resync, since)

    def handle_batch(self, events) -> list[Envelope]:
        """Queue a batch's events for their groups' senders (no wait for the channel layer)."""
        by_group: dict[str, list[dict]] = {}
        for event in events:
            targets = {GROUP_BY_TOPIC.get(event.topic)}
            if also_to_trading(event):
                targets.add(groups.LIVE_TRADING)
            targets.discard(None)
            if targets:
                body = event_for_screen(event)
                for group in targets:
                    by_group.setdefault(group, []).append(body)
        if by_group:
            self.loop.call_soon_threadsafe(self._enqueue, by_group)
        return []

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued event was sent or dropped; False if ``timeout`` passed first."""

        async def drained():
            while self.senders or self.announcing:
                await asyncio.gather(*self.senders.values(), *self.announcing, return_exceptions=True)

        future = asyncio.run_coroutine_threadsafe(drained(), self.loop)
        try:
            future.result(timeout=timeout)
        except TimeoutError:
            future.cancel()
            return False
        return True

    def close(self) -> None:
        """The stage is stopping: send what is queued (a bounded wait)."""
        self.flush(timeout=self.send_timeout + 1.0)

    # ---------------------------------------------------------------- on the loop

    def _enqueue(self, by_group: dict[str, list[dict]]) -> None:
        for group, bodies in by_group.items():
            pending = self.pending.setdefault(group, [])
            pending.extend(bodies)
            if len(pending) > MAX_PENDING_EVENTS:
                lost = pending[: len(pending) - MAX_PENDING_EVENTS]
                del pending[: len(lost)]
                logger.warning("live-push: %d screen updates for %s dropped (backlog full)", len(lost), group)
                self._dropped(group, lost)
            if group not in self.senders:
                self.senders[group] = self.loop.create_task(self._send_group(group))

    def _resync(self, since: str) -> None:
        for group in dict.fromkeys(GROUP_BY_TOPIC.values()):
            self.gap_since.setdefault(group, since)
            task = self.loop.create_task(self._announce(group))
            self.announcing.add(task)
            task.add_done_callback(self.announcing.discard)

    async def _announce(self, group: str) -> None:
        now = time.monotonic()
        try:
            await asyncio.wait_for(self.channel_layer.group_send(group, self._message(group, [])), self.send_timeout)
        except LAYER_ERRORS as exc:
            self._outage(group, exc, now)  # the group keeps its gap_since for the next frame
        else:
            self.gap_since.pop(group, None)
            self._back(now)

    async def _send_group(self, group: str) -> None:
        pending = self.pending[group]
        try:
            while pending:
                wait = self.last_frame.get(group, float("-inf")) + self.frame_interval - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)  # what arrives meanwhile joins this frame
                bodies = pending[:MAX_FRAME_EVENTS]
                del pending[: len(bodies)]
                now = time.monotonic()
                self.last_frame[group] = now
                if self.down_since is not None and now < self.retry_at:
                    self._dropped(group, bodies)  # the layer is down and its next try is not due
                    continue
                try:
                    await asyncio.wait_for(
                        self.channel_layer.group_send(group, self._message(group, bodies)), self.send_timeout
                    )
                except LAYER_ERRORS as exc:
                    self._outage(group, exc, now)
                    self._dropped(group, bodies)
                else:
                    self.frames += 1
                    self.gap_since.pop(group, None)
                    self._back(now)
        finally:
            del self.senders[group]

    def _outage(self, group: str, exc: BaseException, now: float) -> None:
        if self.down_since is None:
            self.down_since, self.dropped = now, 0
            logger.warning(
                "live-push: channel layer unreachable (%s: %s, sending to %s); dropping screen updates until "
                "it answers (the pages catch up from the first one dropped with the next frame, or when "
                "they reconnect)",
                type(exc).__name__,
                exc,
                group,
            )
        self.retry_at = now + self.backoff.next()

    def _back(self, now: float) -> None:
        if self.down_since is not None:
            logger.warning(
                "live-push: channel layer back after %.1f s; %d screen updates dropped meanwhile",
                now - self.down_since,
                self.dropped,
            )
            self.down_since = None
            self.backoff.reset()

    def _message(self, group: str, bodies: list[dict]) -> dict:
        gap = self.gap_since.get(group)
        if len(bodies) == 1 and gap is None:
            frame = bodies[0]
        else:
            frame = {"type": "batch", "events": bodies}
            if gap is not None:
                frame["gap_since"] = gap
        return {"type": "live.frame", "text": msgspec.json.encode(frame).decode()}

    def _dropped(self, group: str, bodies: list[dict]) -> None:
        self.gap_since.setdefault(group, bodies[0]["pushed_at"])
        self.dropped += len(bodies)
        self._dropped_metric.inc(len(bodies))


def live_push_stage() -> LivePush:
    """The live-push stage of a stage process (``run_stage live-push``): a new sender whose first
    frames tell the pages to catch up on what a process before it may have committed unsent."""
    push = LivePush()
    push.resync()
    return push
