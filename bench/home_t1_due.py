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

Best of 3 each, then the plans of the new reading's statements (EXPLAIN ANALYZE) in the last
state and with the big date's run back to awaiting approval; last, what the trade-date index
costs a fill (``index_cost``).

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


def index_cost(rows=100_000):
    """What the trade-date index costs a fill: INSERT ... SELECT of ``rows`` fills into a copy of
    trading_execution with all its indexes, with and without execution_trade_date_recorded_idx,
    alternated, best of 3 each (a bulk insert: the order write inserts a fill or two per order)."""
    with connection.cursor() as c:
        c.execute("DROP TABLE IF EXISTS bench_execution_copy")
        c.execute("CREATE TABLE bench_execution_copy (LIKE trading_execution INCLUDING ALL)")
        c.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'bench_execution_copy'"
            " AND indexdef LIKE '%%AT TIME ZONE%%'"
        )
        (name,) = c.fetchone()
        c.execute("SELECT pg_get_indexdef(%s::regclass)", [name])
        (create,) = c.fetchone()
        best = {True: None, False: None}
        for _ in range(3):
            for with_index in (True, False):
                if not with_index:
                    c.execute(f"DROP INDEX {name}")
                t = time.perf_counter()
                c.execute(
                    "INSERT INTO bench_execution_copy SELECT * FROM trading_execution ORDER BY id LIMIT %s", [rows]
                )
                ms = (time.perf_counter() - t) * 1000
                best[with_index] = ms if best[with_index] is None else min(best[with_index], ms)
                c.execute("TRUNCATE bench_execution_copy")
                if not with_index:
                    c.execute(create)
        c.execute("DROP TABLE bench_execution_copy")
    per_row = (best[True] - best[False]) * 1000 / rows
    print(
        f"index cost: {rows:,} fills inserted with all indexes {best[True]:.0f} ms, without the trade-date index"
        f" {best[False]:.0f} ms: {per_row:.2f} us a fill",
        flush=True,
    )


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
                " (run_id, execution_id, trn, report_status, state, active, late, reasons)"
                " SELECT %s, id, 'T' || id, 'NEWT', 'accepted', true, false, '[]'::jsonb FROM trading_execution"
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
        new_ms, found = best_of_3(lambda: transaction_days_unreported(user=user, through=through))
        new = (found.days, found.oldest)
        assert new == old, f"{label}: new {new} != old {old}"
        print(
            f"{label}: {new[0]} days due, oldest {new[1]}; best of 3: old {old_ms:.1f} ms, new {new_ms:.1f} ms,"
            f" old/new {old_ms / new_ms:.0f}x",
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
            " (run_id, execution_id, trn, report_status, state, active, late, reasons)"
            " SELECT %s, id, 'T' || id, 'NEWT', 'reported', true, false, '[]'::jsonb FROM trading_execution"
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
finally:
    connection.close()
    connection.creation.destroy_test_db(old, verbosity=0)
