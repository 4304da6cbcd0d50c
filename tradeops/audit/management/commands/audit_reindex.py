"""``manage.py audit_reindex``: (re)build the Elasticsearch audit index from the chain."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Bulk-index audit records into Elasticsearch (the table is the source of truth)."

    def add_arguments(self, parser):
        parser.add_argument("--recreate", action="store_true", help="drop and recreate the index with the mapping")
        parser.add_argument("--since-sequence", type=int, default=0, help="only records after this sequence")

    def handle(self, *args, recreate, since_sequence, **options):
        from tradeops.audit import search_es

        try:
            count = search_es.reindex(since_sequence=since_sequence, recreate=recreate)
        except Exception as exc:
            raise CommandError(f"reindex failed: {exc}") from exc
        self.stdout.write(self.style.SUCCESS(f"indexed {count} records into {search_es.index_name()}"))
