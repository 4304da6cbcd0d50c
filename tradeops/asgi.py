"""ASGI entry point: HTTP through Django, WebSockets through Channels (live screens)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradeops.settings.local")
# The web tier uses a bounded connection pool on PostgreSQL (docs/configuration.md; measured in
# bench/web_load.py): at most DB_POOL_MAX_SIZE connections per web process, whatever the load.
# Set DB_POOL_MAX_SIZE=0 to go back to per-thread persistent connections. The default is set for
# this process's settings only (removed once they are read), so processes it starts do not inherit
# it; where settings were loaded before this module (run_embedded, tests) it changes nothing.
_POOL_DEFAULT = "DB_POOL_MAX_SIZE" not in os.environ
if _POOL_DEFAULT:
    os.environ["DB_POOL_MAX_SIZE"] = "8"
try:
    django_asgi_app = get_asgi_application()
finally:
    if _POOL_DEFAULT:
        del os.environ["DB_POOL_MAX_SIZE"]

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from tradeops.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
