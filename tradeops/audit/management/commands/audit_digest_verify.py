"""``manage.py audit_digest_verify``: check digest files against the table, or a proof offline.

audit_digest_verify var/audit/digests/*.json         # recompute each day; exit 1 on mismatch
audit_digest_verify --proof proof.json DIGEST.json   # inclusion proof vs a digest file (no DB)
"""

from __future__ import annotations

import json
import sys

from django.core.management.base import BaseCommand

from tradeops.audit.digest import audit_digest_check, proof_verify


class Command(BaseCommand):
    help = "Check daily digest export files against the audit table (detects a rewrite of the whole table)."

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="+", help="digest JSON files")
        parser.add_argument("--proof", help="an inclusion proof JSON to check against the (one) digest file")

    def handle(self, *args, files, proof, **options):
        failed = False
        for name in files:
            with open(name) as fh:
                document = json.load(fh)
            if proof:
                with open(proof) as fh:
                    result = proof_verify(proof=json.load(fh), digest=document)
            else:
                result = audit_digest_check(document=document)
            line = f"{result.day}: {'OK' if result.ok else 'MISMATCH'}: {result.detail}"
            if result.ok:
                self.stdout.write(self.style.SUCCESS(line))
            else:
                failed = True
                self.stderr.write(self.style.ERROR(line))
        if failed:
            sys.exit(1)
