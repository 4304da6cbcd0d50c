"""One index on the fills for the home page's T+1 reminder (``compliance.reports.selectors.
transaction_days_unreported``): ``(UTC trading date of executed_at, recorded_at)``.

The reminder used to read every execution ever recorded (0.3 s at 110,000, 1.4-2.6 s at
1,100,000). With this index it reads per trading date instead: the dates come from the index's
leading column (a skip scan: one probe per date), and a date that a signed-off run saw is
probed only for the fills recorded after that run's ``as_of`` (the second column: late fills),
so a reported date costs one index probe however many fills it had (bench/README.md).

The price is one more btree insertion per fill on the order write (trading 0006 counted every
index on this table): a 12-byte key (date, timestamp) a row, measured at 0.5-1.1 us a fill
(``bench/home_t1_due.py``'s ``index_cost``).

It is an expression index, so it is not in ``Execution.Meta.indexes`` (Django would render
``TruncDate`` as a function SQLite only knows inside Django: a database file other tools could
no longer write): created here by SQL, per database.

- PostgreSQL: ``CREATE INDEX CONCURRENTLY`` (the migration is not atomic): the table is not
  locked against the order write while the index builds, which takes minutes on a large table.
  ``(executed_at AT TIME ZONE 'UTC')::date`` is immutable (a fixed zone), and is exactly what
  ``TruncDate("executed_at", tzinfo=UTC)`` renders, so the planner matches it. If the build is
  interrupted PostgreSQL leaves an INVALID index behind: ``IF NOT EXISTS`` would then keep it,
  so the forward step drops an invalid one first and builds again.
- SQLite (the embedded default): ``date(executed_at)`` (Django keeps UTC text there), a plain
  ``CREATE INDEX``: SQLite has no concurrent build and the embedded database is small.
"""

from django.db import migrations

NAME = "execution_trade_date_recorded_idx"
POSTGRES_EXPRESSION = "((executed_at AT TIME ZONE 'UTC')::date)"
SQLITE_EXPRESSION = "date(executed_at)"


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(
                "SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
                " WHERE c.relname = %s AND NOT i.indisvalid",
                [NAME],
            )
            if cursor.fetchone():
                schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {NAME}")
        schema_editor.execute(
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {NAME} ON trading_execution ({POSTGRES_EXPRESSION}, recorded_at)"
        )
    else:
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {NAME} ON trading_execution ({SQLITE_EXPRESSION}, recorded_at)")


def backward(apps, schema_editor):
    concurrently = "CONCURRENTLY " if schema_editor.connection.vendor == "postgresql" else ""
    schema_editor.execute(f"DROP INDEX {concurrently}IF EXISTS {NAME}")


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run inside a transaction

    dependencies = [("trading", "0009_execution_arrival_touch")]

    operations = [migrations.RunPython(forward, backward, elidable=False)]
