"""Step 2 of 2 (0003 added the column): every existing record's ``trade_date`` from its
execution (the UTC date of ``executed_at``, the expression of trading 0010's index), then NOT
NULL, then the index ``record_reported_run_date`` on (run, trade_date) of the records in a
run's file, by which the T+1 reminder reads the dates of the runs awaiting sign-off.

The backfill is batched, not one ``UPDATE ... FROM`` over the table: the table holds a million
records a trading day, and one statement would hold a row lock on every record until it
finished (an ARM's feedback or a supersede touching those records would wait), write a new
version of every row in one transaction (the table's size again in dead rows and WAL at once,
none reclaimable until it commits) and lose all of it if interrupted. Each batch is one
``UPDATE`` of a range of 20,000 record ids, committed on its own, so locks last one batch,
vacuum can reclaim behind it, and an interrupted backfill resumes where it stopped (only rows
still NULL are written). Each record's date is read by a correlated subquery on its
execution's primary key, not by ``UPDATE ... FROM``: a join lets PostgreSQL hash the whole
executions table for every batch (the cost of a batch would grow with every fill ever
recorded), where the subquery is one index probe per record whatever the table's size; and it
is the same statement on SQLite (the embedded default), which has ``UPDATE ... FROM`` only since
3.33. The date is the expression of the reminder's index on each database (trading 0010):
``(executed_at AT TIME ZONE 'UTC')::date`` on PostgreSQL, ``date(executed_at)`` of Django's UTC
text on SQLite. Measured (bench/home_t1_due.py, ``backfill_cost``): see bench/README.md.

NOT NULL and the index are added without locking writers out on PostgreSQL
(``compliance/reports/migration_operations.py``). Deploy the code that writes the column with
this migration: a record written by older code (no ``trade_date``) after the backfill makes the
NOT NULL step fail, with nothing changed; migrating again backfills it and goes on. An
interrupted concurrent index build leaves an INVALID index: drop it, then migrate again.
"""

from django.db import migrations, models, transaction

from tradeops.core.migration_operations import AddIndexConcurrentlyOnPostgres, SetNotNullValidatedOnPostgres

BATCH = 20_000  # records per UPDATE, each committed: a fraction of a second (bench/README.md)

_TRADE_DATE = {"postgresql": "(e.executed_at AT TIME ZONE 'UTC')::date", "sqlite": "date(e.executed_at)"}
_UPDATE = (
    "UPDATE reports_transactionrecord SET trade_date ="
    " (SELECT {trade_date} FROM trading_execution e WHERE e.id = reports_transactionrecord.execution_id)"
    " WHERE id >= %s AND id < %s AND trade_date IS NULL"
)


def trade_date_backfill(apps, schema_editor) -> int:
    """Write ``trade_date`` on every record that has none, a batch of record ids per committed
    transaction. Returns the rows written. Precondition: every record's execution exists
    (executions are never deleted: PROTECT)."""
    connection = schema_editor.connection
    if connection.vendor not in _TRADE_DATE:
        raise NotImplementedError(f"reports 0004 backfills on PostgreSQL or SQLite, not {connection.vendor}")
    with connection.cursor() as cursor:  # the primary key's ends: two index probes, not a scan
        cursor.execute("SELECT min(id), max(id) FROM reports_transactionrecord")
        low, high = cursor.fetchone()
    written = 0
    if low is None:
        return written
    for start in range(low, high + 1, BATCH):
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            cursor.execute(_UPDATE.format(trade_date=_TRADE_DATE[connection.vendor]), [start, start + BATCH])
            written += cursor.rowcount
    return written


class Migration(migrations.Migration):
    atomic = False  # batches commit one by one; VALIDATE and CREATE INDEX CONCURRENTLY outside a transaction

    dependencies = [
        ("reports", "0003_transactionrecord_trade_date"),
        ("trading", "0010_execution_trade_date_recorded"),
    ]

    operations = [
        migrations.RunPython(trade_date_backfill, migrations.RunPython.noop, elidable=False),
        SetNotNullValidatedOnPostgres(model_name="transactionrecord", name="trade_date", field=models.DateField()),
        AddIndexConcurrentlyOnPostgres(
            model_name="transactionrecord",
            index=models.Index(
                condition=models.Q(("active", True), ("report_status", "NEWT"), ("state", "reported")),
                fields=["run", "trade_date"],
                name="record_reported_run_date",
            ),
        ),
    ]
