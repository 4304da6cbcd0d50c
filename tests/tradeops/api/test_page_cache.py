"""The cached list pages (tradeops/api/cache.py): served again while the data version stands,
read afresh after any committed write to the tables behind them (whoever wrote it), and never
past authentication, scopes, roles or throttles. Committed transactions: the version moves at
commit, so these tests commit (inside a test's transaction nothing is cached at all)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from prometheus_client import REGISTRY

from tests.tradeops.api.conftest import filled_order, spoofing_alert
from tradeops.api.cache import data_version, pages_clear
from tradeops.audit.verify import audit_verify
from tradeops.core.roles import Role
from tradeops.observability.cache import cache_stats
from trading.models import Position, TradingAccount

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _fresh_pages():
    pages_clear()
    yield
    pages_clear()


def _get(http, path):
    with CaptureQueriesContext(connection) as queries:
        response = http.get(path)
    assert response.status_code == 200, response.content
    return response.json(), [q["sql"] for q in queries.captured_queries]


def _counted() -> tuple[float, float]:
    hits = REGISTRY.get_sample_value("tradeops_cache_hits_total", {"cache": "api_pages", "level": "l1"})
    misses = REGISTRY.get_sample_value("tradeops_cache_misses_total", {"cache": "api_pages"})
    return hits or 0.0, misses or 0.0


def _read_rows(queries, table):
    return [q for q in queries if f'FROM "{table}"' in q]


def test_a_positions_page_is_served_again_until_a_fill_changes_it(instrument, account, issue_token, bearer):
    filled_order(account=account, instrument=instrument, client_order_id="CACHE-1")
    token, _ = issue_token(Role.TRADER)
    http = bearer(token)
    hits, misses = _counted()
    first, queries = _get(http, "/api/v1/positions/")
    assert _read_rows(queries, "trading_position")  # a miss reads the rows
    again, queries = _get(http, "/api/v1/positions/")
    assert again == first and not _read_rows(queries, "trading_position")  # a hit does not
    # counted as every cache is (issue 17): one miss, one hit, in the hit ratio too
    assert _counted() == (hits + 1, misses + 1)
    assert "api_pages" in cache_stats()
    (row,) = first["results"]
    assert row["net_quantity"] == "1.000000"

    version = data_version("default")
    filled_order(account=account, instrument=instrument, client_order_id="CACHE-2", quantity="0.50")
    assert data_version("default") > version  # the fill's commit moved it
    after, queries = _get(http, "/api/v1/positions/")
    assert _read_rows(queries, "trading_position")
    assert after["results"][0]["net_quantity"] == "1.500000"

    # any writer, not only the services: a mark written by plain SQL, an account renamed
    Position.objects.filter(account=account).update(mark_price=Decimal("1.20000"))
    assert _get(http, "/api/v1/positions/")[0]["results"][0]["mark_price"].startswith("1.2000")
    TradingAccount.objects.filter(pk=account.pk).update(name="Renamed")
    assert _get(http, "/api/v1/positions/")[0]["results"][0]["account_name"] == "Renamed"
    # another query string is another page; a filter that matches nothing is an empty page
    assert _get(http, f"/api/v1/positions/?account={account.pk + 1000}")[0]["results"] == []
    assert len(_get(http, "/api/v1/positions/")[0]["results"]) == 1
    assert audit_verify().ok


def test_a_warm_page_never_bypasses_the_rules(instrument, account, issue_token, bearer, make_api_client):
    from compliance.services import alerts_record
    from tradeops.api.services import api_client_revoke

    spoofing_alert(account=account)
    officer_token, officer = issue_token(Role.COMPLIANCE_OFFICER)
    officer_http = bearer(officer_token)
    warm = _get(officer_http, "/api/v1/alerts/")[0]
    assert len(warm["results"]) == 1
    assert _get(officer_http, "/api/v1/alerts/")[0] == warm  # served from the page now

    # a trader (role without alerts) and a client without the scope: refused as before
    trader_token, _ = issue_token(Role.TRADER)
    refused = bearer(trader_token).get("/api/v1/alerts/")
    assert refused.status_code == 403
    no_scope_token, _ = issue_token(Role.COMPLIANCE_OFFICER, scopes=["audit:read"])
    refused = bearer(no_scope_token).get("/api/v1/alerts/")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "insufficient_scope"
    assert bearer("not-a-token").get("/api/v1/alerts/").status_code == 401
    # a revoked client is refused at its next request, warm page or not
    api_client_revoke(client=officer, reason="test", actor="user:test")
    assert officer_http.get("/api/v1/alerts/").status_code == 401

    # a new alert changes the next page for whoever may read it
    other_token, _ = issue_token(Role.AUDITOR)
    alerts_record(
        alerts=[
            {
                "alert_type": "wash_trade",
                "account": str(account.pk),
                "owner": "OWNER-2",
                "symbol": "EURUSD",
                "order_ids": ["X-2"],
                "score": 0.8,
                "start": "2026-03-02T11:30:00+00:00",
                "end": "2026-03-02T11:30:04+00:00",
                "evidence": {"ratio": 5.0, "threshold": 3.0},
            }
        ]
    )
    assert len(_get(bearer(other_token), "/api/v1/alerts/")[0]["results"]) == 2


def test_throttles_count_cached_pages_too(instrument, account, make_api_client, bearer):
    from rest_framework.test import APIClient

    from tests.tradeops.api.conftest import token_request

    client, secret = make_api_client(Role.TRADER, rate="3/min")
    token = token_request(APIClient(), client, secret).json()["access_token"]
    http = bearer(token)
    assert [http.get("/api/v1/positions/").status_code for _ in range(4)] == [200, 200, 200, 429]
