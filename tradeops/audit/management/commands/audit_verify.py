"""``manage.py audit_verify``: recompute the hash chain, check it against the signed checkpoints
and the tombstones, and name every finding (the first broken record, a missing tail, a rewound
head, a re-hashed range, an unauthorised purge).

Exit status 0 when intact, 1 on any finding (for cron and CI). Regulation: 2017/565 Art. 72(1)(c).
"""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError

from tradeops.audit.checkpoint import CheckpointError, database_label
from tradeops.audit.verify import audit_verify


class Command(BaseCommand):
    help = (
        "Verify the audit hash chain against itself, the signed checkpoints and the tombstones; "
        "name every tampered, inserted, deleted, reordered or re-hashed record, a missing tail or a rewound head."
    )

    def add_arguments(self, parser):
        parser.add_argument("--chunk-size", type=int, default=10_000, help="rows per fetch")
        parser.add_argument(
            "--no-checkpoints", action="store_true", help="check the chain against itself only (not recommended)"
        )

    def handle(self, *args, chunk_size: int, no_checkpoints: bool, **options):
        try:
            report = audit_verify(chunk_size=chunk_size, checkpoints=not no_checkpoints)
        except CheckpointError as exc:
            raise CommandError(str(exc)) from None
        summary = (
            f"{report.checked} records checked in {report.seconds:.3f}s ({report.rate:,.0f}/s); "
            f"{report.bridged_purged} purged records bridged by tombstones; head #{report.head_sequence}; "
            f"{report.checkpoints} signed checkpoints"
            + (f" of {report.database}" if report.database else "")
            + (f", newest: {report.newest_checkpoint}" if report.newest_checkpoint else "")
            + (f"; {report.skipped_checkpoints} of other databases skipped" if report.skipped_checkpoints else "")
        )
        label = database_label(report.database) if report.database else ""
        if label and label != report.database:
            report.notes.append(f"the audit screens and the API show {report.database} as {label}")
        if report.ok:
            self.stdout.write(self.style.SUCCESS(f"OK: chain intact. {summary}"))
            for note in report.notes:
                self.stdout.write(f"note: {note}")
            return
        for finding in report.findings:
            self.stderr.write(self.style.ERROR(f"BROKEN: {finding}"))
        self.stderr.write(summary)
        for note in report.notes:
            self.stderr.write(f"note: {note}")
        sys.exit(1)
