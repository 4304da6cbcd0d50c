"""What the home page's T+1 reminder costs (``compliance.reports.selectors.transaction_days_unreported``)
over N executions on one date and N/10 on the next (``bench/report_generation.py``'s data), on
PostgreSQL: nothing reported yet, then the big date reported by an approved run (its records
written with one INSERT ... SELECT, not generated). Best of 3 each, then the plan.

    python bench/home_t1_due.py [N]   # default 1,000,000; BENCH_DATABASE_NAME: its own database

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
old = connection.settings_dict["NAME"]
connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
try:
    call_command("seed", stdout=StringIO())
    rg.populate(rg.DAY, N)
    rg.populate(rg.DAY + timedelta(days=1), N // 10)
    from django.contrib.auth import get_user_model

    from compliance.reports.models import ReportRun
    from compliance.reports.selectors import transaction_days_unreported
    from tradeops.core.clock import utcnow

    user = get_user_model().objects.get(username="compliance")
    through = rg.DAY + timedelta(days=1)

    def timed(label):
        best = None
        for _ in range(3):
            t = time.perf_counter()
            r = transaction_days_unreported(user=user, through=through)
            ms = (time.perf_counter() - t) * 1000
            best = ms if best is None else min(best, ms)
        print(f"{label}: {r.days} days due, oldest {r.oldest}; best of 3 {best:.0f} ms", flush=True)

    timed(f"{N:,} + {N // 10:,} executions, no run")
    now = utcnow()
    run = ReportRun.objects.create(
        reference="BENCHRUN1",
        kind="transaction",
        period_start=rg.DAY,
        period_end=rg.DAY,
        as_of=now,
        file_format="xml",
        status="approved",
        created_at=now,
        generated_by_label="service:bench",
    )
    with connection.cursor() as c:
        c.execute(
            "INSERT INTO reports_transactionrecord"
            " (run_id, execution_id, trn, report_status, state, active, late, reasons)"
            " SELECT %s, id, 'T' || id, 'NEWT', 'reported', true, false, '[]'::jsonb FROM trading_execution"
            " WHERE executed_at < %s",
            [run.pk, rg.DAY + timedelta(days=1)],
        )
        c.execute("ANALYZE reports_transactionrecord; ANALYZE reports_reportrun")
    timed(f"the big date reported (approved run, {N:,} records)")
    connection.force_debug_cursor = True
    transaction_days_unreported(user=user, through=through)
    q = connection.queries[-1]["sql"]
    with connection.cursor() as c:
        c.execute("EXPLAIN (ANALYZE, BUFFERS OFF, TIMING OFF) " + q)
        print("\n".join(r[0] for r in c.fetchall()))
finally:
    connection.close()
    connection.creation.destroy_test_db(old, verbosity=0)
