"""Throttling of the integration API: per client, per user, and failed authentication per address.

Counters live in Django's cache: Redis when ``REDIS_URL`` is set (every web process counts
against the same numbers), the process's memory in the embedded run. Each limit is a sliding
window approximated from two fixed windows (the current count plus the previous window's
count weighted by how much of it still overlaps), so a client cannot double its rate at a window
edge, and each request costs two cache round trips whatever the rate (DRF's stock throttles keep
a list of every request's time: 1,200 floats pickled per request at 1,200/min). A refusal is
429 with ``Retry-After`` (seconds until the estimate falls under the limit).
"""

from __future__ import annotations

import math
import time

from django.core.cache import cache
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle


def rate_parse(rate: str) -> tuple[int, int]:
    """``"600/min"`` -> (600, 60). Periods: s, sec, m, min, h, hour, d, day (DRF's spelling), with
    an optional count (``"10/5min"``)."""
    try:
        count, period = rate.split("/")
        digits = "".join(ch for ch in period if ch.isdigit())
        unit = period[len(digits) :].strip().lower()
        seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit[0]]
        return int(count), seconds * (int(digits) if digits else 1)
    except (ValueError, KeyError, IndexError):
        raise ValueError(f"a rate looks like '600/min' or '10/5min', got {rate!r}") from None


def client_address(request) -> str:
    """The caller's address (``X-Forwarded-For`` only when ``NUM_PROXIES`` says proxies add it)."""
    return BaseThrottle().get_ident(request)


class SlidingWindow:
    """A limit of ``count`` events per ``seconds`` for many keys, in the cache."""

    def __init__(self, name: str, rate: str):
        self.name = name
        self.count, self.seconds = rate_parse(rate)

    def _keys(self, key: str, now: float) -> tuple[str, str, float]:
        window = int(now // self.seconds)
        elapsed = now - window * self.seconds
        return f"throttle:{self.name}:{key}:{window - 1}", f"throttle:{self.name}:{key}:{window}", elapsed

    def wait(self, key: str, *, now: float | None = None) -> float | None:
        """Seconds to wait before the next event is allowed, or None when it is allowed now."""
        now = time.time() if now is None else now
        prev_key, curr_key, elapsed = self._keys(key, now)
        got = cache.get_many([prev_key, curr_key])
        prev, curr = got.get(prev_key, 0), got.get(curr_key, 0)
        weight = 1 - elapsed / self.seconds
        if prev * weight + curr < self.count:
            return None
        if curr >= self.count:
            # The current window alone is full: in the next one it becomes the previous window,
            # whose share must decay until curr * (1 - t / seconds) < count.
            return self.seconds - elapsed + self.seconds * (1 - self.count / curr)
        # The previous window's weight (1 - elapsed / seconds) must fall under
        # (count - curr) / prev: that happens once elapsed > seconds * (1 - (count - curr) / prev).
        return max(0.0, self.seconds * (1 - (self.count - curr) / prev) - elapsed)

    def hit(self, key: str, *, now: float | None = None) -> int:
        """Count one event; returns the current window's count."""
        now = time.time() if now is None else now
        _, curr_key, _ = self._keys(key, now)
        if cache.add(curr_key, 1, timeout=2 * self.seconds + 1):
            return 1
        try:
            return cache.incr(curr_key)
        except ValueError:  # expired between add and incr
            cache.add(curr_key, 1, timeout=2 * self.seconds + 1)
            return 1


class _WindowThrottle(BaseThrottle):
    scope = ""

    def __init__(self):
        self._wait: float | None = None

    def rate_for(self, request) -> str:
        return api_settings.DEFAULT_THROTTLE_RATES[self.scope]

    def key_for(self, request) -> str | None:
        raise NotImplementedError

    def allow_request(self, request, view) -> bool:
        key = self.key_for(request)
        if key is None:
            return True
        window = SlidingWindow(self.scope, self.rate_for(request))
        self._wait = window.wait(key)
        if self._wait is not None:
            return False
        window.hit(key)
        return True

    def wait(self) -> float | None:
        return None if self._wait is None else max(1, math.ceil(self._wait))


def _api_client(request):
    """The ``ApiClient`` of a token-authenticated request (loaded with the token), else None."""
    application = getattr(request.auth, "application", None)
    return getattr(application, "api_client", None) if application is not None else None


class ClientRateThrottle(_WindowThrottle):
    """Per API client: its own ``throttle_rate`` or ``API_THROTTLE_CLIENT``."""

    scope = "client"

    def rate_for(self, request) -> str:
        client = _api_client(request)
        return (client.throttle_rate if client is not None else "") or super().rate_for(request)

    def key_for(self, request) -> str | None:
        client = _api_client(request)
        return None if client is None else str(client.pk)


class UserRateThrottle(_WindowThrottle):
    """Per person on a browser session (``API_THROTTLE_USER``); tokens are counted per client."""

    scope = "user"

    def key_for(self, request) -> str | None:
        if _api_client(request) is not None or not getattr(request.user, "is_authenticated", False):
            return None
        return str(request.user.pk)


class AuditVerifyThrottle(_WindowThrottle):
    """Chain verification reads the whole trail: a few per minute per caller."""

    scope = "audit_verify"

    def key_for(self, request) -> str | None:
        client = _api_client(request)
        if client is not None:
            return f"client:{client.pk}"
        return f"user:{request.user.pk}" if getattr(request.user, "is_authenticated", False) else None


def failed_auth_window() -> SlidingWindow:
    return SlidingWindow("failed_auth", api_settings.DEFAULT_THROTTLE_RATES["failed_auth"])
