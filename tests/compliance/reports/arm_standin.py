"""A local stand-in for an ARM: a real HTTPS server on loopback with mutual TLS, certificates
made by the test (a CA, a server certificate for 127.0.0.1, the firm's client certificate).

It speaks the protocol ``compliance.reports.arm`` documents: ``POST /arm/submissions``
(idempotent by ``Idempotency-Key``, HTTP Basic credentials, the file's SHA-256 checked) and
``GET /arm/submissions/<id>/feedback`` (the feedback file of ``compliance.reports.feedback``:
every transaction of the file accepted, except the references told to ``reject``; a file that
fails ESMA's XSD is rejected whole). Faults on demand: ``fail_next`` answers 503 that many
times, ``drop_next`` takes the submission and closes the connection without an answer.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import ipaddress
import json
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from compliance.reports.feedback import FeedbackHeader, FeedbackRecord, feedback_render
from compliance.reports.transaction.reader import transactions_read
from compliance.reports.xsd import xml_validate_bytes


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _key():
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(key, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


def _cert(subject: str, key, *, issuer_name, issuer_key, ca=False, san=None, usage=None):
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    if usage:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def pki_make(folder: Path) -> Pki:
    """A CA, a server certificate for 127.0.0.1/localhost and a client certificate, as PEM files."""
    ca_key = _key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tradeops test ARM CA")])
    ca = _cert("tradeops test ARM CA", ca_key, issuer_name=ca_name, issuer_key=ca_key, ca=True)
    server_key, client_key = _key(), _key()
    server = _cert(
        "127.0.0.1",
        server_key,
        issuer_name=ca_name,
        issuer_key=ca_key,
        san=[x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")],
        usage=ExtendedKeyUsageOID.SERVER_AUTH,
    )
    client = _cert(
        "tradeops firm", client_key, issuer_name=ca_name, issuer_key=ca_key, usage=ExtendedKeyUsageOID.CLIENT_AUTH
    )
    pki = Pki(
        folder / "ca.pem", folder / "server.pem", folder / "server.key", folder / "client.pem", folder / "client.key"
    )
    pki.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    pki.server_cert.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    pki.client_cert.write_bytes(client.public_bytes(serialization.Encoding.PEM))
    _write_key(server_key, pki.server_key)
    _write_key(client_key, pki.client_key)
    return pki


@dataclass
class Submission:
    submission_id: str
    key: str
    data: bytes
    sha256: str


@dataclass
class ArmState:
    username: str = "firm"
    password: str = "secret"
    fail_next: int = 0
    drop_next: int = 0
    feedback_ready: bool = True
    rejections: dict[str, list[dict]] = field(default_factory=dict)
    unknown_leis: set[str] = field(default_factory=set)  # a GLEIF lookup that does not find them
    submissions: dict[str, Submission] = field(default_factory=dict)  # by id
    by_key: dict[str, str] = field(default_factory=dict)
    posts: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reject(self, trn: str, code: str, text: str) -> None:
        self.rejections[trn] = [{"code": code, "text": text}]

    def feedback(self, submission: Submission) -> bytes:
        check = xml_validate_bytes(submission.data)
        received = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        if not check.valid:
            header = FeedbackHeader(
                submission.submission_id,
                submission.sha256,
                "RJCT",
                received,
                0,
                0,
                tuple({"code": "XSD", "text": e} for e in check.errors[:3]),
            )
            return feedback_render(header, [])
        records = []
        for values in transactions_read(io.BytesIO(submission.data)):
            trn = values["transaction_reference_number"]
            reasons = self.rejections.get(trn)
            unknown = {values["buyer_id"], values["seller_id"]} & self.unknown_leis
            if unknown:
                reasons = [{"code": "CON-412", "text": f"LEI {sorted(unknown)[0]} not found in GLEIF"}]
            records.append(FeedbackRecord(trn, reasons is None, tuple(reasons or ())))
        rejected = sum(1 for r in records if not r.accepted)
        header = FeedbackHeader(
            submission.submission_id,
            submission.sha256,
            "PART" if rejected else "ACPT",
            received,
            len(records) - rejected,
            rejected,
        )
        return feedback_render(header, records)


class _Handler(BaseHTTPRequestHandler):
    server_version = "ARMStandIn/1"
    state: ArmState

    def log_message(self, *args):  # quiet
        pass

    def _answer(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _authorised(self) -> bool:
        expected = base64.b64encode(f"{self.state.username}:{self.state.password}".encode()).decode()
        if self.headers.get("Authorization") != f"Basic {expected}":
            self._answer(401, b'{"error": "unauthorised"}')
            return False
        return True

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        data = self.rfile.read(length)
        state = self.state
        with state.lock:
            state.posts += 1
            if state.fail_next:
                state.fail_next -= 1
                self._answer(503, b'{"error": "maintenance"}')
                return
        if self.path != "/arm/submissions":
            self._answer(404, b"{}")
            return
        if not self._authorised():
            return
        sha = hashlib.sha256(data).hexdigest()
        if sha != self.headers.get("X-Report-SHA256"):
            self._answer(400, b'{"error": "SHA-256 does not match the body"}')
            return
        key = self.headers.get("Idempotency-Key", "")
        with state.lock:
            existing = state.by_key.get(key)
            if existing is None:
                submission_id = f"S-{len(state.submissions) + 1}"
                state.submissions[submission_id] = Submission(submission_id, key, data, sha)
                state.by_key[key] = submission_id
            drop = state.drop_next > 0
            if drop:
                state.drop_next -= 1
        if drop:
            self.close_connection = True
            return  # taken, but the answer is lost
        status = 200 if existing else 201
        self._answer(status, json.dumps({"submission_id": existing or submission_id, "status": "RCVD"}).encode())

    def do_GET(self):
        if not self._authorised():
            return
        parts = self.path.strip("/").split("/")
        if len(parts) != 4 or parts[:2] != ["arm", "submissions"] or parts[3] != "feedback":
            self._answer(404, b"{}")
            return
        submission = self.state.submissions.get(parts[2])
        if submission is None:
            self._answer(404, b'{"error": "unknown submission"}')
            return
        if not self.state.feedback_ready:
            self._answer(202, b'{"status": "processing"}')
            return
        self._answer(200, self.state.feedback(submission), "application/x-ndjson")


class ArmStandIn:
    """Start with ``start()``, stop with ``stop()``; ``url`` is the base URL to configure."""

    def __init__(self, pki: Pki):
        self.state = ArmState()
        handler = type("Handler", (_Handler,), {"state": self.state})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(pki.server_cert, pki.server_key)
        context.load_verify_locations(pki.ca)
        context.verify_mode = ssl.CERT_REQUIRED  # mutual TLS: the firm's client certificate
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.httpd.server_address[1]}/arm"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> ArmStandIn:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)
