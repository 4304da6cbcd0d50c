"""Logs are JSON lines with the same fields in every process and the trace and span ids of the
work in hand; plain lines on a terminal."""

from __future__ import annotations

import io
import json
import logging

from tests.tradeops.conftest import tick
from tradeops.bus.tracing import traceparent_new, traceparent_parse
from tradeops.observability.logs import FIELDS, ConsoleHandler, JsonFormatter, PlainFormatter
from tradeops.observability.tracing import event_scope, stage_span_id, stage_traceparent


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _logger(stream, **kwargs) -> logging.Logger:
    logger = logging.getLogger(f"tradeops.test.logs.{id(stream)}")
    logger.handlers[:] = [ConsoleHandler(stream, **kwargs)]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger


def test_json_lines_with_trace_ids_inside_a_stage():
    stream = io.StringIO()
    log = _logger(stream)
    event = tick("EURUSD", 1, traceparent=traceparent_new())
    span = stage_span_id(stage="s", event_id=event.event_id)
    traceparent = stage_traceparent(parent=event.traceparent, event_id=event.event_id, span_id=span)
    with event_scope(stage="s", event=event, traceparent=traceparent):
        log.info("order %s refused", "c1", extra={"client_order_id": "c1", "lots": 0.5})
    log.warning("outside")
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed")
    first, second, third = (json.loads(line) for line in stream.getvalue().splitlines())
    assert set(FIELDS) <= set(first) and set(FIELDS) <= set(second)
    assert first["message"] == "order c1 refused" and first["level"] == "INFO"
    assert first["trace_id"] == traceparent_parse(event.traceparent)[0] and first["span_id"] == span
    assert first["client_order_id"] == "c1" and first["lots"] == 0.5
    assert first["ts"].endswith("Z") and "." in first["ts"]
    assert second["trace_id"] == "" and second["span_id"] == ""
    assert "ValueError: boom" in third["exc"]


def test_plain_lines_on_a_terminal():
    stream = _Tty()
    handler = ConsoleHandler(stream)
    assert isinstance(handler.formatter, PlainFormatter)
    assert isinstance(ConsoleHandler(io.StringIO()).formatter, JsonFormatter)
    assert isinstance(ConsoleHandler(_Tty(), log_format="json").formatter, JsonFormatter)
    log = _logger(stream)
    log.info("hello")
    line = stream.getvalue().strip()
    assert line.endswith("INFO " + log.name + " hello") and not line.startswith("{")


def test_the_project_logging_uses_the_console_handler(settings):
    assert settings.LOGGING["handlers"]["console"]["class"] == "tradeops.observability.logs.ConsoleHandler"
