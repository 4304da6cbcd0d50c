"""Tracing: OpenTelemetry set-up (off by default, ``TRACING_ENABLED=true``) and the spans that
continue an event's W3C ``traceparent`` across the bus.

How one trace runs from a tick to the audit record:

- Sampling is decided once, where a trace starts (``TRACING_SAMPLE_RATIO``, default 0.01: one
  trace in a hundred), and travels in the traceparent's flags; every later hop follows it
  (``parentbased_traceidratio``, ``tradeops.bus.tracing``). A trace not sampled costs a stage a
  context-variable set per event and nothing else: no span object, no new traceparent string.
- A stage runner handles each event of a sampled trace as the stage's span (``StageScope``): the
  event's ``traceparent`` (or, for a root event that has none, a trace id derived from its event
  id) is the parent; the span id is derived from (stage, input event id). The runner stamps the
  span's traceparent on the event's outputs, so the next stage's span is a child of this one.
  Both ids are deterministic: a redelivered batch publishes byte-identical events, traced or not.
- While the handler runs, ``traceparent_current()`` is that traceparent: events the handler
  writes through the outbox continue the trace, the order path's audit records name it (the
  execution worker passes it to ``order_commit``), and every log line carries its trace and span
  ids (``tradeops.observability.logs``).
- HTTP requests (Django, ASGI too), Celery tasks (producer and worker) and database calls (every
  query through Django's cursor wrapper) get spans from the OpenTelemetry instrumentations; the
  SDK's sampler is ``ParentBased(TraceIdRatioBased(TRACING_SAMPLE_RATIO))``, the same rule.

Spans leave through the OTLP/HTTP exporter (``OTEL_EXPORTER_OTLP_ENDPOINT``, the SDK's own
environment variables: ``OTEL_SERVICE_NAME``, ...) from a batch span processor.
"""

from __future__ import annotations

import contextvars
import hashlib
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from tradeops.bus import tracing as _bus_tracing
from tradeops.bus.tracing import sample_bound, traceparent_parse

logger = logging.getLogger(__name__)

# The traceparent of the work in hand (a stage handling an event): read by the outbox and the logs.
_current: contextvars.ContextVar[str] = contextvars.ContextVar("tradeops_traceparent", default="")
current_traceparent_var = _current  # the runner sets it inline per event (no context-manager cost)
# Ids the next span must take (trace id or 0, span id): deterministic stage spans.
_forced_ids: contextvars.ContextVar[tuple[int, int] | None] = contextvars.ContextVar("tradeops_span_ids", default=None)

_LOW64 = (1 << 64) - 1
_UNSAMPLED_FLAG_END = frozenset("02468ace")  # the flags' last hex digit: bit 0 clear = not sampled

_provider = None  # the SDK TracerProvider once set up
_tracer = None


def tracing_enabled() -> bool:
    return _tracer is not None


def tracer():
    """The process's OpenTelemetry tracer (None while tracing is off)."""
    return _tracer


def root_trace_id(event_id: uuid.UUID) -> int:
    """The trace id of a trace that starts at ``event_id`` (an event that came with none: a tick
    from a feed): the uuid with its halves swapped. The sampling rule reads the trace id's low 64
    bits, so they are the uuid's high 64, which are random in the version 4 ids events get (all
    but four bits of version); then the rule on the trace id is one comparison of the uuid's own
    integer (``root_sampled``), with nothing computed or allocated per event."""
    value = event_id.int
    return ((value & _LOW64) << 64) | (value >> 64) or 1


def root_sampled(event_id: uuid.UUID) -> bool:
    """Whether the trace that starts at ``event_id`` is sampled: ``trace_sampled(root_trace_id(
    event_id))`` (the SDK's ``TraceIdRatioBased`` on that trace id), as one comparison."""
    bound = _bus_tracing._root_bound
    if bound is None:
        sample_bound()  # reads TRACING_SAMPLE_RATIO once
        bound = _bus_tracing._root_bound
    return event_id.int < bound


class StageScope:
    """How one stage's handling of an event sits in the event's trace; a runner holds one.

    The stage's span for an event has a span id derived from (stage, event id), the same in every
    process, so a redelivered batch publishes byte-identical outputs whether traced or not. Only
    sampled traces pay for anything: a span (when tracing is on here) and, for outputs, a new
    traceparent naming the stage's span as their parent. An event of a trace not sampled is
    handled with its own traceparent in the context and its outputs carry it unchanged (nothing
    of that trace is exported, so there is no span to point at): no string built, no span object.
    """

    __slots__ = ("stage", "_salt")

    def __init__(self, stage: str) -> None:
        self.stage = stage
        self._salt = int.from_bytes(hashlib.blake2b(stage.encode(), digest_size=8).digest(), "big")

    def span_id(self, event_id: uuid.UUID) -> int:
        value = event_id.int
        return ((value >> 64) ^ value ^ self._salt) & _LOW64 or 1

    def traced(self, event) -> bool:
        """Whether this stage makes a span for ``event``: tracing is on here and its trace is
        sampled. The runner asks once per event (one call, as with tracing off)."""
        if _tracer is None:
            return False
        tp = event.traceparent
        if tp:
            if len(tp) == 55:
                if tp[54] in _UNSAMPLED_FLAG_END:
                    return False
                if traceparent_parse(tp) is not None:
                    return True
            return root_sampled(event.event_id)  # an invalid traceparent: a new root
        bound = _bus_tracing._root_bound  # a root (root_sampled, inline: the source's every event)
        if bound is None:
            sample_bound()
            bound = _bus_tracing._root_bound
        return event.event_id.int < bound

    def sampled(self, event) -> bool:
        """Whether ``event``'s trace is sampled (its flags; a root's by ``TRACING_SAMPLE_RATIO``).

        Called for every event a runner handles while tracing is on, so it allocates nothing: a
        traceparent's last character, or (a root) one comparison of the event id's integer."""
        tp = event.traceparent
        if len(tp) == 55:
            if tp[54] in _UNSAMPLED_FLAG_END:
                return False
            if traceparent_parse(tp) is not None:
                return True
        return root_sampled(event.event_id)

    def traceparent(self, event) -> str:
        """The traceparent of this stage's span for ``event``: a child of the event's own, or a
        root (trace id from the event id, sampled as the ratio says) when it carries none."""
        span = self.span_id(event.event_id)
        parsed = traceparent_parse(event.traceparent)
        if parsed is not None:
            return f"00-{parsed[0]}-{span:016x}-{parsed[2]}"
        trace_id = root_trace_id(event.event_id)
        return f"00-{trace_id:032x}-{span:016x}-{'01' if root_sampled(event.event_id) else '00'}"

    def outputs_traceparent(self, event) -> str:
        """What ``event``'s outputs carry: the stage span's traceparent in a sampled trace (or a
        new root), the event's own in a trace not sampled."""
        tp = event.traceparent
        if len(tp) == 55 and tp[54] in _UNSAMPLED_FLAG_END:
            return tp
        return self.traceparent(event)

    def span(self, event, traceparent: str):
        """The context in which the handler runs as this stage's span (tracing on, sampled)."""
        return event_scope(stage=self.stage, event=event, traceparent=traceparent)


def stage_span_id(*, stage: str, event_id: uuid.UUID) -> str:
    """The span id (16 hex) of ``stage`` handling ``event_id``: the same in every process."""
    return f"{StageScope(stage).span_id(event_id):016x}"


def stage_traceparent(*, parent: str, event_id: uuid.UUID, span_id: str) -> str:
    """The traceparent of a stage's span for an event: a child of ``parent``; a root (trace id
    derived from the event id, ``root_trace_id``) when the event carries no valid traceparent."""
    parsed = traceparent_parse(parent)
    if parsed is None:
        trace_id = root_trace_id(event_id)
        return f"00-{trace_id:032x}-{span_id}-{'01' if root_sampled(event_id) else '00'}"
    return f"00-{parsed[0]}-{span_id}-{parsed[2]}"


def current_sampled() -> bool:
    """Whether the work in hand belongs to a trace that is sampled and traced here (so a step
    worth a span of its own, an order's gate or write, gets one). Asked on every database call
    while tracing is on: an event of a trace not sampled answers from its flags, without looking
    at OpenTelemetry's context."""
    if _tracer is None:
        return False
    tp = _current.get()
    if len(tp) == 55 and tp[54] in _UNSAMPLED_FLAG_END:
        return False
    tp = traceparent_current()
    return len(tp) == 55 and tp[54] not in _UNSAMPLED_FLAG_END


def traceparent_current() -> str:
    """The traceparent of the work in hand: the event a stage is handling when its trace is not
    sampled (no span of it is open anywhere); else the active OpenTelemetry span when tracing is
    on and one is active (the stage's span or a step inside it, an HTTP request, a Celery task);
    else the event a stage is handling; else ''."""
    tp = _current.get()
    if _tracer is not None and not (len(tp) == 55 and tp[54] in _UNSAMPLED_FLAG_END):
        context = _otel_trace().get_current_span().get_span_context()
        if context.is_valid:
            return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"
    return tp


_otel_trace_module = None


def _otel_trace():
    """``opentelemetry.trace``, imported once (tracing on only)."""
    global _otel_trace_module
    if _otel_trace_module is None:
        from opentelemetry import trace

        _otel_trace_module = trace
    return _otel_trace_module


def request_trace(get_response):
    """Middleware: every HTTP request is in a trace, so its log lines carry a trace id with
    tracing off (the default) as with it on. Tracing on, the OpenTelemetry middleware (outside
    this one) has opened the request's span and this only notes it; off, the request continues an
    incoming ``traceparent`` header (a child span id in the caller's trace) or starts a root, set
    as the work in hand like a stage's event (``_current``), so the outbox's events continue it
    too. The traceparent is kept on the request (``request.traceparent``): Django logs a 4xx or 5xx
    response after the middleware has returned (``django.request``), and the log formatters read
    it from the record's request there. Until 2026-12-06 those lines had an empty ``trace_id``
    whatever the setting, and every request's lines had none with tracing off (walk45)."""

    def middleware(request):
        tp = traceparent_current()
        token = None
        if not tp:
            incoming = request.META.get("HTTP_TRACEPARENT", "")
            tp = (
                _bus_tracing.traceparent_child(incoming)
                if traceparent_parse(incoming)
                else _bus_tracing.traceparent_new()
            )
            token = _current.set(tp)
        request.traceparent = tp
        try:
            return get_response(request)
        finally:
            if token is not None:
                _current.reset(token)

    return middleware


def trace_ids_current() -> tuple[str, str]:
    """(trace id, span id) of the work in hand, or ('', '') outside any."""
    parsed = traceparent_parse(traceparent_current())
    return (parsed[0], parsed[1]) if parsed else ("", "")


@contextmanager
def event_scope(*, stage: str, event, traceparent: str) -> Iterator[None]:
    """Run a handler on ``event`` as ``stage``'s span ``traceparent`` (``stage_traceparent``).

    Tracing off: only the context variable is set (outbox and logs continue the trace). On: a
    CONSUMER span with exactly those ids, parent = the event's own traceparent."""
    token = _current.set(traceparent)
    try:
        if _tracer is None:
            yield
            return
        with _span(
            f"{stage} {event.type}",
            traceparent=traceparent,
            parent=event.traceparent,
            kind="consumer",
            attributes={
                "messaging.system": "tradeops-bus",
                "messaging.destination.name": event.topic,
                "messaging.message.id": str(event.event_id),
                "messaging.consumer.group.name": stage,
                "tradeops.event.key": event.key,
            },
        ):
            yield
    finally:
        _current.reset(token)


@contextmanager
def span(name: str, **attributes) -> Iterator[None]:
    """A span around a step (an order's gate, broker call, write), child of the current one.
    No-op (no span object at all) when tracing is off or the trace is not sampled."""
    if not current_sampled():
        yield
        return
    with _tracer.start_as_current_span(name, attributes=attributes or None):
        yield


@contextmanager
def _span(name: str, *, traceparent: str, parent: str, kind: str, attributes: dict) -> Iterator[None]:
    from opentelemetry import trace
    from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags

    trace_id, span_id, flags = traceparent_parse(traceparent)
    parsed_parent = traceparent_parse(parent)
    if parsed_parent is not None:
        remote = SpanContext(
            trace_id=int(parsed_parent[0], 16),
            span_id=int(parsed_parent[1], 16),
            is_remote=True,
            trace_flags=TraceFlags(int(parsed_parent[2], 16)),
        )
        context = trace.set_span_in_context(NonRecordingSpan(remote))
        forced = (0, int(span_id, 16))
    else:
        context = trace.set_span_in_context(trace.INVALID_SPAN)  # a root, not a child of whatever is current
        forced = (int(trace_id, 16), int(span_id, 16))
    token = _forced_ids.set(forced)
    try:
        started = _tracer.start_span(name, context=context, kind=getattr(SpanKind, kind.upper()), attributes=attributes)
    finally:
        _forced_ids.reset(token)
    with trace.use_span(started, end_on_exit=True, record_exception=True, set_status_on_exception=True):
        yield


def _id_generator():
    from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

    class StageIdGenerator(RandomIdGenerator):
        """Random ids, except for a stage span, whose ids are derived from its event."""

        def generate_trace_id(self) -> int:
            forced = _forced_ids.get()
            return forced[0] if forced and forced[0] else super().generate_trace_id()

        def generate_span_id(self) -> int:
            forced = _forced_ids.get()
            return forced[1] if forced else super().generate_span_id()

    return StageIdGenerator()


# ---------------------------------------------------------------- set-up


def tracing_setup(*, service_name: str | None = None, exporter=None, instrument: bool = True) -> bool:
    """Turn tracing on for this process when ``TRACING_ENABLED`` (or an ``exporter`` is given:
    tests pass an in-memory one, exported synchronously). Idempotent. Returns whether on."""
    global _provider, _tracer
    from django.conf import settings

    if _tracer is not None:
        return True
    if exporter is None and not settings.TRACING_ENABLED:
        return False
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    name = service_name or settings.TRACING_SERVICE_NAME
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    ratio = sample_bound() / (1 << 64)
    # parentbased_traceidratio: a trace continued from an event or a request follows its flags;
    # a new one (an HTTP request without a traceparent, a Celery beat task) is sampled at the ratio.
    provider = TracerProvider(
        resource=Resource.create({"service.name": name}),
        id_generator=_id_generator(),
        sampler=ParentBased(TraceIdRatioBased(ratio)),
    )
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    else:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    # The global provider can be set once per process; instrumentations and our spans get this one
    # explicitly, so tests can turn tracing off and on again with a fresh exporter.
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        trace.set_tracer_provider(provider)
    _provider = provider
    _tracer = provider.get_tracer("tradeops")
    if instrument:
        _instrument(provider)
    logger.info("tracing on: service %s, sampling %.4g of new traces", name, ratio)
    return True


def tracing_shutdown() -> None:
    """Flush and stop (tests turn tracing off again; processes exit through here too)."""
    global _provider, _tracer
    provider = _provider
    _tracer = None
    _provider = None
    if provider is not None and hasattr(provider, "shutdown"):
        provider.shutdown()
    _uninstrument()


_instrumented = False


def _instrument(provider) -> None:
    global _instrumented
    if _instrumented:
        return
    from django.db.backends.signals import connection_created

    try:
        from opentelemetry.instrumentation.django import DjangoInstrumentor

        DjangoInstrumentor().instrument(tracer_provider=provider)
    except Exception:  # pragma: no cover - a missing optional piece must not stop the process
        logger.exception("tracing: Django instrumentation failed")
    try:
        from opentelemetry.instrumentation.celery import CeleryInstrumentor

        CeleryInstrumentor().instrument(tracer_provider=provider)
    except Exception:  # pragma: no cover
        logger.exception("tracing: Celery instrumentation failed")
    connection_created.connect(_on_connection_created, dispatch_uid="tradeops-db-tracing")
    from django.db import connections

    for connection in connections.all(initialized_only=True):
        _wrap_connection(connection)
    _instrumented = True


def _uninstrument() -> None:
    global _instrumented
    if not _instrumented:
        return
    from django.db.backends.signals import connection_created

    connection_created.disconnect(dispatch_uid="tradeops-db-tracing")
    try:
        from opentelemetry.instrumentation.celery import CeleryInstrumentor
        from opentelemetry.instrumentation.django import DjangoInstrumentor

        DjangoInstrumentor().uninstrument()
        CeleryInstrumentor().uninstrument()
    except Exception:  # pragma: no cover
        logger.exception("tracing: uninstrumenting failed")
    _instrumented = False


def _on_connection_created(sender, connection, **kwargs) -> None:
    _wrap_connection(connection)


def db_spans_wrap(connection) -> None:
    """The database span wrapper on a Django connection wrapper that has not connected (so has
    not had it from ``connection_created``) yet runs a statement on another connection through
    its cursor wrapper (``tradeops.api.cache``); nothing while tracing is not instrumented."""
    if _instrumented:
        _wrap_connection(connection)


def _wrap_connection(connection) -> None:
    if any(getattr(w, "tradeops_db_span", False) for w in connection.execute_wrappers):
        return
    connection.execute_wrappers.append(_db_span_wrapper(connection.vendor, connection.alias))


def _db_span_wrapper(vendor: str, alias: str):
    def wrapper(execute, sql, params, many, context):
        if not current_sampled():  # tracing off, no trace in hand, or one not sampled: no span
            return execute(sql, params, many, context)
        operation = sql.lstrip().split(None, 1)[0].upper() if sql else ""
        with _tracer.start_as_current_span(
            f"db {operation}".strip(),
            kind=_client_kind(),
            attributes={"db.system": vendor, "db.name": alias, "db.statement": sql[:2000], "db.operation": operation},
        ):
            return execute(sql, params, many, context)

    wrapper.tradeops_db_span = True
    return wrapper


def _client_kind():
    from opentelemetry.trace import SpanKind

    return SpanKind.CLIENT
