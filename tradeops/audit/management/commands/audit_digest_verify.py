"""``manage.py audit_digest_verify``: check digest files against the table, or a proof offline.

audit_digest_verify var/audit/digests/*.json         # recompute each day; exit 1 on mismatch
audit_digest_verify --proof proof.json DIGEST.json   # inclusion proof vs a digest file (no DB)
"""

from __future__ import annotations

import json
import sys

from django.core.management.base import BaseCommand, CommandError

from tradeops.audit.digest import audit_digest_check, proof_verify


class Command(BaseCommand):
    help = "Check daily digest export files against the audit table (detects a rewrite of the whole table)."

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="+", help="digest JSON files")
        parser.add_argument("--proof", help="an inclusion proof JSON to check against the (one) digest file")

    def handle(self, *args, files, proof, **options):
        failed = False
        proof_document = _read_json(proof) if proof else None
        for name in files:
            try:
                document = _read_json(name)
            except CommandError as exc:
                # One unreadable file (a day not digested yet, a typo) is a failure of the check,
                # said plainly; the other files are still checked.
                failed = True
                self.stderr.write(self.style.ERROR(str(exc)))
                continue
            if proof_document is not None:
                result = proof_verify(proof=proof_document, digest=document)
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


def _read_json(name: str):
    """The JSON document in ``name``, or a CommandError that names the file and what is wrong."""
    try:
        with open(name, encoding="utf-8") as fh:
            return json.load(fh)
    except OSError as exc:
        raise CommandError(f"{name}: cannot read: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise CommandError(f"{name}: not a JSON document: {exc}") from None
