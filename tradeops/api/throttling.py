"""Throttling of the integration API: per client, per user, and refused authentications per address.

Counters live beside Django's cache: in Redis when the cache is Redis (``REDIS_URL``: every web
process counts against the same numbers), in the process's memory otherwise (the embedded run).
Each limit is a sliding window approximated from two fixed windows: the current window's count
plus the previous window's weighted by how much of it still overlaps, so a client cannot double
its rate at a window edge. A request is counted, then judged: one Redis round trip per check
(``INCR`` + ``EXPIRE`` + ``GET`` of the previous window, one Lua script); DRF's stock throttles keep
a list of every request's time per client (1,200 floats pickled per request at 1,200/min) and
Django's cache ``incr`` is two round trips. A refusal is 429 with ``Retry-After`` (seconds until
the estimate leaves room for one more request); refused requests count too, so a client that
keeps hammering stays refused.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from functools import cache as memoize

from django.conf import settings
from django.core.cache import cache
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

REDIS_CACHE = "django.core.cache.backends.redis.RedisCache"


def rate_parse(rate: str) -> tuple[int, int]:
    """``"600/min"`` -> (600, 60). Periods: s, sec, m, min, h, hour, d, day (DRF's spelling), with
    an optional count (``"10/5min"``)."""
    try:
        count, period = rate.split("/")
        digits = "".join(ch for ch in period if ch.isdigit())
        unit = period[len(digits) :].strip().lower()
        seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit[0]]
        if int(count) < 1:
            raise ValueError
        return int(count), seconds * (int(digits) if digits else 1)
    except (ValueError, KeyError, IndexError):
        raise ValueError(f"a rate looks like '600/min' or '10/5min', got {rate!r}") from None


def client_address(request) -> str:
    """The caller's address (``X-Forwarded-For`` only when ``NUM_PROXIES`` says proxies add it)."""
    return BaseThrottle().get_ident(request)


@memoize
def _redis_for(location: str):
    import redis

    return redis.Redis.from_url(location)


def redis_counters():
    """The Redis client behind the cache, or None when the cache is not Redis."""
    config = settings.CACHES["default"]
    if config["BACKEND"] != REDIS_CACHE:
        return None
    location = config["LOCATION"]
    return _redis_for(location if isinstance(location, str) else location[0])


# One command (EVALSHA) instead of a pipeline of three or four: the same round trip, a quarter of
# the client's packing and parsing. INCR the current window (a new key gets its expiry in the same
# atomic step), read the previous window and, optionally, one more key. ``or false``: a nil
# inside a Lua table would cut the reply short.
_COUNT_LUA = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
local reply = {n, redis.call('GET', KEYS[2]) or false}
if KEYS[3] then reply[3] = redis.call('GET', KEYS[3]) or false end
return reply
"""


@memoize
def _count_script(redis):
    return redis.register_script(_COUNT_LUA)


def _incr_and_get(curr_key: str, prev_key: str, ttl: int, *, also_read: str | None = None):
    """Count one event in ``curr_key``; return (current count, previous window's count), and with
    ``also_read`` (a raw Redis key; Redis only) that key's raw value as a third item, read in the
    same round trip."""
    redis = redis_counters()
    if redis is not None:
        keys = [cache.make_key(curr_key), cache.make_key(prev_key)]
        if also_read is not None:
            keys.append(also_read)
        curr, prev, *extra = _count_script(redis)(keys=keys, args=[ttl])
        return (int(curr), int(prev or 0), extra[0]) if also_read is not None else (int(curr), int(prev or 0))
    if also_read is not None:
        raise RuntimeError("also_read needs the Redis cache")
    # in-process cache (the embedded run): the same arithmetic on Django's cache
    if cache.add(curr_key, 1, timeout=ttl):
        curr = 1
    else:
        try:
            curr = cache.incr(curr_key)
        except ValueError:  # expired in between
            cache.add(curr_key, 1, timeout=ttl)
            curr = 1
    return curr, int(cache.get(prev_key) or 0)


def _get(curr_key: str, prev_key: str) -> tuple[int, int]:
    redis = redis_counters()
    if redis is not None:
        curr, prev = redis.mget([cache.make_key(curr_key), cache.make_key(prev_key)])
        return int(curr or 0), int(prev or 0)
    got = cache.get_many([curr_key, prev_key])
    return int(got.get(curr_key, 0)), int(got.get(prev_key, 0))


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    wait: float | None  # seconds until the next event would be allowed (refused only)
    current: int  # events counted in the current window
    full: bool  # no room left for one more event now


class SlidingWindow:
    """A limit of ``count`` events per ``seconds`` for many keys."""

    def __init__(self, name: str, rate: str):
        self.name = name
        self.count, self.seconds = rate_parse(rate)

    def _keys(self, key: str, now: float) -> tuple[str, str, float]:
        window = int(now // self.seconds)
        elapsed = now - window * self.seconds
        # the key names no cache version: Django's make_key adds the prefix and version
        return f"throttle:{self.name}:{key}:{window}", f"throttle:{self.name}:{key}:{window - 1}", elapsed

    def _verdict(self, curr: int, prev: int, elapsed: float, *, counted: bool) -> Verdict:
        weight = 1 - elapsed / self.seconds
        estimate = prev * weight + curr + (0 if counted else 1)
        if estimate <= self.count:
            return Verdict(True, None, curr, full=estimate + 1 > self.count)
        return Verdict(False, self._wait(curr, prev, elapsed), curr, full=True)

    def _wait(self, curr: int, prev: int, elapsed: float) -> float:
        # one more event fits once prev * (1 - t / seconds) + curr + 1 <= count ...
        if curr + 1 <= self.count and prev:
            return max(0.0, self.seconds * (1 - (self.count - curr - 1) / prev) - elapsed)
        # ... or, if the current window alone is full, in the next one, where it weighs
        # curr * (1 - t / seconds) and must leave room for one
        return self.seconds - elapsed + self.seconds * max(0.0, 1 - (self.count - 1) / curr)

    def count_event(self, key: str, *, now: float | None = None) -> Verdict:
        """Count one event for ``key`` and judge it (one round trip)."""
        now = time.time() if now is None else now
        curr_key, prev_key, elapsed = self._keys(key, now)
        curr, prev = _incr_and_get(curr_key, prev_key, ttl=2 * self.seconds + 1)
        return self._verdict(curr, prev, elapsed, counted=True)

    def count_event_and_read(self, key: str, raw_key: str, *, now: float | None = None) -> tuple[Verdict, bytes | None]:
        """``count_event`` plus the raw value of another Redis key, in the same round trip (the
        token generation, ``tradeops.api.authentication``). Redis only."""
        now = time.time() if now is None else now
        curr_key, prev_key, elapsed = self._keys(key, now)
        curr, prev, raw = _incr_and_get(curr_key, prev_key, ttl=2 * self.seconds + 1, also_read=raw_key)
        return self._verdict(curr, prev, elapsed, counted=True), raw

    def peek(self, key: str, *, now: float | None = None) -> Verdict:
        """Would one more event be allowed? (Counts nothing.)"""
        now = time.time() if now is None else now
        curr_key, prev_key, elapsed = self._keys(key, now)
        curr, prev = _get(curr_key, prev_key)
        return self._verdict(curr, prev, elapsed, counted=False)


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
        rate = self.rate_for(request)
        # counted already, in the round trip of the token's revocation check (authentication)
        counted = getattr(request._request, "_tradeops_counted", None)
        if counted is not None and counted[:3] == (self.scope, rate, key):
            verdict = counted[3]
        else:
            verdict = SlidingWindow(self.scope, rate).count_event(key)
        self._wait = verdict.wait
        return verdict.allowed

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
        return self.rate_of(client) if client is not None else super().rate_for(request)

    @classmethod
    def rate_of(cls, client) -> str:
        return client.throttle_rate or api_settings.DEFAULT_THROTTLE_RATES[cls.scope]

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
