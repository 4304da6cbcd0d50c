"""Cached list pages, keyed on the version of the data they show.

A list page of positions or alerts is the same bytes for every caller who may read it, until a
row behind it changes. ``api_data_version`` (one row, migration ``api.0002``) is moved by a
deferred trigger on every table those pages read, at the commit of any transaction that wrote
one of them, whoever wrote it (services, the order path's one-statement writer, the admin, SQL).
So a page is kept per web process under (data version, view, host, path with its query string,
renderer, whether the caller may see rows at all) and served again while the version stands:

- **correct**: the version is read *before* the rows, on the same database (a replica applies
  the version with the rows of the same commit), so a page can only ever be filed under a
  version at most as new as its rows; a new fill commits a new version with the position, and
  the next request misses and reads it (``tests/tradeops/api/test_page_cache.py``);
- **never past the rules**: authentication (revocations included), throttles, the matrix's scope
  and role checks and the selector run on every request exactly as without the cache; only the
  rows' query, their rendering and the page's links are saved. The rows are the same for every
  caller the matrix lets read them (``visible_to`` is all or nothing per role), and a caller who
  may not gets an empty page under its own key;
- **off** inside an open transaction (``ATOMIC_REQUESTS``, tests' transactions: the version does
  not move before commit), off without PostgreSQL (no trigger: the embedded run on SQLite), and off
  when ``API_PAGE_CACHE`` is false.

Bounded: ``_MAX_PAGES`` pages per process, the least recently used go first, and every page of
an older version goes as soon as a newer version is seen.

Hits and misses are counted as the reference caches' are (cache ``api_pages``, one level:
``tradeops_cache_hits_total{level="l1"}``, ``tradeops_cache_misses_total``, and its share in
``tradeops_cache_hit_ratio``).

The version is read on a connection each web process keeps for it (``_version_read``: not the
request's pooled one, whose checkout and health check cost more than the read), with a statement
PostgreSQL prepared once (no parse or plan per request), yet through the request's Django cursor
wrapper: the execute wrappers (the database span of ``tradeops.observability.tracing``) and, when
queries are logged (``DEBUG``, ``CaptureQueriesContext``), the query log and the
``django.db.backends`` logger see it as they see any query. The kept connection reads the same
database as the rows (the same settings), and its read completes before the rows' query starts,
so the order that makes a page never older than its version holds across the two connections.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

from django.conf import settings
from django.db import connections
from django.db.backends.utils import CursorDebugWrapper

from tradeops.observability import metrics
from tradeops.observability.cache import cache_stats_register

_MAX_PAGES = 512
_lock = threading.Lock()
_pages: OrderedDict[tuple, tuple[bytes, str, str]] = OrderedDict()
_newest = [-1]
_counts = [0, 0]  # hits, misses in this process (read when scraped: the hit ratio)
_hit = metrics.cache_hits.labels("api_pages", "l1")
_miss = metrics.cache_misses.labels("api_pages")
cache_stats_register("api_pages", lambda: (_counts[0], _counts[1]))


VERSION_SQL = "SELECT n FROM api_data_version WHERE id = 1"


def data_version(alias: str) -> int | None:
    """The data version on database ``alias``, or None when pages must not be cached now."""
    if not getattr(settings, "API_PAGE_CACHE", True):
        return None
    connection = connections[alias]
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return None
    row = _version_read(connection)
    return None if row is None else int(row[0])


def _version_read(connection):
    """``VERSION_SQL``'s row, read on this process's kept connection to the database that
    ``connection`` (the request's ``DatabaseWrapper``) names, executed as a prepared statement
    through that wrapper's cursor wrapper (what ``connection.cursor()`` would give: the debug
    wrapper when queries are logged), so the execute wrappers, the query log and the
    ``django.db.backends`` logger see it as any query.

    Not on the request's own connection: under Daphne every request gets a new wrapper, and
    opening it means a checkout from the pool with its health check (a round trip of its own)
    and a return at the end of the request, several times the version read's own cost, for a
    request that on a hit reads nothing else from the database."""
    import psycopg

    kept, fresh = _kept_connection(connection)
    wrapped = connection._prepare_cursor(psycopg.Cursor(kept))
    _tracing_wrap(connection)

    def execute(sql, params, many, context):
        nonlocal kept, fresh
        wrapped.db.validate_no_broken_transaction()
        with wrapped.db.wrap_database_errors:
            try:
                return wrapped.cursor.execute(sql, prepare=True)  # parsed and planned once per connection
            except psycopg.OperationalError:
                if fresh:
                    raise
                # the kept connection died (a restart of PostgreSQL, an idle timeout): once more
                # on a new one, as the pool's health check would have given
                _kept_drop(connection, kept)
                kept, fresh = _kept_connection(connection)
                wrapped.cursor = psycopg.Cursor(kept)
                return wrapped.cursor.execute(sql, prepare=True)

    if isinstance(wrapped, CursorDebugWrapper):
        with wrapped.debug_sql(VERSION_SQL):
            wrapped._execute_with_wrappers(VERSION_SQL, None, False, executor=execute)
    else:
        wrapped._execute_with_wrappers(VERSION_SQL, None, False, executor=execute)
    with connection.wrap_database_errors:
        return wrapped.cursor.fetchone()


# One autocommit connection per (database, role) per process, only for the version read:
# psycopg serialises its use between threads (a statement of ~0.1 ms at a time).
_kept: dict[tuple, object] = {}  # psycopg.Connection (imported where used: not on SQLite)
_kept_lock = threading.Lock()


def _kept_key(connection) -> tuple:
    s = connection.settings_dict
    return (s["NAME"], s["HOST"], s["PORT"], s["USER"], s["OPTIONS"].get("assume_role"))


def _kept_connection(connection):
    """(the kept psycopg connection for ``connection``'s database, whether it was opened just now)."""
    import psycopg
    import psycopg.sql

    key = _kept_key(connection)
    kept = _kept.get(key)
    if kept is not None and not kept.closed and not kept.broken:
        return kept, False
    with _kept_lock:
        kept = _kept.get(key)
        if kept is not None and not kept.closed and not kept.broken:
            return kept, False
        params = connection.get_connection_params()
        params.pop("cursor_factory", None)
        params["prepare_threshold"] = None  # prepared only where asked (the version read)
        with connection.wrap_database_errors:
            kept = psycopg.Connection.connect(**params, autocommit=True)
            role = connection.settings_dict["OPTIONS"].get("assume_role")
            if role:  # as Django's own connections assume it
                kept.execute(psycopg.sql.SQL("SET ROLE {}").format(psycopg.sql.Identifier(role)))
        _kept[key] = kept
        return kept, True


def _kept_drop(connection, kept) -> None:
    with _kept_lock:
        if _kept.get(_kept_key(connection)) is kept:
            del _kept[_kept_key(connection)]
    kept.close()


def version_connections_close() -> None:
    """Close the kept connections (before the database they read is dropped: tests, benches)."""
    with _kept_lock:
        kept = list(_kept.values())
        _kept.clear()
    for connection in kept:
        connection.close()


def _tracing_wrap(connection) -> None:
    """The database span of ``tradeops.observability.tracing`` on the request's wrapper, which
    adds it when the wrapper connects: on a hit it never does."""
    from tradeops.observability.tracing import db_spans_wrap

    db_spans_wrap(connection)


def page_etag(content: bytes) -> str:
    """The page's entity tag: a digest of its bytes, so every web process gives the same page the
    same tag and a client's ``If-None-Match`` holds across processes and restarts."""
    return '"' + hashlib.blake2b(content, digest_size=16).hexdigest() + '"'


def page_get(key: tuple, *, count_miss: bool = True) -> tuple[bytes, str, str] | None:
    """The page (content, content type, entity tag) filed under ``key`` (whose first item is the
    version); ``count_miss=False``: a miss is not counted (the caller's next step counts it)."""
    with _lock:
        if key[0] > _newest[0]:  # a newer version: every page kept so far is of an older one
            _pages.clear()
            _newest[0] = key[0]
            page = None
        else:
            page = _pages.get(key)
            if page is not None:
                _pages.move_to_end(key)
        if page is not None:
            _counts[0] += 1
        elif count_miss:
            _counts[1] += 1
    if page is not None:
        _hit.inc()
    elif count_miss:
        _miss.inc()
    return page


def page_put(key: tuple, content: bytes, content_type: str, etag: str) -> None:
    with _lock:
        if key[0] < _newest[0]:
            return  # a newer version was seen meanwhile: this page may already be stale
        _pages[key] = (content, content_type, etag)
        _pages.move_to_end(key)
        while len(_pages) > _MAX_PAGES:
            _pages.popitem(last=False)


def pages_clear() -> None:
    with _lock:
        _pages.clear()
        _newest[0] = -1
