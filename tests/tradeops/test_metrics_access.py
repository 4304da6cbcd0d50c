"""/metrics answers the monitoring network or the metrics token only (issue 19): it answered
anyone, in production too."""

from __future__ import annotations

import pytest

from tradeops.core.metrics import metrics_access_allowed


@pytest.fixture
def production_like(settings):
    settings.METRICS_ALLOWED_NETWORKS = ["10.20.0.0/16"]  # the monitoring network
    settings.METRICS_TOKEN = "scrape-token-0123456789"


def test_anyone_else_gets_403(client, db, production_like):
    response = client.get("/metrics", REMOTE_ADDR="198.51.100.7")
    assert response.status_code == 403
    assert b"python_info" not in response.content
    assert client.get("/metrics", REMOTE_ADDR="198.51.100.7", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403


def test_the_monitoring_network_and_the_token_get_the_metrics(client, db, production_like):
    response = client.get("/metrics", REMOTE_ADDR="10.20.3.4")
    assert response.status_code == 200 and b"python_info" in response.content
    response = client.get("/metrics", REMOTE_ADDR="198.51.100.7", HTTP_AUTHORIZATION="Bearer scrape-token-0123456789")
    assert response.status_code == 200


def test_production_settings_open_nothing_by_default():
    import os
    import subprocess
    import sys

    env = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "tradeops.settings.production",
        "SECRET_KEY": "x" * 50,
        "ALLOWED_HOSTS": "ops.example.com",
        "DATABASE_URL": "postgres://u:p@h/db",
        "AUDIT_CHECKPOINT_KEY": "k" * 40,
    }
    code = "import django; django.setup(); from django.conf import settings as s; print(s.METRICS_ALLOWED_NETWORKS)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stderr


@pytest.mark.parametrize(
    "addr,auth,expected",
    [
        ("127.0.0.1", "", False),  # not in the networks given
        ("10.20.0.9", "", True),
        ("2001:db8::1", "", False),
        ("garbage", "", False),
        ("198.51.100.7", "Bearer t0ken", True),
        ("198.51.100.7", "Bearer t0ken2", False),
        ("198.51.100.7", "Basic t0ken", False),
    ],
)
def test_the_rule_is_reusable_outside_django(addr, auth, expected):
    assert (
        metrics_access_allowed(remote_addr=addr, authorization=auth, token="t0ken", networks=["10.20.0.0/16"])
        is expected
    )


def test_without_a_token_configured_no_bearer_value_opens_it():
    assert not metrics_access_allowed(remote_addr="198.51.100.7", authorization="Bearer ", token="", networks=[])


@pytest.mark.django_db
def test_healthz_says_the_database_is_down_in_a_503_without_its_address(client, monkeypatch, caplog):
    """A probe of a web process whose database is gone: 503 and a sentence, the cause (which names
    the database's host) only in the log (walked on 2026-12-06, wip/walk45: a 500 and a traceback)."""
    from django.db import OperationalError, connection

    assert client.get("/healthz").json()["status"] == "ok"

    def refused(*args, **kwargs):
        raise OperationalError('connection to server at "10.1.2.3", port 5432 failed: Connection refused')

    monkeypatch.setattr(connection, "cursor", refused)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable" and "does not answer" in response.json()["message"]
    assert "10.1.2.3" not in response.content.decode()
    assert "10.1.2.3" in caplog.text


@pytest.mark.django_db
def test_the_favicon_probe_is_answered_with_no_content_not_a_404(client):
    # The admin's pages declare no icon, so the browser asks for /favicon.ico: a 404 there was a
    # failed request in every admin page's console (seen in headless Chromium as the auditor).
    response = client.get("/favicon.ico")
    assert response.status_code == 204 and response.content == b""
    assert client.post("/favicon.ico").status_code == 405
