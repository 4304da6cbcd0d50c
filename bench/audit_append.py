"""Audit trail throughput on PostgreSQL, with same-run baselines.

    python bench/audit_append.py [--records 20000] [--rounds 3] [--batch 1000] [--single 2000]

1. Batched append (``audit_append_many``: chain-head lock, duplicate check, canonical JSON,
   SHA-256 chain, COPY on PostgreSQL) in records/s, beside a plain INSERT of the very same rows
   (Django ``bulk_create``: same columns, same indexes, same batch size, no lock, no hashing, no
   duplicate check) into a copy of the table without triggers, and a plain COPY of them too (so
   the gain of COPY and the cost of the chain can be told apart). Ratio = chained / plain.
2. One record per transaction (``audit_append`` as a trading service calls it), beside a plain
   one-row INSERT per transaction.
3. ``audit_verify`` over the whole chain in records/s.
4. Building the full-text documents (GIN-indexed tsvector) for the whole chain, in records/s:
   the work a functional GIN index on the audit table would add to every append.

Runs in a throwaway database (``test_tradeops_bench_audit``, created and dropped here) because
audit rows cannot be deleted. Its signed checkpoints (``AUDIT_CHECKPOINT_DIR``) go to a temporary
folder made for this run and removed with the database, so ``audit_verify`` checks this run's
chain against this run's checkpoint only (a checkpoint folder shared with another database, or
with an earlier database of the same name, would report that database's head as missing). Needs
DATABASE_URL (default: the local PostgreSQL of scripts/services.sh).
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import os
import platform
import shutil
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradeops.settings.local")
os.environ.setdefault("DATABASE_URL", "postgres://tradeops:tradeops@127.0.0.1:5432/tradeops")
# It creates a database (and scratch tables): the owner's rights (docs/security.md).
os.environ.setdefault("MIGRATE_DATABASE_URL", "postgres://tradeops_owner:tradeops_owner@127.0.0.1:5432/tradeops")
os.environ["TEST_DATABASE_NAME"] = "test_tradeops_bench_audit"
# This run's checkpoints, and no other database's: made here, removed at exit (after the database).
CHECKPOINT_DIR = tempfile.mkdtemp(prefix="tradeops-bench-audit-checkpoints-")
atexit.register(shutil.rmtree, CHECKPOINT_DIR, True)
os.environ["AUDIT_CHECKPOINT_DIR"] = CHECKPOINT_DIR

import django  # noqa: E402

django.setup()

from django.db import connection, models, transaction  # noqa: E402

from tradeops.audit.checkpoint import audit_checkpoint_create  # noqa: E402
from tradeops.audit.models import AuditRecord  # noqa: E402
from tradeops.audit.search import search_documents_catch_up  # noqa: E402
from tradeops.audit.services import AuditEntry, audit_append, audit_append_many  # noqa: E402
from tradeops.audit.verify import PG_SELECT, audit_verify  # noqa: E402
from tradeops.core.db_roles import database_owner  # noqa: E402

T0 = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)


class PlainRecord(models.Model):
    """The same columns as AuditRecord, in a copy of its table with no triggers."""

    sequence = models.BigIntegerField(primary_key=True)
    event_id = models.UUIDField()
    occurred_at = models.DateTimeField()
    recorded_at = models.DateTimeField()
    retain_until = models.DateTimeField()
    category = models.CharField(max_length=16)
    actor_type = models.CharField(max_length=16)
    actor_id = models.CharField(max_length=128)
    action = models.CharField(max_length=64)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=128)
    payload = models.TextField()
    corrects = models.UUIDField(null=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta:
        app_label = "audit"
        managed = False
        db_table = "bench_plain_audit"

    def __str__(self) -> str:
        return str(self.sequence)


def order_payload(i: int) -> dict:
    """An order snapshot as trading.services records it (about 600 bytes of canonical JSON)."""
    return {
        "client_order_id": f"CO-{i:08d}",
        "broker_order_id": f"{9000000 + i}",
        "account_id": 1 + i % 5,
        "instrument": ("EURUSD", "GBPUSD", "USDJPY", "XAUUSD")[i % 4],
        "side": "BUY" if i % 2 else "SELL",
        "order_type": "MARKET",
        "quantity": "0.10",
        "filled_quantity": "0.10",
        "average_fill_price": "1.08345",
        "limit_price": None,
        "stop_price": None,
        "time_in_force": "GTC",
        "algo_id": "momentum-v2",
        "trader_id": None,
        "desk": "fx-algo",
        "signal_id": f"SIG-{i}",
        "status": "FILLED",
        "from_status": "SUBMITTED",
        "created_at": (T0 + timedelta(milliseconds=i)).isoformat(),
        "last_fill_at": (T0 + timedelta(milliseconds=i + 3)).isoformat(),
    }


def make_entries(start: int, n: int) -> list[AuditEntry]:
    return [
        AuditEntry(
            action="order.filled",
            object_type="order",
            object_id=str(i),
            occurred_at=T0 + timedelta(milliseconds=i),
            payload=order_payload(i),
            actor="service:execution-worker",
            event_id=uuid.uuid4(),
        )
        for i in range(start, start + n)
    ]


def plain_rows(records: list[AuditRecord]) -> list[PlainRecord]:
    names = [f.attname for f in PlainRecord._meta.fields]
    return [PlainRecord(**{name: getattr(r, name) for name in names}) for r in records]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=20_000, help="records per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--single", type=int, default=2000)
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("needs PostgreSQL: set DATABASE_URL")
    old_name = connection.settings_dict["NAME"]
    owner = contextlib.ExitStack()  # kept: the owner for the whole run
    owner.enter_context(database_owner())
    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        with connection.cursor() as cursor:
            cursor.execute("CREATE TABLE bench_plain_audit (LIKE audit_record INCLUDING ALL)")
            cursor.execute("CREATE TABLE bench_plain_copy (LIKE audit_record INCLUDING ALL)")
            cursor.execute("SELECT version()")
            pg_version = cursor.fetchone()[0].split(",")[0]
        print(f"PostgreSQL: {pg_version}; Python {platform.python_version()}; {os.cpu_count()} cores (shared)")
        n, batch, rounds = args.records, args.batch, args.rounds
        columns = [f.attname for f in PlainRecord._meta.fields]
        copy_sql = f"COPY bench_plain_copy ({', '.join(columns)}) FROM STDIN"
        best = {"chained": 0.0, "insert": 0.0, "copy": 0.0}
        print(f"\n1. batched append, {n:,} records per round in batches of {batch:,}, {rounds} rounds (best kept)")
        for round_no in range(rounds):
            # 1. batched: chained append vs plain INSERT / COPY of the same rows, interleaved per round
            batches = [make_entries(round_no * n + i, min(batch, n - i)) for i in range(0, n, batch)]
            created: list[AuditRecord] = []
            started = time.perf_counter()
            for entries in batches:
                created.extend(audit_append_many(entries=entries))
            chain_s = time.perf_counter() - started
            rows = plain_rows(created)
            started = time.perf_counter()
            for i in range(0, len(rows), batch):
                with transaction.atomic():
                    PlainRecord.objects.bulk_create(rows[i : i + batch], batch_size=batch)
            plain_s = time.perf_counter() - started
            tuples = [tuple(getattr(r, c) for c in columns) for r in created]
            started = time.perf_counter()
            for i in range(0, len(tuples), batch):
                with transaction.atomic(), connection.cursor() as cursor, cursor.cursor.copy(copy_sql) as copy:
                    for row in tuples[i : i + batch]:
                        copy.write_row(row)
            copy_s = time.perf_counter() - started
            rates = {"chained": n / chain_s, "insert": n / plain_s, "copy": n / copy_s}
            best = {k: max(best[k], v) for k, v in rates.items()}
            print(
                f"   round {round_no + 1}: chained {rates['chained']:,.0f}/s, plain INSERT {rates['insert']:,.0f}/s, "
                f"plain COPY {rates['copy']:,.0f}/s, load average {os.getloadavg()[0]:.1f}"
            )
        chain_rate, plain_rate, copy_rate = best["chained"], best["insert"], best["copy"]
        print(f"   chained (audit_append_many): {chain_rate:>10,.0f} records/s")
        print(f"   plain INSERT, same rows:     {plain_rate:>10,.0f} records/s")
        print(f"   plain COPY, same rows:       {copy_rate:>10,.0f} records/s")
        print(f"   ratio chained / plain INSERT:{chain_rate / plain_rate:>10.2f}")
        print(f"   ratio chained / plain COPY:  {chain_rate / copy_rate:>10.2f}")

        # 2. one record per transaction
        k = args.single
        singles = make_entries(rounds * n, k)
        started = time.perf_counter()
        one_by_one = []
        for entry in singles:
            with transaction.atomic():
                one_by_one.append(
                    audit_append(
                        action=entry.action,
                        object_type=entry.object_type,
                        object_id=entry.object_id,
                        occurred_at=entry.occurred_at,
                        payload=entry.payload,
                        actor=entry.actor,
                        event_id=entry.event_id,
                    )
                )
        single_chain_s = time.perf_counter() - started
        single_rows = plain_rows(one_by_one)
        started = time.perf_counter()
        for row in single_rows:
            with transaction.atomic():
                PlainRecord.objects.bulk_create([row])
        single_plain_s = time.perf_counter() - started
        print(f"\n2. one record per transaction, {k:,} records")
        print(f"   chained (audit_append):      {k / single_chain_s:>10,.0f} records/s")
        print(f"   plain one-row INSERT:        {k / single_plain_s:>10,.0f} records/s")
        print(f"   ratio chained / plain:       {single_plain_s / single_chain_s:>10.2f}")

        # 3. verification (best of two passes), against a signed checkpoint of this chain's head
        checkpoint = audit_checkpoint_create()
        report = max((audit_verify() for _ in range(2)), key=lambda r: r.rate)
        assert report.ok, report.problem
        assert report.checkpoints == 1 and report.newest_checkpoint == str(checkpoint), report.newest_checkpoint
        print(
            f"\n3. audit_verify over {report.checked:,} records: {report.rate:,.0f} records/s ({report.seconds:.2f} s)"
        )
        started = time.perf_counter()
        fetched = 0
        with connection.cursor() as cursor, cursor.cursor.copy(f"COPY ({PG_SELECT}) TO STDOUT") as copy:
            for _ in copy.rows():
                fetched += 1
        fetch_s = time.perf_counter() - started
        print(f"   baseline, streaming the same rows without hashing: {fetched / fetch_s:,.0f} records/s")

        started = time.perf_counter()
        with transaction.atomic():
            documents = search_documents_catch_up()
        docs_s = time.perf_counter() - started
        print(
            f"\n4. full-text documents (GIN) for {documents:,} records: "
            f"{documents / docs_s:,.0f} records/s ({docs_s:.2f} s)"
        )
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0, keepdb=False)


if __name__ == "__main__":
    main()
