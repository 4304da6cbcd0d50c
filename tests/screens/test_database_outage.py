"""A database outage on a screen (the cluster's primary restarting, docs/topology.md): a 503
with Retry-After and a sentence, at once, which the gateway turns into its fallback page; not a
500 after the pool's wait and the error page's own reads (wip/walk49: an officer's report form
posted during `cluster.sh pg-restart` hung ~30 s and ended in a traceback)."""

from __future__ import annotations

import pytest
from django.db import OperationalError
from django.http import HttpResponse
from django.test import Client
from django.urls import path


class PoolTimeout(Exception):
    """psycopg_pool's, by name: what Django's pooled connection raises from."""


def _pool_exhausted(request):
    try:
        raise PoolTimeout("couldn't get a connection after 10.00 sec")
    except PoolTimeout as exc:
        raise OperationalError("couldn't get a connection after 10.00 sec") from exc


def _refused(request):
    raise OperationalError(
        'connection failed: connection to server at "127.0.0.1", port 15432 failed: Connection refused'
    )


def _statement_timeout(request):
    raise OperationalError("canceling statement due to statement timeout")


def _session_needed(request):
    return HttpResponse(f"hello {request.user}")


def _fine(request):
    return HttpResponse("ok")


urlpatterns = [
    path("compliance/reports/run/", _pool_exhausted),
    path("compliance/alerts/", _refused),
    path("api/v1/reports/", _refused),
    path("slow/", _statement_timeout),
    path("fine/", _fine),
    path("home/", _session_needed),
]


@pytest.fixture
def client(settings):
    settings.ROOT_URLCONF = __name__
    return Client(raise_request_exception=False)


@pytest.mark.parametrize("url", ["/compliance/reports/run/", "/compliance/alerts/"])
def test_a_screen_whose_database_does_not_answer_says_so_with_a_503(client, url):
    response = client.post(url) if url.endswith("run/") else client.get(url)
    assert response.status_code == 503
    assert response["Retry-After"] == "30" and response["Cache-Control"] == "no-store"
    body = response.content.decode()
    assert "tradeops cannot reach its database" in body
    assert "What you submitted just now may not have been saved" in body
    assert "Traceback" not in body


def test_the_api_answers_its_error_shape(client):
    response = client.get("/api/v1/reports/")
    assert response.status_code == 503 and response["Retry-After"] == "30"
    assert response.json()["error"]["code"] == "database_unavailable"


def test_a_query_the_database_refused_is_still_a_server_error(client):
    assert client.get("/slow/").status_code == 500
    assert client.get("/fine/").status_code == 200


def test_the_gateways_fallback_page_covers_the_database_too():
    from pathlib import Path

    page = (Path(__file__).resolve().parents[2] / "docker/nginx/fallback/unavailable.html").read_text()
    assert "The web tier or its database is not answering" in page
    assert "may not have\nbeen saved" in page


@pytest.mark.django_db
def test_a_signed_in_screen_whose_session_cannot_be_read_answers_503_without_reading_it_again(
    client, django_user_model, monkeypatch
):
    """The session is read in the view (who is this?) and again by SessionMiddleware on the way
    out (the cookie's expiry): each read waited the pool's 10 s, and the second turned the page
    into a 500 (DEBUG's page then read the session a third time)."""
    from django.contrib.sessions.backends.db import SessionStore

    client.force_login(django_user_model.objects.create_user("officer"))
    loads = []

    def load(self):
        loads.append(self.session_key)
        raise OperationalError("connection failed: Connection refused")

    monkeypatch.setattr(SessionStore, "load", load)
    response = client.get("/home/")
    assert response.status_code == 503 and "cannot reach its database" in response.content.decode()
    assert len(loads) == 1
    assert "sessionid" not in response.cookies  # the person stays signed in
