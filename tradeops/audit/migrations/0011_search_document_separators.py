"""The full-text documents are rebuilt: since 2026-12-06 a document reads ``:`` and ``/`` as
spaces, as the query does (``tradeops.audit.search.FTS_SEPARATORS``), so a search for a host, a
``host:port``, an IP address with its port or a URL finds the records that name it. The documents
are derived from ``audit_record`` (never the system of record): they are emptied here and built
again in bulk by ``manage.py audit_reindex --backend postgres`` or, failing that, before the first
free-text search. PostgreSQL only (SQLite's search reads the records themselves)."""

from django.db import migrations


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("TRUNCATE audit_search_document", params=None)


class Migration(migrations.Migration):

    dependencies = [
        ("audit", "0010_breaker_latest_partial"),
    ]

    operations = [
        migrations.RunPython(forwards, migrations.RunPython.noop),
    ]
