"""The web tier holds its database connections under load (issue 19): a real Daphne on loopback
serving the project's ASGI application, a real HTTP load generator (``hey``, Debian's package:
2,000 requests from 20 concurrent clients), PostgreSQL's own count of the connections. Before
the pool, persistent per-thread connections climbed past 150 for one web process (and PostgreSQL
refused everyone once ``max_connections`` was reached: 1,028 HTTP 500s in the issue)."""

from __future__ import annotations

import shutil

import pytest
from django.db import connection

from tests.conftest import requires_postgres, service_unavailable

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

POOL_MAX = 8  # tradeops/asgi.py's default DB_POOL_MAX_SIZE


def test_two_thousand_requests_from_twenty_clients_get_no_error_and_at_most_the_pool(monkeypatch):
    from bench.web_load import measure

    requires_postgres()
    if shutil.which("hey") is None:
        service_unavailable("needs the HTTP load generator 'hey' (apt-get install hey; .ci/run does)")
    monkeypatch.delenv("DB_POOL_MAX_SIZE", raising=False)  # the web tier's own default
    monkeypatch.delenv("DB_CONN_MAX_AGE", raising=False)
    result = measure(config={}, db=connection.settings_dict, requests=2000, clients=20, path="/healthz")
    assert result["statuses"] == {200: 2000}, result["report"]
    assert result["errors"] == 0 and result["server_errors"] == 0
    assert 0 < result["peak"] <= POOL_MAX, result["peak"]
    with connection.cursor() as cursor:  # and everyone else can still connect
        cursor.execute("SELECT 1")
