"""Settings for what lives outside the process: Redis, Celery, Channels, Kafka, brokers, search."""

from tradeops.settings.env import BASE_DIR, env

REDIS_URL = env("REDIS_URL", default="")

# Django's cache: Redis when REDIS_URL is set (shared by every web process: the integration API's
# throttles count per client across processes), else in-process (the embedded run).
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env("CACHE_KEY_PREFIX", default="tradeops"),
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "tradeops"}}

# Event bus: "memory" (one process, the embedded default) or "kafka".
EVENT_BUS = env("EVENT_BUS", default="memory")
KAFKA_BOOTSTRAP_SERVERS = env("KAFKA_BOOTSTRAP_SERVERS", default="127.0.0.1:9092")
# Prefix for every topic name, so test runs and environments can share one cluster.
KAFKA_TOPIC_PREFIX = env("KAFKA_TOPIC_PREFIX", default="")
# Outbox relay: rows per publish batch, and how long sent rows are kept before pruning.
OUTBOX_RELAY_BATCH_SIZE = env.int("OUTBOX_RELAY_BATCH_SIZE", default=1000)
OUTBOX_RETENTION_HOURS = env.float("OUTBOX_RETENTION_HOURS", default=168.0)

# Broker: "paper" (the default; Linux and tests) or "mt5" (MetaTrader 5 terminal on Windows/Wine).
BROKER = env("BROKER", default="paper")
MT5_LOGIN = env.int("MT5_LOGIN", default=0)
MT5_PASSWORD = env("MT5_PASSWORD", default="")
MT5_SERVER = env("MT5_SERVER", default="")
MT5_PATH = env("MT5_PATH", default="")
# The module that speaks the MetaTrader5 API: MetaQuotes' package on Windows, or a drop-in bridge
# to a terminal under Wine (see docs/market-data.md).
MT5_MODULE = env("MT5_MODULE", default="MetaTrader5")
# The trade server's clock (MT5 stamps ticks, bars and deals with it), e.g. "Europe/Athens".
MT5_SERVER_TZ = env("MT5_SERVER_TZ", default="UTC")

# Celery: Redis when REDIS_URL is set; otherwise tasks run in-process (embedded shape).
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL or "memory://")
CELERY_RESULT_BACKEND = env("CELERY_RESULT_BACKEND", default=REDIS_URL or "cache+memory://")
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=not REDIS_URL)
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ROUTES = {
    "trading.tasks.*": {"queue": "trading"},
    "compliance.tasks.*": {"queue": "compliance"},
    "mlmodels.tasks.*": {"queue": "ml"},
    "compliance.reports.*": {"queue": "reports"},
}
CELERY_TIMEZONE = "UTC"

# Channels: Redis in tests and production, in-memory for the embedded run.
if REDIS_URL and env.bool("CHANNELS_REDIS", default=True):
    CHANNEL_LAYERS = {
        "default": {
            # CHANNELS_REDIS_BACKEND=channels_redis.pubsub.RedisPubSubChannelLayer: the pub/sub layer
            # (bench/live_fanout.py --layer pubsub compares the two).
            "BACKEND": env("CHANNELS_REDIS_BACKEND", default="channels_redis.core.RedisChannelLayer"),
            # No socket timeout (None, not redis-py 8's default 5 s): with one, redis-py sends every
            # command through asyncio.wait_for, which on Python 3.11 loses a cancellation that
            # arrives as the send completes (CPython gh-86296); a screen's consumer cancelled then
            # (its page went away) kept waiting in channels_redis's BZPOPMIN loop for good, and so
            # did whatever awaited it (docs/screens.md, "An intermittent hang of the live screens'
            # test"). Reads need none: BZPOPMIN returns every 5 s by itself (a 5 s read timeout
            # killed every idle screen's consumer with "Timeout reading from Redis"). Connecting
            # stays bounded.
            "CONFIG": {
                "hosts": [
                    {
                        "address": REDIS_URL,
                        "socket_timeout": None,
                        "socket_connect_timeout": env.float("CHANNELS_REDIS_CONNECT_TIMEOUT", default=5),
                    }
                ],
                # A test run on a shared Redis has groups of its own: another run's live.trading
                # events must not reach this run's screens (they did: hundreds a minute).
                "prefix": env("CHANNELS_PREFIX", default="")
                or (f"asgi.{env('TEST_DATABASE_NAME')}" if env("TEST_DATABASE_NAME", default="") else "asgi"),
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# Audit search: "postgres" (default; falls back to plain filters on SQLite) or "elasticsearch".
AUDIT_SEARCH_BACKEND = env("AUDIT_SEARCH_BACKEND", default="postgres")
ELASTICSEARCH_URL = env("ELASTICSEARCH_URL", default="")
AUDIT_ES_INDEX = env("AUDIT_ES_INDEX", default="tradeops-audit")
# Digests and archives of the audit trail (default: var/audit). Point it at storage that leaves
# the database's reach (WORM bucket mount, another host): that copy is what catches a rewrite.
AUDIT_EXPORT_DIR = env("AUDIT_EXPORT_DIR", default="") or None
# Signed checkpoints of the chain head (tradeops/audit/checkpoint.py): the HMAC-SHA256 key (a
# secret the database never sees; required in production), retired keys still accepted when
# verifying, the storages written (aliases in STORAGES; the first must succeed; add an external
# WORM target as a second one), and how often: every N records or M minutes, looked at every S s.
AUDIT_CHECKPOINT_KEY = env("AUDIT_CHECKPOINT_KEY", default="insecure-local-checkpoint-key-do-not-use-in-production")
AUDIT_CHECKPOINT_OLD_KEYS = env.list("AUDIT_CHECKPOINT_OLD_KEYS", default=[])
AUDIT_CHECKPOINT_STORAGES = env.list("AUDIT_CHECKPOINT_STORAGES", default=["audit_checkpoints"])
AUDIT_CHECKPOINT_EVERY_RECORDS = env.int("AUDIT_CHECKPOINT_EVERY_RECORDS", default=10_000)
AUDIT_CHECKPOINT_EVERY_MINUTES = env.float("AUDIT_CHECKPOINT_EVERY_MINUTES", default=5.0)
AUDIT_CHECKPOINT_CHECK_SECONDS = env.float("AUDIT_CHECKPOINT_CHECK_SECONDS", default=5.0)
# The database identity checkpoints name (empty: engine://host:port/name of the default database,
# tradeops.audit.checkpoint.database_identity). In production set it to a label naming no address
# (tradeops-prod-eu: also what the audit screens and the API show), or, where checkpoints exist,
# to the identity they name (a move, a pooler in front): docs/audit-trail.md, Operations.
AUDIT_CHECKPOINT_DATABASE = env("AUDIT_CHECKPOINT_DATABASE", default="")
# Retention per audit category in years (MiFIR Art. 25: 5; compliance records 7, MiFID II Art. 16).
AUDIT_RETENTION_YEARS = {"default": 5, "compliance": 7}

from celery.schedules import crontab  # noqa: E402

CELERY_BEAT_SCHEDULE = globals().get("CELERY_BEAT_SCHEDULE", {})
CELERY_BEAT_SCHEDULE.update(
    {
        "audit-digest-daily": {
            "task": "tradeops.audit.tasks.audit_digest_daily",
            "schedule": crontab(hour=0, minute=10),
        },
        "audit-checkpoint": {
            "task": "tradeops.audit.tasks.audit_checkpoint_tick",
            "schedule": 30.0,
        },
        "audit-verify-nightly": {
            "task": "tradeops.audit.tasks.audit_verify_nightly",
            "schedule": crontab(hour=1, minute=0),
        },
        # orders requested over the API and not taken up in time: expired (docs/api.md)
        "order-requests-expire": {
            "task": "trading.tasks.order_requests_expire_tick",
            "schedule": 10.0,
        },
    }
)

# Execution worker (workers/execution.py). Accounts it trades (ids; empty = every active account).
EXECUTION_ACCOUNTS = env.list("EXECUTION_ACCOUNTS", default=[])
# Paper accounts survive restarts through a journal per account in this folder ("" = in memory only).
EXECUTION_PAPER_JOURNAL_DIR = env("EXECUTION_PAPER_JOURNAL_DIR", default="")
# The worker's own state on local disk: its spool of orders the broker answered whose write failed,
# one file per account (workers/unrecorded_spool.py; read at start-up). Keep it on a disk that
# outlives the process (a volume in a container), and delete it together with the database.
EXECUTION_STATE_DIR = env("EXECUTION_STATE_DIR", default=str(BASE_DIR / "var" / "execution"))
# A fault drill for the paper broker (never MT5): the answers its first sends get, e.g.
# "REJECT*5,TIMEOUT:executed" (five refusals, then a reply lost after the order executed), applied
# at each start of the worker ("" = none; trading.brokers.paper.paper_faults_parse).
PAPER_BROKER_FAULTS = env("PAPER_BROKER_FAULTS", default="")
# Wall-clock seconds between two writes of an account's marks and risk snapshot by the worker
# (fills and shutdown write them too): bounds the writes whatever the feed's pace.
EXECUTION_SNAPSHOT_SECONDS = env.float("EXECUTION_SNAPSHOT_SECONDS", default=1.0)
# Wall-clock seconds a market order may stay SUBMITTED without a fill (accepted and not executed,
# or its answer lost) before the worker expires it with the reason: immediate or cancel, never pending.
EXECUTION_MARKET_ORDER_TIMEOUT_SECONDS = env.float("EXECUTION_MARKET_ORDER_TIMEOUT_SECONDS", default=30.0)
# The risk manager refuses a signal decided more than this many seconds (of event time) before the
# latest quote (a lagging pipeline, a redelivered backlog). 0 = no limit: only for a replay flat out
# on the distributed topology, where the quotes overtake the signals derived from them (the stages
# in between run in other processes); the cluster tests use it (docs/topology.md).
EXECUTION_MAX_SIGNAL_AGE_SECONDS = env.float("EXECUTION_MAX_SIGNAL_AGE_SECONDS", default=900.0)
# Pre-trade compliance checks appended to the gate: dotted paths to zero-argument factories
# returning a check (or a list of checks) that follows the protocol in trading/gate.py.
# compliance.pretrade.loading.pretrade_checks: the RTS 6 Art. 15 controls, from the active ComplianceRule rows.
PRETRADE_COMPLIANCE_CHECKS = env.list(
    "PRETRADE_COMPLIANCE_CHECKS", default=["compliance.pretrade.loading.pretrade_checks"]
)
