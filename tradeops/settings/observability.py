"""Observability settings: metrics endpoints, tracing, logs, caches, the anomaly detector.

docs/observability.md explains each; ``tradeops/observability/`` is the code.
"""

from tradeops.settings.env import env

# Metrics: a long-running process (stage, relay, execution worker, Celery worker) serves its
# metrics on METRICS_PORT (0 = not at all); the web app serves them on /metrics. Who may read
# them: METRICS_TOKEN / METRICS_ALLOWED_NETWORKS (the same guard as the web's /metrics).
METRICS_PORT = env.int("METRICS_PORT", default=0)
# Off: the stage runners and the order path keep no metric at all (no per-event work); the
# benchmark's baseline. On by default.
METRICS_ENABLED = env.bool("METRICS_ENABLED", default=True)
METRICS_ADDR = env("METRICS_ADDR", default="127.0.0.1")
# How often a stage measures its consumer lag (seconds; a cached watermark read on Kafka).
METRICS_LAG_SECONDS = env.float("METRICS_LAG_SECONDS", default=5.0)

# Tracing (OpenTelemetry): off unless TRACING_ENABLED; spans go to the OTLP/HTTP endpoint in the
# SDK's own variable OTEL_EXPORTER_OTLP_ENDPOINT (default http://localhost:4318). The service
# name defaults to OTEL_SERVICE_NAME, else "tradeops".
TRACING_ENABLED = env.bool("TRACING_ENABLED", default=False)
TRACING_SERVICE_NAME = env("OTEL_SERVICE_NAME", default="tradeops")
# Share of new traces that are sampled (0..1), decided where a trace starts (a tick, a request)
# and followed by every later hop. 0.01: one trace in a hundred (tracing every trace costs the
# lock-step replay 9x at p50; at 0.01 tracing and JSON logs add 3-5%, metrics and all 8%:
# bench/README.md); the tests trace everything (1.0).
TRACING_SAMPLE_RATIO = env.float("TRACING_SAMPLE_RATIO", default=0.01)

# Caches (tradeops.observability.cache): L1 in-process (bounded, TTL) in front of L2, Django's
# "default" cache (CACHES in integrations.py: Redis when REDIS_URL is set, in-process otherwise).
CACHE_L1_TTL = env.float("CACHE_L1_TTL", default=30.0)  # seconds an L1 entry is trusted
CACHE_L1_MAX_ENTRIES = env.int("CACHE_L1_MAX_ENTRIES", default=10_000)  # per cache
CACHE_L2_TTL = env.int("CACHE_L2_TTL", default=300)

# Anomaly detector (manage.py run_anomaly_detector; a thread of the embedded run): the series it
# watches are scraped every ANOMALY_INTERVAL seconds from ANOMALY_SCRAPE_URLS (comma-separated
# metrics endpoints; empty = this process's own registry).
ANOMALY_INTERVAL = env.float("ANOMALY_INTERVAL", default=15.0)
ANOMALY_SCRAPE_URLS = env.list("ANOMALY_SCRAPE_URLS", default=[])
ANOMALY_SCRAPE_TOKEN = env("ANOMALY_SCRAPE_TOKEN", default="")

# Celery's heartbeat (tradeops/observability/tasks.py): beat sends celery_heartbeat every this many
# seconds; the worker that runs it and beat itself stamp tradeops_heartbeat_timestamp_seconds
# {process="celery-worker"|"celery-beat"}, and TradeopsCeleryHeartbeatMissing fires when either
# is older than 120 s (monitoring/prometheus/alerts.yml). An unrun heartbeat expires after 60 s:
# a worker back from an outage does not run a backlog of them.
CELERY_HEARTBEAT_SECONDS = env.float("CELERY_HEARTBEAT_SECONDS", default=15.0)

from tradeops.settings.integrations import CELERY_BEAT_SCHEDULE  # noqa: E402 - extended, not replaced

CELERY_BEAT_SCHEDULE["observability-celery-heartbeat"] = {
    "task": "tradeops.observability.tasks.celery_heartbeat",
    "schedule": CELERY_HEARTBEAT_SECONDS,
    "options": {"expires": 60},
}
