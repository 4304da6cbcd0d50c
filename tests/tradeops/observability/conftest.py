"""Fixtures shared by the observability tests."""

from __future__ import annotations

import pytest

from tradeops.observability import tracing


@pytest.fixture
def spans():
    """Tracing on for the test, its spans kept in memory (the exporter), off again after."""
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    tracing.tracing_setup(service_name="tradeops-test", exporter=exporter)
    yield exporter
    tracing.tracing_shutdown()
