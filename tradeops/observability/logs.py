"""Structured logs: one JSON object per line, the same fields in every process; plain readable
lines on a terminal.

Fields: ``ts`` (RFC 3339 UTC, microseconds), ``level``, ``logger``, ``message``, ``service``
(``TRACING_SERVICE_NAME``, the process's name), ``process`` (pid), ``thread``, ``trace_id`` and
``span_id`` (the work in hand: an HTTP request, a Celery task, the event a stage is handling;
empty outside any), ``exc`` (the traceback, when there is one) and whatever the call passed in
``extra={...}`` (JSON-able values; others as their ``str``).

``LOG_FORMAT``: ``auto`` (default: plain on a terminal, JSON otherwise), ``json`` or ``plain``.
"""

from __future__ import annotations

import logging
import os
import sys
from datetime import UTC, datetime

import orjson

# Attributes every LogRecord has: anything else on a record came from ``extra``.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}
FIELDS = ("ts", "level", "logger", "message", "service", "process", "thread", "trace_id", "span_id")


def _service() -> str:
    try:
        from django.conf import settings

        return settings.TRACING_SERVICE_NAME
    except Exception:
        return os.environ.get("OTEL_SERVICE_NAME", "tradeops")


def _trace_ids(record: logging.LogRecord) -> tuple[str, str]:
    """The work in hand's ids; else, for Django's own line about a response (logged after the
    middleware returned), the request's (``tradeops.observability.tracing.request_trace``)."""
    from tradeops.bus.tracing import traceparent_parse
    from tradeops.observability.tracing import trace_ids_current

    ids = trace_ids_current()
    if not ids[0]:
        parsed = traceparent_parse(getattr(getattr(record, "request", None), "traceparent", ""))
        if parsed:
            return parsed[0], parsed[1]
    return ids


class JsonFormatter(logging.Formatter):
    """One JSON object per record (see module doc)."""

    def __init__(self, *args, service: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._service_name = service

    def format(self, record: logging.LogRecord) -> str:
        trace_id, span_id = _trace_ids(record)
        out = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "service": self._service_name or _service(),
            "process": record.process,
            "thread": record.threadName,
            "trace_id": trace_id,
            "span_id": span_id,
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in out and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        elif record.stack_info:
            out["exc"] = self.formatStack(record.stack_info)
        return orjson.dumps(out, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


class PlainFormatter(logging.Formatter):
    """``2026-11-27 10:00:00.123 INFO tradeops.bus.runner message  [trace 4bf92f35…]``."""

    def __init__(self):
        super().__init__("%(asctime)s.%(msecs)03d %(levelname)s %(name)s %(message)s", "%Y-%m-%d %H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        trace_id, _ = _trace_ids(record)
        return f"{line}  [trace {trace_id}]" if trace_id else line


class ClientErrorWithoutTraceback(logging.Filter):
    """Django's line about a 4xx response (``django.request``: a 403 from ``PermissionDenied``;
    ``django.security``: a 400 from a bad Host header or another ``SuspiciousOperation``) carries
    the exception that answered it, and the formatters would write its whole traceback: one per
    auditor who opens a page their role may not, per scanner's bad Host. The caller's error, not
    ours: the line keeps its status, message and the exception's type and words (``error``), not a
    traceback. A 5xx keeps its traceback (walked 2026-12-06, wip/newcomer48)."""

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if record.exc_info and isinstance(status, int) and 400 <= status < 500:
            exc = record.exc_info[1]
            record.error = f"{type(exc).__name__}: {exc}".rstrip(": ") if exc is not None else ""
            record.exc_info = record.exc_text = None
        return True


class ConsoleHandler(logging.StreamHandler):
    """stderr, JSON or plain by ``LOG_FORMAT`` (``auto``: plain when stderr is a terminal)."""

    def __init__(self, stream=None, log_format: str | None = None):
        super().__init__(stream or sys.stderr)
        choice = (log_format or os.environ.get("LOG_FORMAT", "auto")).lower()
        if choice == "auto":
            isatty = getattr(self.stream, "isatty", None)
            choice = "plain" if isatty is not None and isatty() else "json"
        self.setFormatter(PlainFormatter() if choice == "plain" else JsonFormatter())
