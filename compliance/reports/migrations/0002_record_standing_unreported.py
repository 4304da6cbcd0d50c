"""A partial index of the standing records that do not report their execution (active NEWT
records held back or rejected by the ARM), for the home page's T+1 reminder
(``compliance.reports.selectors.transaction_days_unreported``): it reads those few rows instead
of every standing record (a million a day at scale). Rows enter it only when a record is held
back or rejected, so the runs' bulk writes (state ``reported``) add nothing to it.

On PostgreSQL it is built ``CONCURRENTLY`` (the migration is not atomic): the records table is
large and a run writing its records must not wait for the build. Elsewhere (SQLite, the embedded
default) it is a plain ``CREATE INDEX``. Same index either way, and the model's state is Django's
plain ``AddIndex``, so ``makemigrations`` sees nothing to do.
"""

from django.db import migrations, models

from tradeops.core.migration_operations import AddIndexConcurrentlyOnPostgres


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run inside a transaction

    dependencies = [
        ("reports", "0001_initial"),
        ("trading", "0010_execution_trade_date_recorded"),  # the reminder reads both indexes
    ]

    operations = [
        AddIndexConcurrentlyOnPostgres(
            model_name="transactionrecord",
            index=models.Index(
                condition=models.Q(("active", True), ("report_status", "NEWT"))
                & ~models.Q(("state__in", ["accepted", "reported"])),
                fields=["execution"],
                name="record_standing_unreported",
            ),
        ),
    ]
