"""Sign-in throttling and idle sessions (issue 19): the admin login (the only sign-in page) took
50 wrong passwords at 2/s and then the right one. Now django-axes locks an account, and an
address, after ``AXES_FAILURE_LIMIT`` failures; every failure and every lock-out is audited."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from tradeops.audit.models import AuditRecord

LOGIN = "/admin/login/"
PASSWORD = "the-right-password-1"


@pytest.fixture
def alice(db, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return get_user_model().objects.create_user("alice", password=PASSWORD, is_staff=True)


def _login(client, username, password, ip="198.51.100.7"):
    return client.post(LOGIN, {"username": username, "password": password, "next": "/admin/"}, REMOTE_ADDR=ip)


def test_an_account_is_locked_after_the_failure_limit_even_with_the_right_password(client, alice, settings):
    limit = settings.AXES_FAILURE_LIMIT
    statuses = [_login(client, "alice", f"guess-{n}", ip=f"203.0.113.{n}").status_code for n in range(limit)]
    assert statuses == [200] * (limit - 1) + [429]  # the form again, then locked at the limit
    response = _login(client, "alice", PASSWORD, ip="203.0.113.99")  # right password, new address
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session
    failed = AuditRecord.objects.filter(action="auth.login_failed", object_id="alice").count()
    assert failed == settings.AXES_FAILURE_LIMIT + 1  # each failure, and the refused attempt
    assert AuditRecord.objects.filter(action="auth.locked_out", object_id="alice").exists()


def test_an_address_is_locked_after_the_failure_limit_whatever_the_account(client, alice, settings):
    for n in range(settings.AXES_FAILURE_LIMIT):
        _login(client, f"user{n}", "nope")
    assert _login(client, "alice", PASSWORD).status_code == 429
    assert _login(client, "alice", PASSWORD, ip="192.0.2.1").status_code == 302  # elsewhere: fine
    lockouts = AuditRecord.objects.filter(action="auth.locked_out")
    assert lockouts.exists() and {r.payload_data["ip"] for r in lockouts} == {"198.51.100.7"}


def test_a_good_login_below_the_limit_works_and_resets_the_count(client, alice, settings):
    for n in range(settings.AXES_FAILURE_LIMIT - 1):
        _login(client, "alice", f"guess-{n}")
    assert _login(client, "alice", PASSWORD).status_code == 302
    client.logout()
    for n in range(settings.AXES_FAILURE_LIMIT - 1):
        _login(client, "alice", f"again-{n}")
    assert _login(client, "alice", PASSWORD).status_code == 302


def test_sessions_expire_after_inactivity_and_each_request_extends_them(client, alice, settings):
    assert _login(client, "alice", PASSWORD).status_code == 302
    assert client.session.get_expiry_age() == settings.SESSION_COOKIE_AGE == 30 * 60
    from django.contrib.sessions.models import Session

    key = client.session.session_key
    first = Session.objects.get(pk=key).expire_date
    assert client.get("/admin/").status_code == 200
    assert Session.objects.get(pk=key).expire_date > first  # sliding: counted from the last request
    Session.objects.filter(pk=key).update(expire_date=first.replace(year=2000))  # idle too long
    assert client.get("/admin/").status_code == 302  # back to the login page
