"""W3C Trace Context (``traceparent``) for events: ``00-<trace-id 32 hex>-<span-id 16 hex>-<flags>``.

The traceparent travels in the envelope (so it survives the outbox and any store-and-forward)
and in the Kafka ``traceparent`` header (so tools that do not decode envelopes can follow it).
A stage's output events are children of the event that caused them: same trace id, new span.

Sampling (``TRACING_SAMPLE_RATIO``, docs/observability.md): a trace is sampled or not once, where
it starts, and the decision travels in the flags (``01`` sampled); every later hop follows it
(OpenTelemetry's ``parentbased_traceidratio``). A root's decision is the SDK's
``TraceIdRatioBased`` rule on its trace id (the low 64 bits below ``ratio * 2**64``), so a
process with the SDK and one without decide alike.
"""

from __future__ import annotations

import os
import re

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16


def traceparent_parse(value: str) -> tuple[str, str, str] | None:
    """Return (trace_id, parent_span_id, flags), or None when absent or invalid (spec: ignore it)."""
    match = _TRACEPARENT.match(value or "")
    if not match:
        return None
    trace_id, span_id, flags = match.groups()
    if trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
        return None
    return trace_id, span_id, flags


_LOW64 = (1 << 64) - 1
_bound: int | None = None  # sampled when (trace id & _LOW64) < _bound; read from settings once
# The same rule on a root derived from an event id (``tradeops.observability.tracing.root_trace_id``:
# the id's high 64 bits are the trace id's low 64): (id >> 64) < _bound exactly when
# id < _bound << 64, so a stage decides a root with one comparison of the id's integer.
_root_bound: int | None = None


def sample_ratio_set(ratio: float | None) -> None:
    """Set the share of new traces that are sampled (0..1); None: read ``TRACING_SAMPLE_RATIO``
    again on next use (tests and the benchmark change it)."""
    global _bound, _root_bound
    _bound = None if ratio is None else round(min(max(float(ratio), 0.0), 1.0) * (_LOW64 + 1))
    _root_bound = None if _bound is None else _bound << 64


def sample_bound() -> int:
    """The root sampling bound (OpenTelemetry ``TraceIdRatioBased.get_bound_for_rate``)."""
    if _bound is None:
        try:
            from django.conf import settings

            ratio = getattr(settings, "TRACING_SAMPLE_RATIO", 1.0)
        except Exception:  # outside Django (a script): sample everything it starts
            ratio = 1.0
        sample_ratio_set(ratio)
    return _bound


def trace_sampled(trace_id: int) -> bool:
    """Whether a new trace with this id is sampled (the root decision; children follow flags)."""
    return (trace_id & _LOW64) < sample_bound()


def traceparent_new(*, sampled: bool | None = None) -> str:
    """A new root trace; sampled as ``TRACING_SAMPLE_RATIO`` decides unless ``sampled`` is given."""
    trace = os.urandom(16)
    if sampled is None:
        sampled = trace_sampled(int.from_bytes(trace, "big"))
    return f"00-{trace.hex()}-{os.urandom(8).hex()}-{'01' if sampled else '00'}"


def traceparent_child(parent: str, *, span_id: str | None = None) -> str:
    """A new span in the parent's trace; a new root when the parent is missing or invalid.

    ``span_id`` (16 hex) makes the child reproducible: a stage handling a redelivered event
    then publishes a byte-identical output."""
    parsed = traceparent_parse(parent)
    if parsed is None:
        return traceparent_new()
    trace_id, _, flags = parsed
    return f"00-{trace_id}-{span_id or os.urandom(8).hex()}-{flags}"
