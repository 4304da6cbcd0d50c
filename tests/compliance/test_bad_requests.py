"""Input that used to end in an HTTP 500 is a clear 400 (issue 19): a NUL character in any
parameter, a page number past any real page, a 10,000-character filter value."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from tradeops.core.roles import Role
from tradeops.core.services import roles_sync, user_ensure_with_role


@pytest.fixture
def officer_client(client, db, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    roles_sync()
    user, _ = user_ensure_with_role(username="olivia", role=Role.COMPLIANCE_OFFICER)
    client.force_login(get_user_model().objects.get(pk=user.pk))
    return client


@pytest.mark.parametrize(
    "query,words",
    [
        ("q=a%00b", b"NUL character"),
        ("page=100000000000000000000", b"page must be a whole number from 1 to 100,000"),
        ("page=-3", b"page must be"),
        ("object_id=" + "E" * 10_000, b"object_id is 10,000 characters long"),
        ("q=" + "x" * 10_000, b"q is 10,000 characters long"),
    ],
)
def test_the_audit_search_answers_bad_input_with_a_clear_400(officer_client, query, words):
    response = officer_client.get(f"/compliance/audit/?{query}")
    assert response.status_code == 400
    assert words in response.content


def test_a_nul_character_is_a_400_everywhere(officer_client):
    assert officer_client.get("/admin/audit/auditrecord/?q=a%00b").status_code == 400
    assert officer_client.post("/admin/login/", {"username": "a\x00b", "password": "x"}).status_code == 400


def test_a_record_number_past_any_record_is_a_404(officer_client):
    assert officer_client.get("/compliance/audit/records/100000000000000000000/").status_code == 404


def test_good_searches_still_work(officer_client):
    assert officer_client.get("/compliance/audit/?q=order&page=2").status_code == 200
