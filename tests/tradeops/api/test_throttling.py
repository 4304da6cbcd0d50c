"""Throttling per API client and per person, on the real Redis cache (the test settings' cache)."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from tradeops.api.throttling import SlidingWindow, rate_parse
from tradeops.core.roles import Role


def test_rates_parse():
    assert rate_parse("600/min") == (600, 60)
    assert rate_parse("10/5min") == (10, 300)
    assert rate_parse("3/s") == (3, 1)
    assert rate_parse("1000/hour") == (1000, 3600)
    assert rate_parse("5/day") == (5, 86400)
    for bad in ("600", "x/min", "10/fortnight", "10/"):
        with pytest.raises(ValueError):
            rate_parse(bad)


T0 = 1_800_000_000.0 - (1_800_000_000 % 60)  # the start of a one-minute window


def test_the_sliding_window_counts_the_previous_window_by_its_overlap(db):
    window = SlidingWindow("unit", "10/min")
    for i in range(10):
        verdict = window.count_event("k", now=T0 + i)
        assert verdict.allowed and verdict.current == i + 1
    assert verdict.full  # the tenth filled it
    refused = window.count_event("k", now=T0 + 30)  # counted too: 11 in this window
    assert not refused.allowed
    assert refused.wait == pytest.approx(30 + 60 * (1 - 9 / 11))  # next window, once 11 x weight + 1 <= 10
    later = window.peek("k", now=T0 + 60)
    assert not later.allowed and later.wait == pytest.approx(60 * (1 - 9 / 11))
    assert window.peek("k", now=T0 + 72).allowed  # 11 x 0.8 + 1 = 9.8
    assert window.peek("other", now=T0 + 30).allowed  # keys are counted apart


def test_the_window_lets_the_rate_through_and_no_more(db):
    window = SlidingWindow("unit2", "5/min")
    allowed = sum(window.count_event("k", now=T0 + i * 0.5).allowed for i in range(20))
    assert allowed == 5
    refused = window.count_event("k", now=T0 + 61)  # 20 x 59/60 + 1 > 5
    assert not refused.allowed and refused.wait == pytest.approx(60 * (1 - 3 / 20) - 1)
    assert window.peek("k", now=T0 + 61 + refused.wait + 0.01).allowed


def test_counters_live_in_the_configured_cache(db, settings):
    import os
    import time

    if os.environ.get("REDIS_URL"):
        assert settings.CACHES["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache"
    from tradeops.api.throttling import redis_counters

    window = SlidingWindow("probe", "1/min")
    now = time.time()
    window.count_event("k", now=now)
    key = cache.make_key(f"throttle:probe:k:{int(now // 60)}")
    redis = redis_counters()
    stored = int(redis.get(key)) if redis is not None else cache.get(f"throttle:probe:k:{int(now // 60)}")
    assert stored == 1


def test_a_client_over_its_rate_gets_429_with_retry_after_and_others_go_on(issue_token, bearer, book):
    token, _ = issue_token(Role.TRADER, rate="3/min")
    other, _ = issue_token(Role.TRADER)
    http = bearer(token)
    assert [http.get("/api/v1/positions/").status_code for _ in range(3)] == [200, 200, 200]
    response = http.get("/api/v1/positions/")
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "throttled"
    assert 1 <= int(response["Retry-After"]) <= 120
    assert response.json()["error"]["retry_after"] == int(response["Retry-After"])
    assert bearer(other).get("/api/v1/positions/").status_code == 200


def test_a_person_on_a_session_is_throttled_per_person(person, book, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "user": "2/min"},
    }
    alice, bob = person(Role.TRADER), person(Role.TRADER)
    http = APIClient()
    http.force_login(alice)
    assert [http.get("/api/v1/orders/").status_code for _ in range(3)] == [200, 200, 429]
    http.force_login(bob)
    assert http.get("/api/v1/orders/").status_code == 200


def test_chain_verification_has_its_own_lower_limit(issue_token, bearer, settings, db):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "audit_verify": "1/min"},
    }
    token, _ = issue_token(Role.AUDITOR)
    http = bearer(token)
    assert http.post("/api/v1/audit/verification/").status_code == 201
    assert http.post("/api/v1/audit/verification/").status_code == 429
    # reading the latest verification runs nothing: only the general limits apply
    assert [http.get("/api/v1/audit/verification/").status_code for _ in range(3)] == [200, 200, 200]
    assert http.get("/api/v1/audit/records/").status_code == 200
