"""The audit and outbox series after real writes: audit appends by category (counted at commit,
not for an append rolled back), the scrape-time figures (outbox backlog and relay lag, audit
chain length) and the chain's last verification, read from the trail whoever ran it."""

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


def verification_figures() -> dict[str, float]:
    return {
        family.name: family.samples[0].value
        for family in DatabaseCollector().collect()
        if family.name.startswith("tradeops_audit_chain_verified")
    }


def test_no_verification_yet_exports_no_status_rather_than_a_broken_chain():
    """Until 2026-12-06 every process that had not run the verification itself (the web, every
    stage, the worker after a restart) exported ``tradeops_audit_chain_verified 0``, so
    TradeopsAuditChainBroken (critical: the pager) fired for a chain nobody had found broken."""
    audit_append_many(entries=entries(2))
    assert verification_figures() == {}


def test_the_nightly_verification_is_recorded_and_every_process_reports_it():
    from tradeops.audit.models import AuditRecord
    from tradeops.audit.tasks import audit_verify_nightly

    audit_append_many(entries=entries(3))
    before = time.time()
    result = audit_verify_nightly()
    assert result["ok"] is True
    record = AuditRecord.objects.get(action="audit.verified")
    assert record.actor_id == "audit-verify-nightly" and record.payload_data["ok"] is True
    figures = verification_figures()  # a scrape of any process: read from the trail
    assert figures["tradeops_audit_chain_verified"] == 1
    assert figures["tradeops_audit_chain_verified_timestamp_seconds"] >= before - 1


def test_the_newest_verification_decides_and_a_broken_one_reads_broken():
    """A person's run on the screen or the API is recorded the same way; the newest one counts."""
    from tradeops.audit.services import audit_verification_record
    from tradeops.audit.verify import ChainProblem, VerifyReport, audit_verify

    audit_append_many(entries=entries(2))
    audit_verification_record(report=audit_verify(), actor="user:olga")
    assert verification_figures()["tradeops_audit_chain_verified"] == 1
    broken = VerifyReport(checked=2, problem=ChainProblem(kind="tampered", sequence=2, detail="hash differs"))
    audit_verification_record(report=broken, actor="user:olga")
    assert verification_figures()["tradeops_audit_chain_verified"] == 0
