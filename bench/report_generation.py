"""RTS 22 transaction report for a million executions in PostgreSQL: seconds and peak memory,
beside a plain ``COPY ... TO`` of the same rows measured in the same run.

    python bench/report_generation.py [--executions 1000000] [--small 100000] [--keep] [--best-execution]

Data: its own database (``tradeops_bench_reports``, or ``BENCH_DATABASE_NAME``; created here,
dropped at the end unless ``--keep``, reused when kept), seeded like the demo (``manage.py
seed``: the firm, the instruments and their reporting profiles), then ``--executions`` fills on
one trading date and ``--small`` on the next (10 fills per order; EURUSD, GBPUSD, USDJPY, US500
and XAUUSD; two algorithms; each fill with the quote its order arrived on, the mid and the touch
half a typical spread either side of it, as the execution worker keeps them since trading 0009),
written with ``INSERT ... SELECT generate_series`` (not timed).

Each measurement runs in its own process so its peak memory (``VmHWM``) is its own; "RSS
growth" is the peak minus the process's resident memory after Django started, i.e. what the
step itself added. Per trading date:

1. baseline: ``COPY (SELECT <the report's columns> FROM execution JOIN order WHERE <the
   day> ORDER BY id) TO STDOUT`` streamed to a file (psycopg), i.e. reading the same rows in
   the same order with no work on them;
2. XML run: ``report_run_generate`` (stream with a server-side cursor, build and check each
   record, XSD-validate each chunk of 500 ``Tx``, write the head.003 envelope, COPY the
   ``TransactionRecord`` rows, SHA-256) then ``report_run_validate`` (SHA-256 of the stored file
   and a second, whole-file streaming XSD validation: ``iterparse(schema=...)``);
3. CSV run: the same with the CSV writer;
4. with ``--best-execution``, the best-execution report run of the date (MiFID II Art. 27:
   each fill measured against the ask or bid its order arrived on; generate, then validate),
   with how many fills it measured against the touch and how many against the mid.

Memory is flat in the number of executions when the RSS growth of the 1M day is about that of
the small day. Needs MIGRATE_DATABASE_URL (default: the owner role of the local PostgreSQL
of scripts/services.sh).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradeops.settings.local")
# It creates, fills and empties its own database: the owner's rights (docs/security.md); the
# steps run as that role too (the runtime role has the same rights on these tables, minus
# TRUNCATE, which only the bench's between-step cleanup uses).
os.environ.setdefault("MIGRATE_DATABASE_URL", "postgres://tradeops_owner:tradeops_owner@127.0.0.1:5432/tradeops")
os.environ["DATABASE_URL"] = os.environ["MIGRATE_DATABASE_URL"]
os.environ.setdefault("DEBUG", "False")
BENCH_DB = os.environ.get("BENCH_DATABASE_NAME", "tradeops_bench_reports")  # two benches at once: one each
NO_DEEP = False
DAY = date(2026, 3, 2)
ALGOS = ("ml-ensemble-v1", "momentum-v2")
SYMBOLS = ("EURUSD", "GBPUSD", "USDJPY", "US500", "XAUUSD")
PRICES = {"EURUSD": "1.1", "GBPUSD": "1.3", "USDJPY": "150", "US500": "5000", "XAUUSD": "2300"}
# Half the spread quoted when each order arrived: the touch (arrival_bid / arrival_ask, kept since
# trading 0009) lies this far either side of the arrival mid, so bid + ask = 2 x mid exactly.
HALF_SPREADS = {"EURUSD": "0.00001", "GBPUSD": "0.00002", "USDJPY": "0.002", "US500": "0.25", "XAUUSD": "0.15"}


def children_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def peak_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not inherited across exec)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


# ---------------------------------------------------------------- data (parent process)


def _insert_select(model, n: int, exprs: dict[str, str]) -> str:
    """INSERT ... SELECT over generate_series(1, n) AS g(i): the given SQL expressions, and a
    neutral value for every other column (so new columns added to the model do not break it)."""
    from django.db import models

    columns, values = [], []
    for f in model._meta.concrete_fields:
        if f.primary_key and f.attname not in exprs:
            continue
        columns.append(f.column)
        if f.attname in exprs:
            values.append(exprs[f.attname])
        elif f.null:
            values.append("NULL")
        elif isinstance(f, models.DateTimeField):
            values.append("now()")
        elif isinstance(f, (models.DecimalField, models.IntegerField, models.FloatField)):
            values.append("0")
        elif isinstance(f, models.BooleanField):
            values.append("false")
        elif isinstance(f, models.JSONField):
            values.append("'{}'::jsonb")
        else:
            values.append("''")
    return (
        f"INSERT INTO {model._meta.db_table} ({', '.join(columns)}) "
        f"SELECT {', '.join(values)} FROM generate_series(1, {n}) AS g(i)"
    )


def populate(day: date, n: int) -> None:
    """``n`` fills on ``day`` (UTC), 10 per order, spread over the day."""
    from django.db import connection

    from trading.models import Execution, Instrument, Order, TradingAccount

    if Execution.objects.filter(executed_at__date=day).exists():
        return
    account = TradingAccount.objects.order_by("pk").first()
    instruments = {i.symbol: i.pk for i in Instrument.objects.filter(symbol__in=SYMBOLS)}
    ids = "ARRAY[" + ",".join(str(instruments[s]) for s in SYMBOLS) + "]"
    prices = "ARRAY[" + ",".join(PRICES[s] for s in SYMBOLS) + "]::numeric[]"
    halves = "ARRAY[" + ",".join(HALF_SPREADS[s] for s in SYMBOLS) + "]::numeric[]"
    orders = n // 10
    start = f"timestamptz '{day.isoformat()} 00:00:00+00'"
    step = 86400.0 / n
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(max(id), 0) FROM trading_order")
        base = cursor.fetchone()[0]
        order_sql = _insert_select(
            Order,
            orders,
            {
                "id": f"{base} + i",
                "client_order_id": f"'bench-{day:%Y%m%d}-' || i",
                "account_id": str(account.pk),
                "instrument_id": f"({ids})[1 + (i % 5)]",
                "side": "CASE WHEN i % 2 = 0 THEN 'BUY' ELSE 'SELL' END",
                "order_type": "'MARKET'",
                "quantity": "10",
                "time_in_force": "'GTC'",
                "algo_id": f"CASE WHEN i % 3 = 0 THEN '{ALGOS[0]}' ELSE '{ALGOS[1]}' END",
                "status": "'FILLED'",
                "created_at": f"{start} + make_interval(secs => (i - 1) * 10 * {step})",
                "updated_at": f"{start} + make_interval(secs => (i - 1) * 10 * {step})",
            },
        )
        cursor.execute(order_sql)
        cursor.execute(f"SELECT setval(pg_get_serial_sequence('trading_order', 'id'), {base + orders})")
        k = f"({base} + 1 + (i - 1) / 10)"  # the fill's order
        execution_sql = _insert_select(
            Execution,
            n,
            {
                "order_id": k,
                "account_id": str(account.pk),
                "instrument_id": f"({ids})[1 + ({k} - {base}) % 5]",
                "side": f"CASE WHEN ({k} - {base}) % 2 = 0 THEN 'BUY' ELSE 'SELL' END",
                "quantity": "round((1 + i % 100) / 100.0, 2)",
                "price": f"round(({prices})[1 + ({k} - {base}) % 5] * (1 + (i % 997) / 100000.0), 5)",
                "fee_currency": "'USD'",
                "venue": "'XOFF'",
                "broker_deal_id": f"'D{day:%Y%m%d}-' || i",
                "arrival_mid": f"round(({prices})[1 + ({k} - {base}) % 5], 5)",
                "arrival_bid": f"round(({prices})[1 + ({k} - {base}) % 5], 5) - ({halves})[1 + ({k} - {base}) % 5]",
                "arrival_ask": f"round(({prices})[1 + ({k} - {base}) % 5], 5) + ({halves})[1 + ({k} - {base}) % 5]",
                "executed_at": f"{start} + make_interval(secs => (i - 1) * {step})",
                "recorded_at": f"{start} + make_interval(secs => (i - 1) * {step} + 0.02)",
            },
        )
        cursor.execute(execution_sql)
        cursor.execute("ANALYZE trading_execution; ANALYZE trading_order")


# ---------------------------------------------------------------- steps (child processes)

COPY_SQL = """
COPY (SELECT e.id, e.account_id, e.instrument_id, e.side, e.quantity, e.price, e.venue, e.broker_deal_id,
             e.executed_at, o.algo_id, o.trader_id
      FROM trading_execution e JOIN trading_order o ON o.id = e.order_id
      WHERE e.executed_at >= %s AND e.executed_at < %s ORDER BY e.id) TO STDOUT
"""


def step_copy(day: date) -> dict:
    from django.db import connection

    from compliance.reports.generators.transaction import period_bounds

    lo, hi = period_bounds(day, day)
    size = 0
    with tempfile.NamedTemporaryFile(dir=os.environ.get("BENCH_TMP")) as out:
        started, cpu = time.perf_counter(), time.process_time()
        with connection.cursor() as cursor, cursor.cursor.copy(COPY_SQL, (lo, hi)) as copy:
            for block in copy:
                out.write(block)
                size += len(block)
        out.flush()
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "cpu_seconds": time.process_time() - cpu, "bytes": size}


def _clear_reports() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE reports_transactionrecord, reports_reportrun CASCADE")


def step_run(day: date, file_format: str, *, deep: bool = True) -> dict:
    from compliance.reports.services import report_run_create, report_run_generate, report_run_validate

    _clear_reports()
    run = report_run_create(
        kind="transaction", period_start=day, period_end=day, actor="service:bench", file_format=file_format
    )
    started, cpu, child_cpu = time.perf_counter(), time.process_time(), children_cpu()
    run = report_run_generate(run=run)
    generate, generate_cpu = time.perf_counter() - started, time.process_time() - cpu
    validator_cpu = children_cpu() - child_cpu  # the XSD validator process (XML)
    peak_generate = peak_mb()
    started = time.perf_counter()
    run = report_run_validate(run=run, deep=deep)  # the whole-file XSD pass too, whatever the size
    validate = time.perf_counter() - started
    return {
        "seconds": generate,
        "cpu_seconds": generate_cpu,
        "validator_cpu_seconds": validator_cpu,
        "validate_seconds": validate,
        "peak_generate_mb": peak_generate,
        "records": run.record_count,
        "held_back": run.held_back_count,
        "status": run.status,
        "bytes": run.size_bytes,
        "errors": run.errors[-1:] if run.errors else [],
        "xsd": run.summary.get("xsd", {}),
    }


def step_best_execution(day: date) -> dict:
    """The MiFID II Art. 27 best-execution report of the day: every fill measured against the
    touch its order arrived on (ask to buy, bid to sell), the mid only for a fill without it."""
    import csv
    import io

    from compliance.reports.services import report_run_create, report_run_generate, report_run_validate

    _clear_reports()
    run = report_run_create(kind="best_execution", period_start=day, period_end=day, actor="service:bench")
    started, cpu = time.perf_counter(), time.process_time()
    run = report_run_generate(run=run)
    generate, generate_cpu = time.perf_counter() - started, time.process_time() - cpu
    started = time.perf_counter()
    run = report_run_validate(run=run)
    validate = time.perf_counter() - started
    measured: dict[str, int] = {}
    with run.file.open("rb") as fh:
        for row in csv.DictReader(io.TextIOWrapper(fh, encoding="utf-8")):
            measured[row["reference"] or "none"] = measured.get(row["reference"] or "none", 0) + int(
                row["with_reference"]
            )
    return {
        "seconds": generate,
        "cpu_seconds": generate_cpu,
        "validate_seconds": validate,
        "records": run.record_count,
        "held_back": run.held_back_count,
        "status": run.status,
        "bytes": run.size_bytes,
        "errors": run.errors[-1:] if run.errors else [],
        "fills": run.summary.get("fills"),
        "measured_against": measured,
    }


def child(step: str, day: date) -> None:
    import django

    django.setup()
    start_rss = rss_mb()
    if step == "copy":
        result = step_copy(day)
    elif step == "best-ex":
        result = step_best_execution(day)
    elif step == "xml-full":  # REPORTING_XSD_CHECK=full set by the parent; same bytes, no second deep pass
        result = step_run(day, "xml", deep=False)
    else:
        result = step_run(day, step, deep=os.environ.get("BENCH_DEEP", "1") == "1")
    result.update({"peak_mb": peak_mb(), "start_rss_mb": start_rss})
    print("RESULT " + json.dumps(result))


# ---------------------------------------------------------------- parent


def measure(step: str, day: date, db_url: str) -> dict:
    env = {**os.environ, "DATABASE_URL": db_url, "MIGRATE_DATABASE_URL": db_url}  # the bench database
    env["REPORTING_XSD_CHECK"] = "full" if step == "xml-full" else env.get("REPORTING_XSD_CHECK", "fields")
    env["BENCH_DEEP"] = "0" if NO_DEEP else "1"
    proc = subprocess.run(
        [sys.executable, __file__, "--child", step, "--day", day.isoformat()],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"step {step} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--executions", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=100_000)
    parser.add_argument("--keep", action="store_true", help="keep (and reuse) the bench database")
    parser.add_argument(
        "--compare-full",
        action="store_true",
        help="also the XML run with REPORTING_XSD_CHECK=full (libxml2 on every chunk; no second deep pass)",
    )
    parser.add_argument(
        "--no-deep",
        action="store_true",
        help="skip the second whole-file XSD pass of the validate step (minutes at 1M)",
    )
    parser.add_argument("--skip-small", action="store_true", help="measure the big trading date only")
    parser.add_argument(
        "--best-execution",
        action="store_true",
        help="also the best-execution report run of each date (fills measured against the arrival touch)",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--day", help=argparse.SUPPRESS)
    args = parser.parse_args()
    global NO_DEEP
    NO_DEEP = args.no_deep
    if args.child:
        child(args.child, date.fromisoformat(args.day))
        return

    os.environ["TEST_DATABASE_NAME"] = BENCH_DB
    import django

    django.setup()
    from io import StringIO

    from django.core.management import call_command
    from django.db import connection

    settings_db = connection.settings_dict
    old_name = settings_db["NAME"]
    started = time.perf_counter()
    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=args.keep)
    try:
        call_command("seed", stdout=StringIO())
        big_day, small_day = DAY, DAY + timedelta(days=1)
        populate(big_day, args.executions)
        populate(small_day, args.small)
        connection.close()
        user, password = settings_db["USER"], settings_db["PASSWORD"]
        db_url = f"postgres://{user}:{password}@{settings_db['HOST']}:{settings_db['PORT']}/{BENCH_DB}"
        print(
            f"machine: {platform.machine()}, {os.cpu_count()} CPUs (shared with other work), "
            f"Python {platform.python_version()}; data ready in {time.perf_counter() - started:.0f} s; "
            f"load average {os.getloadavg()[0]:.1f}"
        )
        rows = []
        days = ((small_day, args.small), (big_day, args.executions))
        for day, n in days[1:] if args.skip_small else days:
            extra = (("xml-full",) if args.compare_full else ()) + (("best-ex",) if args.best_execution else ())
            for step in ("copy", "xml", "csv", *extra):
                result = measure(step, day, db_url)
                growth = result["peak_mb"] - result["start_rss_mb"]
                label = {
                    "copy": "baseline COPY ... TO",
                    "xml": "XML run",
                    "csv": "CSV run",
                    "xml-full": "XML run, check=full",
                    "best-ex": "best-execution run",
                }[step]
                if step == "copy":
                    copy_seconds = result["seconds"]
                ratio = f"{result['seconds'] / copy_seconds:5.1f}x COPY" if step != "copy" else " " * 10
                line = (
                    f"[load {os.getloadavg()[0]:4.1f}] {n:>9,} executions  {label:<22} {result['seconds']:7.1f} s "
                    f"{ratio}  {n / result['seconds']:>9,.0f}/s  (CPU {result['cpu_seconds']:6.1f} s)  "
                    f"peak RSS {result['peak_mb']:6.0f} MB "
                    f"(+{growth:5.0f} MB)  file {result['bytes'] / 1e6:7.1f} MB"
                )
                if step.startswith("xml"):
                    line += f"  | XSD validator process CPU {result['validator_cpu_seconds']:5.1f} s {result['xsd']}"
                if step != "copy":
                    line += (
                        f"  | validate {result['validate_seconds']:6.1f} s  records {result['records']:,} "
                        f"held back {result['held_back']} -> {result['status']}"
                    )
                if step == "best-ex":
                    line += f"  | {result['fills']:,} fills measured against {result['measured_against']}"
                print(line, flush=True)
                rows.append({"executions": n, "step": step, **result})
        print(json.dumps(rows))
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0, keepdb=args.keep)


if __name__ == "__main__":
    main()
