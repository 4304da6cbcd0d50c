"""Production: every secret must come from the environment; refuse to start without them."""

from django.core.exceptions import ImproperlyConfigured

from tradeops.settings.env import env


def _required(name: str) -> str:
    value = env(name, default="")
    if not value:
        raise ImproperlyConfigured(
            f"{name} is not set. Production settings refuse to start without it; "
            f"set the {name} environment variable (see docs/configuration.md)."
        )
    return value


_required("SECRET_KEY")
_required("ALLOWED_HOSTS")
_required("DATABASE_URL")
_required("AUDIT_CHECKPOINT_KEY")

from tradeops.settings.base import *  # noqa: E402, F403

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    raise ImproperlyConfigured("Production needs PostgreSQL: DATABASE_URL points at SQLite.")

DEBUG = False
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# Static files: collected at build time (docker/Dockerfile runs `npm ci` and `collectstatic`),
# served compressed with content hashes in their names, so browsers may cache them for ever.
WHITENOISE_USE_FINDERS = env.bool("WHITENOISE_USE_FINDERS", default=False)
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
# Prometheus scrapes from the monitoring network (METRICS_ALLOWED_NETWORKS) or with METRICS_TOKEN;
# nothing is open by default in production.
METRICS_ALLOWED_NETWORKS = env.list("METRICS_ALLOWED_NETWORKS", default=[])

# ARM submission: with an endpoint configured, its credentials and client certificate are
# required (no defaults for secrets).
if env("ARM_URL", default=""):
    for _name in ("ARM_CLIENT_CERT", "ARM_CLIENT_KEY"):
        _required(_name)
