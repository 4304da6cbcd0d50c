"""Topics as code: the catalogue says what the design brief says, and provision_topics creates
and reconciles it on the local broker (dry run changes nothing)."""

from __future__ import annotations

import io
import time
import uuid

import pytest
from django.core.management import call_command

from tradeops.topics import CATALOGUE, DAY_MS, HOUR_MS, all_specs, dlq_name
from tradeops.topics import Topic as T


def test_catalogue_matches_the_design_brief():
    brief = {
        T.MARKET_DATA: (12, 7 * DAY_MS),
        T.FEATURES: (8, DAY_MS),
        T.PREDICTIONS: (6, 12 * HOUR_MS),
        T.TRADING: (4, 30 * DAY_MS),
        T.COMPLIANCE: (2, 7 * 365 * DAY_MS),
    }
    got = {s.name: (s.partitions, s.retention_ms) for s in CATALOGUE}
    assert set(got) == set(brief)
    for name, (partitions, retention) in brief.items():
        assert got[name][0] == partitions
        assert got[name][1] >= retention and got[name][1] - retention < 2 * DAY_MS, name
    assert all(s.groups for s in CATALOGUE)
    names = {s.name for s in all_specs()}
    assert {dlq_name(s.name) for s in CATALOGUE} <= names


def test_each_topics_consumer_groups_are_the_stages_that_consume_it():
    """The catalogue's groups, which docs/event-backbone.md lists per topic, said the market
    monitor and a "live-dashboard" group read the topics and left out the execution worker, the
    metrics stage and surveillance's reads (the walk of 2026-12-06): they are the registry's."""
    from tradeops.stages import STAGES

    for spec in CATALOGUE:
        consumers = {stage.group for stage in STAGES if spec.name in stage.consumes}
        assert set(spec.groups) == consumers, spec.name
        assert len(spec.groups) == len(set(spec.groups)), spec.name


def _admin(bootstrap):
    from confluent_kafka.admin import AdminClient

    return AdminClient({"bootstrap.servers": bootstrap})


def _wait_for_config(admin, topic: str, name: str, value: str, timeout: float = 15.0) -> None:
    from confluent_kafka.admin import ConfigResource, ResourceType

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        [future] = admin.describe_configs([ConfigResource(ResourceType.TOPIC, topic)]).values()
        if future.result()[name].value == value:
            return
        time.sleep(0.2)
    raise AssertionError(f"{topic} {name} did not become {value}")


@pytest.mark.kafka
def test_provision_topics_dry_run_then_apply_then_reconcile(kafka):
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType

    from tradeops.bus.provision import topics_delete

    prefix = f"prov-{uuid.uuid4().hex[:8]}-"
    admin = _admin(kafka)
    names = [prefix + s.name for s in all_specs()]
    try:
        out = io.StringIO()
        call_command("provision_topics", "--dry-run", prefix=prefix, bootstrap_servers=kafka, stdout=out)
        assert out.getvalue().count("create ") == len(names) and "dry run: nothing changed" in out.getvalue()
        assert not set(names) & set(admin.list_topics(timeout=10).topics)

        call_command("provision_topics", prefix=prefix, bootstrap_servers=kafka, stdout=io.StringIO())
        deadline = time.monotonic() + 15  # metadata of new topics propagates asynchronously
        while not set(names) <= set(admin.list_topics(timeout=10).topics) and time.monotonic() < deadline:
            time.sleep(0.2)
        topics = admin.list_topics(timeout=10).topics
        assert len(topics[prefix + T.MARKET_DATA].partitions) == 12
        assert len(topics[prefix + T.COMPLIANCE].partitions) == 2
        brokers = len(admin.list_topics(timeout=10).brokers)
        assert all(len(p.replicas) == min(3, brokers) for p in topics[prefix + T.TRADING].partitions.values())

        # someone shortened retention by hand: reconcile puts it back; a second run has nothing to do
        resource = ConfigResource(
            ResourceType.TOPIC,
            prefix + T.TRADING,
            incremental_configs=[ConfigEntry("retention.ms", "1000", incremental_operation=AlterConfigOpType.SET)],
        )
        for future in admin.incremental_alter_configs([resource]).values():
            future.result()
        _wait_for_config(admin, prefix + T.TRADING, "retention.ms", "1000")  # configs propagate asynchronously
        out = io.StringIO()
        call_command("provision_topics", prefix=prefix, bootstrap_servers=kafka, stdout=out)
        assert f"retention.ms: 1000 -> {30 * DAY_MS}" in out.getvalue()
        out = io.StringIO()
        call_command("provision_topics", prefix=prefix, bootstrap_servers=kafka, stdout=out)
        assert "up to date" in out.getvalue()
    finally:
        topics_delete(admin, names)
