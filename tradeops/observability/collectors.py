"""Metrics read when Prometheus scrapes, not kept by the code: the outbox backlog and the relay's
lag (age of the oldest unpublished row), the audit chain's length (its rate is the append rate,
whatever path wrote the records) and its last verification (the newest ``audit.verified`` record,
whoever ran it: the nightly task, a person on the screen or the API), each cache's hit ratio, and
the market data collectors' counts (``feed_stats_track``: the counts a collector keeps anyway, so
the feed's hot path pays nothing).

Registered once per process that should report them (``collectors_register``): the outbox relay,
the embedded run and the web app (the database is shared, so one scrape target is enough; the
dashboards take ``max`` over targets). A scrape costs two indexed queries: the outbox's partial
index holds only unsent rows, the chain head is one row.
"""

from __future__ import annotations

import logging
import time

import orjson
from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from tradeops.observability.metrics import COLLECTED

logger = logging.getLogger(__name__)


class DatabaseCollector(Collector):
    """Outbox backlog and lag, audit chain length, the chain's last verification."""

    NAMES = (
        "tradeops_outbox_backlog",
        "tradeops_outbox_lag_seconds",
        "tradeops_audit_chain_length",
        "tradeops_audit_chain_verified",
        "tradeops_audit_chain_verified_timestamp_seconds",
    )

    def describe(self):
        # Describing without querying keeps registration free of database access.
        for name in self.NAMES:
            yield GaugeMetricFamily(name, COLLECTED[name])

    def collect(self):
        try:
            backlog, lag, chain = database_figures()
            verified = audit_verification_last()
        except Exception as exc:  # the database down: say nothing rather than a wrong 0
            logger.warning("metrics: database figures unavailable: %s", exc)
            return
        yield GaugeMetricFamily("tradeops_outbox_backlog", COLLECTED["tradeops_outbox_backlog"], value=backlog)
        yield GaugeMetricFamily("tradeops_outbox_lag_seconds", COLLECTED["tradeops_outbox_lag_seconds"], value=lag)
        yield GaugeMetricFamily("tradeops_audit_chain_length", COLLECTED["tradeops_audit_chain_length"], value=chain)
        if verified is not None:  # never verified: no series, rather than a 0 that reads "broken"
            ok, at = verified
            for name, figure in (
                ("tradeops_audit_chain_verified", 1 if ok else 0),
                ("tradeops_audit_chain_verified_timestamp_seconds", at),
            ):
                yield GaugeMetricFamily(name, COLLECTED[name], value=figure)


def audit_verification_last() -> tuple[bool, float] | None:
    """(intact, unix time) of the newest ``audit.verified`` record, or None before the first."""
    from tradeops.audit.models import AuditRecord

    last = (
        AuditRecord.objects.filter(action="audit.verified")
        .order_by("-occurred_at", "-sequence")
        .values_list("payload", "occurred_at")
        .first()
    )
    if last is None:
        return None
    payload, at = last
    return bool(orjson.loads(payload).get("ok")), at.timestamp()


def database_figures() -> tuple[int, float, int]:
    """(unsent outbox rows, seconds since the oldest was written, audit chain head sequence)."""
    from django.db.models import Count, Min

    from tradeops.audit.models import ChainHead
    from tradeops.outbox.models import Outbox

    pending = Outbox.objects.filter(sent_at__isnull=True).aggregate(n=Count("id"), oldest=Min("created_at"))
    oldest = pending["oldest"]
    lag = max(time.time() - oldest.timestamp(), 0.0) if oldest is not None else 0.0
    head = ChainHead.objects.filter(pk=1).values_list("last_sequence", flat=True).first() or 0
    return pending["n"], lag, head


class CacheCollector(Collector):
    """Hit ratio per cache, from the hit and miss counters of this process."""

    def describe(self):
        yield GaugeMetricFamily("tradeops_cache_hit_ratio", COLLECTED["tradeops_cache_hit_ratio"], labels=["cache"])

    def collect(self):
        from tradeops.observability.cache import cache_stats

        family = GaugeMetricFamily("tradeops_cache_hit_ratio", COLLECTED["tradeops_cache_hit_ratio"], labels=["cache"])
        for name, (hits, misses) in cache_stats().items():
            if hits + misses:
                family.add_metric([name], hits / (hits + misses))
        yield family


FEED_OUTCOMES = ("received", "published", "flagged", "quarantined", "alerts")
_feeds: list[tuple[str, object]] = []


def feed_stats_track(source: str, stats) -> None:
    """Report a market data collector's counts (``workers.collector.CollectorStats``: the
    attributes of ``FEED_OUTCOMES``) as ``tradeops_collector_events_total{source, outcome}``.
    Counts add up per source over every collector tracked in this process, for its lifetime."""
    _feeds.append((source, stats))


class FeedCollector(Collector):
    """The tracked collectors' counts, read when scraped."""

    def describe(self):
        return iter(())

    def collect(self):
        from prometheus_client.core import CounterMetricFamily

        name = "tradeops_collector_events_total"
        family = CounterMetricFamily(name[: -len("_total")], COLLECTED[name], labels=["source", "outcome"])
        totals: dict[tuple[str, str], int] = {}
        for source, stats in list(_feeds):
            for outcome in FEED_OUTCOMES:
                totals[(source, outcome)] = totals.get((source, outcome), 0) + getattr(stats, outcome)
        for labels, value in totals.items():
            family.add_metric(list(labels), value)
        yield family


_registered: dict[str, Collector] = {}


def collectors_register(*, database: bool = True, caches: bool = True, registry=REGISTRY) -> None:
    """Register the scrape-time collectors in this process (idempotent). The stage runners'
    totals are always registered (they cost nothing until scraped)."""
    from tradeops.observability.stage import stage_collector_register

    stage_collector_register(registry)
    if "feeds" not in _registered:
        _registered["feeds"] = FeedCollector()
        registry.register(_registered["feeds"])
    if caches and "caches" not in _registered:
        _registered["caches"] = CacheCollector()
        registry.register(_registered["caches"])
    if database and "database" not in _registered:
        _registered["database"] = DatabaseCollector()
        registry.register(_registered["database"])
