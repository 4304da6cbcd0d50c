"""Full-text search moves out of the append path: the GIN-indexed tsvector lives in
``audit_search_document`` (one row per record, filled in bulk after the fact) instead of a
functional GIN index on ``audit_record`` that every append had to maintain under the chain-head
lock. Measured with bench/audit_append.py: the functional index cost more than the chain itself."""

from django.db import migrations, models

FTS_DOCUMENT_SQL = (
    "to_tsvector('simple'::regconfig, action || ' ' || actor_type || ' ' || actor_id || ' ' || object_type"
    " || ' ' || object_id || ' ' || payload)"
)


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        """
        DROP INDEX IF EXISTS audit_record_fts_idx;
        ALTER TABLE audit_search_document ALTER COLUMN document TYPE tsvector USING to_tsvector('simple', document);
        CREATE INDEX audit_search_document_gin ON audit_search_document USING gin (document);
        """,
        params=None,
    )


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        "DROP INDEX IF EXISTS audit_search_document_gin;"
        " ALTER TABLE audit_search_document ALTER COLUMN document TYPE text USING document::text;"
        f" CREATE INDEX audit_record_fts_idx ON audit_record USING gin ({FTS_DOCUMENT_SQL});",
        params=None,
    )


class Migration(migrations.Migration):

    dependencies = [
        ('audit', '0002_immutability'),
    ]

    operations = [
        migrations.CreateModel(
            name='SearchDocument',
            fields=[
                ('sequence', models.BigIntegerField(primary_key=True, serialize=False)),
                ('document', models.TextField()),
            ],
            options={
                'db_table': 'audit_search_document',
                'default_permissions': (),
            },
        ),
        migrations.RunPython(forwards, backwards),
    ]
