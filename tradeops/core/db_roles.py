"""Database roles on PostgreSQL: the owner migrates, the runtime role only uses.

Two roles (docs/security.md; ``scripts/services.sh`` creates both locally):

- the **owner** (``tradeops_owner``, ``MIGRATE_DATABASE_URL``) owns the database and every table,
  function and trigger; ``manage.py migrate`` (and ``flush``, which only tests need) switch the
  connection to it (``database_owner``);
- the **runtime role** (``tradeops``, ``DATABASE_URL``) is what the application connects as: no
  superuser, owns nothing, has no ``TRUNCATE``, and per table only the rights it needs. So the
  application cannot disable a trigger, truncate the audit trail or write the guard tables
  (2017/565 Art. 72(1)(c): records not open to manipulation).

Rights are granted after every ``migrate`` (``runtime_grants_apply``, a ``post_migrate`` receiver
connected in ``tradeops.core.apps``), so a table a new migration creates gets them at once: every
table gets ``DEFAULT_TABLE_PRIVILEGES`` unless an app config narrows it in
``runtime_table_privileges`` (``{table: (privileges...)}``, an empty tuple = none at all), and the
functions an app lists in ``runtime_functions`` get ``EXECUTE``. The step runs only when the
session is not the runtime role itself (the owner, or a superuser), and only if that role exists.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from django.apps import apps
from django.conf import settings
from django.db import connections

log = logging.getLogger(__name__)

DEFAULT_TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE")  # never TRUNCATE, REFERENCES, TRIGGER
# Django's own tables the runtime role must not write: the migration history is the owner's.
CORE_TABLE_PRIVILEGES = {"django_migrations": ("SELECT",)}
_CREDENTIALS = ("USER", "PASSWORD", "HOST", "PORT")


def runtime_table_privileges() -> dict[str, tuple[str, ...]]:
    """Table -> privileges for the runtime role where it differs from ``DEFAULT_TABLE_PRIVILEGES``."""
    merged = dict(CORE_TABLE_PRIVILEGES)
    for config in apps.get_app_configs():
        merged.update(getattr(config, "runtime_table_privileges", {}))
    return merged


def runtime_functions() -> list[str]:
    """Function signatures (``name(argtypes)``) the runtime role may execute."""
    return [sig for config in apps.get_app_configs() for sig in getattr(config, "runtime_functions", ())]


def runtime_grants_sql(*, role: str, tables: list[str], functions: list[str], quote) -> str:
    """The statements that set the runtime role's rights on ``tables`` (revoke all, then grant)."""
    narrowed = runtime_table_privileges()
    who = quote(role)
    statements = []
    for table in sorted(tables):
        name = quote(table)
        statements.append(f"REVOKE ALL ON TABLE {name} FROM {who}")
        privileges = narrowed.get(table, DEFAULT_TABLE_PRIVILEGES)
        if privileges:
            statements.append(f"GRANT {', '.join(privileges)} ON TABLE {name} TO {who}")
    statements.append(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {who}")
    statements.extend(f"GRANT EXECUTE ON FUNCTION {sig} TO {who}" for sig in functions)
    return ";\n".join(statements)


def runtime_grants_apply(*, using: str = "default") -> dict | None:
    """Grant the runtime role its rights on every table the current session owns.

    Returns what was done, or ``None`` when skipped (not PostgreSQL, no runtime role configured or
    existing, or the session is the runtime role). Idempotent; one round trip."""
    connection = connections[using]
    role = getattr(settings, "DATABASE_RUNTIME_ROLE", "")
    if connection.vendor != "postgresql" or not role:
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_user, EXISTS (SELECT 1 FROM pg_roles WHERE rolname = %s)",
            [role],
        )
        me, exists = cursor.fetchone()
        if not exists or me == role:
            return None
        cursor.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tableowner = current_user",
        )
        tables = [row[0] for row in cursor.fetchall()]
        cursor.execute(
            "SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
            " WHERE n.nspname = 'public' AND p.oid::regprocedure::text = ANY(%s)",
            [runtime_functions()],
        )
        functions = [row[0] for row in cursor.fetchall()]
        quote = connection.ops.quote_name
        cursor.execute(runtime_grants_sql(role=role, tables=tables, functions=functions, quote=quote))
    log.debug("granted runtime role %s its rights on %d tables and %d functions", role, len(tables), len(functions))
    return {"role": role, "owner": me, "tables": len(tables), "functions": functions}


def runtime_grants_after_migrate(sender, using: str = "default", **kwargs) -> None:
    """``post_migrate`` receiver (connected once, for the core app)."""
    runtime_grants_apply(using=using)


def _reconnect(connection, values: dict) -> None:
    connection.close()
    if connection.alias in getattr(connection, "_connection_pools", {}):  # a pool keeps the old credentials
        connection.close_pool()
    connection.settings_dict.update(values)


@contextlib.contextmanager
def database_owner(alias: str = "default") -> Iterator[None]:
    """Run the block on ``alias`` connected as the owner (``MIGRATE_DATABASE_URL``), then
    reconnect as before. Same database (the connection's ``NAME``, a test database included);
    a no-op without an owner configured or off PostgreSQL. Precondition: no open transaction."""
    owner = getattr(settings, "DATABASE_OWNER", None)
    connection = connections[alias]
    if not owner or connection.vendor != "postgresql" or alias != "default":
        yield
        return
    if connection.in_atomic_block:
        raise RuntimeError("cannot switch to the database owner inside a transaction")
    saved = {key: connection.settings_dict.get(key, "") for key in _CREDENTIALS}
    _reconnect(connection, {key: owner[key] or saved[key] for key in _CREDENTIALS})
    try:
        yield
    finally:
        _reconnect(connection, saved)
