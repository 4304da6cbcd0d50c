"""``manage.py audit_archive``: export records to a gzipped JSON-lines archive (with manifest).

audit_archive --before 2021-01-01          # everything recorded before a date
audit_archive --purge --actor user:ro      # archive and remove what is past retention
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.core.management.base import BaseCommand

from tradeops.audit.archive import audit_archive_export
from tradeops.audit.services import audit_purge


class Command(BaseCommand):
    help = "Archive audit records; with --purge, archive then remove those past their retention."

    def add_arguments(self, parser):
        parser.add_argument("--before", type=datetime.fromisoformat, help="recorded before (UTC)")
        parser.add_argument("--dir", help="archive directory (default AUDIT_EXPORT_DIR/archive)")
        parser.add_argument("--purge", action="store_true", help="remove records past retention after archiving")
        parser.add_argument("--actor", default="system", help="who runs the purge (recorded)")
        parser.add_argument("--category", help="only this category")

    def handle(self, *args, before, dir, purge, actor, category, **options):
        if purge:
            result = audit_purge(actor=actor, archive_dir=dir, category=category)
            self.stdout.write(f"purged {result['purged']} records; archive {result['archive']}")
            return
        before = before.replace(tzinfo=before.tzinfo or UTC) if before else None
        result = audit_archive_export(before=before, directory=dir)
        self.stdout.write(f"archived {result['count']} records to {result['path']} (sha256 {result['sha256']})")
