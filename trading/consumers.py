"""Live screens over WebSockets. Authenticates in ``connect``, joins groups, never writes models.

Frames come from ``workers.live_push`` (one event, or a batch of them in order). Every pushed
event carries ``pushed_at`` (the live-push runner's wall clock, after the commit);
``hello`` carries the server's ``now``. A screen that lost its connection reconnects and sends
``{"type": "catch_up", "since": <the last of those it saw>}``; the answer is one ``catch_up``
message with what it missed, rebuilt from the system of record by the apps' selectors
(``settings.LIVE_CATCH_UP``), each filtering by the user's role like the groups do."""

from __future__ import annotations

from datetime import UTC, datetime

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.utils.module_loading import import_string

from tradeops.core import groups
from tradeops.core.clock import utcnow
from tradeops.core.roles import Role, user_has_role

MAX_CATCH_UP_EVENTS = 2000
MAX_CATCH_UP_AGE_S = 24 * 3600  # a screen away longer than a day reloads instead


def _groups_for(user) -> list[str]:
    joined = [groups.LIVE_TRADING]
    if user.is_superuser or user_has_role(user, Role.COMPLIANCE_OFFICER) or user_has_role(user, Role.AUDITOR):
        joined.append(groups.LIVE_COMPLIANCE)
    return joined


def catch_up_events(*, user, since: datetime) -> list[dict]:
    events: list[dict] = []
    for dotted in settings.LIVE_CATCH_UP:
        events.extend(import_string(dotted)(user=user, since=since))
    return events[-MAX_CATCH_UP_EVENTS:]


class LiveConsumer(AsyncJsonWebsocketConsumer):
    """Pushes trading-events (and, for compliance roles, compliance-events) to the screens."""

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        self.joined = await database_sync_to_async(_groups_for)(user)
        for group in self.joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        await self.send_json({"type": "hello", "groups": self.joined, "now": utcnow().isoformat()})

    async def disconnect(self, code):
        for group in getattr(self, "joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        if not isinstance(content, dict) or content.get("type") != "catch_up":
            return
        now = utcnow()
        try:
            since = datetime.fromisoformat(str(content.get("since", "")))
        except ValueError:
            await self.send_json({"type": "error", "code": "bad_since", "message": "since must be ISO 8601"})
            return
        since = since if since.tzinfo else since.replace(tzinfo=UTC)
        if (now - since).total_seconds() > MAX_CATCH_UP_AGE_S:
            await self.send_json({"type": "error", "code": "too_old", "message": "away too long: reload the page"})
            return
        events = await database_sync_to_async(catch_up_events)(user=self.scope["user"], since=since)
        await self.send_json({"type": "catch_up", "since": since.isoformat(), "now": now.isoformat(), "events": events})

    async def dispatch(self, message):
        """Frames from the live-push stage go straight to their handler: Channels' own dispatch
        first runs ``close_old_connections`` in the thread pool for every message of every
        consumer, two thirds of Daphne's time with 100 screens (bench/live_fanout.py), and these
        handlers never touch the database. Everything else goes Channels' way."""
        kind = message.get("type")
        if kind == "live.frame":
            await self.live_frame(message)
        elif kind == "live.event":
            await self.live_event(message)
        else:
            await super().dispatch(message)

    async def live_frame(self, message):
        """A frame from the live-push stage, its JSON encoded there once for every screen: one
        event, or ``{"type": "batch", "events": [...]}`` (``gap_since`` when frames to this group
        were dropped: the page catches up from there)."""
        await self.send(text_data=message["text"])

    async def live_event(self, message):  # one event as a dict (pushers from before live.frame)
        await self.send_json(message["event"])
