"""Schema operations of migrations that must not lock a busy table on PostgreSQL (the reports'
records, which a run writes up to a million of a day; the audit trail, which every order
appends to): built or checked while writers keep writing. Elsewhere (SQLite, the embedded
default) each is Django's plain operation. The model's state is always Django's plain
operation's, so ``makemigrations`` sees nothing to do."""

from django.db import migrations


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


class SetNotNullValidatedOnPostgres(migrations.AlterField):
    """``AlterField`` from ``null=True`` to ``null=False`` (nothing else may change). On
    PostgreSQL ``SET NOT NULL`` alone scans the whole table under an ACCESS EXCLUSIVE lock
    (writes and reads wait); instead: a ``CHECK (column IS NOT NULL) NOT VALID`` (a moment's
    lock), ``VALIDATE`` it (scans under a lock that lets runs keep writing), then ``SET NOT
    NULL``, which PostgreSQL (12+) proves from the validated check without scanning, and the
    check is dropped. Needs a migration that is not atomic (each step commits). A row still
    NULL fails the validation with its message and changes nothing; migrating again starts
    over (the check is dropped first if an earlier attempt left it)."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        model = to_state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        table = schema_editor.quote_name(model._meta.db_table)
        column = schema_editor.quote_name(model._meta.get_field(self.name).column)
        check = schema_editor.quote_name(f"{model._meta.db_table}_{self.name}_not_null")
        schema_editor.execute(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {check}")
        schema_editor.execute(f"ALTER TABLE {table} ADD CONSTRAINT {check} CHECK ({column} IS NOT NULL) NOT VALID")
        schema_editor.execute(f"ALTER TABLE {table} VALIDATE CONSTRAINT {check}")
        schema_editor.execute(f"ALTER TABLE {table} ALTER COLUMN {column} SET NOT NULL")
        schema_editor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {check}")

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return super().database_backwards(app_label, schema_editor, from_state, to_state)
        model = from_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            table = schema_editor.quote_name(model._meta.db_table)
            column = schema_editor.quote_name(model._meta.get_field(self.name).column)
            schema_editor.execute(f"ALTER TABLE {table} ALTER COLUMN {column} DROP NOT NULL")
