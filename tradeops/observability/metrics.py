"""Every ``tradeops_*`` metric, defined once. The docs/observability.md table lists the same
names (a test compares them), the Grafana dashboards and the alert rules query only these (tests
check that too).

Labels are bounded: stage, topic, group, step, outcome, reason codes, control, breaker, scope,
cache, model, account and symbol (the firm's own accounts and instruments). Free text never
becomes a label (``reason_code`` turns a refusal into its stable code).

Hot paths take a label child once (``fills.labels(symbol)``) and keep it: a child's ``inc`` is a
lock and an add (~0.3 µs), the ``labels`` lookup several times that. The stage runners' per-batch
figures do not even pay that: they are plain integers read at scrape time (``stage``).
"""

from __future__ import annotations

import re

from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

# No ``*_created`` series beside each counter: nothing here reads them and they double the output.
disable_created_metrics()

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
FAST_BUCKETS = (0.00002, 0.00005, 0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.1)
CONFIDENCE_BUCKETS = (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.0)

# ---------------------------------------------------------------- pipeline (stage runners, bus)

# Events in and out per stage and topic, duplicates and batch time: kept by the runners in plain
# integers and read when scraped (``tradeops.observability.stage``; names in COLLECTED below).
consumer_lag = Gauge(
    "tradeops_consumer_lag", "Records not yet consumed, per topic and consumer group", ["topic", "group"]
)
dead_letters = Counter(
    "tradeops_dead_letters_total", "Events sent to a dead-letter topic, by source topic and reason", ["topic", "reason"]
)
live_push_dropped = Counter(
    "tradeops_live_push_dropped_total",
    "Screen updates the live-push stage dropped: the channel layer (Redis) unreachable or too slow",
)
heartbeat = Gauge(
    "tradeops_heartbeat_timestamp_seconds",
    "Unix time of the last loop of a long-running process",
    ["process"],
    multiprocess_mode="max",  # Celery's prefork children (PROMETHEUS_MULTIPROC_DIR): the latest of them
)

# ---------------------------------------------------------------- outbox and relay

outbox_published = Counter("tradeops_outbox_published_total", "Outbox rows the relay published and marked sent")

# ---------------------------------------------------------------- order path

order_path_seconds = Histogram(
    "tradeops_order_path_seconds",
    "Order path latency by step (gate, broker, write, total)",
    ["step"],
    buckets=LATENCY_BUCKETS,
)
orders = Counter(
    "tradeops_orders_total",
    "Orders that reached a final state, by outcome and refusal reason code",
    ["outcome", "reason"],
)
fills = Counter("tradeops_fills_total", "Fills (executions) recorded", ["symbol"])
position_net_lots = Gauge("tradeops_position_net_lots", "Net position in lots", ["account", "symbol"])
position_pnl = Gauge(
    "tradeops_position_pnl",
    "Position P&L in the quote currency (kind: realised, unrealised)",
    ["account", "symbol", "kind"],
)
pretrade_refusals = Counter(
    "tradeops_pretrade_refusals_total", "Failed pre-trade checks (risk and compliance), by control", ["control"]
)
breaker_state = Gauge("tradeops_breaker_state", "Circuit breaker state: 0 closed, 1 half-open, 2 open", ["breaker"])
kill_switches_engaged = Gauge("tradeops_kill_switches_engaged", "Kill switches engaged, by scope", ["scope"])
# The execution worker's spool of orders the broker answered whose write failed (workers/unrecorded_spool.py):
# entries not yet written nor found in our records, and lines refused at start-up and quarantined.
execution_unrecorded_spooled = Gauge(
    "tradeops_execution_unrecorded_spooled",
    "Orders the broker answered whose write failed, in the execution worker's spool (not yet recorded)",
    ["account"],
)
execution_spool_quarantined = Counter(
    "tradeops_execution_spool_quarantined_total",
    "Spool lines the execution worker refused at start-up (cut short or altered) and quarantined",
    ["account"],
)
execution_unrecorded_unwritable = Gauge(
    "tradeops_execution_unrecorded_unwritable",
    "Orders of the spool the execution worker cannot write for a reason retrying will not change "
    "(instrument not loaded, row refused): the account stays blocked",
    ["account"],
)

# ---------------------------------------------------------------- compliance and audit

alerts = Counter("tradeops_alerts_total", "Alerts raised, by type and severity", ["type", "severity"])
audit_appends = Counter("tradeops_audit_appends_total", "Audit records appended by this process", ["category"])
# The last chain verification's result and time are read from the trail when scraped (COLLECTED):
# kept in the process that ran it, they read 0 ("broken") in every other process and after a
# restart, and TradeopsAuditChainBroken paged for a chain nobody had found broken (walk45).

# ---------------------------------------------------------------- model serving

model_prediction_seconds = Histogram(
    "tradeops_model_prediction_seconds",
    "Prediction stage time per feature vector (both models + validator)",
    buckets=FAST_BUCKETS,
)
model_confidence = Histogram(
    "tradeops_model_confidence",
    "Probability of the predicted direction, per model",
    ["model"],
    buckets=CONFIDENCE_BUCKETS,
)
model_drift_score = Gauge(
    "tradeops_model_drift_score", "Mean population stability index of the live window", ["symbol"]
)
signals = Counter("tradeops_signals_total", "Validated trade signals", ["symbol", "side"])

# ---------------------------------------------------------------- caches

cache_hits = Counter("tradeops_cache_hits_total", "Cache hits, by cache and level (l1, l2)", ["cache", "level"])
cache_misses = Counter("tradeops_cache_misses_total", "Cache misses (loaded from the database)", ["cache"])
cache_invalidations = Counter(
    "tradeops_cache_invalidations_total", "Cache invalidations, by cache and cause (write, event)", ["cache", "cause"]
)

# ---------------------------------------------------------------- Celery

celery_tasks = Counter("tradeops_celery_tasks_total", "Celery tasks finished, by task and state", ["task", "state"])
celery_task_seconds = Histogram(
    "tradeops_celery_task_seconds", "Celery task run time", ["task"], buckets=LATENCY_BUCKETS
)

# ---------------------------------------------------------------- anomaly detector

anomalies = Counter("tradeops_anomalies_total", "Anomalies the detector raised as operator alerts", ["series"])


# Read when scraped, not kept by the code (tradeops.observability.collectors): name -> help.
COLLECTED: dict[str, str] = {
    "tradeops_events_in_total": "Events a stage consumed",
    "tradeops_events_out_total": "Events a stage published itself (not those it wrote to the outbox)",
    "tradeops_events_outboxed_total": (
        "Events a stage wrote to the transactional outbox, counted on commit (the outbox relay publishes them)"
    ),
    "tradeops_event_duplicates_total": "Redelivered events a stage skipped (already handled)",
    "tradeops_stage_batch_seconds": (
        "Time a stage spent handling one polled batch (one batch in 16 timed; embedded: each event of one pump in 64)"
    ),
    "tradeops_outbox_backlog": "Outbox rows not yet published",
    "tradeops_outbox_lag_seconds": "Age of the oldest unpublished outbox row (relay lag); 0 when none waits",
    "tradeops_audit_chain_length": "Sequence number of the audit chain head (its rate is the append rate)",
    "tradeops_audit_chain_verified": (
        "Last audit chain verification recorded in the trail (audit.verified): 1 intact, 0 broken (findings); "
        "absent before the first"
    ),
    "tradeops_audit_chain_verified_timestamp_seconds": (
        "Unix time of the last audit chain verification recorded in the trail; absent before the first"
    ),
    "tradeops_cache_hit_ratio": "Cache hits / (hits + misses) since the process started, per cache",
    "tradeops_collector_events_total": (
        "Market data items a collector handled, by source and outcome (received, published, flagged, "
        "quarantined, alerts)"
    ),
}

METRIC_NAMES: tuple[str, ...] = tuple(
    sorted(
        [
            m._name + ("_total" if m._type == "counter" else "")
            for m in globals().values()
            if isinstance(m, Counter | Gauge | Histogram)
        ]
        + list(COLLECTED)
    )
)


BREAKER_VALUES = {"closed": 0, "half_open": 1, "open": 2}

_CODE = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+")


def reason_code(reason: str) -> str:
    """The stable code at the start of a refusal reason, for a label: ``risk.max_position`` from
    ``"risk.max_position: 6 > 5 lots; ..."``, ``broker_reject`` from ``"broker REJECT: ..."``,
    ``other`` for free text. Labels stay few whatever the reasons say."""
    text = (reason or "").strip()
    if not text:
        return "none"
    if text.startswith("broker "):
        word = text[len("broker ") :].split(":", 1)[0].split()[0] if text[len("broker ") :].strip() else ""
        return f"broker_{word.lower()}" if word.isalpha() or "_" in word else "broker"
    match = _CODE.match(text)
    return match.group(0) if match else "other"
