"""The audit and outbox series after real writes: audit appends by category (counted at commit,
not for an append rolled back), the scrape-time figures (outbox backlog and relay lag, audit
chain length) and the nightly verification's status gauge."""

from __future__ import annotations

import time

import pytest
from django.db import transaction
from prometheus_client import REGISTRY

from tests.tradeops.audit.conftest import entries
from tests.tradeops.conftest import tick
from tradeops.audit.services import audit_append_many
from tradeops.observability.collectors import DatabaseCollector
from tradeops.outbox.services import outbox_append

pytestmark = pytest.mark.django_db


def value(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_audit_appends_are_counted_by_category_at_commit(django_capture_on_commit_callbacks):
    before = value("tradeops_audit_appends_total", category="trading")
    with django_capture_on_commit_callbacks(execute=True):
        audit_append_many(entries=entries(3))
    assert value("tradeops_audit_appends_total", category="trading") - before == 3

    class Abort(Exception):
        pass

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(Abort), transaction.atomic():
        audit_append_many(entries=entries(2))
        raise Abort  # rolled back: not appended, not counted
    assert value("tradeops_audit_appends_total", category="trading") - before == 3


def test_database_figures_are_read_when_scraped():
    audit_append_many(entries=entries(4))
    with transaction.atomic():
        outbox_append(event=tick("EURUSD", 1))
    time.sleep(0.01)
    figures = {family.name: family.samples[0].value for family in DatabaseCollector().collect()}
    assert figures["tradeops_outbox_backlog"] >= 1
    assert figures["tradeops_outbox_lag_seconds"] > 0
    assert figures["tradeops_audit_chain_length"] >= 4


def test_the_nightly_verification_sets_the_chain_status(settings):
    from tradeops.audit.tasks import audit_verify_nightly

    audit_append_many(entries=entries(3))
    before = time.time()
    result = audit_verify_nightly()
    assert result["ok"] is True
    assert value("tradeops_audit_chain_verified") == 1
    assert value("tradeops_audit_chain_verified_timestamp_seconds") >= before - 1
