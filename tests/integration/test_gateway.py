"""The nginx gateway for real, on loopback (issue 18): TLS terminated, a client certificate
required on the integration routes (/api/, /o/), a per-client rate limit, the WebSocket
forwarded, and a fallback response when the web tier is down. The configuration is the one
docker/nginx/tradeops.conf.template renders for the cluster and compose; the certificates are
made here (cryptography); the web tier is a small stand-in that echoes what it receives."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import shutil
import socket
import ssl
import struct
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import service_unavailable
from tradeops.gateway import GatewayConfig, gateway_render

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _certificates(directory: Path) -> dict[str, Path]:
    """A CA; a server certificate for localhost/127.0.0.1 and two client certificates it
    issued; and a client certificate from a CA the gateway does not trust."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.now(UTC)

    def name(cn):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def key_pem(key):
        return key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def issue(subject, key, issuer, issuer_key, *, ca=False, san=None):
        builder = (
            x509.CertificateBuilder()
            .subject_name(name(subject))
            .issuer_name(name(issuer))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
        return builder.sign(issuer_key, hashes.SHA256())

    import ipaddress

    paths = {}
    ca_key, other_ca_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = issue("test integration CA", ca_key, "test integration CA", ca_key, ca=True)
    keys = {
        "server": (
            "localhost",
            ca_key,
            "test integration CA",
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
        ),
        "client": ("integration-a", ca_key, "test integration CA", None),
        "client2": ("integration-b", ca_key, "test integration CA", None),
        "rogue": ("integration-a", other_ca_key, "someone else's CA", None),
    }
    (directory / "client-ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths["ca"] = directory / "client-ca.crt"
    for label, (subject, issuer_key, issuer, san) in keys.items():
        key = ec.generate_private_key(ec.SECP256R1())
        cert = issue(subject, key, issuer, issuer_key, san=san)
        (directory / f"{label}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (directory / f"{label}.key").write_bytes(key_pem(key))
        paths[label] = directory / f"{label}.crt"
    return paths


class Upstream(BaseHTTPRequestHandler):
    """Stands in for the web tier: JSON echo of the path and the gateway's headers, and a
    WebSocket endpoint that answers the upgrade and echoes one text frame."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.headers.get("Upgrade", "").lower() == "websocket":
            accept = base64.b64encode(hashlib.sha1((self.headers["Sec-WebSocket-Key"] + WS_GUID).encode()).digest())
            self.send_response(101)
            self.send_header("Upgrade", "websocket")
            self.send_header("Connection", "Upgrade")
            self.send_header("Sec-WebSocket-Accept", accept.decode())
            self.end_headers()
            self.wfile.flush()
            header = self.rfile.read(2)
            length = header[1] & 0x7F
            mask = self.rfile.read(4)
            data = bytes(b ^ mask[i % 4] for i, b in enumerate(self.rfile.read(length)))
            reply = b"echo:" + data
            self.wfile.write(bytes([0x81, len(reply)]) + reply)
            self.wfile.flush()
            self.close_connection = True
            return
        body = json.dumps(
            {
                "path": self.path,
                "proto": self.headers.get("X-Forwarded-Proto"),
                "host": self.headers.get("Host"),
                "verify": self.headers.get("X-Client-Cert-Verify"),
                "subject": self.headers.get("X-Client-Cert-Subject"),
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if not nginx:
        service_unavailable("needs nginx (apt-get install nginx; .ci/run installs it)")
    run_dir = tmp_path_factory.mktemp("gateway")
    os.chmod(run_dir, 0o755)
    certs = _certificates(run_dir)
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (run_dir / "tmp" / sub).mkdir(parents=True)
    web_port, https_port, http_port = _free_port(), _free_port(), _free_port()
    config = GatewayConfig(
        run_dir=str(run_dir),
        cert_dir=str(run_dir),
        upstream=f"127.0.0.1:{web_port}",
        https_port=https_port,
        http_port=http_port,
        api_rate=1,
        api_burst=3,
    )
    # server.crt/.key are what the template names
    (run_dir / "nginx.conf").write_text(gateway_render(config))
    check = subprocess.run([nginx, "-t", "-c", str(run_dir / "nginx.conf"), "-p", str(run_dir)], capture_output=True)
    assert check.returncode == 0, check.stderr.decode()
    subprocess.run([nginx, "-c", str(run_dir / "nginx.conf"), "-p", str(run_dir)], check=True)
    web = ThreadingHTTPServer(("127.0.0.1", web_port), Upstream)
    thread = threading.Thread(target=web.serve_forever, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not (run_dir / "nginx.pid").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    state = {"web": web, "https_port": https_port, "http_port": http_port, "certs": certs, "dir": run_dir}
    yield state
    if state["web"] is not None:
        state["web"].shutdown()
        state["web"].server_close()
    pid = int((run_dir / "nginx.pid").read_text())
    os.kill(pid, 15)


def _context(certs, client: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(certs["ca"]))
    if client:
        context.load_cert_chain(str(certs[client]), str(certs[client]).replace(".crt", ".key"))
    return context


def _get(gateway, path: str, client: str | None = None) -> tuple[int, dict, bytes]:
    conn = http.client.HTTPSConnection(
        "localhost", gateway["https_port"], context=_context(gateway["certs"], client), timeout=10
    )
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def test_tls_is_terminated_and_plain_http_is_redirected(gateway):
    status, _, body = _get(gateway, "/dashboard/")
    assert status == 200 and json.loads(body)["proto"] == "https"
    conn = http.client.HTTPConnection("127.0.0.1", gateway["http_port"], timeout=5)
    conn.request("GET", "/dashboard/")
    response = conn.getresponse()
    assert response.status == 301
    assert response.getheader("Location") == f"https://127.0.0.1:{gateway['https_port']}/dashboard/"


def test_the_host_and_port_the_browser_used_are_forwarded(gateway):
    """Django checks a form's Origin (https://host:port) against them: with nginx's ``$host``
    the port was dropped and every form posted through a gateway not on 443 was refused."""
    _, _, body = _get(gateway, "/login/")
    assert json.loads(body)["host"] == f"localhost:{gateway['https_port']}"


def test_integration_routes_refuse_a_request_without_a_trusted_client_certificate(gateway):
    for path in ("/api/trading/orders/", "/o/token/"):
        status, _, body = _get(gateway, path)
        assert status == 403 and b"client certificate" in body
    status, _, _ = _get(gateway, "/api/trading/orders/", client="rogue")  # right name, wrong issuer
    assert status in (400, 403)


def test_a_client_certificate_is_accepted_and_its_subject_forwarded(gateway):
    time.sleep(3)  # the bucket of integration-a refills (1 r/s)
    status, _, body = _get(gateway, "/api/trading/orders/", client="client")
    assert status == 200
    seen = json.loads(body)
    assert seen["verify"] == "SUCCESS" and seen["subject"] == "CN=integration-a"


def test_a_burst_past_the_limit_is_throttled_per_client(gateway):
    time.sleep(4)
    statuses = [_get(gateway, "/api/trading/orders/", client="client")[0] for _ in range(10)]
    assert statuses[0] == 200
    assert statuses.count(429) >= 5, statuses  # 1 r/s with a burst of 3: the rest are refused
    assert _get(gateway, "/api/trading/orders/", client="client2")[0] == 200  # another client is not


def test_the_websocket_is_forwarded(gateway):
    key = base64.b64encode(os.urandom(16)).decode()
    raw = socket.create_connection(("127.0.0.1", gateway["https_port"]), timeout=10)
    sock = _context(gateway["certs"], None).wrap_socket(raw, server_hostname="localhost")
    sock.sendall(
        (
            f"GET /ws/live/ HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest())
    assert b"Sec-WebSocket-Accept: " + accept in head
    mask = os.urandom(4)
    payload = b"ping"
    sock.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
    first = sock.recv(2)
    data = sock.recv(first[1] & 0x7F)
    assert first[0] == 0x81 and data == b"echo:ping"
    sock.close()
    _ = struct  # frames are built by hand above


def test_the_web_tier_down_gives_the_fallback_response(gateway):
    gateway["web"].shutdown()
    gateway["web"].server_close()
    gateway["web"] = None
    status, headers, body = _get(gateway, "/dashboard/")
    assert status == 503
    assert b"tradeops is temporarily unavailable" in body
    assert headers.get("Retry-After") == "30"
