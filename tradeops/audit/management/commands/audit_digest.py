"""``manage.py audit_digest``: write daily Merkle digests; print inclusion proofs.

audit_digest                      # yesterday (UTC)
audit_digest --day 2026-11-25     # one day
audit_digest --backfill           # every finished day with records and no digest yet
audit_digest --proof EVENT_ID     # inclusion proof of one record of a finished day (JSON on stdout or --out)
"""

from __future__ import annotations

import json
from datetime import date, timedelta

from django.core.management.base import BaseCommand, CommandError

from tradeops.audit.digest import audit_digest_create, audit_proof
from tradeops.audit.models import AuditRecord, Digest
from tradeops.core.clock import utcnow
from tradeops.core.errors import ApplicationError


class Command(BaseCommand):
    help = "Write the daily Merkle digest export of the audit trail, or print an inclusion proof."

    def add_arguments(self, parser):
        parser.add_argument("--day", type=date.fromisoformat, help="UTC day, YYYY-MM-DD (default: yesterday)")
        parser.add_argument("--backfill", action="store_true", help="digest every finished day not yet digested")
        parser.add_argument("--dir", help="export directory (default AUDIT_EXPORT_DIR or var/audit/digests)")
        parser.add_argument(
            "--proof",
            metavar="EVENT_ID",
            help="print the inclusion proof of one record of a finished UTC day (checked against its digest)",
        )
        parser.add_argument("--out", help="write the proof to this file")

    def handle(self, *args, day, backfill, dir, proof, out, **options):
        try:
            if proof:
                document = json.dumps(audit_proof(event_id=proof), indent=2)
                if out:
                    with open(out, "w") as fh:
                        fh.write(document + "\n")
                    self.stdout.write(f"proof written to {out}")
                else:
                    self.stdout.write(document)
                return
            today = utcnow().date()
            if backfill:
                first = AuditRecord.objects.order_by("sequence").values_list("recorded_at", flat=True).first()
                done = set(Digest.objects.values_list("day", flat=True))
                days = []
                if first is not None:
                    d = first.date()
                    while d < today:
                        if d not in done:
                            days.append(d)
                        d += timedelta(days=1)
            else:
                days = [day or today - timedelta(days=1)]
            for d in days:
                digest, path = audit_digest_create(day=d, directory=dir)
                self.stdout.write(f"{d}: {digest.record_count} records, root {digest.merkle_root} -> {path}")
        except ApplicationError as exc:
            raise CommandError(str(exc)) from exc
