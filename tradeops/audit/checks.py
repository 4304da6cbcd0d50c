"""System check for the audit checkpoints' database identity (``manage.py check --deploy``).

A connection pooler or a managed database's proxy put in front of the database (PgBouncer, a
cloud SQL proxy) changes the host or port in ``DATABASE_URL`` while the database, and its chain,
stay the same. Checkpoints name their database by that host and port
(``tradeops.audit.checkpoint.database_identity``), so the chain would look like a new database's:
``audit_verify`` reports it unanchored and the scheduler leaves the first checkpoint of the new
name to a person (or, when an old checkpoint still signs a record of the chain, adopts the old
ones). Pinning ``AUDIT_CHECKPOINT_DATABASE`` avoids this; this check warns when it is not pinned
and the newest checkpoint of the same engine names another host or port. A warning only: nothing
is adopted or skipped because of it, and ``audit_verify`` decides as before.
"""

from __future__ import annotations

from django.conf import settings
from django.core import checks

SCAN = 50  # newest checkpoint files looked at (names sort by sequence): enough to pass a few of other engines


def _address(identity: str) -> tuple[str, str, str] | None:
    """(engine, host, port) of an ``engine://host:port/name`` identity; None for any other form."""
    engine, sep, rest = identity.partition("://")
    if not sep:
        return None
    location = rest.split("/", 1)[0]
    host, _, port = location.rpartition(":")
    return engine, host, port


@checks.register("audit", deploy=True)
def audit_checkpoint_database_pinned(app_configs, **kwargs):
    """Warn when ``AUDIT_CHECKPOINT_DATABASE`` is unset and the newest signed checkpoint of this
    engine names another host or port than ``DATABASE_URL``: a pooler or proxy now in front of
    the same database, or another database. Reads the first checkpoint storage, never the database."""
    from tradeops.audit.checkpoint import CheckpointError, checkpoints_newest, database_identity

    if getattr(settings, "AUDIT_CHECKPOINT_DATABASE", ""):
        return []
    current = database_identity()
    here = _address(current)
    if here is None:  # SQLite: no host to move
        return []
    try:
        newest = list(checkpoints_newest(limit=SCAN))
    except (CheckpointError, OSError):
        return []  # no key or no storage: nothing to compare (audit_verify says so)
    for checkpoint in newest:
        if checkpoint.database is None:
            continue
        if checkpoint.database == current:
            return []
        there = _address(checkpoint.database)
        if there is None or there[0] != here[0]:
            continue
        if there[1:] == here[1:]:
            return []  # same host and port, another database name: not a pooler's doing
        return [
            checks.Warning(
                f"The newest audit checkpoint ({checkpoint.name}) names the database at {there[1]}:{there[2]}, "
                f"DATABASE_URL connects to {here[1]}:{here[2]}, and AUDIT_CHECKPOINT_DATABASE is not set.",
                hint=(
                    "If a connection pooler or proxy now fronts the same database, set "
                    f"AUDIT_CHECKPOINT_DATABASE={checkpoint.database} (the identity its checkpoints name) so the "
                    "chain keeps its checkpoints; if this is another database, run manage.py audit_verify and "
                    "take its first checkpoint (docs/audit-trail.md, Operations)."
                ),
                id="tradeops.audit.W001",
            )
        ]
    return []
