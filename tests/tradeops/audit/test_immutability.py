"""The database itself refuses to rewrite history: UPDATE, DELETE, TRUNCATE; retention gates purges.

Two layers on PostgreSQL. The runtime role the application connects as has no right to change
the trail at all (``permission denied``, tradeops.core.db_roles); the owner, who has every right,
meets the triggers (``append-only``). Each refusal is checked for both. SQLite (the embedded run)
has no roles: the triggers are the only layer there.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import DatabaseError, connection, transaction

from tests.tradeops.audit.conftest import entries
from tradeops.audit.models import AuditRecord, PurgedRecord, SearchDocument
from tradeops.audit.search import search_documents_catch_up
from tradeops.audit.services import audit_append_many, audit_purge, retention_hold_place
from tradeops.audit.verify import audit_verify
from tradeops.core.clock import utcnow

# The owner acts on its own connection, so what a test appended must be committed.
pytestmark = pytest.mark.django_db(transaction=True)


def _runtime_refusal() -> str:
    return "permission denied" if connection.vendor == "postgresql" else "append-only"


def _refused(sql: str, params=()):
    """Run ``sql`` as the application (the runtime role); return the refusal."""
    with pytest.raises(DatabaseError) as info, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
    return str(info.value)


def _refused_for_owner(sql: str, params=()):
    """Run ``sql`` as the database owner, triggers on; return the refusal."""
    if connection.vendor != "postgresql":
        return _refused(sql, params)
    import psycopg

    from tests.conftest import owner_cursor, requires_roles

    requires_roles()
    with pytest.raises(psycopg.Error) as info, owner_cursor() as cursor:
        cursor.execute(sql, params)
    return str(info.value)


def test_update_is_refused_through_the_orm_and_raw_sql(chain, armed):
    with pytest.raises(DatabaseError, match=_runtime_refusal()), transaction.atomic():
        AuditRecord.objects.filter(sequence=3).update(payload='{"forged":true}')
    assert _runtime_refusal() in _refused("UPDATE audit_record SET action = 'x' WHERE sequence = 4")
    record = AuditRecord.objects.get(sequence=5)
    record.actor_id = "someone-else"
    with pytest.raises(DatabaseError, match=_runtime_refusal()), transaction.atomic():
        record.save()
    assert "append-only" in _refused_for_owner("UPDATE audit_record SET action = 'x' WHERE sequence = 4")
    assert AuditRecord.objects.get(sequence=3).payload == chain[2].payload
    assert audit_verify().ok


def test_delete_is_refused_through_the_orm_and_raw_sql(chain, armed):
    with pytest.raises(DatabaseError, match=_runtime_refusal()), transaction.atomic():
        AuditRecord.objects.filter(sequence=2).delete()
    assert _runtime_refusal() in _refused("DELETE FROM audit_record")
    assert "append-only" in _refused_for_owner("DELETE FROM audit_record")
    assert AuditRecord.objects.count() == 10


def test_truncate_is_refused(postgres, chain, armed):
    assert "permission denied" in _refused("TRUNCATE audit_record")
    assert "permission denied" in _refused("TRUNCATE audit_record CASCADE")
    assert "append-only" in _refused_for_owner("TRUNCATE audit_record")
    assert "append-only" in _refused_for_owner("TRUNCATE audit_record CASCADE")
    assert AuditRecord.objects.count() == 10


def test_the_application_role_is_no_superuser_and_owns_nothing(postgres, chain):
    from tests.conftest import requires_roles

    requires_roles()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT rolsuper, rolcreatedb, rolcreaterole, rolbypassrls FROM pg_roles WHERE rolname = current_user"
        )
        assert cursor.fetchone() == (False, False, False, False)
        cursor.execute(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public' AND c.relowner = (SELECT oid FROM pg_roles WHERE rolname = current_user)"
        )
        assert cursor.fetchone()[0] == 0


def test_even_with_the_purge_gate_open_young_records_cannot_be_deleted(chain, armed):
    from tradeops.audit.services import _purge_delete

    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        _purge_delete([1])
    assert AuditRecord.objects.count() == 10


def test_purge_removes_only_expired_records_archives_them_and_keeps_the_chain_verifiable(db, armed, tmp_path):
    old = audit_append_many(entries=entries(4), recorded_at=utcnow() - timedelta(days=6 * 366))
    young = audit_append_many(entries=entries(3))
    search_documents_catch_up()  # full-text documents exist for the old records (PostgreSQL)
    summary = audit_purge(actor="user:records-officer", archive_dir=tmp_path)
    assert not SearchDocument.objects.filter(sequence__in=[r.sequence for r in old]).exists()
    assert summary["purged"] == 4
    assert sorted(AuditRecord.objects.values_list("sequence", flat=True)) == [5, 6, 7, 8]  # 8: the purge record
    assert list(PurgedRecord.objects.values_list("sequence", "hash")) == [(r.sequence, r.hash) for r in old]
    assert (tmp_path / summary["archive"]["file"]).exists() and summary["archive"]["count"] == 4
    report = audit_verify()
    assert report.ok, report.problem
    assert report.bridged_purged == 4
    assert all(AuditRecord.objects.filter(pk=r.pk).exists() for r in young)
    assert AuditRecord.objects.get(sequence=8).action == "audit.purged"


def test_compliance_records_outlive_trading_records(db, armed, tmp_path):
    when = utcnow() - timedelta(days=6 * 366)  # past 5 years, within 7
    audit_append_many(entries=entries(2, category="compliance"), recorded_at=when)
    audit_append_many(entries=entries(2, category="trading"), recorded_at=when)
    assert audit_purge(actor="system", archive_dir=tmp_path)["purged"] == 2
    assert set(AuditRecord.objects.values_list("category", flat=True)) == {"compliance"}


def test_a_retention_hold_stops_the_purge_in_the_database(db, armed, tmp_path):
    from tradeops.audit.services import _purge_delete

    audit_append_many(entries=entries(2), recorded_at=utcnow() - timedelta(days=6 * 366))
    retention_hold_place(category="trading", reason="regulator asked for 7 years", placed_by="user:mlro")
    assert audit_purge(actor="system", archive_dir=tmp_path)["purged"] == 0
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():  # even bypassing the service
        _purge_delete([1])
    assert AuditRecord.objects.filter(sequence__in=[1, 2]).count() == 2


def test_tombstones_are_insert_only(db, armed, tmp_path):
    audit_append_many(entries=entries(1), recorded_at=utcnow() - timedelta(days=6 * 366))
    audit_purge(actor="system", archive_dir=tmp_path)
    assert _runtime_refusal() in _refused("UPDATE audit_purged SET hash = 'x'")
    assert _runtime_refusal() in _refused("DELETE FROM audit_purged")
    assert "append-only" in _refused_for_owner("UPDATE audit_purged SET hash = 'x'")
    assert "append-only" in _refused_for_owner("DELETE FROM audit_purged")


def test_the_chain_head_cannot_be_rewound_or_deleted(chain, armed):
    from tradeops.audit.models import ChainHead

    with pytest.raises(DatabaseError, match="forward"), transaction.atomic():
        ChainHead.objects.filter(pk=1).update(last_sequence=5)
    with pytest.raises(DatabaseError, match="forward"), transaction.atomic():
        ChainHead.objects.filter(pk=1).update(last_hash="0" * 64)  # same sequence, another hash
    delete_refusal = "permission denied" if connection.vendor == "postgresql" else "DELETE refused"
    with pytest.raises(DatabaseError, match=delete_refusal), transaction.atomic():
        ChainHead.objects.filter(pk=1).delete()
    if connection.vendor == "postgresql":
        assert "forward" in _refused_for_owner("UPDATE audit_chain_head SET last_sequence = 5")
        assert "refused" in _refused_for_owner("DELETE FROM audit_chain_head")
    assert ChainHead.objects.get().last_sequence == 10


def test_a_deleted_tail_is_reported_even_by_the_table_owner(chain, armed):
    """Deleting the newest records behind the triggers leaves the head ahead of the table."""
    from tests.tradeops.audit.conftest import owner_bypass

    with owner_bypass() as cursor:
        cursor.execute("DELETE FROM audit_record WHERE sequence > 7")
    problem = audit_verify().problem
    assert (problem.kind, problem.sequence) == ("deleted", 8)
