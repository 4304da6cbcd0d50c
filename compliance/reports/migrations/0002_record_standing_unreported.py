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


class AddIndexConcurrentlyOnPostgres(migrations.AddIndex):
    """``AddIndex``, built with ``CREATE INDEX CONCURRENTLY`` on PostgreSQL (needs a migration
    that is not atomic). An interrupted concurrent build leaves an INVALID index: drop it and
    migrate again."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        model = to_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            schema_editor.add_index(model, self.index, concurrently=True)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return super().database_backwards(app_label, schema_editor, from_state, to_state)
        model = from_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            schema_editor.remove_index(model, self.index, concurrently=True)


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
