"""Two-level cache for reference data and hot reads: L1 in-process (bounded LRU with a TTL), L2
Django's ``default`` cache (Redis when ``REDIS_URL`` is set; in-process memory in the embedded run).

A cache has a name (``instruments``, ``rules``, ``limits``, ``kill_switches``, ``models``) and a
*generation* kept in L2. Values are stored in L2 under the generation they were loaded in, and
L1 entries remember it too. Invalidation:

- **on write**: a change to a row a cache reads (saved or deleted, from a service, the admin, a
  command) bumps the generation in L2 when its transaction commits and empties L1 in the writing
  process (``invalidation_signals_connect``: model signals, wired by label: core never imports a
  domain app). Entries of older generations are never read again.
- **on event**: a process that consumes an event that changes a cache's data (a rule approved:
  ``compliance.rule_changed``; a limit changed: ``risk.limit_changed``; ``killswitch.changed``)
  empties its L1 for that cache when the event arrives (the stage runner calls ``on_event``).

``strict`` caches (rules in force, kill switches, model configuration) compare each L1 entry's
generation with L2's on every read (one small L2 read instead of a database query), so no
process serves a rule older than an approval committed anywhere; other caches trust L1 for
``CACHE_L1_TTL`` seconds. A loader reads the database after reading the generation, so a value
loaded while a change commits is stored under the old generation and never served after it.

L2 goes through a circuit breaker (``cache-l2``): while Redis is down, reads go to the database
(strict caches skip L1, which they cannot validate) and nothing fails because of the cache.
Hits per level and misses are counted per cache (``tradeops_cache_hits_total``,
``tradeops_cache_misses_total``, ``tradeops_cache_hit_ratio``).
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from tradeops.breaker import CircuitBreaker, CircuitOpenError
from tradeops.observability import metrics

logger = logging.getLogger(__name__)
T = TypeVar("T")
_MISSING = object()

# Event types that change what a cache holds: the consuming process empties its L1 for them.
INVALIDATED_BY: dict[str, tuple[str, ...]] = {
    "compliance.rule_changed": ("rules",),
    "risk.limit_changed": ("limits",),
    "killswitch.changed": ("kill_switches",),
}
INVALIDATING_EVENTS = frozenset(INVALIDATED_BY)

# Models whose writes invalidate a cache ("app_label.Model" -> caches), wired in
# ``invalidation_signals_connect``.
INVALIDATED_ON_WRITE: dict[str, tuple[str, ...]] = {
    "trading.Instrument": ("instruments",),
    "trading.TradingAccount": ("accounts",),
    "trading.RiskLimit": ("limits",),
    "trading.KillSwitch": ("kill_switches",),
    "compliance.ComplianceRule": ("rules",),
    "mlmodels.ModelVersion": ("models",),
    "mlmodels.ModelActivation": ("models",),
    "mlmodels.ValidatorConfig": ("models",),
}

_l2_breaker = CircuitBreaker("cache-l2", fail_max=3, reset_timeout=10.0)


def _l2():
    from django.core.cache import caches

    return caches["default"]


class TwoLevelCache:
    """One named cache. Thread-safe (the web serves from threads)."""

    def __init__(
        self,
        name: str,
        *,
        strict: bool = False,
        l1_ttl: float | None = None,
        l1_max_entries: int | None = None,
        l2_ttl: int | None = None,
    ) -> None:
        self.name = name
        self.strict = strict
        self._l1_ttl = l1_ttl
        self._l1_max = l1_max_entries
        self._l2_ttl = l2_ttl
        self._l1: OrderedDict[Hashable, tuple[float, int, Any]] = OrderedDict()  # key -> (expires, gen, value)
        self._lock = threading.Lock()
        self.hits_l1 = 0
        self.hits_l2 = 0
        self.misses = 0
        self._hit_l1 = metrics.cache_hits.labels(name, "l1")
        self._hit_l2 = metrics.cache_hits.labels(name, "l2")
        self._miss = metrics.cache_misses.labels(name)

    # -------------------------------------------------------- settings (read late: tests override)

    def _settings(self) -> tuple[float, int, int]:
        from django.conf import settings

        return (
            self._l1_ttl if self._l1_ttl is not None else settings.CACHE_L1_TTL,
            self._l1_max if self._l1_max is not None else settings.CACHE_L1_MAX_ENTRIES,
            self._l2_ttl if self._l2_ttl is not None else settings.CACHE_L2_TTL,
        )

    def _gen_key(self) -> str:
        return f"tradeops-cache:{self.name}:gen"

    def _value_key(self, generation: int, key: Hashable) -> str:
        return f"tradeops-cache:{self.name}:{generation}:{key}"

    def generation(self) -> int | None:
        """The current generation in L2 (created at random the first time, so a generation key
        that was evicted never brings back older values); None when L2 is unavailable."""
        try:
            return _l2_breaker.call(self._generation_read)
        except CircuitOpenError:
            return None
        except Exception as exc:
            logger.warning("cache %s: L2 unavailable (%s); reading the database", self.name, exc)
            return None

    def _generation_read(self) -> int:
        l2 = _l2()
        key = self._gen_key()
        value = l2.get(key)
        if value is None:
            l2.add(key, secrets.randbits(62), timeout=None)
            value = l2.get(key)
        return int(value)

    # -------------------------------------------------------- reads

    def get(self, key: Hashable, load: Callable[[], T]) -> T:
        """The value for ``key``: from L1, else L2, else ``load()`` (a database read), stored in
        both. ``load`` must return a picklable value (model instances, tuples, dataclasses)."""
        l1_ttl, l1_max, l2_ttl = self._settings()
        now = time.monotonic()
        generation = self.generation() if self.strict else None
        with self._lock:
            entry = self._l1.get(key)
            if entry is not None and entry[0] > now and (not self.strict or entry[1] == generation):
                self._l1.move_to_end(key)
                self.hits_l1 += 1
                self._hit_l1.inc()
                return entry[2]
        if generation is None and not self.strict:
            generation = self.generation()
        if generation is not None:
            value = self._l2_get(self._value_key(generation, key))
            if value is not _MISSING:
                self._l1_put(key, generation, value, now + l1_ttl, l1_max)
                self.hits_l2 += 1
                self._hit_l2.inc()
                return value
        value = load()
        self.misses += 1
        self._miss.inc()
        if generation is not None:
            self._l2_set(self._value_key(generation, key), value, l2_ttl)
            self._l1_put(key, generation, value, now + l1_ttl, l1_max)
        return value

    def _l1_put(self, key, generation: int, value, expires: float, max_entries: int) -> None:
        with self._lock:
            self._l1[key] = (expires, generation, value)
            self._l1.move_to_end(key)
            while len(self._l1) > max_entries:
                self._l1.popitem(last=False)

    def _l2_get(self, key: str):
        try:
            return _l2_breaker.call(_l2().get, key, _MISSING)
        except CircuitOpenError:
            return _MISSING
        except Exception as exc:
            logger.warning("cache %s: L2 read failed (%s)", self.name, exc)
            return _MISSING

    def _l2_set(self, key: str, value, ttl: int) -> None:
        try:
            _l2_breaker.call(_l2().set, key, value, ttl)
        except CircuitOpenError:
            pass
        except Exception as exc:
            logger.warning("cache %s: L2 write failed (%s)", self.name, exc)

    # -------------------------------------------------------- invalidation

    def invalidate(self, *, cause: str = "write") -> None:
        """A write changed the data: new generation in L2 (every process's next read misses or
        revalidates), and this process's L1 emptied."""
        self.clear_local(cause=None)
        metrics.cache_invalidations.labels(self.name, cause).inc()
        try:
            _l2_breaker.call(self._generation_bump)
        except Exception as exc:
            # The L2 is down: its values will expire (CACHE_L2_TTL); strict caches skip L1 meanwhile.
            logger.warning("cache %s: could not bump the generation (%s)", self.name, exc)

    def _generation_bump(self) -> None:
        l2 = _l2()
        try:
            l2.incr(self._gen_key())
        except ValueError:  # not there yet (or evicted): start a new random generation
            l2.set(self._gen_key(), secrets.randbits(62), timeout=None)

    def clear_local(self, *, cause: str | None = "event") -> None:
        """Empty this process's L1 (an event said the data changed)."""
        with self._lock:
            self._l1.clear()
        if cause:
            metrics.cache_invalidations.labels(self.name, cause).inc()


_caches: dict[str, TwoLevelCache] = {}
_caches_lock = threading.Lock()

STRICT = frozenset({"rules", "kill_switches", "models"})


def reference_cache(name: str) -> TwoLevelCache:
    """The process's cache called ``name`` (created on first use; strict for rules, kill switches
    and model configuration)."""
    cache = _caches.get(name)
    if cache is None:
        with _caches_lock:
            cache = _caches.get(name)
            if cache is None:
                cache = _caches[name] = TwoLevelCache(name, strict=name in STRICT)
    return cache


def cached(name: str, key: Hashable, load: Callable[[], T]) -> T:
    """``reference_cache(name).get(key, load)``: what a selector calls."""
    return reference_cache(name).get(key, load)


# Other caches of this process that report their counts (the API's list pages): name -> a
# callable returning (hits, misses).
_other_stats: dict[str, Callable[[], tuple[int, int]]] = {}


def cache_stats_register(name: str, stats: Callable[[], tuple[int, int]]) -> None:
    """Report a cache that is not a ``TwoLevelCache`` (``tradeops.api.cache``'s pages) in
    ``cache_stats`` and so in ``tradeops_cache_hit_ratio``."""
    _other_stats[name] = stats


def cache_stats() -> dict[str, tuple[int, int]]:
    """Per cache: (hits at either level, misses) in this process."""
    stats = {name: (c.hits_l1 + c.hits_l2, c.misses) for name, c in _caches.items()}
    for name, read in list(_other_stats.items()):
        stats[name] = read()
    return stats


def on_event(event) -> None:
    """Empty the L1 of the caches ``event`` changes (called by the stage runner for every event
    whose type is in ``INVALIDATING_EVENTS``)."""
    for name in INVALIDATED_BY.get(event.type, ()):
        reference_cache(name).clear_local(cause="event")


def caches_invalidate(*names: str, cause: str = "write") -> None:
    """Invalidate caches now (after a commit)."""
    for name in names:
        reference_cache(name).invalidate(cause=cause)


def invalidation_signals_connect() -> None:
    """Invalidate the caches a model feeds when a row of it is saved or deleted: at once, and
    again when the transaction commits. The first covers the writing transaction's own later
    reads; the second, readers elsewhere that loaded the old row in between (they stored it under
    the generation the first bump made, which the second one retires)."""
    from django.apps import apps
    from django.db import transaction
    from django.db.models.signals import post_delete, post_save

    for label, names in INVALIDATED_ON_WRITE.items():
        try:
            model = apps.get_model(label)
        except LookupError:
            continue

        def receiver(sender, _names=names, **kwargs):
            caches_invalidate(*_names)
            transaction.on_commit(lambda: caches_invalidate(*_names), robust=True)

        post_save.connect(receiver, sender=model, weak=False, dispatch_uid=f"tradeops-cache-{label}-save")
        post_delete.connect(receiver, sender=model, weak=False, dispatch_uid=f"tradeops-cache-{label}-delete")


def caches_reset() -> None:
    """Forget everything: every cache's L1 emptied and a new generation in L2 (tests, between
    cases whose database was rolled back under the caches)."""
    names = set(_caches) | STRICT | {n for names in INVALIDATED_ON_WRITE.values() for n in names}
    for name in sorted(names):
        cache = reference_cache(name)
        cache.clear_local(cause=None)
        try:
            _l2_breaker.call(cache._generation_bump)
        except Exception:  # L2 down: L1 is empty, and strict caches will not trust it anyway
            pass
