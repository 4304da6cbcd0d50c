"""``manage.py audit_verify``: recompute the hash chain, check it against the signed checkpoints
and the tombstones, and name every finding (the first broken record, a missing tail, a rewound
head, a re-hashed range, an unauthorised purge).

The run is recorded in the trail like the audit screen's and the API's (``audit.verified``, actor
``service:manage.py audit_verify (<OS user>)``), so the screens' "last verification", ``GET
/api/v1/audit/verification/`` and the ``tradeops_audit_chain_verified*`` metrics see it;
``--no-record`` looks without recording. The record names databases by label; this command prints
their full identities (an operator's view).

Exit status 0 when intact, 1 on any finding (for cron and CI). Regulation: 2017/565 Art. 72(1)(c).
"""

from __future__ import annotations

import getpass
import sys

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from tradeops.audit.checkpoint import CheckpointError, database_label
from tradeops.audit.services import audit_verification_record
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
        parser.add_argument(
            "--no-record",
            action="store_true",
            help="a dry look: record nothing in the trail (by default the run is recorded as audit.verified, "
            "as the audit screen's and the API's are)",
        )

    def handle(self, *args, chunk_size: int, no_checkpoints: bool, no_record: bool, **options):
        try:
            report = audit_verify(chunk_size=chunk_size, checkpoints=not no_checkpoints)
        except CheckpointError as exc:
            raise CommandError(str(exc)) from None
        recorded = "" if no_record else self._record(report)
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
            if recorded:
                self.stdout.write(recorded)
            return
        for finding in report.findings:
            self.stderr.write(self.style.ERROR(f"BROKEN: {finding}"))
        self.stderr.write(summary)
        for note in report.notes:
            self.stderr.write(f"note: {note}")
        if recorded:
            self.stdout.write(recorded)
        sys.exit(1)

    def _record(self, report) -> str:
        """The run into the trail (labelled, as every run's). A database that refuses the write
        (a read-only standby) does not change what the run found: said on stderr, and the exit
        status stays the verification's."""
        try:
            record = audit_verification_record(report=report, actor=f"service:manage.py audit_verify ({_os_user()})")
        except DatabaseError as exc:
            self.stderr.write(
                f"warning: the run could not be recorded in the trail ({type(exc).__name__}: {exc}); "
                "use --no-record on a read-only database"
            )
            return ""
        return f"recorded in the trail as audit record {record.sequence} (audit.verified, {record.actor})"


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name and no passwd entry (a bare container's uid)
        return "unknown"
