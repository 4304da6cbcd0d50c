"""A request's log lines carry its trace id, with tracing off (the default) as with it on, and
Django's own line about a 4xx or 5xx response too, which it writes after the middleware has
returned (walked on 2026-12-06, wip/walk45: the HTTP 5xx alert says "its logs carry the trace
ids of the failing requests", yet every such line had ``"trace_id": ""``)."""

from __future__ import annotations

import json
import logging

import pytest
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.urls import path

from tradeops.observability import tracing
from tradeops.observability.logs import JsonFormatter

pytestmark = pytest.mark.django_db

CALLER = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"
view_logger = logging.getLogger("tradeops.test.request_view")


def noisy(request):
    view_logger.warning("handling %s", request.path)
    return HttpResponse("ok")


def broken(request):
    view_logger.warning("about to fail")
    raise RuntimeError("boom")


def forbidden(request):
    raise PermissionDenied("auditors read, they do not write")


urlpatterns = [path("noisy", noisy), path("broken", broken), path("forbidden", forbidden)]


class Lines(logging.Handler):
    def __init__(self):
        super().__init__()
        self.setFormatter(JsonFormatter())
        self.lines: list[dict] = []

    def emit(self, record):
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def lines(settings):
    settings.ROOT_URLCONF = __name__
    handler = Lines()
    loggers = [logging.getLogger("django.request"), view_logger]
    for logger in loggers:
        logger.addHandler(handler)
    yield handler.lines
    for logger in loggers:
        logger.removeHandler(handler)


def test_tracing_off_a_failing_requests_lines_share_one_trace_id(client, lines):
    client.raise_request_exception = False
    assert client.get("/broken").status_code == 500
    view_line, error_line = lines
    assert error_line["logger"] == "django.request" and error_line["status_code"] == 500
    assert len(view_line["trace_id"]) == 32 and view_line["trace_id"] == error_line["trace_id"]
    assert client.get("/nowhere").status_code == 404
    assert len(lines[-1]["trace_id"]) == 32 and lines[-1]["trace_id"] != view_line["trace_id"]  # a new request


def test_tracing_off_a_request_continues_its_callers_trace(client, lines):
    client.get("/noisy", HTTP_TRACEPARENT=CALLER)
    client.get("/nowhere", HTTP_TRACEPARENT=CALLER)
    assert [line["trace_id"] for line in lines] == ["4bf92f3577b34da6a3ce929d0e0e4736"] * 2
    assert lines[0]["span_id"] != "00f067aa0ba902b7"  # the request's own span in the caller's trace
    assert tracing.traceparent_current() == ""  # nothing left behind for the next request


def test_tracing_on_the_404_line_carries_the_requests_span(client, lines, spans):
    client.get("/nowhere", HTTP_TRACEPARENT=CALLER.replace("-00", "-01"))
    (line,) = lines
    server = [s for s in spans.get_finished_spans() if s.kind.name == "SERVER"]
    assert line["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736" == f"{server[0].context.trace_id:032x}"
    assert line["span_id"] == f"{server[0].context.span_id:016x}"


def test_djangos_lines_go_through_the_one_handler_only():
    """Django's default ``django`` handlers (a bare stderr line with DEBUG on) are gone: each of its
    records is written once, by the root's handler, with the trace id."""
    assert logging.getLogger("django").handlers == []
    assert logging.getLogger("django").propagate
    assert any(type(h).__name__ == "ConsoleHandler" for h in logging.getLogger().handlers)


def test_a_4xx_line_names_its_error_without_a_traceback_and_a_5xx_keeps_its_own(client, lines):
    """Every 403 (an auditor on a page their role may not open) wrote the whole traceback of the
    PermissionDenied that answered it: the caller's error, not ours (wip/newcomer48's note)."""
    client.raise_request_exception = False
    assert client.get("/forbidden").status_code == 403
    (line,) = lines
    assert line["level"] == "WARNING" and line["status_code"] == 403 and "exc" not in line
    assert line["error"] == "PermissionDenied: auditors read, they do not write"
    assert line["message"] == "Forbidden (Permission denied): /forbidden"
    assert client.get("/broken").status_code == 500
    assert "RuntimeError: boom" in lines[-1]["exc"] and "Traceback" in lines[-1]["exc"]
