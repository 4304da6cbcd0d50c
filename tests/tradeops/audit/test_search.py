"""Audit search by each facet (actor, action, object, time range, free text) and the
Elasticsearch backend behind its breaker (real server only when ELASTICSEARCH_URL is set)."""

from __future__ import annotations

import os
import uuid
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from tests.tradeops.audit.conftest import T0
from tradeops.audit.search import AuditQuery, audit_search, search_postgres
from tradeops.audit.services import AuditEntry, audit_append_many


@pytest.fixture
def trail(db):
    rows = [
        ("order.created", "order", "CO-1", "service:execution-worker", {"symbol": "EURUSD", "side": "BUY"}, 0),
        ("order.filled", "order", "CO-1", "service:execution-worker", {"symbol": "EURUSD", "venue": "XOFF"}, 1),
        ("order.created", "order", "CO-2", "algorithm:momentum-v2", {"symbol": "GBPUSD", "side": "SELL"}, 2),
        ("risk_limit.changed", "risk_limit", "7", "user:rita", {"after": {"max_order_value": "50000"}}, 3),
        ("killswitch.changed", "killswitch", "all", "user:alice", {"reason": "runaway spoofing algo"}, 4),
        ("auth.login_failed", "user", "mallory", "user:mallory", {"ip": "10.0.0.9"}, 5),
    ]
    return audit_append_many(
        entries=[
            AuditEntry(
                action=a,
                object_type=ot,
                object_id=oid,
                actor=actor,
                payload=payload,
                occurred_at=T0 + timedelta(hours=h),
                event_id=uuid.uuid4(),
                category="compliance" if a.startswith(("risk", "kill")) else "trading",
            )
            for a, ot, oid, actor, payload, h in rows
        ]
    )


def _actions(result) -> list[str]:
    return [r.action for r in reversed(result.records)]


def test_by_actor(trail):
    assert _actions(audit_search(AuditQuery(actor="user:alice"))) == ["killswitch.changed"]
    assert _actions(audit_search(AuditQuery(actor="momentum-v2"))) == ["order.created"]


def test_by_action_exact_and_prefix(trail):
    assert audit_search(AuditQuery(action="order.created")).total == 2
    assert _actions(audit_search(AuditQuery(action="order."))) == ["order.created", "order.filled", "order.created"]


def test_by_object(trail):
    result = audit_search(AuditQuery(object_type="order", object_id="CO-1"))
    assert _actions(result) == ["order.created", "order.filled"]


def test_by_time_range(trail):
    result = audit_search(AuditQuery(since=T0 + timedelta(hours=2), until=T0 + timedelta(hours=4)))
    assert _actions(result) == ["order.created", "risk_limit.changed"]


def test_by_free_text(trail):
    assert _actions(audit_search(AuditQuery(text="spoofing"))) == ["killswitch.changed"]
    assert _actions(audit_search(AuditQuery(text="GBPUSD SELL"))) == ["order.created"]
    assert audit_search(AuditQuery(text="EURUSD")).total == 2
    assert audit_search(AuditQuery(text="nothing-like-this")).total == 0


def test_facets_count_the_filtered_set(trail):
    result = audit_search(AuditQuery(action="order."))
    assert dict(result.facets["actor"]) == {"service:execution-worker": 2, "algorithm:momentum-v2": 1}
    assert dict(result.facets["action"]) == {"order.created": 2, "order.filled": 1}
    assert dict(result.facets["object_type"]) == {"order": 3}


def test_postgres_full_text_uses_the_gin_index_and_sees_new_records(postgres, trail):
    from django.db import connection

    from tradeops.audit.services import audit_append

    assert audit_search(AuditQuery(text="spoofing")).total == 1  # builds the documents
    audit_append(
        action="alert.raised", object_type="alert", object_id="A-1", occurred_at=T0, payload={"why": "spoofing"}
    )
    assert audit_search(AuditQuery(text="spoofing")).total == 2  # appended after: found too
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(
            "EXPLAIN SELECT sequence FROM audit_search_document WHERE document @@ websearch_to_tsquery('simple', %s)",
            ["spoofing"],
        )
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "audit_search_document_gin" in plan


def test_elasticsearch_down_falls_back_to_postgres_and_opens_the_breaker(trail, settings):
    from tradeops.audit import search as search_module
    from tradeops.audit import search_es
    from tradeops.breaker import BreakerState, CircuitBreaker

    settings.AUDIT_SEARCH_BACKEND = "elasticsearch"
    settings.ELASTICSEARCH_URL = "http://127.0.0.1:9"  # nothing listens on the discard port
    search_es._client = None
    clock = [0.0]
    search_module._breaker = CircuitBreaker("audit-elasticsearch", fail_max=2, reset_timeout=30, clock=lambda: clock[0])
    try:
        first = audit_search(AuditQuery(actor="user:alice"))
        assert first.backend != "elasticsearch" and "Connection" in first.fallback_reason
        assert _actions(first) == ["killswitch.changed"]
        audit_search(AuditQuery(actor="user:alice"))
        assert search_module._breaker.state is BreakerState.OPEN
        third = audit_search(AuditQuery(text="spoofing"))  # refused at once, served by PostgreSQL
        assert "open" in third.fallback_reason and _actions(third) == ["killswitch.changed"]
    finally:
        search_module._breaker = None
        search_es._client = None


ES_URL = os.environ.get("ELASTICSEARCH_URL", "")
needs_es = pytest.mark.skipif(not ES_URL, reason="needs a real Elasticsearch: set ELASTICSEARCH_URL")


@needs_es
def test_elasticsearch_backend_finds_by_each_facet(trail, settings):
    from tradeops.audit import search_es

    settings.AUDIT_SEARCH_BACKEND = "elasticsearch"
    settings.ELASTICSEARCH_URL = ES_URL
    settings.AUDIT_ES_INDEX = f"tradeops-audit-test-{uuid.uuid4().hex[:8]}"
    search_es._client = None
    try:
        assert search_es.reindex(recreate=True) == len(trail)
        result = audit_search(AuditQuery(action="order."))
        assert result.backend == "elasticsearch" and result.total == 3
        assert dict(result.facets["action"]) == {"order.created": 2, "order.filled": 1}
        assert _actions(audit_search(AuditQuery(actor="user:alice"))) == ["killswitch.changed"]
        assert _actions(audit_search(AuditQuery(object_type="order", object_id="CO-1"))) == [
            "order.created",
            "order.filled",
        ]
        window = AuditQuery(since=T0 + timedelta(hours=2), until=T0 + timedelta(hours=4))
        assert _actions(audit_search(window)) == ["order.created", "risk_limit.changed"]
        assert _actions(audit_search(AuditQuery(text="spoofing"))) == ["killswitch.changed"]
    finally:
        search_es.client().indices.delete(index=settings.AUDIT_ES_INDEX, ignore_unavailable=True)
        search_es._client = None


def test_postgres_search_is_the_default(trail):
    assert audit_search(AuditQuery()).backend == search_postgres(AuditQuery()).backend


def test_reindex_command_builds_the_postgres_documents(postgres, trail, capsys):
    from django.core.management import call_command

    from tradeops.audit.models import SearchDocument

    call_command("audit_reindex", "--backend", "postgres")
    assert f"built {len(trail)} full-text documents" in capsys.readouterr().out
    assert SearchDocument.objects.count() == len(trail)


def test_elasticsearch_request_filters_each_facet_on_mapped_keyword_fields():
    """Without a server: the request the backend sends names only fields the mapping declares,
    as exact keyword filters, with full text on the analysed field and facet aggregations."""
    from tradeops.audit.search_es import AuditDoc, build_search

    mapping = AuditDoc._doc_type.mapping.to_dict()["properties"]
    query = AuditQuery(
        text="spoofing",
        actor="user:alice",
        action="order.",
        object_type="order",
        object_id="CO-1",
        since=T0,
        until=T0 + timedelta(hours=1),
        limit=20,
        offset=40,
    )
    body = build_search(query).to_dict()
    filters = body["query"]["bool"]["filter"]
    assert {"term": {"actor": "user:alice"}} in filters
    assert {"prefix": {"action": "order."}} in filters
    assert {"term": {"object_type": "order"}} in filters and {"term": {"object_id": "CO-1"}} in filters
    aliased = build_search(AuditQuery(object_id="CO-1", object_id_aliases=("135",))).to_dict()
    assert {"terms": {"object_id": ["CO-1", "135"]}} in aliased["query"]["bool"]["filter"]
    assert {"range": {"occurred_at": {"gte": T0.isoformat(), "lt": (T0 + timedelta(hours=1)).isoformat()}}} in filters
    assert body["query"]["bool"]["must"][0]["simple_query_string"]["fields"] == ["text"]
    # an older audit.verified record may name a database by address in its payload: not matched by
    # free text for whoever may not see addresses (PostgreSQL matches it without them)
    assert body["query"]["bool"]["must_not"] == [{"term": {"action": "audit.verified"}}]
    admins = build_search(AuditQuery(text="spoofing", addresses=True)).to_dict()
    assert "must_not" not in str(admins)
    for clause in filters:
        (field,) = next(iter(clause.values())).keys()
        assert mapping[field]["type"] in ("keyword", "date")
    assert set(body["aggs"]) == {"actor", "action", "object_type", "category"}
    assert all(mapping[name]["type"] == "keyword" for name in body["aggs"])
    assert mapping["text"]["type"] == "text"
    assert (body["from"], body["size"]) == (40, 20)


def test_postgres_full_text_finds_a_host_port_an_address_and_a_url(postgres, db):
    """PostgreSQL's parser reads ``host:port/path`` as one token in a document and as other tokens
    in a query, so these searches matched nothing (until 2026-12-06): both now read ``:`` and ``/``
    as spaces."""
    from tradeops.audit.services import audit_append

    payloads = {
        "A-1": {"database": "db-prod.internal:5432/tradeops"},
        "A-2": {"callback": "https://gw.example.com/api/v1/orders/"},
        "A-3": {"ip": "10.0.0.7:8443"},
        "A-4": {"note": "nothing to see"},
    }
    for object_id, payload in payloads.items():
        audit_append(action="ops.note", object_type="note", object_id=object_id, occurred_at=T0, payload=payload)

    def found(text):
        return sorted(r.object_id for r in audit_search(AuditQuery(text=text, addresses=True)).records)

    assert found("db-prod.internal:5432") == ["A-1"]
    assert found("db-prod.internal:5432/tradeops") == ["A-1"]
    assert found("db-prod.internal") == ["A-1"]
    assert found("https://gw.example.com/api/v1/orders/") == ["A-2"]
    assert found("gw.example.com/api") == ["A-2"]
    assert found("10.0.0.7:8443") == ["A-3"]
    assert found("10.0.0.7:9999") == []
    assert found('"ops.note" -10.0.0.7') == ["A-1", "A-2", "A-4"]
    assert found("://") == []


@example(word="..:1")  # a part of punctuation alone: the document drops it, so must the query
@given(word=st.text(alphabet="ab19.:/-_", min_size=1, max_size=14))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_postgres_full_text_finds_any_word_it_indexed_and_leaves_it_out_when_negated(postgres, db, word):
    """Property: whatever a record's word (hosts, ports, paths, hyphens, dots), searching for it
    finds the record, and ``-word`` beside another of its words leaves it out, as the documents
    (``FTS_DOCUMENT``) and the query (``fts_query_text``) read text the same way."""
    from django.db import connection

    from tradeops.audit.search import FTS_SEPARATORS, fts_query_text

    assume(not word.startswith("-"))  # a leading "-" is the search's own negation
    assume(any(c.isalnum() for c in word))  # PostgreSQL's own: a query ".." keeps what a document drops
    query = fts_query_text(word)
    sql = (
        "SELECT to_tsvector('simple', regexp_replace(%s, %s, ' ', 'g')) @@ websearch_to_tsquery('simple', %s),"
        " numnode(websearch_to_tsquery('simple', %s))"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [f"zz {word} yy", FTS_SEPARATORS, query, query])
        matched, nodes = cursor.fetchone()
        assert matched and nodes > 0, (word, query)
        cursor.execute(sql, [f"zz {word} yy", FTS_SEPARATORS, f"zz -{query}", f"zz -{query}"])
        assert not cursor.fetchone()[0], (word, query)
