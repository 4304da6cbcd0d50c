"""The cluster's gateway in front of the real web tier (issue 18 items 1 and 2): nginx as
``scripts/cluster.sh infra`` runs it (its certificates, its configuration) and the ``web`` process
of tradeops/topology.py (Daphne serving tradeops.asgi, on the test's database and the cluster's
Redis). TLS is terminated and Django answers; the integration routes refuse a request without a
client certificate at the gateway and pass one with it to Django; a signed-in browser's
WebSocket reaches the live consumer (Channels on Redis) and gets its hello; with the web tier
stopped, the gateway's fallback page. tests/integration/test_gateway.py covers the gateway's
rules in detail against a stand-in web tier."""

from __future__ import annotations

import base64
import http.client
import json
import os
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cluster.conftest import ROOT

pytestmark = [pytest.mark.cluster, pytest.mark.postgres]

CERTS = Path(os.environ.get("TRADEOPS_CLUSTER_DIR", "/var/tmp/tradeops-cluster")) / "nginx" / "certs"
HTTPS_PORT = 18443  # scripts/cluster.sh GATEWAY_HTTPS_PORT


def _context(*, client: bool) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(CERTS / "client-ca.crt"))  # it issued the server's too
    if client:
        context.load_cert_chain(CERTS / "client.crt", CERTS / "client.key")
    return context


def _get(path: str, *, client: bool = False, cookie: str = "") -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPSConnection("localhost", HTTPS_PORT, context=_context(client=client), timeout=30)
    try:
        conn.request("GET", path, headers={"Cookie": cookie} if cookie else {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def _frame(sock: ssl.SSLSocket) -> tuple[int, bytes]:
    """One unmasked frame from the server: (opcode, payload)."""

    def exactly(n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            assert chunk, "connection closed mid-frame"
            data += chunk
        return data

    first, second = exactly(2)
    length = second & 0x7F
    if length == 126:
        length = int.from_bytes(exactly(2), "big")
    elif length == 127:
        length = int.from_bytes(exactly(8), "big")
    return first & 0x0F, exactly(length)


def _sign_in_through_the_form(username: str, password: str) -> None:
    """As a browser does: the sign-in page, then its form posted with the page's Origin. Until
    2026-12-06 (wip/walk49) CSRF refused it (403: the web tier took the request for plain http on
    a host without the gateway's port), so nobody could sign in to the cluster's screens."""
    from http.cookies import SimpleCookie
    from urllib.parse import urlencode

    origin = f"https://localhost:{HTTPS_PORT}"
    conn = http.client.HTTPSConnection("localhost", HTTPS_PORT, context=_context(client=False), timeout=30)
    try:
        conn.request("GET", "/login/")
        page = conn.getresponse()
        page.read()
        jar = SimpleCookie()
        for header, value in page.getheaders():
            if header.lower() == "set-cookie":
                jar.load(value)
        token = jar["csrftoken"].value
        form = urlencode({"csrfmiddlewaretoken": token, "username": username, "password": password})
        conn.request(
            "POST",
            "/login/",
            body=form,
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Cookie": f"csrftoken={token}",
                "Origin": origin,
                "Referer": f"{origin}/login/",
            },
        )
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    assert response.status == 302 and response.getheader("Location") == "/", (response.status, body[:300])


def test_the_gateway_serves_the_real_web_tier(cluster_run):
    session = subprocess.run(
        [sys.executable, "-m", "tests.cluster.web_session"],
        cwd=ROOT,
        env=cluster_run.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert session.returncode == 0, session.stderr[-3000:]
    lines = session.stdout.strip().splitlines()
    cookie = f"sessionid={lines[-1]}"
    _, username, password = next(line for line in lines if line.startswith("user ")).split()

    cluster_run.group.start("web")
    started = time.monotonic()
    status = 0
    while time.monotonic() < started + 120:
        status, _, body = _get("/healthz")  # 503 (the fallback) until Daphne answers
        if status == 200:
            break
        # (a pid looked up at once can still show the parent's command line, before exec)
        assert time.monotonic() < started + 10 or cluster_run.group.pid("web"), cluster_run.log("web")
        time.sleep(1)
    assert status == 200, (status, cluster_run.log("web"))
    assert json.loads(body) == {"status": "ok", "database": "postgresql"}  # Django answered, through TLS

    _sign_in_through_the_form(username, password)

    status, _, body = _get("/api/v1/orders/")
    assert status == 403 and b"client certificate" in body  # refused at the gateway
    status, headers, body = _get("/api/v1/orders/", client=True)  # passed on: Django refuses no sign-in
    assert status in (401, 403) and b"client certificate" not in body, (status, body)
    assert headers["content-type"].startswith("application/json") and json.loads(body)

    key = base64.b64encode(os.urandom(16)).decode()
    raw = socket.create_connection(("127.0.0.1", HTTPS_PORT), timeout=30)
    with _context(client=False).wrap_socket(raw, server_hostname="localhost") as sock:
        sock.sendall(
            (
                "GET /ws/live/ HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Origin: https://localhost:{HTTPS_PORT}\r\nCookie: {cookie}\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(1)
            assert chunk, head
            head += chunk
        assert head.startswith(b"HTTP/1.1 101"), head
        opcode, payload = _frame(sock)
        assert opcode == 1 and json.loads(payload)["type"] == "hello", payload

    cluster_run.group.stop("web")
    status, headers, body = _get("/healthz")
    assert status == 503 and headers.get("retry-after") == "30"
    assert b"tradeops is temporarily unavailable" in body
