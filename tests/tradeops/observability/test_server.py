"""A long-running process's metrics endpoint answers the monitoring network or the token only
(the same rule as the web's /metrics: tradeops.core.metrics.metrics_access_allowed)."""

from __future__ import annotations

import urllib.error
import urllib.request


def _get(port: int, token: str = "") -> tuple[int, str]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/metrics", headers={"Authorization": f"Bearer {token}"} if token else {}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_the_endpoint_serves_loopback_and_the_token_and_refuses_others(settings):
    from tradeops.observability.server import metrics_serve

    settings.METRICS_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    settings.METRICS_TOKEN = "s3cret-token"
    server = metrics_serve(process="test-process", port=9311)
    try:
        status, body = _get(server.port)
        assert status == 200 and "# TYPE tradeops_heartbeat_timestamp_seconds gauge" in body
        settings.METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8"]
        server2 = metrics_serve(process="test-process-2", port=9312)
        try:
            assert _get(server2.port)[0] == 403
            assert _get(server2.port, "wrong")[0] == 403
            assert _get(server2.port, "s3cret-token")[0] == 200
        finally:
            server2.close()
    finally:
        server.close()
