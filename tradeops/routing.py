"""WebSocket routes. Consumers are named by dotted path (core never imports domain apps)."""

from django.urls import path
from django.utils.module_loading import import_string

# (url pattern, dotted consumer class)
WEBSOCKET_ROUTES: list[tuple[str, str]] = [
    ("ws/live/", "trading.consumers.LiveConsumer"),
]

websocket_urlpatterns = [path(route, import_string(dotted).as_asgi()) for route, dotted in WEBSOCKET_ROUTES]
