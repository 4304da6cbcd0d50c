"""A browser's forms through the TLS gateway (docs/topology.md): nginx terminates TLS on a port
of its own (the cluster's 18443) and forwards the host and port the browser used and
``X-Forwarded-Proto: https``. Until 2026-12-06 (wip/walk49) the cluster's web tier did not trust
that header and nginx dropped the port, so CSRF's origin check refused every form posted through
the gateway, the sign-in first: nobody could sign in to the cluster's screens."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

ROOT = Path(__file__).resolve().parents[2]
GATEWAY = "127.0.0.1:18443"


def _sign_in_through_the_gateway():
    get_user_model().objects.create_user("officer", password="a-long-passphrase-1")
    client = Client(enforce_csrf_checks=True)
    headers = {"HTTP_HOST": GATEWAY, "HTTP_X_FORWARDED_PROTO": "https"}
    client.get("/login/", **headers)
    return client.post(
        "/login/",
        {
            "username": "officer",
            "password": "a-long-passphrase-1",
            "csrfmiddlewaretoken": client.cookies["csrftoken"].value,
        },
        HTTP_ORIGIN=f"https://{GATEWAY}",
        **headers,
    )


@pytest.mark.django_db
def test_a_sign_in_posted_through_the_tls_gateway_is_accepted(settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")  # BEHIND_TLS_GATEWAY=1
    response = _sign_in_through_the_gateway()
    assert response.status_code == 302 and response.url == "/"


@pytest.mark.django_db
def test_without_trusting_the_gateway_the_sign_in_is_refused(settings):
    """What the cluster did before: the web tier took the request for plain http."""
    settings.SECURE_PROXY_SSL_HEADER = None
    assert _sign_in_through_the_gateway().status_code == 403


def _settings_value(name: str, **env) -> str:
    code = f"import django; django.setup(); from django.conf import settings; print(settings.{name})"
    environment = {k: v for k, v in os.environ.items() if k != "BEHIND_TLS_GATEWAY"} | env
    environment["DJANGO_SETTINGS_MODULE"] = "tradeops.settings.local"
    out = subprocess.run([sys.executable, "-c", code], env=environment, cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_behind_tls_gateway_trusts_the_gateways_forwarded_proto_and_the_cluster_sets_it():
    assert _settings_value("SECURE_PROXY_SSL_HEADER", BEHIND_TLS_GATEWAY="1") == "('HTTP_X_FORWARDED_PROTO', 'https')"
    assert _settings_value("SECURE_PROXY_SSL_HEADER") == "None"
    cluster_env = subprocess.run(["bash", "scripts/cluster.sh", "env"], cwd=ROOT, capture_output=True, text=True)
    assert "export BEHIND_TLS_GATEWAY=1" in cluster_env.stdout.splitlines()
    # the production topology shows no debug pages (local settings default DEBUG on)
    assert "export DEBUG=0" in cluster_env.stdout.splitlines()
