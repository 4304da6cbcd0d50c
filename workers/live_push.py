"""Runner: forwards trading-events and compliance-events to the Channels groups of the live
screens. No business rule here: it picks the group by topic and sends the decoded event."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
from channels.layers import get_channel_layer

from tradeops.core import groups
from tradeops.events import Envelope, KillSwitchChanged, Topic

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

    def __init__(self, channel_layer=None, *, loop=None):
        self.channel_layer = channel_layer or get_channel_layer()
        self.loop = loop or _background_loop()

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
            self._send_all(sends)
        return []

    async def _group_send_all(self, sends) -> None:
        for group, message in sends:
            await self.channel_layer.group_send(group, message)

    def _send_all(self, sends) -> None:
        import asyncio

        asyncio.run_coroutine_threadsafe(self._group_send_all(sends), self.loop).result(timeout=5)
