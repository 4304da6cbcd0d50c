"""The cached pages' fast path (``tradeops.api.views.page_fast_path``): a GET of positions or
alerts answered without DRF's dispatch gives exactly what DRF's path gives (status, body, every
header: 200 missed and hit, 401, 403 for a scope and for a role, 429 with ``Retry-After``, a
session), counts the request against the throttle once, follows the data version, and leaves the
version read visible to the query log and to the execute wrappers (tracing's database spans).
Committed transactions, as in test_page_cache.py (nothing is cached inside a test's transaction)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from prometheus_client import REGISTRY
from rest_framework.test import APIClient

import tradeops.api.views as api_views
from tests.tradeops.api.conftest import filled_order, spoofing_alert, token_request
from tradeops.api.cache import VERSION_SQL, pages_clear
from tradeops.api.throttling import SlidingWindow
from tradeops.core.roles import Role
from trading.api.orders import PositionList

pytestmark = pytest.mark.django_db(transaction=True)

PATHS = ("/api/v1/positions/", "/api/v1/alerts/")


@pytest.fixture(autouse=True)
def _fresh_pages():
    pages_clear()
    api_views._selected.clear()
    yield
    pages_clear()
    api_views._selected.clear()


@pytest.fixture
def book(account, instrument):
    filled_order(account=account, instrument=instrument, client_order_id="FAST-1")
    spoofing_alert(account=account)
    return account, instrument


@pytest.fixture
def drf_only(monkeypatch):
    """Within this context every request takes DRF's path (the fast path declines)."""

    class Switch:
        def __enter__(self):
            monkeypatch.setattr(api_views, "page_fast_path", lambda *args: None)

        def __exit__(self, *exc):
            monkeypatch.undo()

    return Switch()


def _answer(response) -> tuple:
    headers = {k: v for k, v in response.headers.items() if k.lower() != "date"}
    return response.status_code, response.content, headers


def _both(drf_only, http, path, data=None, *, fresh_pages: bool = False):
    """(fast path's answer, DRF's answer) to the same GET."""
    fast = _answer(http.get(path, data))
    if fresh_pages:
        pages_clear()
    with drf_only:
        slow = _answer(http.get(path, data))
    return fast, slow


def _fast_path_used(monkeypatch):
    """Fail any request that reaches DRF's dispatch of the list views."""

    def refuse(*args, **kwargs):
        raise AssertionError("DRF's dispatch was called")

    monkeypatch.setattr(PositionList, "dispatch", refuse)
    from compliance.api.cases import AlertList

    monkeypatch.setattr(AlertList, "dispatch", refuse)


def test_both_paths_answer_alike_missed_hit_and_refused(book, issue_token, bearer, person, drf_only):
    trader, _ = issue_token(Role.TRADER)
    officer, _ = issue_token(Role.COMPLIANCE_OFFICER)
    callers = {"/api/v1/positions/": bearer(trader), "/api/v1/alerts/": bearer(officer)}
    for path, http in callers.items():
        # a miss on both sides (the page dropped in between), then a hit on both
        fast, slow = _both(drf_only, http, path, fresh_pages=True)
        assert fast[0] == 200 and fast == slow, path
        fast, slow = _both(drf_only, http, path)
        assert fast[0] == 200 and fast == slow, path
        assert http.get(path, HTTP_ACCEPT="application/json").content == fast[1]
        # a query string is its own page, on both paths
        fast, slow = _both(drf_only, http, path, {"page_size": 1})
        assert fast == slow and fast[0] == 200, path
        # 400 for a bad filter value or cursor: the same error body
        fast, slow = _both(drf_only, http, path, {"cursor": "not-a-cursor"})
        assert fast == slow and fast[0] == 400, path

    refused = {
        "no credentials": (APIClient(), 401, "not_authenticated"),
        "a bad token": (bearer("not-a-token"), 401, "invalid_token"),
        "no scope": (bearer(issue_token(Role.COMPLIANCE_OFFICER, scopes=["audit:read"])[0]), 403, "insufficient_scope"),
    }
    for path in PATHS:
        for what, (http, status, code) in refused.items():
            fast, slow = _both(drf_only, http, path)
            assert fast == slow, (path, what)
            assert fast[0] == status and f'"code":"{code}"'.encode() in fast[1], (path, what, fast)
            if status == 401:
                assert fast[2]["WWW-Authenticate"].startswith("Bearer"), (path, what)
    # a role without alerts (a trader's client holds no compliance scope: a person on a session)
    trader_person = APIClient()
    trader_person.force_login(person(Role.TRADER))
    fast, slow = _both(drf_only, trader_person, "/api/v1/alerts/")
    assert fast == slow and fast[0] == 403 and b'"code":"role_forbidden"' in fast[1]
    # a person on a session: the page as a client gets it
    officer_person = APIClient()
    officer_person.force_login(person(Role.COMPLIANCE_OFFICER))
    fast, slow = _both(drf_only, officer_person, "/api/v1/alerts/")
    assert fast == slow and fast[0] == 200
    assert fast[1] == callers["/api/v1/alerts/"].get("/api/v1/alerts/").content


def test_a_hit_skips_drf_and_the_rows_but_not_the_version_read(book, issue_token, bearer, monkeypatch):
    token, _ = issue_token(Role.TRADER)
    http = bearer(token)
    first = http.get("/api/v1/positions/")  # the miss: DRF's list, the page kept
    assert first.status_code == 200
    hits = REGISTRY.get_sample_value("tradeops_cache_hits_total", {"cache": "api_pages", "level": "l1"}) or 0
    misses = REGISTRY.get_sample_value("tradeops_cache_misses_total", {"cache": "api_pages"}) or 0
    _fast_path_used(monkeypatch)
    seen = []

    def spy(execute, sql, params, many, context):  # what tracing's database span wrapper sees
        seen.append(sql)
        return execute(sql, params, many, context)

    with CaptureQueriesContext(connection) as queries, connection.execute_wrapper(spy):
        again = http.get("/api/v1/positions/")
    assert again.status_code == 200 and again.content == first.content
    logged = [q["sql"] for q in queries.captured_queries]
    assert logged == [VERSION_SQL] and seen == [VERSION_SQL]  # no rows read, the version read seen
    # counted once: one hit, no miss
    assert REGISTRY.get_sample_value("tradeops_cache_hits_total", {"cache": "api_pages", "level": "l1"}) == hits + 1
    assert (REGISTRY.get_sample_value("tradeops_cache_misses_total", {"cache": "api_pages"}) or 0) == misses


def test_the_fast_path_follows_the_data_version(book, issue_token, bearer):
    account, instrument = book
    token, _ = issue_token(Role.TRADER)
    http = bearer(token)
    assert http.get("/api/v1/positions/").json()["results"][0]["net_quantity"] == "1.000000"
    assert http.get("/api/v1/positions/").json()["results"][0]["net_quantity"] == "1.000000"  # a hit
    filled_order(account=account, instrument=instrument, client_order_id="FAST-2", quantity="0.50")
    assert http.get("/api/v1/positions/").json()["results"][0]["net_quantity"] == "1.500000"


def test_a_request_is_counted_once_and_429_is_the_same(book, make_api_client, drf_only):
    answers = {}
    for side in ("fast", "drf"):
        client, secret = make_api_client(Role.TRADER, rate="3/min")
        token = token_request(APIClient(), client, secret).json()["access_token"]
        http = APIClient()
        http.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        if side == "drf":
            drf_only.__enter__()
        statuses = [http.get("/api/v1/positions/").status_code for _ in range(3)]
        refused = http.get("/api/v1/positions/")
        if side == "drf":
            drf_only.__exit__()
        assert statuses == [200, 200, 200], side
        # each request counted exactly once in the client's window (four requests, four counts)
        assert SlidingWindow("client", "3/min").peek(str(client.pk)).current == 4, side
        answers[side] = refused
    fast, slow = answers["fast"], answers["drf"]
    assert fast.status_code == slow.status_code == 429
    assert fast.json()["error"]["code"] == slow.json()["error"]["code"] == "throttled"
    assert fast.headers.keys() == slow.headers.keys() and "Retry-After" in fast.headers
    # Retry-After depends on the second of the window each was refused in: within a few seconds
    assert abs(int(fast.headers["Retry-After"]) - int(slow.headers["Retry-After"])) <= 5


def test_the_setting_off_sends_every_request_through_drf(book, issue_token, bearer, settings, monkeypatch):
    token, _ = issue_token(Role.TRADER)
    http = bearer(token)
    first = http.get("/api/v1/positions/")
    settings.API_PAGE_FAST_PATH = False
    dispatched = []
    original = PositionList.dispatch

    def counted(self, *args, **kwargs):
        dispatched.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(PositionList, "dispatch", counted)
    assert http.get("/api/v1/positions/").content == first.content  # DRF's path, the page hit there
    assert dispatched == [1]


def test_pages_carry_an_etag_and_answer_304_on_both_paths(book, issue_token, bearer, make_api_client, drf_only):
    account, instrument = book
    trader, _ = issue_token(Role.TRADER)
    officer, _ = issue_token(Role.COMPLIANCE_OFFICER)
    for path, http in {"/api/v1/positions/": bearer(trader), "/api/v1/alerts/": bearer(officer)}.items():
        # a 200 (missed, then hit) carries the page's tag and asks caches to come back each time
        fast, slow = _both(drf_only, http, path, fresh_pages=True)
        assert fast == slow and fast[0] == 200, path
        etag = fast[2]["ETag"]
        assert etag.startswith('"') and fast[2]["Cache-Control"] == "private, no-cache", path
        assert "Authorization" in fast[2]["Vary"], path
        assert http.get(path).headers["ETag"] == etag  # a hit: the same tag
        # If-None-Match with that tag: 304, no body, the same answer on both paths, missed or hit
        for fresh in (True, False):
            fast, slow = _both(drf_only, http, path, {"page_size": 100}, fresh_pages=fresh)
            assert fast[0] == 200, path  # another address (query string): its own page, its own tag
            http.credentials(HTTP_AUTHORIZATION=http._credentials["HTTP_AUTHORIZATION"], HTTP_IF_NONE_MATCH=etag)
            fast, slow = _both(drf_only, http, path, fresh_pages=fresh)
            assert fast == slow, (path, fresh)
            assert fast[0] == 304 and fast[1] == b"" and fast[2]["ETag"] == etag, (path, fresh)
            assert fast[2]["Cache-Control"] == "private, no-cache", path
            # a tag that is no longer the page's (or never was): the page
            http.credentials(
                HTTP_AUTHORIZATION=http._credentials["HTTP_AUTHORIZATION"], HTTP_IF_NONE_MATCH='"x", W/"y"'
            )
            assert http.get(path).status_code == 200
            http.credentials(HTTP_AUTHORIZATION=http._credentials["HTTP_AUTHORIZATION"])
    # the tag follows the data: a fill changes the page, so the old tag gets the new page
    http = bearer(trader)
    before = http.get("/api/v1/positions/")
    filled_order(account=account, instrument=instrument, client_order_id="FAST-ETAG", quantity="0.50")
    after = http.get("/api/v1/positions/", HTTP_IF_NONE_MATCH=before.headers["ETag"])
    assert after.status_code == 200 and after.headers["ETag"] != before.headers["ETag"]
    assert after.json()["results"][0]["net_quantity"] == "1.500000"
    # a 304 is no way around the rules: no token 401, and it counts against the client's rate
    anonymous = APIClient().get("/api/v1/positions/", HTTP_IF_NONE_MATCH=after.headers["ETag"])
    assert anonymous.status_code == 401
    client, secret = make_api_client(Role.TRADER, rate="2/min")
    limited = bearer(token_request(APIClient(), client, secret).json()["access_token"])
    statuses = [
        limited.get("/api/v1/positions/", HTTP_IF_NONE_MATCH=after.headers["ETag"]).status_code for _ in range(3)
    ]
    assert statuses == [304, 304, 429]


def test_the_version_read_leaves_the_requests_connection_closed_and_survives_a_lost_connection(
    book, issue_token, bearer, monkeypatch
):
    """A hit reads the version on the process's kept connection (no checkout of the request's
    own); if that connection was lost (PostgreSQL restarted), the read is made again on a new one."""
    from django.db import connections

    from tradeops.api import cache

    http = bearer(issue_token(Role.TRADER)[0])
    first = http.get("/api/v1/positions/")
    connection.close()
    opened = []
    monkeypatch.setattr(type(connections["default"]), "connect", lambda self: opened.append(self.alias))
    assert http.get("/api/v1/positions/").content == first.content
    assert opened == []  # the request's wrapper never connected
    monkeypatch.undo()
    (kept,) = [c for c in cache._kept.values() if not c.closed]
    with connections["default"].cursor() as cursor:  # the server ends the kept connection's session
        cursor.execute("SELECT pg_terminate_backend(%s)", [kept.info.backend_pid])
    assert http.get("/api/v1/positions/").content == first.content
    assert kept.closed and [c for c in cache._kept.values() if not c.closed] != [kept]


def test_the_version_read_gets_a_database_span_on_a_wrapper_that_never_connected():
    """Under Daphne each request has a new connection wrapper; on a hit it never connects, so
    tracing's ``connection_created`` hook never wraps it: the version read adds the span itself."""
    from django.db import connections
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from tradeops.api.cache import _version_read
    from tradeops.observability import tracing

    exporter = InMemorySpanExporter()
    tracing.tracing_setup(service_name="tradeops-test", exporter=exporter)
    try:
        fresh = connections.create_connection("default")  # what a new request context gets
        with tracing.tracer().start_as_current_span("a request"):  # a sampled trace in hand
            assert _version_read(fresh)[0] >= 0
        assert fresh.connection is None  # the read went to the kept connection
    finally:
        tracing.tracing_shutdown()
    statements = [s.attributes["db.statement"] for s in exporter.get_finished_spans() if s.name.startswith("db ")]
    assert statements == [VERSION_SQL]
