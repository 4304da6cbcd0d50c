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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
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
