"""Regulatory reporting (compliance.reports): where report files live, when runs are scheduled,
and the ARM the transaction reports go to. See docs/reporting.md."""

from tradeops.settings.env import BASE_DIR, env

# Report files go through Django's storage API (alias "reports"); the default is a folder.
# Point REPORTS_DIR at storage outside the application host's reach in production, or replace
# the backend (e.g. an object store) in STORAGES["reports"].
REPORTS_DIR = env("REPORTS_DIR", default=str(BASE_DIR / "var" / "reports"))
REPORTS_STORAGE = {
    "BACKEND": "django.core.files.storage.FileSystemStorage",
    "OPTIONS": {"location": REPORTS_DIR, "base_url": None, "file_permissions_mode": 0o640},
}

# Schedules (django-celery-beat, kept in the database and editable in the admin). These are the
# defaults written by `manage.py seed` (compliance.reports.schedules.report_schedules_install);
# an edit in the admin is never overwritten. Cron fields in REPORTING_TIMEZONE, so "after the close" follows the
# firm's clock through daylight-saving changes.
REPORTING_TIMEZONE = env("REPORTING_TIMEZONE", default="UTC")
REPORTING_SCHEDULES = {
    # RTS 22 transaction report, due T+1: every day after the UTC trading date has closed.
    "transaction-report-daily": {
        "task": "compliance.reports.tasks.transaction_report_daily",
        "crontab": env("REPORTING_TRANSACTION_CRON", default="30 0 * * *"),
    },
    # MiFID II Art. 27 execution-quality monitoring: monthly, for the month before.
    "best-execution-monthly": {
        "task": "compliance.reports.tasks.report_run_scheduled",
        "crontab": env("REPORTING_BEST_EXECUTION_CRON", default="0 2 1 * *"),
        "kwargs": {"kind": "best_execution", "period": "previous_month"},
    },
    # Alerts and violations summary for compliance management: weekly, for the week before.
    "alerts-summary-weekly": {
        "task": "compliance.reports.tasks.report_run_scheduled",
        "crontab": env("REPORTING_ALERTS_SUMMARY_CRON", default="0 3 * * 1"),
        "kwargs": {"kind": "alerts_summary", "period": "previous_week"},
    },
    # RTS 6 Art. 9 annual self-assessment evidence pack: each January, for the year before.
    "rts6-pack-yearly": {
        "task": "compliance.reports.tasks.report_run_scheduled",
        "crontab": env("REPORTING_RTS6_PACK_CRON", default="0 4 15 1 *"),
        "kwargs": {"kind": "rts6_pack", "period": "previous_year"},
    },
}
# A UTC trading date is reported once it has been closed at least this long (late fills of
# the day recorded within the grace period still make the day's run; later ones the next run).
REPORTING_CLOSE_GRACE_MINUTES = env.int("REPORTING_CLOSE_GRACE_MINUTES", default=15)
# A fill recorded after its day's run was generated goes into the next run, if it was executed
# within this many days before that run's period (older ones need a person: see docs/reporting.md).
REPORTING_LATE_LOOKBACK_DAYS = env.int("REPORTING_LATE_LOOKBACK_DAYS", default=30)
# Transaction report XML: how generation makes sure every Tx written is valid auth.016
# (docs/reporting.md, "Schema validation"):
# "fields" validates each record shape once with libxml2 and the per-record texts with checks read from the
# XSD's facets, plus libxml2 on the first chunk and every REPORTING_XSD_SAMPLE_EVERY-th chunk of 500;
# "full" has libxml2 parse and validate every chunk (about 3x the CPU of building the records).
REPORTING_XSD_CHECK = env("REPORTING_XSD_CHECK", default="fields")
REPORTING_XSD_SAMPLE_EVERY = env.int("REPORTING_XSD_SAMPLE_EVERY", default=20)
# The validate step re-validates the whole stored XML file with libxml2 (streamed) up to this size,
# and checks the SHA-256 of bigger ones (the bytes generation checked). 64 MB is ~55,000 transactions.
REPORTING_DEEP_VALIDATION_MAX_BYTES = env.int("REPORTING_DEEP_VALIDATION_MAX_BYTES", default=64 * 1024 * 1024)
# Transaction report XML: "envelope" (head.003 BizData with a head.001 AppHdr) or "document".
REPORTING_XML_LAYOUT = env("REPORTING_XML_LAYOUT", default="envelope")

# ARM (Approved Reporting Mechanism) submission over HTTPS. Credentials and the client
# certificate come from the environment; production refuses to start with ARM_URL set and
# either missing (tradeops/settings/production.py).
ARM_URL = env("ARM_URL", default="")
ARM_USERNAME = env("ARM_USERNAME", default="")
ARM_PASSWORD = env("ARM_PASSWORD", default="")
ARM_CLIENT_CERT = env("ARM_CLIENT_CERT", default="")  # PEM file: the firm's client certificate
ARM_CLIENT_KEY = env("ARM_CLIENT_KEY", default="")  # PEM file: its private key
ARM_CA_FILE = env("ARM_CA_FILE", default="")  # PEM bundle the ARM's server certificate must chain to
ARM_TIMEOUT_SECONDS = env.float("ARM_TIMEOUT_SECONDS", default=30.0)
ARM_RETRIES = env.int("ARM_RETRIES", default=4)  # attempts after the first, on 5xx/429/connection errors
ARM_RETRY_BACKOFF_SECONDS = env.float("ARM_RETRY_BACKOFF_SECONDS", default=2.0)  # doubles per attempt
ARM_BREAKER_FAIL_MAX = env.int("ARM_BREAKER_FAIL_MAX", default=5)
ARM_BREAKER_RESET_SECONDS = env.float("ARM_BREAKER_RESET_SECONDS", default=300.0)

# Steps `manage.py seed` runs after its own (dotted paths to callables taking stdout=):
# trading must not import compliance, so the reporting configuration seeds itself here.
SEED_EXTENSIONS = ["compliance.reports.seed.reporting_seed"]
