"""End to end on the cluster (issue 18): a replay of real EURUSD bars through the stages as
separate processes (features, models + validator, execution worker, audit trail, surveillance,
live push, outbox relay) on the three-broker Kafka cluster and the PostgreSQL primary. Orders,
fills, positions, the audit trail (chain verified), the outbox and the topics agree with one
another, and the RTS 22 transaction report of each trading day holds every fill of that day."""

from __future__ import annotations

import pytest

from tests.cluster.reconcile import BARS, assert_controls, assert_reconciled, published_count

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.kafka, pytest.mark.postgres]


def test_a_replay_through_the_stages_as_processes_reconciles_end_to_end(cluster_run):
    cluster_run.start()
    published = published_count(cluster_run.replay(BARS))
    probe = cluster_run.settle()
    assert_reconciled(cluster_run, probe, published=published)
    assert_controls(probe)
    report = cluster_run.transaction_reports(probe)
    assert report["missing"] == [], report
    assert report["reported"] >= probe["fills"]
