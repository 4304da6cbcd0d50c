"""The outbox relay's wake-up on PostgreSQL: what the NOTIFY trigger costs a writer, and what it
saves the relay, each beside its same-run baseline.

    python bench/outbox_notify.py [--transactions 2000] [--rows 6] [--block 200] [--waits 200]

1. Writer cost: transactions of ``--rows`` outbox rows each (``outbox_append_many`` in
   ``transaction.atomic``, what an order's write appends), timed from BEGIN to the end of COMMIT,
   with the ``outbox_notify`` trigger (statement-level AFTER INSERT, ``pg_notify`` at commit;
   pgtrigger's ignore check included) enabled, beside the same transactions with the trigger
   disabled (``ALTER TABLE outbox DISABLE TRIGGER``), interleaved in blocks of ``--block`` so both
   see the same minutes. A listening connection drains the notifications meanwhile, as the relay
   process does.
2. Relay wake-up: from a writer sending COMMIT to the relay reading the row (woken, then one
   ``SELECT max(id)`` as the relay's read after waking), over
   ``--waits`` single-row transactions spaced at random (0-0.3 s): ``OutboxListener.wait``
   (LISTEN) beside the loop it replaced, a look (``SELECT max(id)``) every 0.2 s.

Runs in a throwaway database (``test_tradeops_bench_notify``, created, migrated and dropped here
by the owner role, ``MIGRATE_DATABASE_URL``; the writes run as the owner too, who may disable a
trigger). Needs DATABASE_URL (default: the local PostgreSQL of scripts/services.sh).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradeops.settings.local")
os.environ.setdefault("DATABASE_URL", "postgres://tradeops:tradeops@127.0.0.1:5432/tradeops")
os.environ.setdefault("MIGRATE_DATABASE_URL", "postgres://tradeops_owner:tradeops_owner@127.0.0.1:5432/tradeops")
os.environ["TEST_DATABASE_NAME"] = "test_tradeops_bench_notify"

import django

django.setup()

import psycopg  # noqa: E402
from django.db import connection, transaction  # noqa: E402

from bench.outbox_relay import order_events  # noqa: E402  (after setup: its environment defaults come too late to matter)
from tradeops.core.db_roles import database_owner  # noqa: E402
from tradeops.outbox.models import Outbox  # noqa: E402
from tradeops.outbox.relay import NOTIFY_CHANNEL, OutboxListener, plain_connection_params  # noqa: E402
from tradeops.outbox.services import outbox_append_many  # noqa: E402


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def line(label: str, samples: list[float]) -> str:
    ms = [s * 1e3 for s in samples]
    return (
        f"{label:<34} n={len(ms):>5}  p50 {pct(ms, 0.5):6.3f} ms  p99 {pct(ms, 0.99):7.3f} ms  "
        f"mean {statistics.fmean(ms):6.3f} ms"
    )


def writer_cost(args, pgid: str, table: str) -> tuple[list[float], list[float], int]:
    """Per-transaction wall time with the trigger on and off, interleaved by block."""
    params = plain_connection_params()
    got = [0]
    stop = threading.Event()

    def drain() -> None:  # the relay's listening connection, consuming every notification
        with psycopg.connect(**params, autocommit=True) as conn:
            conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
            while not stop.is_set():
                got[0] += sum(1 for _ in conn.notifies(timeout=0.2))

    listener = threading.Thread(target=drain, daemon=True)
    listener.start()
    on: list[float] = []
    off: list[float] = []
    events = order_events(args.transactions * 2 * args.rows + args.rows * 50)
    cursor_at = 0

    def run(samples: list[float], n: int) -> None:
        nonlocal cursor_at
        for _ in range(n):
            batch = events[cursor_at : cursor_at + args.rows]
            cursor_at += args.rows
            started = time.perf_counter()
            with transaction.atomic():
                outbox_append_many(events=batch)
            samples.append(time.perf_counter() - started)

    def trigger(enabled: bool) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {table} {'ENABLE' if enabled else 'DISABLE'} TRIGGER {pgid}")

    run([], 50)  # warm up
    done = 0
    while done < args.transactions:
        block = min(args.block, args.transactions - done)
        trigger(True)
        run(on, block)
        trigger(False)
        run(off, block)
        done += block
    trigger(True)
    time.sleep(0.5)
    stop.set()
    listener.join(timeout=5)
    return on, off, got[0]


def wake_up(args) -> tuple[list[float], list[float]]:
    """Commit -> noticed, by LISTEN (OutboxListener) and by a look every 0.2 s, watching the same commits."""
    committed: dict[int, float] = {}
    listen_seen: list[float] = []
    poll_seen: list[float] = []
    stop = threading.Event()
    listener = OutboxListener()
    listener.wait(0.01)  # connected and listening before the first write
    params = plain_connection_params()

    newest_sql = f"SELECT coalesce(max(id), 0) FROM {Outbox._meta.db_table}"

    def seen(conn, last: int, into: list[float]) -> int:
        """Read the table as the relay would after waking; note each row it now sees."""
        newest = conn.execute(newest_sql).fetchone()[0]
        now = time.perf_counter()
        for n in sorted(k for k in list(committed) if last < k <= newest):
            into.append(now - committed[n])
            last = n
        return last

    def by_listen() -> None:
        last = 0
        with psycopg.connect(**params, autocommit=True) as conn:
            while not stop.is_set():
                if listener.wait(0.5):
                    last = seen(conn, last, listen_seen)

    def by_poll() -> None:
        last = 0
        with psycopg.connect(**params, autocommit=True) as conn:
            while not stop.is_set():
                last = seen(conn, last, poll_seen)
                time.sleep(0.2)

    threads = [threading.Thread(target=by_listen, daemon=True), threading.Thread(target=by_poll, daemon=True)]
    for t in threads:
        t.start()
    rng = random.Random(7)  # spacing, not security
    for event in order_events(args.waits):
        with transaction.atomic():
            outbox_append_many(events=[event])
            row_id = Outbox.objects.order_by("-id").values_list("id", flat=True).first()
            committed[row_id] = time.perf_counter()  # COMMIT is sent next: the clock starts here
        time.sleep(rng.uniform(0, 0.3))
    time.sleep(0.6)
    stop.set()
    for t in threads:
        t.join(timeout=5)
    listener.close()
    return listen_seen, poll_seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--transactions", type=int, default=2000, help="per variant")
    parser.add_argument("--rows", type=int, default=6, help="outbox rows per transaction")
    parser.add_argument("--block", type=int, default=200)
    parser.add_argument("--waits", type=int, default=200)
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("outbox_notify needs PostgreSQL: set DATABASE_URL")
    old_name = connection.settings_dict["NAME"]
    trigger = Outbox._meta.triggers[0]
    pgid, table = trigger.get_pgid(Outbox), Outbox._meta.db_table
    with database_owner():
        connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT current_setting('server_version'), inet_server_port()")
                version, port = cursor.fetchone()
            print(
                f"PostgreSQL {version} on {connection.settings_dict['HOST']}:{port}; Python "
                f"{platform.python_version()}; {os.cpu_count()} CPUs (shared), load {os.getloadavg()[0]:.1f}"
            )
            on, off, notified = writer_cost(args, pgid, table)
            print(f"\n1. writer: {args.rows} outbox rows per transaction, BEGIN..COMMIT, blocks of {args.block}")
            print(line("   trigger on (NOTIFY at commit)", on))
            print(line("   baseline: trigger disabled", off))
            print(
                f"   ratio on / off: p50 {pct(on, 0.5) / pct(off, 0.5):.2f}x, "
                f"p99 {pct(on, 0.99) / pct(off, 0.99):.2f}x; "
                f"notifications received by the listener: {notified:,} (one per transaction with the trigger on)"
            )
            listen, poll = wake_up(args)
            print(f"\n2. relay wake-up, commit -> noticed, {args.waits} single-row commits 0-0.3 s apart")
            print(line("   LISTEN (OutboxListener.wait)", listen))
            print(line("   baseline: a look every 0.2 s", poll))
            print(
                f"   ratio poll / LISTEN: p50 {pct(poll, 0.5) / pct(listen, 0.5):.0f}x; load {os.getloadavg()[0]:.1f}"
            )
        finally:
            connection.creation.destroy_test_db(old_name, verbosity=0, keepdb=False)


if __name__ == "__main__":
    main()
