"""``manage.py audit_verify``: recompute the hash chain and name the first broken record.

Exit status 0 when intact, 1 when broken (for cron and CI). Regulation: 2017/565 Art. 72(1)(c).
"""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand

from tradeops.audit.verify import audit_verify


class Command(BaseCommand):
    help = "Verify the audit hash chain; name the first tampered, inserted, deleted or reordered record."

    def add_arguments(self, parser):
        parser.add_argument("--chunk-size", type=int, default=10_000, help="rows per fetch")

    def handle(self, *args, chunk_size: int, **options):
        report = audit_verify(chunk_size=chunk_size)
        summary = (
            f"{report.checked} records checked in {report.seconds:.3f}s ({report.rate:,.0f}/s); "
            f"{report.bridged_purged} purged records bridged by tombstones; head #{report.head_sequence}"
        )
        if report.ok:
            self.stdout.write(self.style.SUCCESS(f"OK: chain intact. {summary}"))
            return
        self.stderr.write(self.style.ERROR(f"BROKEN: {report.problem}"))
        self.stderr.write(summary)
        sys.exit(1)
