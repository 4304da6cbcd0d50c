"""Audit search: full text and facets (actor, action, object, time range, free text).

Backends, chosen by ``AUDIT_SEARCH_BACKEND``:

- ``postgres`` (default): the ORM for the facets, and for free text a match on the GIN-indexed
  ``tsvector`` column of ``audit_search_document`` (``to_tsvector('simple', ...)`` of each record,
  queried with ``websearch_to_tsquery``). Documents are built in bulk, in the database, for every
  record not yet indexed, right before each free-text search (``search_documents_catch_up``), so
  a search always sees every record and appends never maintain a GIN index. On SQLite (the
  embedded run) free text falls back to case-insensitive substring filters.
- ``elasticsearch``: the client's ``elasticsearch.dsl`` (``tradeops.audit.search_es``), behind the
  ``audit-elasticsearch`` circuit breaker; when Elasticsearch fails or the breaker is open the
  same query runs on PostgreSQL and the result says so (``backend`` / ``fallback_reason``).

Either way the records returned are rows of ``audit_record`` (the index only finds them), so a
search result is always the system of record, never a stale copy.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import connection
from django.db.models import Count, Q, QuerySet
from django.db.models.expressions import RawSQL

from tradeops.audit.models import AuditRecord
from tradeops.audit.objects import alert_object_id_searched
from tradeops.audit.verify import ADDRESS
from tradeops.breaker import CircuitBreaker, CircuitOpenError

log = logging.getLogger(__name__)

# PostgreSQL's parser reads ``host:port``, ``host:port/path`` and URLs as one token in a
# document but splits the same text into other tokens in a query (``db01.internal:5432/tradeops``
# is the token ``db01.internal:5432`` in the record, ``'db01.internal' & '5432'`` in the query),
# so such a search never matched (until 2026-12-06). Documents and queries both read ``:`` and
# ``/`` as spaces: a host, a port, an IP address and a URL's parts are words on both sides.
FTS_SEPARATORS = "[:/]+"
FTS_DOCUMENT = (
    "to_tsvector('simple'::regconfig, regexp_replace(action || ' ' || actor_type || ' ' || actor_id"
    f" || ' ' || object_type || ' ' || object_id || ' ' || payload, '{FTS_SEPARATORS}', ' ', 'g'))"
)
CATCH_UP_SQL = f"""
    INSERT INTO audit_search_document (sequence, document)
    SELECT sequence, {FTS_DOCUMENT} FROM audit_record
    WHERE sequence > (SELECT coalesce(max(sequence), 0) FROM audit_search_document)
    ORDER BY sequence LIMIT %s
    ON CONFLICT (sequence) DO NOTHING
"""  # noqa: S608 - constant SQL (FTS_DOCUMENT is a constant); the limit is a bound parameter
CATCH_UP_BATCH = 50_000
FACETS = ("actor", "action", "object_type", "category")
FACET_SIZE = 10
MAX_LIMIT = 500


@dataclass(frozen=True)
class AuditQuery:
    text: str = ""
    actor: str = ""  # "user:alice", or just "alice" (any actor type)
    action: str = ""  # exact, or a prefix ending in "." ("order.")
    object_type: str = ""
    object_id: str = ""
    # the same object's other ids, searched with object_id (an order's records are filed under its
    # database number by the order path and under its client order id by the decisions about it)
    object_id_aliases: tuple[str, ...] = ()
    category: str = ""
    since: datetime | None = None  # occurred_at >= since
    until: datetime | None = None  # occurred_at < until
    limit: int = 50
    offset: int = 0
    # whether free text may match the database addresses an ``audit.verified`` record's payload
    # names (admins on the audit screens); otherwise those records match in their address-free
    # form (``_VERIFIED_HIDDEN``), so a search is no oracle for an address the screens label
    addresses: bool = False


@dataclass
class AuditSearchResult:
    records: list[AuditRecord]
    total: int
    facets: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    backend: str = "postgres"
    fallback_reason: str = ""


def _filtered(query: AuditQuery, qs: QuerySet[AuditRecord] | None = None) -> QuerySet[AuditRecord]:
    qs = AuditRecord.objects.all() if qs is None else qs
    if query.actor:
        kind, sep, ident = query.actor.partition(":")
        qs = qs.filter(actor_type=kind, actor_id=ident) if sep else qs.filter(actor_id=query.actor)
    if query.action:
        qs = (
            qs.filter(action__startswith=query.action) if query.action.endswith(".") else qs.filter(action=query.action)
        )
    if query.object_type:
        qs = qs.filter(object_type=query.object_type)
    if query.object_id:
        # a market-data alert's records from before its id carried the time (tradeops.audit.objects)
        others, prefix = alert_object_id_searched(query.object_type, query.object_id)
        match = Q(object_id__in=[query.object_id, *query.object_id_aliases, *others])
        qs = qs.filter(match | Q(object_id__startswith=prefix) if prefix else match)
    if query.category:
        qs = qs.filter(category=query.category)
    if query.since:
        qs = qs.filter(occurred_at__gte=query.since)
    if query.until:
        qs = qs.filter(occurred_at__lt=query.until)
    return qs


# What free text may not match in an ``audit.verified`` record's payload for whoever may not see
# database addresses (``AuditQuery.addresses``): anything shaped like a database address, as the
# display labels it (``tradeops.audit.verify.ADDRESS``: ``postgresql://...``, ``sqlite:...``, an
# IP address, ``host:port``), and any dotted host name (``db01.prod.internal``: an identity
# pinned in ``AUDIT_CHECKPOINT_DATABASE`` may name a host without a port). Records written
# before 2026-12-06 may name databases so; newer ones hold labels only.
_VERIFIED_HIDDEN = ADDRESS.pattern + r"|\b[A-Za-z][\w-]*(?:\.[\w-]+)+"
# The same in PostgreSQL's regular expressions (ARE): ``\m`` is its start of a word (``\b`` is a
# backspace there); ``\d``, ``\s``, ``\w`` and ``(?:`` read as in Python.
_VERIFIED_HIDDEN_PG = _VERIFIED_HIDDEN.replace(r"\b", r"\m")
# The audit.verified records that may name a database by address: those written before
# 2026-12-06, whose payload has no "checkpoint_sources" (every run recorded since has them, and
# names databases by label only). A bounded set: it no longer grows. The same test as
# ``tradeops.audit.verify.verified_payload_may_name_addresses``, which the display uses.
_LEGACY_VERIFIED = "r.action = 'audit.verified' AND strpos(r.payload, '\"checkpoint_sources\"') = 0"
# Such a record's full-text document without its address parts (bound: the pattern).
_LEGACY_SHOWN_DOCUMENT = (
    "to_tsvector('simple'::regconfig, regexp_replace(r.action || ' ' || r.actor_type || ' ' || r.actor_id"
    " || ' ' || r.object_type || ' ' || r.object_id || ' ' || regexp_replace(r.payload, %s, ' ', 'g'),"
    f" '{FTS_SEPARATORS}', ' ', 'g'))"
)
# The free-text matches (the GIN index first) that are such records and that fail once their
# addresses are taken out (bound: the text, the pattern, the text): left out.
LEGACY_MATCHED_BY_ADDRESS_SQL = (
    "SELECT r.sequence FROM audit_record r JOIN audit_search_document d ON d.sequence = r.sequence"  # noqa: S608 - constants
    " WHERE d.document @@ websearch_to_tsquery('simple'::regconfig, %s) AND "
    + _LEGACY_VERIFIED
    + " AND NOT "
    + _LEGACY_SHOWN_DOCUMENT
    + " @@ websearch_to_tsquery('simple'::regconfig, %s)"
)
# A query with a negation ("-10.0.4.7 skipped") matches a record *because* a term is absent: such
# a record must be judged on its address-free document alone, so every such record is (bound:
# the pattern, the text). The regular expression costs ~60 us a record (3.5 s for 60,000 here),
# hence only for negated queries and only over the records of before 2026-12-06.
LEGACY_SHOWN_MATCHING_SQL = (
    "SELECT r.sequence FROM audit_record r WHERE "  # noqa: S608 - constants
    + _LEGACY_VERIFIED
    + " AND "
    + _LEGACY_SHOWN_DOCUMENT
    + " @@ websearch_to_tsquery('simple'::regconfig, %s)"
)
LEGACY_SQL = "SELECT r.sequence FROM audit_record r WHERE " + _LEGACY_VERIFIED  # noqa: S608 - constants


def _hidden_pattern() -> tuple[re.Pattern, str]:
    """The address parts hidden from a search (Python, PostgreSQL), this database's identity
    first (whatever its form, when it names an address)."""
    from tradeops.audit.checkpoint import database_identity, names_an_address

    identity = database_identity()
    if not names_an_address(identity):
        return re.compile(_VERIFIED_HIDDEN), _VERIFIED_HIDDEN_PG
    escaped = re.escape(identity)  # escapes only punctuation: a literal in PostgreSQL's ARE too
    return re.compile(f"{escaped}|{_VERIFIED_HIDDEN}"), f"{escaped}|{_VERIFIED_HIDDEN_PG}"


def fts_query_text(text: str) -> str:
    """Free text as the full-text query reads it, ``:`` and ``/`` as spaces as in the documents
    (``FTS_SEPARATORS``). An unquoted word holding them becomes a phrase, its sign kept:
    ``-db01:5432/tradeops`` is ``-"db01 5432 tradeops"`` (leave out the records naming that
    address), not ``-db01 5432 tradeops``. Inside quotes they are spaces of the phrase."""
    segments = text.split('"')
    for i, segment in enumerate(segments):
        if i % 2:  # inside quotes (an unclosed quote runs to the end, as websearch reads it)
            segments[i] = re.sub(FTS_SEPARATORS, " ", segment)
            continue
        segments[i] = _JOINED_WORD.sub(_as_phrase, segment)
    return '"'.join(segments).strip()


_JOINED_WORD = re.compile(rf"(-?)(\S*{FTS_SEPARATORS}\S*)")


def _as_phrase(match: re.Match) -> str:
    # quoted even when one part is left: inside quotes "-1" (of "db01:-1") is read as a document
    # reads it, the signed number, not as the search's negation. A part of punctuation alone (the
    # ".." of "..:1") is dropped, as the document's parser drops it between spaces (a quoted query
    # would keep it and match nothing)
    parts = [part for part in re.split(FTS_SEPARATORS, match[2]) if any(c.isalnum() for c in part)]
    return f'{match[1]}"{" ".join(parts)}"' if parts else ""


def _negated(text: str) -> bool:
    """Whether the query PostgreSQL makes of ``text`` holds a negation (``-word``)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT strpos(websearch_to_tsquery('simple'::regconfig, %s)::text, '!') > 0", [text])
        return bool(cursor.fetchone()[0])


def _text_filter(qs: QuerySet[AuditRecord], text: str, *, addresses: bool = False) -> QuerySet[AuditRecord]:
    """``qs`` narrowed to the records matching free text. Unless ``addresses``, an
    ``audit.verified`` record matches only through its payload with the database addresses taken
    out (``_VERIFIED_HIDDEN``): the screens and the API label them for non-admins, and a search
    that still matched them would tell an auditor which address a record names."""
    text = text.strip()
    if not text:
        return qs
    if connection.vendor == "postgresql":
        text = fts_query_text(text)
        if not text:  # only separators: nothing to match on
            return qs.none()
        search_documents_catch_up()
        matching = RawSQL(
            "SELECT sequence FROM audit_search_document"
            " WHERE document @@ websearch_to_tsquery('simple'::regconfig, %s)",
            [text],
        )
        if addresses:
            return qs.filter(sequence__in=matching)
        _, pattern = _hidden_pattern()
        if not _negated(text):
            # the few older audit.verified records the index matched, matched again without
            # their addresses; those that then fail are left out
            matched_by_address = RawSQL(LEGACY_MATCHED_BY_ADDRESS_SQL, [text, pattern, text])  # noqa: S611 - constant SQL
            return qs.filter(sequence__in=matching).exclude(sequence__in=matched_by_address)
        legacy = RawSQL(LEGACY_SQL, [])  # noqa: S611 - constant SQL
        shown = RawSQL(LEGACY_SHOWN_MATCHING_SQL, [pattern, text])  # noqa: S611 - constant SQL, bound values
        return qs.filter((Q(sequence__in=matching) & ~Q(sequence__in=legacy)) | Q(sequence__in=shown))
    terms = text.split()
    for term in terms:  # SQLite fallback: every term somewhere in the record
        qs = qs.filter(
            Q(payload__icontains=term)
            | Q(action__icontains=term)
            | Q(actor_id__icontains=term)
            | Q(object_type__icontains=term)
            | Q(object_id__icontains=term)
        )
    if not addresses:
        pattern, _ = _hidden_pattern()
        matched_by_address = [
            sequence
            for sequence, payload, *fields in qs.filter(action="audit.verified").values_list(
                "sequence", "payload", "action", "actor_id", "object_type", "object_id"
            )
            if not all(term.lower() in " ".join([pattern.sub(" ", payload), *fields]).lower() for term in terms)
        ]
        qs = qs.exclude(sequence__in=matched_by_address)
    return qs


def audit_query_apply(qs: QuerySet[AuditRecord], query: AuditQuery) -> QuerySet[AuditRecord]:
    """``qs`` narrowed by the query's facets and free text (the screen's filters), unordered and
    unsliced, for callers that page it themselves (the integration API's cursor pages). Free
    text uses the table's full-text documents on PostgreSQL, whatever ``AUDIT_SEARCH_BACKEND``."""
    return _text_filter(_filtered(query, qs), query.text, addresses=query.addresses)


def search_documents_catch_up(*, max_rows: int | None = None) -> int:
    """Build the full-text documents of records not indexed yet (PostgreSQL; no-op elsewhere).

    One ``INSERT ... SELECT`` per batch, computed in the database; idempotent and safe to run
    concurrently (``ON CONFLICT DO NOTHING``). Returns the number of documents added."""
    if connection.vendor != "postgresql":
        return 0
    added = 0
    with connection.cursor() as cursor:
        while max_rows is None or added < max_rows:
            batch = CATCH_UP_BATCH if max_rows is None else min(CATCH_UP_BATCH, max_rows - added)
            cursor.execute(CATCH_UP_SQL, [batch])
            added += cursor.rowcount
            if cursor.rowcount < batch:
                break
    return added


def _facets(qs: QuerySet[AuditRecord]) -> dict[str, list[tuple[str, int]]]:
    facets: dict[str, list[tuple[str, int]]] = {}
    for name in FACETS:
        if name == "actor":
            rows = qs.values_list("actor_type", "actor_id").annotate(n=Count("sequence")).order_by("-n")[:FACET_SIZE]
            facets[name] = [(f"{kind}:{ident}", n) for kind, ident, n in rows]
        else:
            rows = qs.values_list(name).annotate(n=Count("sequence")).order_by("-n", name)[:FACET_SIZE]
            facets[name] = [(value, n) for value, n in rows]
    return facets


def search_postgres(query: AuditQuery) -> AuditSearchResult:
    """Search the table itself (full text on PostgreSQL, substring filters on SQLite)."""
    qs = _text_filter(_filtered(query), query.text, addresses=query.addresses)
    limit = max(1, min(query.limit, MAX_LIMIT))
    records = list(qs.order_by("-sequence")[query.offset : query.offset + limit])
    return AuditSearchResult(records=records, total=qs.count(), facets=_facets(qs), backend=connection.vendor)


_breaker: CircuitBreaker | None = None


def es_breaker() -> CircuitBreaker:
    """The process's breaker in front of Elasticsearch (5 failures open it for 30 s)."""
    global _breaker
    if _breaker is None:
        _breaker = CircuitBreaker(
            "audit-elasticsearch",
            fail_max=getattr(settings, "AUDIT_ES_FAIL_MAX", 5),
            reset_timeout=getattr(settings, "AUDIT_ES_RESET_TIMEOUT", 30.0),
            listeners=[lambda b, old, new: log.warning("breaker %s: %s -> %s", b.name, old, new)],
        )
    return _breaker


def audit_search(query: AuditQuery) -> AuditSearchResult:
    """Search with the configured backend; Elasticsearch falls back to PostgreSQL on failure."""
    if getattr(settings, "AUDIT_SEARCH_BACKEND", "postgres") != "elasticsearch":
        return search_postgres(query)
    from tradeops.audit import search_es

    try:
        return es_breaker().call(search_es.search, query)
    except CircuitOpenError as exc:
        reason = str(exc)
    except Exception as exc:  # noqa: BLE001 - any Elasticsearch failure falls back to PostgreSQL, said so
        log.warning("audit search on Elasticsearch failed, falling back to PostgreSQL: %s", exc)
        reason = f"{type(exc).__name__}: {exc}"
    result = search_postgres(query)
    result.fallback_reason = reason
    return result


def index_sequences(sequences: list[int]) -> None:
    """Index new records in Elasticsearch (called on commit). Failures are logged, not raised:
    the table is the record, and ``audit_reindex`` catches the index up."""
    from tradeops.audit import search_es

    try:
        es_breaker().call(search_es.index_records, AuditRecord.objects.filter(sequence__in=sequences))
    except Exception as exc:  # noqa: BLE001 - the table is the record; audit_reindex catches the index up
        log.warning("audit indexing of %d records deferred (run audit_reindex): %s", len(sequences), exc)


def unindex_sequences(sequences: list[int]) -> None:
    """Remove purged records from Elasticsearch (on commit of the purge). Logged, not raised."""
    from tradeops.audit import search_es

    try:
        es_breaker().call(search_es.delete_records, sequences)
    except Exception as exc:  # noqa: BLE001 - logged; audit_reindex --recreate repairs the index
        log.warning(
            "removing %d purged records from the audit index failed (run audit_reindex --recreate): %s",
            len(sequences),
            exc,
        )
