"""Settings shared by every deployment shape (embedded, tests, production)."""

import os
from datetime import timedelta

from tradeops.settings.env import BASE_DIR, env
from tradeops.settings.integrations import *  # noqa: F403
from tradeops.settings.observability import *  # noqa: F403

SECRET_KEY = env("SECRET_KEY", default="insecure-local-only-key-do-not-use-in-production")
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
# Behind the TLS gateway (nginx terminates TLS and always overwrites X-Forwarded-Proto): the web
# tier must know a browser's request came over https, or CSRF's origin check refuses every form
# (a sign-in from https://host:18443 against http://host:18443). Production trusts the header
# always; the cluster (scripts/cluster.sh: local settings behind its gateway) sets this. Never on a
# web tier clients reach without the gateway: they could claim https.
if env.bool("BEHIND_TLS_GATEWAY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# ``TRADEOPS_BATCH_CLI=1`` (set by ``manage.py`` for its batch commands, which serve no request):
# without Daphne's app, whose import starts Twisted's reactor machinery (~0.7 s of CPU).
BATCH_CLI = os.environ.get("TRADEOPS_BATCH_CLI") == "1"

INSTALLED_APPS = [
    *([] if BATCH_CLI else ["daphne"]),
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "oauth2_provider",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "django_prometheus",
    "axes",
    "django_celery_beat",
    "pgtrigger",  # the audit trail's append-only triggers (tradeops/audit/triggers.py)
    # core (never imports a domain app)
    "tradeops.core",
    "tradeops.audit",
    "tradeops.outbox",
    "tradeops.observability",
    "tradeops.api",  # the integration API's clients, scopes, authorisation matrix (after oauth2_provider)
    # domain apps
    "trading",
    "compliance",
    "compliance.reports",
    "mlmodels",
    # runners (management commands only; no models)
    "workers",
]

MIDDLEWARE = [
    # every request in a trace, so its log lines carry a trace id with tracing on or off
    "tradeops.observability.tracing.request_trace",
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files (CSS, scripts, the chart library, the admin's own) served by the app itself,
    # in the embedded run and in production alike: WhiteNoise, right after SecurityMiddleware.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # a person's pages read the primary until the replica has replayed what they wrote
    "tradeops.core.db_router.read_your_writes",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Locked-out logins get a clear 429 (django-axes; last, as its documentation asks).
    "axes.middleware.AxesMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]
MIDDLEWARE.insert(MIDDLEWARE.index("django.middleware.common.CommonMiddleware"), "tradeops.core.middleware.refuse_nul")
# Last, so its process_exception is asked first: a database outage is a 503, not a 500.
MIDDLEWARE.insert(
    MIDDLEWARE.index("django_prometheus.middleware.PrometheusAfterMiddleware"),
    "tradeops.core.middleware.DatabaseUnavailableMiddleware",
)

ROOT_URLCONF = "tradeops.urls"
WSGI_APPLICATION = "tradeops.wsgi.application"
ASGI_APPLICATION = "tradeops.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "tradeops.core.context_processors.screens",
            ],
        },
    },
]

VAR_DIR = BASE_DIR / "var"  # local state of the embedded run (SQLite file, exports); git-ignored
VAR_DIR.mkdir(exist_ok=True)

# The embedded default is a local SQLite file; PostgreSQL via DATABASE_URL=postgres://...
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'var' / 'tradeops.sqlite3'}"),
}
DATABASES["default"].setdefault("ATOMIC_REQUESTS", False)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the dashboard read while the pipeline writes; a busy timeout instead of errors.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
    }
elif env.int("DB_POOL_MAX_SIZE", default=0):
    # A bounded pool (psycopg_pool through Django): the web tier under Daphne, where persistent
    # per-thread connections piled up until PostgreSQL refused everyone (bench/web_load.py).
    # tradeops/asgi.py turns it on for the ASGI application; connections are checked on checkout.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": env.int("DB_POOL_MIN_SIZE", default=2),
        "max_size": env.int("DB_POOL_MAX_SIZE"),
        "timeout": env.float("DB_POOL_TIMEOUT", default=10.0),  # then the request fails, clearly
    }
else:
    # Long-running workers (execution worker, stages, relay) keep one connection each.
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DB_CONN_MAX_AGE", default=60))
# Two database roles on PostgreSQL (docs/security.md): DATABASE_URL is the runtime role (no
# ownership; per-table rights granted by every `migrate`, tradeops/core/db_roles.py), and
# MIGRATE_DATABASE_URL the owner's credentials, used only by `migrate` and `flush` (tests) on the
# database DATABASE_URL names (the owner URL's own database name is not used, so a test database
# or a spawned process keeps its database). Unset: one role does everything (SQLite, or an old
# single-role setup).
DATABASE_RUNTIME_ROLE = env("DATABASE_RUNTIME_ROLE", default="") or DATABASES["default"].get("USER", "")
DATABASE_OWNER = None
if env("MIGRATE_DATABASE_URL", default="") and DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":
    _owner = env.db("MIGRATE_DATABASE_URL")
    DATABASE_OWNER = {key: _owner.get(key, "") for key in ("USER", "PASSWORD", "HOST", "PORT")}
# Parallel developers and CI jobs can keep their test databases apart. The name is always explicit
# on PostgreSQL: a spawned live-server process (browser tests) must derive the same one.
if DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":
    DATABASES["default"]["TEST"] = {
        "NAME": env("TEST_DATABASE_NAME", default="") or f"test_{DATABASES['default']['NAME']}"
    }

# A read replica (PostgreSQL streaming replica): screens' read-only selectors read from it, never
# a read that decides a write (tradeops/core/db_router.py; docs/deployment.md). Same roles.
if env("DATABASE_REPLICA_URL", default=""):
    DATABASES["replica"] = env.db("DATABASE_REPLICA_URL")
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
DATABASE_ROUTERS = ["tradeops.core.db_router.ReplicaRouter"]

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# Storages: Django's two, plus where signed audit checkpoints go (AUDIT_CHECKPOINT_DIR; a path
# outside the database's host in production).
AUDIT_CHECKPOINT_DIR = env("AUDIT_CHECKPOINT_DIR", default="") or str(VAR_DIR / "audit" / "checkpoints")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "audit_checkpoints": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": AUDIT_CHECKPOINT_DIR},
    },
}

# Sign-in (docs/security.md): failed logins throttled per account and per address by
# django-axes (its backend first), each failure and each lock-out audited
# (tradeops/audit/signals.py); sessions end after SESSION_IDLE_MINUTES without a request.
AUTHENTICATION_BACKENDS = [
    "tradeops.core.auth.LoginThrottleBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.float("LOGIN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # either one reaching the limit locks
AXES_RESET_ON_SUCCESS = True
AXES_HTTP_RESPONSE_CODE = 429
AXES_VERBOSE = False
SESSION_COOKIE_AGE = int(env.float("SESSION_IDLE_MINUTES", default=30) * 60)
SESSION_SAVE_EVERY_REQUEST = True  # the age counts from the last request: an idle timeout
SESSION_COOKIE_HTTPONLY = True

# /metrics (tradeops/core/metrics.py): answered only to a bearer token (METRICS_TOKEN) or to
# clients in METRICS_ALLOWED_NETWORKS (the monitoring network; loopback by default here, nothing
# in production); 403 to anyone else.
METRICS_TOKEN = env("METRICS_TOKEN", default="")
METRICS_ALLOWED_NETWORKS = env.list("METRICS_ALLOWED_NETWORKS", default=["127.0.0.0/8", "::1/128"])

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "static"  # collectstatic's target (production); WhiteNoise also looks here
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# The screens' own CSS and scripts (static/), and the chart library installed from npm by
# `npm ci` (package.json + package-lock.json; scripts/run.sh, .ci/run and the image run it):
# served by the app itself, never from a CDN, so the screens work on a closed network.
NODE_MODULES = BASE_DIR / "node_modules"
STATICFILES_DIRS = [
    BASE_DIR / "static",
    ("vendor/chart.js", NODE_MODULES / "chart.js" / "dist"),
]
# Without collectstatic (the embedded run, tests) WhiteNoise finds files where they are;
# production collects them at build time (docker/Dockerfile) and serves the hashed copies.
WHITENOISE_USE_FINDERS = env.bool("WHITENOISE_USE_FINDERS", default=True)
# One sign-in page for the screens and the admin (tradeops/core/signin.py), styled like the rest.
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/login/"
# Home page panels: what needs each role's attention. Dotted paths (core never imports a domain
# app) to callables ``(user) -> list[tradeops.core.attention.Item]``.
# The algorithms a kill switch may name before they placed an order: dotted paths to callables
# returning algorithm ids (trading.controls.selectors.algo_ids_known adds the ids orders carry).
KILL_SWITCH_ALGO_SOURCES = ["mlmodels.selectors.algo_ids_configured"]
HOME_ATTENTION = [
    "trading.console.selectors.attention_for",
    "compliance.desk.selectors.attention_for",
]
# What a live screen missed while its WebSocket was down: dotted paths to callables
# ``(*, user, since) -> list[event dict]`` (trading/consumers.py calls each on a catch-up request).
LIVE_CATCH_UP = [
    "trading.console.selectors.live_catch_up",
    "compliance.desk.selectors.live_catch_up",
]

# The integration API (docs/api.md): OAuth2 client credentials or a browser session,
# one authorisation matrix (tradeops/api/matrix.py), cursor pages, stable error codes.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tradeops.api.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_THROTTLE_CLASSES": [
        "tradeops.api.throttling.ClientRateThrottle",
        "tradeops.api.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "client": env("API_THROTTLE_CLIENT", default="1200/min"),
        "user": env("API_THROTTLE_USER", default="600/min"),
        "failed_auth": env("API_THROTTLE_FAILED_AUTH", default="10/min"),
        "audit_verify": env("API_THROTTLE_AUDIT_VERIFY", default="6/min"),
    },
    # Proxies in front (gateway): the client address for throttles is taken from X-Forwarded-For.
    "NUM_PROXIES": env.int("API_NUM_PROXIES", default=None),
    "EXCEPTION_HANDLER": "tradeops.core.api.exception_handler",
    "DEFAULT_PAGINATION_CLASS": "tradeops.api.pagination.CursorPage",
    "PAGE_SIZE": 100,
    "DEFAULT_FILTER_BACKENDS": ["tradeops.api.inputs.StrictFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "tradeops.api.schema.ApiAutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["tradeops.api.renderers.OrjsonRenderer"],
    "DEFAULT_PARSER_CLASSES": ["tradeops.api.parsers.JsonBodyParser"],
    "COERCE_DECIMAL_TO_STRING": True,
    # Always the microseconds (docs/api.md, Conventions): "iso-8601" drops them when they are
    # zero, so every replayed bar's time (on the hour) read "...T15:00:00Z" and a client parsing
    # the documented form failed on it. TIME_ZONE is UTC, so DRF renders in UTC.
    "DATETIME_FORMAT": "%Y-%m-%dT%H:%M:%S.%fZ",
}

# OAuth2 (django-oauth-toolkit): client credentials only; every client is a tradeops.api ApiClient
# bound to one role, and its tokens never carry a scope beyond what that role may use.
OAUTH2_PROVIDER = {
    "SCOPES": {},  # filled from tradeops.api.matrix.SCOPES by the app's ready()
    "DEFAULT_SCOPES": [],
    "SCOPES_BACKEND_CLASS": "tradeops.api.oauth.ApiClientScopes",
    "OAUTH2_VALIDATOR_CLASS": "tradeops.api.oauth.ApiOAuth2Validator",
    "ACCESS_TOKEN_EXPIRE_SECONDS": env.int("API_TOKEN_SECONDS", default=3600),
    # RFC 9700 (OAuth 2.0 Security BCP) throughout: tokens stored hashed only, accepted in the
    # Authorization header only, no implicit or password grant, PKCE S256, https redirects.
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
    "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
    "COMPLIANT_BCP_RFC9700_REFRESH_TOKEN": True,
    "COMPLIANT_BCP_RFC9700_REDIRECT_URI_SCHEME": True,
    "COMPLIANT_BCP_RFC9700_REDIRECT_URI_MATCHING": True,
    "COMPLIANT_BCP_RFC9700_PKCE_REQUIRED": True,
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    "ALLOWED_REDIRECT_URI_SCHEMES": ["https"],
}

# Named so that tradeops.api's migration can point at the (unswapped) application model.
OAUTH2_PROVIDER_APPLICATION_MODEL = "oauth2_provider.Application"

# How long a web process keeps a bearer token it looked up (never past its expiry; revocations
# through the services reach every process at once through the shared cache: tradeops/api/oauth.py).
API_TOKEN_CACHE_SECONDS = env.int("API_TOKEN_CACHE_SECONDS", default=30)

# Serve a list page of positions or alerts again while the data behind it is unchanged (a version
# moved by a trigger at the commit of every write to their tables): tradeops/api/cache.py.
API_PAGE_CACHE = env.bool("API_PAGE_CACHE", default=True)
# Answer those two lists' plain GETs before DRF's dispatch, with DRF's own authentication,
# permission, throttle and error methods (tradeops/api/views.py, page_fast_path); false: DRF's path.
API_PAGE_FAST_PATH = env.bool("API_PAGE_FAST_PATH", default=True)

# Wall-clock seconds an order placed over the API may wait for the execution worker that trades
# its account: past it the request is expired (status ``expired``, audited) and never sent, so a
# client never waits on a stale request (trading/orders/requests.py).
API_ORDER_REQUEST_TTL_SECONDS = env.float("API_ORDER_REQUEST_TTL_SECONDS", default=60.0)

SPECTACULAR_SETTINGS = {
    "TITLE": "tradeops integration API",
    "DESCRIPTION": (
        "REST API v1 of tradeops for integrations (risk systems, back offices, regulators' data "
        "requests, BI). OAuth2 client credentials (token endpoint /o/token/) or a browser session. "
        "Every operation states its scope and the roles that may call it; errors have the shape "
        '{"error": {"code", "message"}} with a stable code. Times are ISO 8601 UTC, decimals are strings.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "OAUTH2_FLOWS": ["clientCredentials"],
    "OAUTH2_TOKEN_URL": "/o/token/",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "KillScopeEnum": "trading.models.KillScope",
        "ProposalStatusEnum": "trading.models.ProposalStatus",
        "RuleScopeEnum": "compliance.models.RuleScope",
    },
}

# Logs: JSON lines with trace and span ids, plain lines on a terminal (LOG_FORMAT=auto|json|plain;
# tradeops/observability/logs.py).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "tradeops.observability.logs.ConsoleHandler"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # Django's own default handlers on "django" (a bare stderr line with DEBUG on, mail to
        # ADMINS) are dropped: its records reach the root's one handler, once, as JSON with the
        # request's trace id (each 4xx/5xx was printed twice in the embedded run; walk45).
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        # a 4xx's line without its traceback (the caller's error; ClientErrorWithoutTraceback)
        "django.request": {"filters": ["client_errors"]},
        "django.security": {"filters": ["client_errors"]},
    },
    "filters": {"client_errors": {"()": "tradeops.observability.logs.ClientErrorWithoutTraceback"}},
}

# Surveillance: the kind of market the firm's orders trade on, whose profile gives the detectors'
# defaults under the rules in force (compliance.surveillance.params.MARKET_PROFILES: "otc", dealer
# quotes; "order_book", an exchange-style limit order book). An unknown name: compliance.E001.
SURVEILLANCE_MARKET = env("SURVEILLANCE_MARKET", default="otc")

# ML pipeline (mlmodels): where model artifacts live, the bar timeframe the features use, and
# how often serving checks the registry for a newly activated model (events or seconds).
# Artifacts go through Django's storage API: a folder at ML_MODEL_DIR unless STORAGES["models"] is
# configured (docs/deployment.md, "Storage").
ML_MODEL_DIR = env("ML_MODEL_DIR", default=str(VAR_DIR / "models"))
ML_TIMEFRAME = env("ML_TIMEFRAME", default="H1")
ML_RELOAD_CHECK_EVENTS = env.int("ML_RELOAD_CHECK_EVENTS", default=1000)
ML_RELOAD_CHECK_SECONDS = env.float("ML_RELOAD_CHECK_SECONDS", default=5.0)

# Regulatory reporting (compliance.reports): storage, schedules, ARM. Celery beat reads its
# schedule from the database (django-celery-beat), so the admin can edit it.
from tradeops.settings.reporting import *  # noqa: E402, F403

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    **globals().get("STORAGES", {}),
    "reports": REPORTS_STORAGE,  # noqa: F405
}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
