"""Concurrent appenders on PostgreSQL: the chain-head lock keeps the chain gap-free and linked,
and the same event delivered to two consumers at once is recorded once."""

from __future__ import annotations

import threading
import uuid
from dataclasses import replace

import pytest
from django.db import connection

from tests.conftest import service_unavailable
from tests.tradeops.audit.conftest import entries
from tradeops.audit.models import AuditRecord
from tradeops.audit.verify import audit_verify


def _run_in_threads(work, n: int) -> list[BaseException]:
    from django.db import connections

    errors: list[BaseException] = []
    barrier = threading.Barrier(n)

    def target(i: int) -> None:
        try:
            barrier.wait()
            work(i)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return errors


@pytest.mark.django_db(transaction=True)
def test_concurrent_appenders_keep_one_gap_free_chain():
    if connection.vendor != "postgresql":
        service_unavailable("needs PostgreSQL: set DATABASE_URL (row locks; SQLite serialises writers anyway)")
    from tradeops.audit.services import audit_append, audit_append_many

    def work(i: int) -> None:
        for round_no in range(5):
            if round_no % 2:
                audit_append(
                    action="order.created",
                    object_type="order",
                    object_id=f"{i}-{round_no}",
                    occurred_at=entries(1)[0].occurred_at,
                )
            else:
                audit_append_many(entries=entries(60))  # COPY path

    assert _run_in_threads(work, 4) == []
    assert AuditRecord.objects.count() == 4 * (3 * 60 + 2)
    report = audit_verify()
    assert report.ok, report.problem
    assert report.head_sequence == AuditRecord.objects.count()


@pytest.mark.django_db(transaction=True)
def test_the_same_event_from_two_consumers_at_once_is_recorded_once():
    if connection.vendor != "postgresql":
        service_unavailable("needs PostgreSQL: set DATABASE_URL")
    from tradeops.audit.services import audit_append_many

    batch = entries(50)
    shared = [uuid.uuid4() for _ in range(10)]
    batch = [replace(e, event_id=shared[i % 10]) if i < 10 else e for i, e in enumerate(batch)]

    def work(i: int) -> None:
        audit_append_many(entries=batch[:10] + entries(5))

    assert _run_in_threads(work, 4) == []
    assert AuditRecord.objects.filter(event_id__in=shared).count() == 10
    assert AuditRecord.objects.count() == 10 + 4 * 5
    assert audit_verify().ok
