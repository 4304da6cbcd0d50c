"""bench/run_all.py names where each row was measured, read from the servers themselves (issue
18): the Kafka cluster's own metadata and PostgreSQL's ``pg_stat_replication``, here against the
shared services of scripts/services.sh (one broker, one server: it must say so, not assume)."""

from __future__ import annotations

import pytest
from django.db import connection

from tests.conftest import requires_postgres

pytestmark = [pytest.mark.kafka, pytest.mark.django_db]

BUS_LOG = """\
| publish (encode + keyed produce + flush) | 14,262 ev/s | ProducerPerformance 16,082 rec/s | 0.89 |
| publish and consume at once (2 processes) | 9,157 ev/s | | |
"""


def _database_url() -> str:
    return "postgres://{USER}:{PASSWORD}@{HOST}:{PORT}/{NAME}".format(**connection.settings_dict)


def test_the_topology_is_read_from_the_kafka_metadata_and_the_postgres_server(kafka_bootstrap):
    from confluent_kafka.admin import AdminClient

    from bench.run_all import topology

    requires_postgres()
    found = topology({"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "DATABASE_URL": _database_url()})
    brokers = AdminClient({"bootstrap.servers": kafka_bootstrap}).list_topics(timeout=15).brokers
    shape = "single broker" if len(brokers) == 1 else f"{len(brokers)}-broker cluster"
    assert found["kafka"].startswith(f"Kafka {shape} (")
    assert all(f"{b.host}:{b.port}" in found["kafka"] for b in brokers.values())
    assert "default replication factor" in found["kafka"] and "min.insync.replicas" in found["kafka"]
    settings = connection.settings_dict
    assert f" at {settings['HOST']}:{settings['PORT']}" in found["postgres"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_replication")
        replicas = cursor.fetchone()[0]
    assert ("no replica" in found["postgres"]) == (replicas == 0)


def test_an_unreachable_server_is_said_so_not_assumed(kafka_bootstrap):
    from bench.run_all import topology

    found = topology({"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "DATABASE_URL": "postgres://x:y@127.0.0.1:1/none"})
    assert found["postgres"].startswith("postgres at 127.0.0.1:1/none: not reachable (")
    assert "y@" not in found["postgres"]  # no password in the table


def test_each_row_names_where_its_bench_ran():
    from bench.run_all import targets

    where = {"kafka": "Kafka 3-broker cluster (a:1, b:2, c:3), default replication factor 3, min.insync.replicas 2"}
    rows = {r.bench: r for r in targets({"bus_throughput": BUS_LOG}, {"audit_append": "the bench exited 1"}, where)}
    kafka = rows["bus_throughput"]
    assert kafka.where.startswith(where["kafka"] + "; ")
    assert kafka.figure.startswith("9,157 events/s") and kafka.met == "no"
    assert "single" not in kafka.figure
    assert rows["audit_append"].figure == "not measured: the bench exited 1"
    assert rows["audit_append"].where == "postgres"  # not probed in this call: the kind, never a guess
    assert rows["breaker_response"].where.startswith("in-process")
    assert rows["order_path"].figure.startswith("not measured: bench not run")


def test_the_bench_reads_the_same_variables(monkeypatch):
    """pipeline_replay (the cache row) reads DATABASE_URL like the others when BENCH_DATABASE_URL is unset."""
    import importlib

    monkeypatch.delenv("BENCH_DATABASE_URL", raising=False)
    monkeypatch.setenv("DATABASE_URL", "postgres://a:b@127.0.0.1:15432/c")
    import bench.pipeline_replay as pipeline_replay

    assert importlib.reload(pipeline_replay).PG_URL == "postgres://a:b@127.0.0.1:15432/c"
    monkeypatch.setenv("BENCH_DATABASE_URL", "postgres://d:e@127.0.0.1:5432/f")
    assert importlib.reload(pipeline_replay).PG_URL == "postgres://d:e@127.0.0.1:5432/f"


def test_the_cache_row_reads_the_postgres_run_not_the_sqlite_one():
    from bench.run_all import targets

    log = (
        "== sqlite  (load average 1 -> 1)\n"
        "  cache hit ratio during the run (target > 85%): 10.0%; instruments 10.0% (1 hits, 9 misses)\n"
        "== postgresql  (load average 1 -> 1)\n"
        "  cache hit ratio during the run (target > 85%): 90.0%; instruments 90.0% (9 hits, 1 misses)\n"
    )
    [row] = [
        r
        for r in targets({"pipeline_replay": log}, {}, {"postgres": "PostgreSQL here"})
        if r.target.startswith("cache")
    ]
    assert row.figure.startswith("90.0%") and row.met == "yes" and row.where.startswith("PostgreSQL here")
