"""Live screens over WebSockets. Authenticates in ``connect``, joins groups, never writes models."""

from __future__ import annotations

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from tradeops.core import groups
from tradeops.core.roles import Role, user_has_role


def _groups_for(user) -> list[str]:
    joined = [groups.LIVE_TRADING]
    if user.is_superuser or user_has_role(user, Role.COMPLIANCE_OFFICER) or user_has_role(user, Role.AUDITOR):
        joined.append(groups.LIVE_COMPLIANCE)
    return joined


class LiveConsumer(AsyncJsonWebsocketConsumer):
    """Pushes trading-events (and, for compliance roles, compliance-events) to the dashboard."""

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        self.joined = await database_sync_to_async(_groups_for)(user)
        for group in self.joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        await self.send_json({"type": "hello", "groups": self.joined})

    async def disconnect(self, code):
        for group in getattr(self, "joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def live_event(self, message):
        await self.send_json(message["event"])
