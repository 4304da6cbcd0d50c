"""The order path's own metrics and spans, kept by the execution worker (a runner: it calls these,
no business rule lives here).

- ``tradeops_order_path_seconds{step}``: ``gate`` (risk and compliance checks), ``broker`` (the
  send and its answer), ``write`` (the order's one transaction) and ``total`` (intent to written);
- ``tradeops_orders_total{outcome, reason}``: every order the worker wrote, by the status it was
  written in (``filled``, ``rejected``, ``submitted``, ...) and, for a refusal, its reason code;
- ``tradeops_kill_switches_engaged{scope}``: the worker's own view, the one its gate decides
  with (the trading breakers' ``tradeops_breaker_state{breaker="trading:<account id>"}`` is kept by the
  breaker itself, ``tradeops.breaker``).

An order in a sampled trace also gets a span per step, children of the execution stage's span,
made after the fact from the same timestamps (no span object is opened on the path itself).
With ``METRICS_ENABLED`` off nothing is recorded; with tracing off or the trace not sampled, no
span is made.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from tradeops.observability import metrics, tracing
from tradeops.observability.metrics import reason_code

STEPS = ("gate", "broker", "write", "total")
KILL_SCOPES = ("all", "account", "instrument", "algo", "trader")


class OrderTimer:
    """The timestamps of one order's steps (perf_counter), from the intent on."""

    __slots__ = ("started", "last", "steps")

    def __init__(self) -> None:
        self.started = self.last = time.perf_counter()
        self.steps: list[tuple[str, float, float]] = []

    def step(self, name: str) -> None:
        """The step ``name`` ended now (it began where the previous one ended)."""
        now = time.perf_counter()
        self.steps.append((name, self.last, now))
        self.last = now


class OrderPathMeter:
    def __init__(self, *, enabled: bool | None = None) -> None:
        if enabled is None:
            try:
                from django.conf import settings

                enabled = settings.METRICS_ENABLED
            except Exception:
                enabled = True
        self.enabled = enabled
        self._seconds = {step: metrics.order_path_seconds.labels(step) for step in STEPS}
        self._orders: dict[tuple[str, str], object] = {}

    def timer(self) -> OrderTimer:
        return OrderTimer()

    def order_done(self, timer: OrderTimer, *, status: str, reject_reason: str = "") -> None:
        """The order was written in ``status``: its steps' latency, its outcome, its spans."""
        end = time.perf_counter()
        if self.enabled:
            seconds = self._seconds
            for name, began, ended in timer.steps:
                seconds[name].observe(ended - began)
            seconds["total"].observe(end - timer.started)
            outcome = str(status).lower()
            key = (outcome, reason_code(reject_reason) if outcome == "rejected" else "none")
            child = self._orders.get(key)
            if child is None:
                child = self._orders[key] = metrics.orders.labels(*key)
            child.inc()
        if tracing.current_sampled():
            _spans(timer, end, status=str(status), reason=reject_reason)

    def kill_switches(self, engaged: Iterable[tuple[str, str]]) -> None:
        if not self.enabled:
            return
        counts = dict.fromkeys(KILL_SCOPES, 0)
        for scope, _ in engaged:
            counts[scope] = counts.get(scope, 0) + 1
        for scope, n in counts.items():
            metrics.kill_switches_engaged.labels(scope).set(n)


def _spans(timer: OrderTimer, end: float, *, status: str, reason: str) -> None:
    """``order`` and a child per step, with the measured times (OpenTelemetry takes explicit
    start and end times in epoch nanoseconds)."""
    from opentelemetry import trace

    tracer = tracing.tracer()
    offset = time.time_ns() - int(time.perf_counter() * 1e9)

    def ns(t: float) -> int:
        return offset + int(t * 1e9)

    order = tracer.start_span("order", start_time=ns(timer.started), attributes={"tradeops.order.status": status})
    if reason:
        order.set_attribute("tradeops.order.reject_reason", reason[:200])
    context = trace.set_span_in_context(order)
    for name, began, ended in timer.steps:
        tracer.start_span(f"order.{name}", context=context, start_time=ns(began)).end(end_time=ns(ended))
    order.end(end_time=ns(end))
