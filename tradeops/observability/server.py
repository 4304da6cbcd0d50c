"""The metrics endpoint of a long-running process (stage, relay, execution worker, Celery worker).

``metrics_serve(process=...)`` starts a small threaded HTTP server on ``METRICS_PORT`` (0 = none)
serving the Prometheus exposition on any path (``/metrics`` by convention). The same rule as the
web's ``/metrics`` decides who may read it: ``tradeops.core.metrics.metrics_access_allowed``
(the monitoring network or the bearer token, docs/security.md); everyone else gets a 403.

The embedded run serves everything on the web app's ``/metrics`` instead: one process, one
registry. With ``PROMETHEUS_MULTIPROC_DIR`` set (Celery's prefork pool: tasks run in child
processes) the server reads every process's files through ``MultiProcessCollector``.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import REGISTRY, CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

logger = logging.getLogger(__name__)

_servers: dict[int, MetricsServer] = {}
_lock = threading.Lock()


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):
        pass  # a scrape every 15 s is not an event of note


def _registry() -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return REGISTRY


def _allowed() -> Callable[..., bool]:
    from tradeops.core.metrics import metrics_access_allowed

    return metrics_access_allowed


def guarded_app(app, *, token: str, networks, allowed: Callable[..., bool] | None = None):
    """Wrap a WSGI exposition app: 403 unless the client may read metrics."""
    allowed = allowed or _allowed()

    def guarded(environ, start_response):
        if not allowed(
            remote_addr=environ.get("REMOTE_ADDR", ""),
            authorization=environ.get("HTTP_AUTHORIZATION", ""),
            token=token,
            networks=networks,
        ):
            body = b"metrics are served to the monitoring network or with the metrics token only\n"
            start_response("403 Forbidden", [("Content-Type", "text/plain; charset=utf-8")])
            return [body]
        return app(environ, start_response)

    return guarded


def _closing_connections(app):
    """Scrape-time collectors read the database from the server's request thread: close that
    thread's connections when the scrape is answered (threads come and go)."""

    def closing(environ, start_response):
        try:
            return app(environ, start_response)
        finally:
            from django.db import connections

            connections.close_all()

    return closing


class MetricsServer:
    def __init__(self, *, port: int, addr: str, token: str, networks, process: str) -> None:
        app = _closing_connections(guarded_app(make_wsgi_app(_registry()), token=token, networks=networks))
        self.httpd = make_server(addr, port, app, ThreadingWSGIServer, handler_class=_QuietHandler)
        self.port = self.httpd.server_port
        self.process = process
        self.thread = threading.Thread(target=self.httpd.serve_forever, name=f"metrics-{process}", daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def metrics_serve(*, process: str, port: int | None = None) -> MetricsServer | None:
    """Serve this process's metrics on ``port`` (default ``METRICS_PORT``; 0 or unset = don't).

    Idempotent per port. Sets no heartbeat: a heartbeat set once here and never again would look
    like a stuck process two minutes later (``TradeopsHeartbeatMissing``); each loop keeps its own
    (the stage runners ``stage-<name>``, the relay, the live collector, the anomaly detector).
    Precondition: Django settings are configured."""
    from django.conf import settings

    port = settings.METRICS_PORT if port is None else port
    if not port:
        return None
    with _lock:
        server = _servers.get(port)
        if server is None:
            server = _servers[port] = MetricsServer(
                port=port,
                addr=settings.METRICS_ADDR,
                token=getattr(settings, "METRICS_TOKEN", ""),
                networks=getattr(settings, "METRICS_ALLOWED_NETWORKS", ()),
                process=process,
            )
            logger.info("metrics of %s on http://%s:%d/metrics", process, settings.METRICS_ADDR, server.port)
    return server
