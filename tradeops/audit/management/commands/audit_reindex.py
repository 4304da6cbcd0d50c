"""``manage.py audit_reindex``: (re)build the audit search index from the chain.

audit_reindex                         # the configured backend (AUDIT_SEARCH_BACKEND)
audit_reindex --backend elasticsearch --recreate
audit_reindex --backend postgres      # build missing full-text documents (GIN)
"""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Index audit records for search (Elasticsearch bulk indexing, or PostgreSQL full-text documents)."

    def add_arguments(self, parser):
        parser.add_argument("--backend", choices=["postgres", "elasticsearch"], help="default: AUDIT_SEARCH_BACKEND")
        parser.add_argument("--recreate", action="store_true", help="Elasticsearch: drop and recreate the index")
        parser.add_argument("--since-sequence", type=int, default=0, help="Elasticsearch: only records after this")

    def handle(self, *args, backend, recreate, since_sequence, **options):
        backend = backend or getattr(settings, "AUDIT_SEARCH_BACKEND", "postgres")
        if backend == "postgres":
            from tradeops.audit.search import search_documents_catch_up

            added = search_documents_catch_up()
            self.stdout.write(self.style.SUCCESS(f"built {added} full-text documents"))
            return
        from tradeops.audit import search_es

        try:
            count = search_es.reindex(since_sequence=since_sequence, recreate=recreate)
        except Exception as exc:
            raise CommandError(f"reindex failed: {exc}") from exc
        self.stdout.write(self.style.SUCCESS(f"indexed {count} records into {search_es.index_name()}"))
