"""The server's cost of one order's statement, item by item (issue 12: the server floor).

    BENCH_DATABASE_NAME=test_<name>_items python bench/order_statement_items.py [--rounds 6] [--calls 100]

``bench/order_path.py`` measures the order's whole statement (``trading_order_write``) and the
deferred triggers fired at commit as one figure, the "server floor". This script takes it apart,
in a throwaway database built like that bench's (same world, worker, paper broker, orders):

1. Steps inside the function: a copy of the database's own ``trading_order_write`` (read back
   with ``pg_get_functiondef``, so main's and a branch's are both measured as they are) with a
   ``clock_timestamp()`` taken at each of its numbered steps, as ``bench_order_write_timed``:
   the order row, the fills, the positions, the risk snapshot, the outbox rows, the chain head's
   lock, the audit hashes, the audit rows, the head's update. Each step's time includes its
   index maintenance and its immediate row triggers.
2. Each trigger and each group of indexes, by taking it away: the statement replayed (the order
   really written, rolled back, as ``order_path.bench_statement_alone``) with every trigger and
   index in place, and in the same rounds with one item taken away by the owner in this
   throwaway database only: a trigger disabled (``ALTER TABLE ... DISABLE TRIGGER``); a table's
   foreign keys dropped (their checks are PostgreSQL's internal triggers, which only a superuser
   may disable; they are added back, validated, after the block); a table's secondary indexes
   dropped (re-created after the block). The item's cost is the median with it less the median
   without, for the statement and for ``SET CONSTRAINTS ALL IMMEDIATE`` (the deferred triggers
   that would fire at commit).
3. ``EXPLAIN (ANALYZE, BUFFERS)`` of one statement: the pages it touches and dirties.

The runtime role runs the statements (as the application); the owner changes the schema, between
blocks. Not measured: the commit itself (the WAL flush; the bench's INSERT+COMMIT baseline is
one) and the NOTIFY's delivery at commit (``bench/outbox_notify.py``). Rolled back each time,
so the tables do not grow; the database is dropped at the end. Track_functions and auto_explain
need a superuser, which the bench roles are not.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import order_path as op  # sets up Django with the bench database's name (BENCH_DATABASE_NAME)
import orjson
import psycopg
from django.db import connection, transaction

from tradeops.bus.runner import settle_heap
from tradeops.core.db_roles import database_owner, runtime_grants_apply
from tradeops.core.pgpipeline import bytea_array_register
from trading.orders import write as order_write

TABLES = (
    "trading_order",
    "trading_execution",
    "trading_position",
    "trading_accountrisksnapshot",
    "outbox",
    "audit_record",
    "audit_chain_head",
)

# (marker in the function's text, the step that starts there)
ONE_ROW_SQL = "SELECT bench_order_write_one_outbox(%s::jsonb, %b::bytea[])"

STEPS = (
    ("-- 1.", "1 order row"),
    ("-- 2.", "2 fills"),
    ("-- 3.", "3 positions"),
    ("-- 4.", "4 risk snapshot"),
    ("-- 5.", "5 outbox rows"),
    ("-- 6.", "6a chain head locked"),
    ("now_ts := clock_timestamp();", "6b audit hashes"),
    ("-- one INSERT for the records", "6c audit rows"),
    ("UPDATE audit_chain_head SET", "6d chain head moved"),
)


def timed_function(definition: str, name: str = "bench_order_write_timed") -> tuple[str, list[str]]:
    """``trading_order_write``'s definition (or a variant's, below) as ``name``, a clock read
    before each step found; the answer carries them as ``ts``. Returns the SQL and the steps' names."""
    sql = re.sub(r"FUNCTION public\.\w+\(", f"FUNCTION public.{name}(", definition, count=1)
    sql = sql.replace("DECLARE\n", "DECLARE\n    ts timestamptz[] := '{}';\n", 1)
    names = []
    for marker, name in STEPS:
        if sql.count(marker) < 1:
            continue
        index = sql.index(marker)
        line = sql.rindex("\n", 0, index) + 1
        indent = sql[line:index]
        sql = sql[:index] + "ts := ts || clock_timestamp();\n" + indent + sql[index:]
        names.append(name)
    end = "RETURN json_build_object('written', true,"
    if sql.count(end) != 1:
        raise SystemExit("the function's final RETURN was not found")
    sql = sql.replace(end, "ts := ts || clock_timestamp();\n    RETURN json_build_object('ts', ts, 'written', true,")
    return sql, names


ONE_OUTBOX_ROW = r"""
    -- 5. (bench) ONE outbox row carrying every message, joined by newlines: what one row per
    -- transaction would cost the statement against one row per event
    IF coalesce(jsonb_array_length(w->'outbox'), 0) > 0 THEN
        INSERT INTO outbox (event_id, topic, key, event_type, version, occurred_at, traceparent, message,
                            created_at, attempts, last_error)
        SELECT r.event_id, r.topic, r.key, r.event_type, r.version, r.occurred_at, r.traceparent,
               (SELECT string_agg(m, '\x0a'::bytea ORDER BY u.i) FROM unnest(messages) WITH ORDINALITY AS u(m, i)),
               r.created_at, r.attempts, r.last_error
          FROM jsonb_populate_record(NULL::outbox, (w->'outbox'->0) - 'message') AS r;
    END IF;

"""


def one_outbox_row_function(definition: str) -> str:
    """``trading_order_write`` (trading 0008's, messages apart) as ``bench_order_write_one_outbox``:
    step 5 writes ONE outbox row whose message is every message of the order (the first row's
    other columns), the other steps as they are. For measurement only: no relay reads it."""
    sql = re.sub(r"FUNCTION public\.\w+\(", "FUNCTION public.bench_order_write_one_outbox(", definition, count=1)
    start, end = sql.index("    -- 5."), sql.index("    -- 6.")
    return sql[:start] + ONE_OUTBOX_ROW + sql[end:]


def messages_inside(params: list) -> list:
    """The same statement as the writer sent it before trading 0008: each message inside its
    outbox row in the jsonb, as text; no messages apart."""
    text, messages = params
    w = orjson.loads(text)
    for row, message in zip(w["outbox"], messages, strict=True):
        row["message"] = message.decode()
    return [orjson.dumps(w).decode(), None]


def server_binding(conn) -> None:
    """Every replay below goes through a server-binding ``psycopg.Cursor`` (parameters apart from
    the SQL, the messages in binary as ``Batch`` sends them); Django's own cursor binds on the
    client (the 17 KB jsonb quoted into the SQL text). Until 2026-12-05 (wip/ord16) the replays
    went through Django's."""
    bytea_array_register(conn)


def rows_written(conn, sql: str, params: list) -> dict[str, list[tuple]]:
    """The rows one replay writes, read inside its transaction before the rollback: the outbox
    rows (every column but the id), the audit records (every column but the record time and the
    hashes, which follow the server's clock) and the order."""
    conn.execute("BEGIN")
    try:
        psycopg.Cursor(conn).execute(sql, params, prepare=True).fetchone()
        return {
            "outbox": conn.execute(
                "SELECT event_id, topic, key, event_type, version, occurred_at, traceparent, message, created_at, "
                "attempts, last_error FROM outbox WHERE sent_at IS NULL ORDER BY id DESC LIMIT 20"
            ).fetchall(),
            "audit": conn.execute(
                "SELECT sequence, event_id, occurred_at, category, actor_type, actor_id, action, object_type, "
                "object_id, payload, corrects, retain_until - recorded_at FROM audit_record "
                "ORDER BY sequence DESC LIMIT 20"
            ).fetchall(),
            "order": conn.execute("SELECT * FROM trading_order ORDER BY id DESC LIMIT 1").fetchall(),
        }
    finally:
        conn.execute("ROLLBACK")


def capture_statement(worker, account) -> list:
    """One order's statement's parameters (the jsonb's text, the outbox messages), from an order
    whose write is rolled back (every replay writes it)."""
    captured = []
    real = order_write._execute

    def capture(conn, params):
        captured.append([params[0], params[1]])  # the messages a pgpipeline.ByteaArray, as sent
        return real(conn, params)

    order_write._execute = capture
    try:
        with transaction.atomic():
            worker.execute(op.intent(account.pk, 4, op.T0))
            transaction.set_rollback(True)
    finally:
        order_write._execute = real
    return captured[-1]


class Owner:
    """The owner's connection to the bench database: lists and changes the schema."""

    def __init__(self):
        self.conn = op.owner_connect()

    def rows(self, sql: str, params=()) -> list[tuple]:
        return self.conn.execute(sql, params).fetchall()

    def triggers(self) -> list[tuple[str, str, str, bool, str]]:
        """(table, trigger, definition, internal, constraint name) of the statement's tables."""
        return self.rows(
            """SELECT c.relname, t.tgname, pg_get_triggerdef(t.oid), t.tgisinternal, coalesce(k.conname, '')
                 FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
                 LEFT JOIN pg_constraint k ON k.oid = t.tgconstraint
                WHERE c.relname = ANY(%s) ORDER BY c.relname, t.tgname""",
            [list(TABLES)],
        )

    def foreign_keys(self, table: str) -> list[tuple[str, str]]:
        """(name, definition) of ``table``'s own foreign keys (it references)."""
        return self.rows(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass "
            "AND contype = 'f' ORDER BY conname",
            [table],
        )

    def secondary_indexes(self, table: str) -> list[tuple[str, str]]:
        """(name, definition) of ``table``'s indexes that back no constraint (pkey, unique)."""
        return self.rows(
            """SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
                WHERE x.indrelid = %s::regclass
                  AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.oid)
                ORDER BY i.relname""",
            [table],
        )

    @contextlib.contextmanager
    def changed(self, do: str, undo: str):
        """``do`` for the block, ``undo`` after it, whatever happened inside."""
        self.conn.execute(do)
        try:
            yield
        finally:
            self.conn.execute(undo)

    def trigger_off(self, table: str, trigger: str):
        return self.changed(
            f'ALTER TABLE {table} DISABLE TRIGGER "{trigger}"', f'ALTER TABLE {table} ENABLE TRIGGER "{trigger}"'
        )

    @contextlib.contextmanager
    def foreign_keys_dropped(self, tables: list[str]):
        dropped = [(table, name, d) for table in tables for name, d in self.foreign_keys(table)]
        for table, name, _ in dropped:
            self.conn.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
        try:
            yield
        finally:
            for table, name, definition in dropped:
                self.conn.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition}")

    def index_dropped(self, name: str, definition: str):
        return self.changed(f"DROP INDEX {name}", definition)

    def no_toast(self, table: str):
        """Rows up to a page's worth stored as they are: no compression tried below 8,160 bytes."""
        return self.changed(
            f"ALTER TABLE {table} SET (toast_tuple_target = 8160)", f"ALTER TABLE {table} RESET (toast_tuple_target)"
        )

    @contextlib.contextmanager
    def indexes_dropped(self, table: str):
        with contextlib.ExitStack() as stack:
            for name, definition in self.secondary_indexes(table):
                stack.enter_context(self.index_dropped(name, definition))
            yield


def replay(conn, sql: str, params: list, calls: int, warm: int = 5) -> tuple[list[float], list[float], list]:
    """``calls`` replays of the statement with ``params``, each in a transaction rolled back after
    the deferred triggers fired: (statement seconds, firing seconds, answers)."""
    spent, fire, answers = [], [], []
    for n in range(warm + calls):
        conn.execute("BEGIN")
        start = time.perf_counter()
        with psycopg.Cursor(conn) as cursor:  # server-side binding, as Batch sends it
            answer = cursor.execute(sql, params, prepare=True).fetchone()[0]
        done = time.perf_counter()
        conn.execute("SET CONSTRAINTS ALL IMMEDIATE")
        fired = time.perf_counter()
        conn.execute("ROLLBACK")
        answer = op._fetch(answer)
        assert answer["written"] is True, answer  # the real write, not the ON CONFLICT no-op
        if n >= warm:
            spent.append(done - start)
            fire.append(fired - done)
            answers.append(answer)
    return spent, fire, answers


def round_trips(conn, sql: str, params: list, calls: int) -> list[float]:
    """Seconds per call of a trivial statement that takes the order's statement's parameters."""
    spent = []
    for _ in range(calls):
        start = time.perf_counter()
        with psycopg.Cursor(conn) as cursor:
            cursor.execute(sql, params, prepare=True).fetchone()
        spent.append(time.perf_counter() - start)
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=500, help="orders written first (warm tables)")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--calls", type=int, default=100, help="replays per item per round")
    parser.add_argument(
        "--keep", action="store_true", help="keep the database, the statement in bench_statement (experiments)"
    )
    parser.add_argument(
        "--no-items",
        action="store_true",
        help="leave out the triggers and indexes taken away (the steps, the transport and the statement's forms only)",
    )
    args = parser.parse_args()
    old_name = connection.settings_dict["NAME"]
    with database_owner():
        connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
        runtime_grants_apply()
    owner = None
    try:
        _instrument, account, _broker, worker = op.setup_world()
        op.bench_order_path(worker, account, args.orders, first=200_000, warm=0)
        settle_heap()
        params = capture_statement(worker, account)
        statement, messages = params
        inside = messages_inside(params)
        owner = Owner()
        conn = connection.connection
        server_binding(conn)
        load = Path("/proc/loadavg").read_text().split()[:3]
        print(
            f"statement: jsonb {len(statement.encode()):,} bytes + {len(messages)} outbox messages apart "
            f"{sum(map(len, messages)):,} bytes (inside the jsonb as before trading 0008: "
            f"{len(inside[0].encode()):,} bytes); load average {' '.join(load)} at the start",
            flush=True,
        )

        print("\ntriggers on the statement's tables:")
        triggers = owner.triggers()
        for table, name, definition, internal, constraint in triggers:
            kind = f"internal, FK {constraint}" if internal else "user"
            what = re.sub(r"^CREATE .*?TRIGGER \S+ ", "", definition)
            print(f"  {table}.{name} ({kind}): {what}")
        for table in TABLES:
            indexes = owner.secondary_indexes(table)
            print(f"  {table}: {len(indexes)} secondary indexes: {', '.join(n for n, _ in indexes)}")

        definition = owner.rows("SELECT pg_get_functiondef('trading_order_write'::regproc)")[0][0]
        timed_sql, steps = timed_function(definition)
        owner.conn.execute(timed_sql)
        one_row = one_outbox_row_function(definition)
        owner.conn.execute(one_row)
        one_row_timed, _ = timed_function(one_row, "bench_order_write_one_outbox_timed")
        owner.conn.execute(one_row_timed)
        for name in ("bench_order_write_timed", "bench_order_write_one_outbox", "bench_order_write_one_outbox_timed"):
            owner.conn.execute(f"GRANT EXECUTE ON FUNCTION {name}(jsonb, bytea[]) TO PUBLIC")

        with psycopg.Cursor(conn) as cursor:
            cursor.execute("BEGIN")
            plans = {}
            for label, sql, values in (
                ("the statement", order_write._SQL, params),
                ("messages inside the jsonb (before trading 0008)", order_write._SQL, inside),
                ("one outbox row carrying the messages", ONE_ROW_SQL, params),
            ):
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS, WAL, TIMING OFF) " + sql, values)
                plans[label] = [row[0] for row in cursor.fetchall()]
                cursor.execute("ROLLBACK")
                cursor.execute("BEGIN")
            cursor.execute("ROLLBACK")
        same = rows_written(conn, order_write._SQL, params) == rows_written(conn, order_write._SQL, inside)
        print(f"\nthe messages apart and inside the jsonb write the same rows (outbox, audit, order): {same}")
        if not same:
            raise SystemExit("the two forms of the statement wrote different rows")
        for label, plan in plans.items():
            print(f"\nEXPLAIN (ANALYZE, BUFFERS, WAL), {label}:\n  " + "\n  ".join(plan))
        sizes = owner.rows(
            """SELECT 'outbox.message', count(*), avg(octet_length(message)), avg(pg_column_size(message)),
                      count(*) FILTER (WHERE pg_column_compression(message) IS NOT NULL), max(octet_length(message))
                 FROM outbox
               UNION ALL
               SELECT 'audit_record.payload', count(*), avg(octet_length(payload)), avg(pg_column_size(payload)),
                      count(*) FILTER (WHERE pg_column_compression(payload) IS NOT NULL), max(octet_length(payload))
                 FROM audit_record"""
        )
        for column, rows, raw, stored, compressed, largest in sizes:
            print(
                f"  {column}: {rows:,} rows, {raw:,.0f} bytes on average ({largest:,} at most), stored "
                f"{stored:,.0f}, {compressed:,} compressed"
            )

        # (label, context that takes the item away); the baseline runs in every round
        user_triggers = [(t, n) for t, n, _, internal, _ in triggers if not internal]
        items = [(f"trigger {t}.{n} disabled", lambda t=t, n=n: owner.trigger_off(t, n)) for t, n in user_triggers]
        fk_tables = [t for t in TABLES if owner.foreign_keys(t)]
        items += [(f"{t}: its foreign keys dropped", lambda t=t: owner.foreign_keys_dropped([t])) for t in fk_tables]
        items.append(("every foreign key above dropped", lambda: owner.foreign_keys_dropped(fk_tables)))
        items += [
            (f"{t}: its secondary indexes dropped", lambda t=t: owner.indexes_dropped(t))
            for t in TABLES
            if owner.secondary_indexes(t)
        ]
        for table in ("trading_order", "audit_record"):  # one index at a time: the order's and its records'
            items += [
                (f"{table}: {name} dropped", lambda n=name, d=d: owner.index_dropped(n, d))
                for name, d in owner.secondary_indexes(table)
            ]
        if not owner.rows("SELECT reloptions FROM pg_class WHERE relname = 'outbox'")[0][0]:
            items.append(("outbox: toast_tuple_target 8160 (no compression)", lambda: owner.no_toast("outbox")))
        if args.no_items:
            items = []
        # the same order sent otherwise: (label, SQL, parameters); a control replays the statement as is
        forms = [
            ("the same statement again (control)", order_write._SQL, params),
            ("messages inside the jsonb as text (before trading 0008)", order_write._SQL, inside),
            ("one outbox row carrying the 7 messages (bench function)", ONE_ROW_SQL, params),
        ]
        base_label = "everything in place"
        # each item's and form's blocks are paired with a baseline block just before them (same minutes)
        spent = {label: ([], []) for label, _ in items}
        fired = {label: ([], []) for label, _ in items}
        form_spent = {label: ([], []) for label, _, _ in forms}
        form_fired = {label: ([], []) for label, _, _ in forms}
        base_spent, base_fired, step_times, one_row_steps = [], [], [], []
        trips = {
            key: []
            for key in ("trivial", "text", "jsonb", "inside as text", "inside as jsonb", "messages", "jsonb + messages")
        }
        trip_sql = {
            "trivial": ("SELECT %s::int", [1]),
            "text": ("SELECT %s::text IS NULL", [statement]),
            "jsonb": ("SELECT %s::jsonb IS NULL", [statement]),
            "inside as text": ("SELECT %s::text IS NULL", [inside[0]]),
            "inside as jsonb": ("SELECT %s::jsonb IS NULL", [inside[0]]),
            "messages": ("SELECT %b::bytea[] IS NULL", [messages]),
            "jsonb + messages": ("SELECT %s::jsonb IS NULL, %b::bytea[] IS NULL", params),
        }
        started = time.strftime("%H:%M:%S", time.gmtime())
        for _round in range(args.rounds):
            s, f, _ = replay(conn, order_write._SQL, params, args.calls)
            base_spent += s
            base_fired += f
            for timed, into in (
                ("bench_order_write_timed", step_times),
                ("bench_order_write_one_outbox_timed", one_row_steps),
            ):
                _, _, answers = replay(conn, f"SELECT {timed}(%s::jsonb, %b::bytea[])", params, args.calls)
                for answer in answers:
                    ts = [_timestamp(t) for t in answer["ts"]]
                    into.append([b - a for a, b in zip(ts, ts[1:], strict=False)])
            for key, (sql, values) in trip_sql.items():
                trips[key] += round_trips(conn, sql, values, args.calls)
            for label, sql, values in forms:
                s, f, _ = replay(conn, order_write._SQL, params, args.calls)
                form_spent[label][0].extend(s)
                form_fired[label][0].extend(f)
                s, f, _ = replay(conn, sql, values, args.calls)
                form_spent[label][1].extend(s)
                form_fired[label][1].extend(f)
            for label, away in items:
                s, f, _ = replay(conn, order_write._SQL, params, args.calls)
                spent[label][0].extend(s)
                fired[label][0].extend(f)
                with away():
                    s, f, _ = replay(conn, order_write._SQL, params, args.calls)
                spent[label][1].extend(s)
                fired[label][1].extend(f)
        finished = time.strftime("%H:%M:%S", time.gmtime())
        load = Path("/proc/loadavg").read_text().split()[:3]
        blocks = f"{args.rounds} rounds x {args.calls} replays per block"
        print(f"\n{blocks}, {started}-{finished} UTC, load {' '.join(load)}")

        base_s, base_f = statistics.median(base_spent), statistics.median(base_fired)
        print(f"\n{base_label}: statement {base_s * 1e6:,.0f} us + deferred triggers {base_f * 1e6:,.0f} us (medians)")
        print("  round trips of a trivial statement taking the order's parameters (medians, us):")
        for key, values in trips.items():
            print(f"    {key:24} {statistics.median(values) * 1e6:8.1f}")
        for title, rows in (
            ("steps inside the function (bench_order_write_timed, medians, us)", step_times),
            ("the same with one outbox row carrying the messages (bench_order_write_one_outbox_timed)", one_row_steps),
        ):
            print(f"\n{title}:")
            for i, name in enumerate(steps):
                values = [row[i] for row in rows if len(row) > i]
                print(f"  {name:24} {statistics.median(values) * 1e6:8.1f}")
            print(f"  {'sum of the steps':24} {statistics.median([sum(row) for row in rows]) * 1e6:8.1f}")
        print("\nthe order sent otherwise, against the statement in the block just before it (medians, us):")
        print(f"  {'form':64} {'statement':>16} {'saving':>7} {'deferred':>12} {'saving':>7}")
        for label, _, _ in forms:
            (sb, sa), (fb, fa) = form_spent[label], form_fired[label]
            sb, sa, fb, fa = (statistics.median(v) * 1e6 for v in (sb, sa, fb, fa))
            print(f"  {label:64} {sb:7,.0f} -> {sa:5,.0f} {sb - sa:7,.0f} {fb:5,.0f} -> {fa:4,.0f} {fb - fa:7,.0f}")
        if items:
            print("\neach item taken away, against the baseline block just before it (medians, us):")
            print(f"  {'item':64} {'statement':>16} {'saving':>7} {'deferred':>12} {'saving':>7}")
        for label, _ in items:
            (sb, sa), (fb, fa) = spent[label], fired[label]
            sb, sa, fb, fa = (statistics.median(v) * 1e6 for v in (sb, sa, fb, fa))
            print(f"  {label:64} {sb:7,.0f} -> {sa:5,.0f} {sb - sa:7,.0f} {fb:5,.0f} -> {fa:4,.0f} {fb - fa:7,.0f}")
        if args.keep:
            owner.conn.execute("CREATE TABLE bench_statement AS SELECT %s::text AS s, %b::bytea[] AS messages", params)
            owner.conn.execute("GRANT SELECT ON bench_statement TO PUBLIC")
    finally:
        if owner is not None:
            owner.conn.close()
        if args.keep:
            print(f"kept database {connection.settings_dict['NAME']}")
        else:
            with database_owner():
                connection.creation.destroy_test_db(old_name, verbosity=0, keepdb=False)


def _timestamp(value: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(value).timestamp()


if __name__ == "__main__":
    main()
