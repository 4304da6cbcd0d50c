"""``manage.py audit_checkpoint``: sign the chain head now and write it to the checkpoint storages.

Checkpoints are also written on their own every ``AUDIT_CHECKPOINT_EVERY_RECORDS`` records or
``AUDIT_CHECKPOINT_EVERY_MINUTES`` minutes (tradeops/audit/checkpoint.py); ``--list`` shows them
and whether each signature verifies, with the database each names (``*``: this one).
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from tradeops.audit.checkpoint import (
    CheckpointError,
    audit_checkpoint_create,
    checkpoints_load,
    database_identity,
    database_label,
)


class Command(BaseCommand):
    help = "Write a signed checkpoint of the audit chain head at once (or --list the checkpoints)."

    def add_arguments(self, parser):
        parser.add_argument("--list", action="store_true", help="list the checkpoints and check their signatures")

    def handle(self, *args, list: bool, **options):
        try:
            if list:
                anchors, problems = checkpoints_load()
                this = database_identity()
                label = database_label(this)
                shown = f" (the audit screens and the API show it as {label})" if label != this else ""
                self.stdout.write(f"this database: {this}{shown}")
                for anchor in anchors:
                    mark = "*" if anchor.database in (None, this) else " "
                    database = anchor.database or "(no database named: counted as this one's)"
                    if anchor.database and database_label(anchor.database) != anchor.database:
                        database += f" = {database_label(anchor.database)}"
                    self.stdout.write(
                        f"{mark} {anchor.name}: record {anchor.sequence} {anchor.hash} (key {anchor.key_id}) {database}"
                    )
                for problem in problems:
                    self.stderr.write(self.style.ERROR(f"{problem.name}: {problem.detail}"))
                if problems:
                    raise CommandError(f"{len(problems)} checkpoint file(s) do not verify")
                return
            checkpoint = audit_checkpoint_create()
        except CheckpointError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            self.style.SUCCESS(
                f"checkpoint {checkpoint.name}: record {checkpoint.sequence} {checkpoint.hash} of {checkpoint.database}"
            )
        )
