"""W3C Trace Context (``traceparent``) for events: ``00-<trace-id 32 hex>-<span-id 16 hex>-<flags>``.

The traceparent travels in the envelope (so it survives the outbox and any store-and-forward)
and in the Kafka ``traceparent`` header (so tools that do not decode envelopes can follow it).
A stage's output events are children of the event that caused them: same trace id, new span.
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


def traceparent_new(*, sampled: bool = True) -> str:
    """A new root trace."""
    return f"00-{os.urandom(16).hex()}-{os.urandom(8).hex()}-{'01' if sampled else '00'}"


def traceparent_child(parent: str, *, span_id: str | None = None) -> str:
    """A new span in the parent's trace; a new root when the parent is missing or invalid.

    ``span_id`` (16 hex) makes the child reproducible: a stage handling a redelivered event
    then publishes a byte-identical output."""
    parsed = traceparent_parse(parent)
    if parsed is None:
        return traceparent_new()
    trace_id, _, flags = parsed
    return f"00-{trace_id}-{span_id or os.urandom(8).hex()}-{flags}"
