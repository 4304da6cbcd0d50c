"""What the home page's T+1 reminder costs (``compliance.reports.selectors.transaction_days_unreported``)
over N executions on one date and N/10 on the next (``bench/report_generation.py``'s data), on
PostgreSQL, beside the one-pass query it replaced (``tests/compliance/reports/
days_unreported_oracle.py``, the definition read literally) on the same data in the same run:
both answers must agree, and the ratio old / new is printed. States, in order:

1. nothing reported yet (2 dates due);
2. the big date's run generated and validated, awaiting an officer's approval (its N records
   written with one INSERT ... SELECT, not generated): still 2 dates due, and the reading pays
   for the run's records (part 1 of the selector);
3. that run approved: 1 date due;
4. a late fill of the big date, recorded after its run: 2 dates due again.

Each state is also read as it was before the records kept their trade date (2026-12-06,
wip/t1due36: part 1 joined the records of a run awaiting sign-off to their fills;
``previous_reading`` below), so the three columns are one-pass, per date (t1due36) and per date
with the records' dates (now), on the same data in the same run.

Best of 3 each, then the plans of the new reading's statements (EXPLAIN ANALYZE) in the last
state and with the big date's run back to awaiting approval; last, what the trade-date index
costs a fill (``index_cost``), what reports 0004's index costs a run's record
(``record_index_cost``) and what its backfill takes on these records (``backfill_cost``).

    python bench/home_t1_due.py [N] [HISTORY]   # N default 1,000,000; BENCH_DATABASE_NAME: its own database

HISTORY (default 0): that many earlier trading dates of 1,000 fills each, every one reported by
its own run and accepted by the ARM: the history the old query re-read on every home page.

Its database is created here and dropped at the end.
"""

import os
import sys
import time
from io import StringIO
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))
os.environ.setdefault("BENCH_DATABASE_NAME", "test_tradeops_bench_t1_due")
import report_generation as rg  # noqa: E402  (sets the owner's DATABASE_URL)

os.environ["TEST_DATABASE_NAME"] = rg.BENCH_DB
import django  # noqa: E402

django.setup()
from datetime import timedelta  # noqa: E402

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
HISTORY = int(sys.argv[2]) if len(sys.argv) > 2 else 0  # earlier dates, each reported and accepted
PER_DAY = 1_000  # fills on each date of the history
old = connection.settings_dict["NAME"]


def insert_cost(*, table, index_like, select, what, rows=100_000):
    """What one index costs a bulk insert: INSERT ... SELECT of up to ``rows`` rows of ``table``
    (``select``: the SELECT's tail, after ``FROM table``) into a copy of it with all its indexes,
    with and without the index whose definition matches ``index_like``, alternated, best of 3 each."""
    copy = f"bench_{table}_copy"
    with connection.cursor() as c:
        c.execute(f"DROP TABLE IF EXISTS {copy}")
        c.execute(f"CREATE TABLE {copy} (LIKE {table} INCLUDING ALL)")
        c.execute("SELECT indexname FROM pg_indexes WHERE tablename = %s AND indexdef LIKE %s", [copy, index_like])
        (name,) = c.fetchone()
        c.execute("SELECT pg_get_indexdef(%s::regclass)", [name])
        (create,) = c.fetchone()
        best = {True: None, False: None}
        for _ in range(3):
            for with_index in (True, False):
                if not with_index:
                    c.execute(f"DROP INDEX {name}")
                t = time.perf_counter()
                c.execute(f"INSERT INTO {copy} SELECT * FROM {table} {select} LIMIT %s", [rows])
                ms = (time.perf_counter() - t) * 1000
                inserted = c.rowcount
                best[with_index] = ms if best[with_index] is None else min(best[with_index], ms)
                c.execute(f"TRUNCATE {copy}")
                if not with_index:
                    c.execute(create)
        c.execute(f"DROP TABLE {copy}")
    per_row = (best[True] - best[False]) * 1000 / inserted
    print(
        f"{what} index cost: {inserted:,} rows inserted with all indexes {best[True]:.0f} ms, without it"
        f" {best[False]:.0f} ms: {per_row:.2f} us a row",
        flush=True,
    )


def index_cost():
    """What the trade-date index (``execution_trade_date_recorded_idx``) costs a fill (a bulk
    insert: the order write inserts a fill or two per order)."""
    insert_cost(table="trading_execution", index_like="%AT TIME ZONE%", select="ORDER BY id", what="fill trade-date")


def record_index_cost():
    """What ``record_reported_run_date`` (reports 0004) costs a run's record write (records as a
    run writes them: reported, active, NEWT; a run writes them with COPY in batches of 5,000)."""
    insert_cost(
        table="reports_transactionrecord",
        index_like="%(run_id, trade_date)%",
        select="WHERE state = 'reported' ORDER BY id",
        what="record_reported_run_date",
    )


def backfill_cost():
    """What reports 0004 takes on the records here (the big date's run and the rest), step by
    step as it runs: the records' ``trade_date`` set NULL again with NOT NULL and the index
    dropped (as after 0003), then the migration's own ``trade_date_backfill`` (timed whole and
    per batch), NOT NULL by a validated check (``SetNotNullValidatedOnPostgres``'s statements)
    and the index built concurrently."""
    import importlib

    backfill = importlib.import_module("compliance.reports.migrations.0004_transactionrecord_trade_date_backfill")
    table, check = "reports_transactionrecord", "reports_transactionrecord_trade_date_not_null"
    with connection.cursor() as c:
        c.execute("SELECT pg_get_indexdef('record_reported_run_date'::regclass)")
        (create,) = c.fetchone()
        c.execute("DROP INDEX record_reported_run_date")
        c.execute(f"ALTER TABLE {table} ALTER COLUMN trade_date DROP NOT NULL")
        c.execute(f"UPDATE {table} SET trade_date = NULL")
        c.execute(f"VACUUM ANALYZE {table}")
        c.execute(f"SELECT count(*) FROM {table}")
        (rows,) = c.fetchone()
    with connection.cursor() as c:  # the plan of one batch
        c.execute("SELECT min(id) FROM reports_transactionrecord")
        (low,) = c.fetchone()
        sql = backfill._UPDATE.format(trade_date=backfill._TRADE_DATE["postgresql"])
        c.execute("EXPLAIN " + sql, [low, low + backfill.BATCH])
        print("-- plan of a backfill batch\n" + "\n".join(r[0] for r in c.fetchall()), flush=True)
    editor = type("Editor", (), {"connection": connection})()  # the function reads only its connection
    t = time.perf_counter()
    written = backfill.trade_date_backfill(None, editor)
    ms = (time.perf_counter() - t) * 1000
    steps = {}
    with connection.cursor() as c:
        for label, sql in (
            ("check NOT VALID", f"ALTER TABLE {table} ADD CONSTRAINT {check} CHECK (trade_date IS NOT NULL) NOT VALID"),
            ("VALIDATE", f"ALTER TABLE {table} VALIDATE CONSTRAINT {check}"),
            ("SET NOT NULL", f"ALTER TABLE {table} ALTER COLUMN trade_date SET NOT NULL"),
            ("drop check", f"ALTER TABLE {table} DROP CONSTRAINT {check}"),
            ("index CONCURRENTLY", create.replace("CREATE INDEX", "CREATE INDEX CONCURRENTLY")),
        ):
            t = time.perf_counter()
            c.execute(sql)
            steps[label] = (time.perf_counter() - t) * 1000
    batches = -(-rows // backfill.BATCH)
    print(
        f"reports 0004 on {rows:,} records: backfill {written:,} in {batches} batches of {backfill.BATCH:,}:"
        f" {ms:.0f} ms, {ms / batches:.0f} ms a batch; " + ", ".join(f"{k} {v:.0f} ms" for k, v in steps.items()),
        flush=True,
    )


def previous_reading(through):
    """``transaction_days_unreported`` as it was before reports 0004 (wip/t1due36): part 1 read
    the dates of the standing records not reported by joining them to their fills (the run
    awaiting approval: every record); part 2, unchanged, is the selector's own."""
    from datetime import UTC

    from django.db.models.functions import TruncDate

    from compliance.reports.generators.transaction import period_bounds
    from compliance.reports.models import RecordState, ReportRun, TransactionRecord
    from compliance.reports.selectors import SIGNED_OFF, _days_with_fills_unseen

    standing = TransactionRecord.objects.filter(active=True, report_status="NEWT")
    unreported = [standing.exclude(state__in=[RecordState.ACCEPTED, RecordState.REPORTED])]
    not_signed_off = list(ReportRun.objects.exclude(status__in=SIGNED_OFF).values_list("pk", flat=True))
    if not_signed_off:
        unreported.append(standing.filter(state=RecordState.REPORTED, run_id__in=not_signed_off))
    due = set()
    for records in unreported:
        due.update(
            records.filter(execution__executed_at__lt=period_bounds(through, through)[1])
            .annotate(fill_date=TruncDate("execution__executed_at", tzinfo=UTC))
            .order_by()
            .values_list("fill_date", flat=True)
            .distinct()
        )
    due |= _days_with_fills_unseen(through=through, skip=due, connection=connection)
    return len(due), min(due, default=None)


def _history():
    """HISTORY dates before the big one with PER_DAY fills each, every one reported by its own
    run and accepted by the ARM (records written with one INSERT ... SELECT per date)."""
    from compliance.reports.models import ReportRun
    from tradeops.core.clock import utcnow

    for n in range(1, HISTORY + 1):
        day = rg.DAY - timedelta(days=n)
        rg.populate(day, PER_DAY)
        run = ReportRun.objects.create(
            reference=f"BENCHHIST{n}",
            kind="transaction",
            period_start=day,
            period_end=day,
            as_of=utcnow(),
            file_format="xml",
            status="accepted",
            created_at=utcnow(),
            generated_by_label="service:bench",
        )
        with connection.cursor() as c:
            c.execute(
                "INSERT INTO reports_transactionrecord"
                " (run_id, execution_id, trn, report_status, state, active, late, reasons, trade_date)"
                " SELECT %s, id, 'T' || id, 'NEWT', 'accepted', true, false, '[]'::jsonb,"
                " (executed_at AT TIME ZONE 'UTC')::date FROM trading_execution"
                " WHERE executed_at >= %s AND executed_at < %s",
                [run.pk, day, day + timedelta(days=1)],
            )


connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
try:
    call_command("seed", stdout=StringIO())
    rg.populate(rg.DAY, N)
    rg.populate(rg.DAY + timedelta(days=1), N // 10)
    if HISTORY:
        _history()
    from django.contrib.auth import get_user_model

    from compliance.reports.models import ReportRun
    from compliance.reports.selectors import transaction_days_unreported
    from tests.compliance.reports.days_unreported_oracle import days_unreported_by_scan
    from tradeops.core.clock import utcnow

    with connection.cursor() as c:
        c.execute("ANALYZE trading_execution")
    user = get_user_model().objects.get(username="compliance")
    through = rg.DAY + timedelta(days=1)

    def best_of_3(read):
        best, result = None, None
        for _ in range(3):
            t = time.perf_counter()
            result = read()
            ms = (time.perf_counter() - t) * 1000
            best = ms if best is None else min(best, ms)
        return best, result

    def timed(label):
        old_ms, old = best_of_3(lambda: days_unreported_by_scan(through=through))
        prev_ms, prev = best_of_3(lambda: previous_reading(through))
        new_ms, found = best_of_3(lambda: transaction_days_unreported(user=user, through=through))
        new = (found.days, found.oldest)
        assert new == old == prev, f"{label}: new {new}, per date before {prev}, one-pass {old}"
        print(
            f"{label}: {new[0]} days due, oldest {new[1]}; best of 3: one-pass {old_ms:.1f} ms,"
            f" per date (t1due36) {prev_ms:.1f} ms, now {new_ms:.1f} ms; one-pass/now {old_ms / new_ms:.0f}x,"
            f" t1due36/now {prev_ms / new_ms:.1f}x",
            flush=True,
        )

    def explain(label):
        """EXPLAIN ANALYZE of each statement the new reading sends."""
        connection.force_debug_cursor = True
        connection.queries_log.clear()
        transaction_days_unreported(user=user, through=through)
        statements = [q["sql"] for q in connection.queries]
        connection.force_debug_cursor = False
        print(f"-- plans, {label}", flush=True)
        with connection.cursor() as c:
            for sql in statements:
                c.execute("EXPLAIN (ANALYZE, BUFFERS OFF, TIMING OFF) " + sql)
                print("\n".join(r[0] for r in c.fetchall()), "\n", flush=True)

    history = f" + {HISTORY} reported dates of {PER_DAY:,}" if HISTORY else ""
    timed(f"{N:,} + {N // 10:,}{history} executions, no run")
    now = utcnow()
    run = ReportRun.objects.create(
        reference="BENCHRUN1",
        kind="transaction",
        period_start=rg.DAY,
        period_end=rg.DAY,
        as_of=now,
        file_format="xml",
        status="validated",
        created_at=now,
        generated_by_label="service:bench",
    )
    with connection.cursor() as c:
        c.execute(
            "INSERT INTO reports_transactionrecord"
            " (run_id, execution_id, trn, report_status, state, active, late, reasons, trade_date)"
            " SELECT %s, id, 'T' || id, 'NEWT', 'reported', true, false, '[]'::jsonb,"
            " (executed_at AT TIME ZONE 'UTC')::date FROM trading_execution"
            " WHERE executed_at >= %s AND executed_at < %s",
            [run.pk, rg.DAY, rg.DAY + timedelta(days=1)],
        )
        c.execute("ANALYZE reports_transactionrecord; ANALYZE reports_reportrun")
    timed(f"the big date's run validated, awaiting approval ({N:,} records)")
    ReportRun.objects.filter(pk=run.pk).update(status="approved")
    timed(f"the big date reported (approved run, {N:,} records)")
    with connection.cursor() as c:  # one fill of the big date, recorded after its run: late
        c.execute(
            "INSERT INTO trading_execution (order_id, account_id, instrument_id, side, quantity, price, fee,"
            " fee_currency, venue, liquidity_provider, broker_deal_id, executed_at, recorded_at)"
            " SELECT order_id, account_id, instrument_id, side, quantity, price, fee, fee_currency, venue,"
            " liquidity_provider, 'LATE-1', executed_at, %s FROM trading_execution ORDER BY id LIMIT 1",
            [now + timedelta(hours=1)],
        )
    timed("plus a late fill of the big date, recorded after its run")
    explain("a late fill of the reported big date")
    ReportRun.objects.filter(pk=run.pk).update(status="validated")
    explain("the big date's run awaiting approval (and the late fill)")
    index_cost()
    record_index_cost()
    backfill_cost()
finally:
    connection.close()
    connection.creation.destroy_test_db(old, verbosity=0)
