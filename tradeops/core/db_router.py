"""Read replica routing: screens' read-only selectors read from the replica when one is
configured (``DATABASE_REPLICA_URL``, alias ``replica``); everything else uses the primary.

A selector opts in with ``@read_only``. Its reads go to the replica only when all hold:

- a replica is configured (``settings.DATABASES`` has ``replica``);
- the primary is not inside ``transaction.atomic``: a read inside a transaction is a read that
  decides a write (a service checking state before changing it), and must see the primary's
  current rows, never a replica that lags behind;
- the call is not nested in a write path that asked for the primary (``primary_reads()``).

A QuerySet the selector returns is pinned to the alias chosen at call time (QuerySets run
lazily, after the selector has returned). Writes always go to the primary, migrations never run
on the replica (it is a streaming copy). An object read from the replica and saved goes to the
primary (``db_for_write``). ``ReplicaRouter`` is in ``DATABASE_ROUTERS`` in every deployment;
without a replica it routes nothing.
"""

from __future__ import annotations

import contextvars
import functools
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.db.models import QuerySet

REPLICA = "replica"

# None: not inside a read-only selector; True: inside one; False: primary_reads() forces the primary.
_replica_ok: contextvars.ContextVar[bool | None] = contextvars.ContextVar("tradeops_replica_reads", default=None)

P = ParamSpec("P")
R = TypeVar("R")


def replica_configured() -> bool:
    return REPLICA in settings.DATABASES


def read_alias() -> str:
    """The alias a read-only selector called now reads from."""
    if _replica_ok.get() is True and replica_configured() and not connections[DEFAULT_DB_ALIAS].in_atomic_block:
        return REPLICA
    return DEFAULT_DB_ALIAS


@contextmanager
def replica_reads() -> Iterator[None]:
    token = _replica_ok.set(True)
    try:
        yield
    finally:
        _replica_ok.reset(token)


@contextmanager
def primary_reads() -> Iterator[None]:
    """Everything inside reads the primary, even ``@read_only`` selectors (a runner about to
    act on what it reads outside a transaction)."""
    token = _replica_ok.set(False)
    try:
        yield
    finally:
        _replica_ok.reset(token)


def read_only(selector: Callable[P, R]) -> Callable[P, R]:
    """Mark a selector whose result only serves a screen, an export or an API read: it may read
    a replica that lags the primary by a little. Never for a read that decides a write."""

    @functools.wraps(selector)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        if _replica_ok.get() is False:  # inside primary_reads()
            result = selector(*args, **kwargs)
            return result.using(DEFAULT_DB_ALIAS) if isinstance(result, QuerySet) and result._db is None else result
        with replica_reads():
            alias = read_alias()
            result = selector(*args, **kwargs)
        if isinstance(result, QuerySet) and result._db is None:
            return result.using(alias)
        return result

    return wrapper


class ReplicaRouter:
    """``DATABASE_ROUTERS`` entry: see the module docstring."""

    def db_for_read(self, model, **hints) -> str | None:
        alias = read_alias()
        return alias if alias == REPLICA else None

    def db_for_write(self, model, **hints) -> str:
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints) -> bool | None:
        if {obj1._state.db, obj2._state.db} <= {DEFAULT_DB_ALIAS, REPLICA, None}:
            return True
        return None

    def allow_migrate(self, db: str, app_label: str, model_name: str | None = None, **hints) -> bool | None:
        return False if db == REPLICA else None


# ------------------------------------------------------------------ read your writes (the screens)

# The primary's WAL position after this browser's last write; until the replica has replayed
# it, the browser's pages read the primary. A cookie, not the session: it decides only where a
# read goes, never what a user may see.
WROTE_AT_COOKIE = "tradeops_wrote_at"
WROTE_AT_MAX_AGE = 300  # a replica further behind than this is a fault the monitoring reports
_LSN = re.compile(r"[0-9A-F]{1,8}/[0-9A-F]{1,8}")
_SAFE_METHODS = ("GET", "HEAD", "OPTIONS", "TRACE")


def _primary_lsn() -> str | None:
    connection = connections[DEFAULT_DB_ALIAS]
    if connection.vendor != "postgresql":
        return None
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_current_wal_lsn()::text")
            return cursor.fetchone()[0]
    except DatabaseError:  # the primary went away after the request: its answer stands as it is
        return None


def replica_has_replayed(lsn: str) -> bool:
    """Whether the replica has replayed the primary's WAL up to ``lsn``. False when it cannot
    say (down, refusing): the caller then reads the primary. A server not in recovery is not
    behind anything (a promoted standby, or a test's second connection to the primary)."""
    try:
        with connections[REPLICA].cursor() as cursor:
            # out of recovery, the replay position stays where recovery ended: not a lag
            cursor.execute("SELECT NOT pg_is_in_recovery() OR pg_last_wal_replay_lsn() >= %s::pg_lsn", [lsn])
            caught_up = cursor.fetchone()[0]
    except Exception:  # noqa: BLE001 - any failure of the replica means: read the primary
        return False
    return bool(caught_up)


def read_your_writes(get_response):
    """Middleware: a person sees what they just wrote. A request that may write (not GET, HEAD,
    ...) reads the primary throughout and leaves the primary's WAL position in a cookie; the
    browser's next requests read the primary (``primary_reads()``) until the replica has
    replayed that position, then the cookie goes. Without it a case page reloaded after "Start
    review" came from a replica a moment behind: status New, "Start review" offered again, the
    step just taken listed beneath (2026-12-06, wip/walk49). Other people's pages may lag the
    primary by the replica's delay, as the ``@read_only`` selectors document. Nothing happens
    without a replica configured."""

    def middleware(request):
        if not replica_configured() or connections[DEFAULT_DB_ALIAS].vendor != "postgresql":
            return get_response(request)
        if request.method not in _SAFE_METHODS:
            with primary_reads():
                response = get_response(request)
            if response.status_code >= 500:  # nothing to read back (a database outage: no wait)
                return response
            lsn = _primary_lsn()
            if lsn:
                response.set_cookie(
                    WROTE_AT_COOKIE,
                    lsn,
                    max_age=WROTE_AT_MAX_AGE,
                    httponly=True,
                    samesite="Lax",
                    secure=request.is_secure(),
                )
            return response
        lsn = request.COOKIES.get(WROTE_AT_COOKIE, "")
        if not _LSN.fullmatch(lsn):
            return get_response(request)
        if replica_has_replayed(lsn):
            response = get_response(request)
            response.delete_cookie(WROTE_AT_COOKIE, samesite="Lax")
            return response
        with primary_reads():
            return get_response(request)

    return middleware
