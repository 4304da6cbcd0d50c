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

The version is read with a statement PostgreSQL prepared once per connection (no parse or plan
per request; a server-side binding cursor kept per connection), yet through Django's own cursor
wrapper: the execute wrappers (the database span of ``tradeops.observability.tracing``) and, when
queries are logged (``DEBUG``, ``CaptureQueriesContext``), the query log and the
``django.db.backends`` logger see it as they see any query.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from django.conf import settings
from django.db import connections
from django.db.backends.utils import CursorDebugWrapper

from tradeops.observability import metrics
from tradeops.observability.cache import cache_stats_register

_MAX_PAGES = 512
_lock = threading.Lock()
_pages: OrderedDict[tuple, tuple[bytes, str]] = OrderedDict()
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
    """``VERSION_SQL``'s row, executed as a prepared statement through Django's cursor wrapper
    (what ``connection.cursor()`` would give: the debug wrapper when queries are logged), so the
    execute wrappers, the query log and the ``django.db.backends`` logger see it as any query."""
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    raw = _version_cursor(connection)
    wrapped = connection._prepare_cursor(raw)

    def execute(sql, params, many, context):
        wrapped.db.validate_no_broken_transaction()
        with wrapped.db.wrap_database_errors:
            return raw.execute(sql, prepare=True)  # parsed and planned once per connection

    if isinstance(wrapped, CursorDebugWrapper):
        with wrapped.debug_sql(VERSION_SQL):
            wrapped._execute_with_wrappers(VERSION_SQL, None, False, executor=execute)
    else:
        wrapped._execute_with_wrappers(VERSION_SQL, None, False, executor=execute)
    with connection.wrap_database_errors:
        return raw.fetchone()


def _version_cursor(connection):
    """A server-side binding cursor (prepared statements need one; Django's own cursors bind on
    the client) on the connection's current database connection, kept while that lasts."""
    import psycopg

    kept = getattr(connection, "_tradeops_version_cursor", None)
    if kept is not None and kept[0] is connection.connection and not kept[1].closed:
        return kept[1]
    with connection.wrap_database_errors:
        cursor = psycopg.Cursor(connection.connection)
    connection._tradeops_version_cursor = (connection.connection, cursor)
    return cursor


def page_get(key: tuple, *, count_miss: bool = True) -> tuple[bytes, str] | None:
    """The page (content, content type) filed under ``key`` (whose first item is the version);
    ``count_miss=False``: a miss is not counted (the caller's next step counts it)."""
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


def page_put(key: tuple, content: bytes, content_type: str) -> None:
    with _lock:
        if key[0] < _newest[0]:
            return  # a newer version was seen meanwhile: this page may already be stale
        _pages[key] = (content, content_type)
        _pages.move_to_end(key)
        while len(_pages) > _MAX_PAGES:
            _pages.popitem(last=False)


def pages_clear() -> None:
    with _lock:
        _pages.clear()
        _newest[0] = -1
