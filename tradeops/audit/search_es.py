"""The Elasticsearch backend of audit search (the client's ``elasticsearch.dsl``): mapping, bulk indexing, queries.

The index (``AUDIT_ES_INDEX``, default ``tradeops-audit``) holds one document per record, id =
sequence. Structured fields are keywords (exact facets), ``text`` is analysed full text over
action, actor, object and payload. Called through the breaker in ``tradeops.audit.search``.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from elasticsearch import Elasticsearch
from elasticsearch.dsl import Date, Document, Keyword, Long, Q, Search, Text
from elasticsearch.helpers import bulk

from tradeops.audit.models import AuditRecord
from tradeops.audit.objects import alert_object_id_searched
from tradeops.audit.search import FACET_SIZE, MAX_LIMIT, AuditQuery, AuditSearchResult

BULK_CHUNK = 2000


def index_name() -> str:
    return getattr(settings, "AUDIT_ES_INDEX", "tradeops-audit")


_client: Elasticsearch | None = None


def client() -> Elasticsearch:
    global _client
    if _client is None:
        url = getattr(settings, "ELASTICSEARCH_URL", "")
        if not url:
            raise RuntimeError("ELASTICSEARCH_URL is not set")
        _client = Elasticsearch(url, request_timeout=5, max_retries=0)
    return _client


class AuditDoc(Document):
    sequence = Long()
    event_id = Keyword()
    occurred_at = Date()
    recorded_at = Date()
    category = Keyword()
    actor = Keyword()  # "user:alice"
    actor_type = Keyword()
    actor_id = Keyword()
    action = Keyword()
    object_type = Keyword()
    object_id = Keyword()
    corrects = Keyword()
    hash = Keyword(index=False)
    text = Text(analyzer="standard")

    class Index:
        name = "tradeops-audit"  # replaced by index_name() at use
        settings = {"number_of_shards": 1, "number_of_replicas": 0}


def index_create(*, recreate: bool = False) -> None:
    """Create the index with the mapping (drop it first with ``recreate``)."""
    es = client()
    name = index_name()
    if recreate and es.indices.exists(index=name):
        es.indices.delete(index=name)
    if not es.indices.exists(index=name):
        AuditDoc.init(index=name, using=es)


def _doc(record: AuditRecord) -> dict:
    return {
        "_index": index_name(),
        "_id": record.sequence,
        "_source": {
            "sequence": record.sequence,
            "event_id": str(record.event_id),
            "occurred_at": record.occurred_at.isoformat(),
            "recorded_at": record.recorded_at.isoformat(),
            "category": record.category,
            "actor": record.actor,
            "actor_type": record.actor_type,
            "actor_id": record.actor_id,
            "action": record.action,
            "object_type": record.object_type,
            "object_id": record.object_id,
            "corrects": str(record.corrects) if record.corrects else None,
            "hash": record.hash,
            "text": " ".join(
                [
                    record.action,
                    record.actor_type,
                    record.actor_id,
                    record.object_type,
                    record.object_id,
                    record.payload,
                ]
            ),
        },
    }


def index_records(records: Iterable[AuditRecord], *, refresh: bool = False) -> int:
    """Bulk-index records (idempotent: the document id is the sequence). Returns the count."""
    count, _ = bulk(client(), (_doc(r) for r in records), chunk_size=BULK_CHUNK, refresh=refresh)
    return count


def delete_records(sequences: list[int]) -> int:
    """Delete documents of purged records (retention: the index must not outlive the record)."""
    actions = ({"_op_type": "delete", "_index": index_name(), "_id": seq} for seq in sequences)
    count, _ = bulk(client(), actions, chunk_size=BULK_CHUNK, raise_on_error=False)
    return count


def reindex(*, since_sequence: int = 0, recreate: bool = False) -> int:
    """Rebuild the index from the chain (the table is the source of truth)."""
    index_create(recreate=recreate)
    rows = AuditRecord.objects.filter(sequence__gt=since_sequence).order_by("sequence").iterator(chunk_size=BULK_CHUNK)
    count = index_records(rows)
    client().indices.refresh(index=index_name())
    return count


def build_search(query: AuditQuery, *, using=None) -> Search:
    """The Elasticsearch request for a query: filters (exact facets), full text, aggregations."""
    s = Search(using=using, index=index_name())
    if query.actor:
        s = s.filter("term", actor=query.actor) if ":" in query.actor else s.filter("term", actor_id=query.actor)
    if query.action:
        s = (
            s.filter("prefix", action=query.action)
            if query.action.endswith(".")
            else s.filter("term", action=query.action)
        )
    for name in ("object_type", "category"):
        if getattr(query, name):
            s = s.filter("term", **{name: getattr(query, name)})
    if query.object_id:
        # a market-data alert's records from before its id carried the time (tradeops.audit.objects)
        others, prefix = alert_object_id_searched(query.object_type, query.object_id)
        ids = [query.object_id, *query.object_id_aliases, *others]
        match = Q("terms", object_id=ids) if len(ids) > 1 else Q("term", object_id=query.object_id)
        s = s.filter(match | Q("prefix", object_id=prefix) if prefix else match)
    if query.since or query.until:
        bounds = {}
        if query.since:
            bounds["gte"] = query.since.isoformat()
        if query.until:
            bounds["lt"] = query.until.isoformat()
        s = s.filter("range", occurred_at=bounds)
    if query.text.strip():
        s = s.query("simple_query_string", query=query.text, fields=["text"], default_operator="and")
        if not query.addresses:
            # the index holds an audit.verified record's payload as recorded, and an older one may
            # name a database by address: for whoever may not see addresses such records are not
            # matched by free text here at all (PostgreSQL matches them without their addresses;
            # a search by action finds them), so the text is no oracle for an address
            s = s.query(~Q("term", action="audit.verified"))
    for name in ("actor", "action", "object_type", "category"):
        s.aggs.bucket(name, "terms", field=name, size=FACET_SIZE)
    limit = max(1, min(query.limit, MAX_LIMIT))
    s = s.sort("-sequence").extra(track_total_hits=True, _source=["sequence"])[query.offset : query.offset + limit]
    return s


def search(query: AuditQuery) -> AuditSearchResult:
    s = build_search(query, using=client())
    response = s.execute()
    sequences = [hit.sequence for hit in response]
    by_seq = AuditRecord.objects.in_bulk(sequences)
    facets = {
        name: [(b.key, b.doc_count) for b in getattr(response.aggregations, name).buckets]
        for name in ("actor", "action", "object_type", "category")
    }
    return AuditSearchResult(
        records=[by_seq[s] for s in sequences if s in by_seq],
        total=response.hits.total.value,
        facets=facets,
        backend="elasticsearch",
    )
