"""Observability: metrics, tracing, structured logs, caches, alert rules and the anomaly detector.

- ``metrics``: every ``tradeops_*`` metric, defined once (docs/observability.md's table lists the same names);
- ``server``: the per-process metrics endpoint (``METRICS_PORT``), behind the /metrics guard;
- ``collectors``: figures read at scrape time (outbox backlog and lag, audit chain length, cache
  hit ratios);
- ``events``: metrics derived from the durable event stream (orders, fills, positions, refusals,
  alerts, kill switches): the ``metrics`` stage;
- ``tracing``: OpenTelemetry set-up (off by default) and the spans that continue an event's
  ``traceparent`` across the bus;
- ``logs``: JSON lines with trace and span ids (plain lines on a terminal);
- ``cache``: the two-level cache (in-process L1, Django cache L2) for reference data;
- ``anomaly``: robust detector over key series, raising operator alerts.

Nothing here imports a domain app (ARCHITECTURE.md, dependency rules).
"""
