"""Submission to an ARM (Approved Reporting Mechanism) over HTTPS, and its feedback.

The protocol this adapter speaks (docs/reporting.md has the reference):

- ``POST {ARM_URL}/submissions`` with the report file as the body, ``Idempotency-Key`` (the
  run's reference and the file's SHA-256), ``X-Report-SHA256``, ``X-Report-Filename`` and, when
  configured, HTTP Basic credentials; mutual TLS with the firm's client certificate. ``201``
  (new) or ``200`` (the same key seen before: the same submission, not a second one) with
  ``{"submission_id": ..., "status": ...}``.
- ``GET {ARM_URL}/submissions/{id}/feedback``: ``200`` with the feedback file
  (``compliance.reports.feedback``), ``202`` while the ARM is still processing.

Resilience (ARCHITECTURE.md): every call goes through the ``arm`` circuit breaker
(``tradeops.breaker``); connection errors, timeouts, 5xx and 429 are retried with doubling
back-off up to ``ARM_RETRIES`` times, then reported as ``arm_unavailable`` (the Celery task
retries later); other 4xx are the request's fault (``arm_refused``), not retried and not
counted against the breaker. Because the key is the same on every attempt, a retry after a
lost response never makes a second submission.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO
from urllib.parse import quote, urlsplit

from django.conf import settings

from tradeops.breaker import CircuitBreaker, CircuitOpenError
from tradeops.core.errors import ApplicationError


class ArmError(ApplicationError):
    code = "arm_error"


class ArmNotConfigured(ArmError):
    code = "arm_not_configured"


class ArmUnavailable(ArmError):
    """The ARM could not be reached or kept failing (after retries, or the breaker is open)."""

    code = "arm_unavailable"
    http_status = 503


class ArmRefused(ArmError):
    """The ARM answered that the request itself is wrong (4xx other than 429)."""

    code = "arm_refused"


class _Transient(Exception):
    """A failure worth another attempt (connection, timeout, 5xx, 429)."""


@dataclass(frozen=True)
class ArmConfig:
    url: str
    username: str = ""
    password: str = ""
    client_cert: str = ""
    client_key: str = ""
    ca_file: str = ""
    timeout: float = 30.0
    retries: int = 4
    backoff: float = 2.0


@dataclass(frozen=True)
class SubmissionReceipt:
    submission_id: str
    status: str
    replayed: bool  # the ARM had seen this idempotency key: no new submission was made
    attempts: int


def arm_config() -> ArmConfig:
    if not settings.ARM_URL:
        raise ArmNotConfigured("ARM_URL is not set: transaction reports cannot be submitted (docs/reporting.md)")
    return ArmConfig(
        url=settings.ARM_URL.rstrip("/"),
        username=settings.ARM_USERNAME,
        password=settings.ARM_PASSWORD,
        client_cert=settings.ARM_CLIENT_CERT,
        client_key=settings.ARM_CLIENT_KEY,
        ca_file=settings.ARM_CA_FILE,
        timeout=settings.ARM_TIMEOUT_SECONDS,
        retries=settings.ARM_RETRIES,
        backoff=settings.ARM_RETRY_BACKOFF_SECONDS,
    )


_breaker: CircuitBreaker | None = None


def arm_breaker() -> CircuitBreaker:
    """The process's one breaker for the ARM (one runner loop per process owns it)."""
    global _breaker
    if _breaker is None:
        _breaker = CircuitBreaker(
            "arm",
            fail_max=settings.ARM_BREAKER_FAIL_MAX,
            reset_timeout=settings.ARM_BREAKER_RESET_SECONDS,
            exclude=(ArmRefused,),
        )
    return _breaker


class ArmClient:
    """HTTPS client of one ARM. ``sleep`` is injectable so tests do not wait out back-offs."""

    def __init__(
        self,
        config: ArmConfig,
        *,
        breaker: CircuitBreaker | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.config = config
        self.breaker = breaker or arm_breaker()
        self.sleep = sleep
        parts = urlsplit(config.url)
        if parts.scheme != "https":
            raise ArmNotConfigured(f"ARM_URL must be https://, got {config.url!r}")
        self._host = parts.hostname or ""
        self._port = parts.port or 443
        self._base = parts.path.rstrip("/")
        self._context = self._ssl_context()

    def _ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.config.ca_file or None)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.config.client_cert:
            context.load_cert_chain(self.config.client_cert, self.config.client_key or None)
        return context

    def _headers(self) -> dict[str, str]:
        headers = {"User-Agent": "tradeops-reports/1", "Accept": "application/json"}
        if self.config.username:
            token = base64.b64encode(f"{self.config.username}:{self.config.password}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        return headers

    def _request(self, method: str, path: str, *, body=None, headers=None) -> tuple[int, bytes]:
        conn = http.client.HTTPSConnection(self._host, self._port, context=self._context, timeout=self.config.timeout)
        try:
            conn.request(method, self._base + path, body=body, headers={**self._headers(), **(headers or {})})
            response = conn.getresponse()
            data = response.read()
        except (TimeoutError, OSError, http.client.HTTPException) as exc:
            raise _Transient(f"{type(exc).__name__}: {exc}") from exc
        finally:
            conn.close()
        if response.status >= 500 or response.status == 429:
            raise _Transient(f"HTTP {response.status}: {data[:200].decode(errors='replace')}")
        if response.status >= 400:
            raise ArmRefused(
                f"ARM refused {method} {path}: HTTP {response.status} {data[:500].decode(errors='replace')}",
                extra={"http_status": response.status},
            )
        return response.status, data

    def _with_retries(self, call: Callable[[], tuple[int, bytes]]) -> tuple[tuple[int, bytes], int]:
        last = ""
        for attempt in range(1, self.config.retries + 2):
            try:
                return self.breaker.call(call), attempt
            except CircuitOpenError as exc:
                raise ArmUnavailable(f"ARM circuit open ({exc}); last error: {last or 'none'}") from exc
            except _Transient as exc:
                last = str(exc)
                if attempt <= self.config.retries:
                    self.sleep(self.config.backoff * 2 ** (attempt - 1))
        raise ArmUnavailable(f"ARM unreachable after {self.config.retries + 1} attempts: {last}")

    def submit(
        self, *, fh: IO[bytes], filename: str, sha256: str, idempotency_key: str, content_type: str
    ) -> SubmissionReceipt:
        """Send one report file (streamed from ``fh``, rewound for every attempt)."""
        size = os.fstat(fh.fileno()).st_size if hasattr(fh, "fileno") else None
        start = fh.tell()

        def post() -> tuple[int, bytes]:
            fh.seek(start)
            headers = {
                "Content-Type": content_type,
                "Idempotency-Key": idempotency_key,
                "X-Report-SHA256": sha256,
                "X-Report-Filename": filename,
            }
            if size is not None:
                headers["Content-Length"] = str(size - start)
            return self._request("POST", "/submissions", body=fh, headers=headers)

        (status, data), attempts = self._with_retries(post)
        try:
            answer = json.loads(data)
            submission_id = str(answer["submission_id"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ArmError(f"ARM answered {status} without a submission id: {data[:200]!r}") from exc
        return SubmissionReceipt(submission_id, str(answer.get("status", "")), status == 200, attempts)

    def feedback(self, submission_id: str) -> bytes | None:
        """The feedback file, or None while the ARM is still processing (HTTP 202)."""
        (status, data), _attempts = self._with_retries(
            lambda: self._request("GET", f"/submissions/{quote(submission_id, safe='')}/feedback")
        )
        return None if status == 202 else data
