"""manage.py transaction_report --date YYYY-MM-DD --format xml|csv --output FILE

The RTS 22 transaction report of one trading date (UTC date of the executions' event time), as
the system of record has it now. Exit 0 when the file is written (held-back records listed on
stderr with their reasons); 1 with a message on bad input or when nothing could be written.
This is an export: it records no run (use ``report_run transaction`` for one that goes to the
ARM). The export itself is audited.
"""

from __future__ import annotations

import os
import tempfile
from datetime import date

from django.core.management.base import BaseCommand, CommandError

from tradeops.core.errors import ApplicationError


class Command(BaseCommand):
    help = "Write the RTS 22 transaction report of one UTC trading date (ISO 20022 auth.016 XML or CSV)."

    def add_arguments(self, parser):
        parser.add_argument("--date", required=True, help="Trading date (UTC), YYYY-MM-DD")
        parser.add_argument("--format", default="xml", help="xml (auth.016.001.01) or csv")
        parser.add_argument("--output", required=True, help="File to write ('-' is not allowed: reports are files)")
        parser.add_argument(
            "--layout", default="envelope", help="XML: envelope (head.003 + head.001 AppHdr) or document (bare)"
        )

    def handle(self, *args, **options):
        try:
            day = date.fromisoformat(options["date"])
        except ValueError:
            raise CommandError(f"--date {options['date']!r} is not a date (YYYY-MM-DD)") from None
        file_format = options["format"].lower()
        if file_format not in ("xml", "csv"):
            raise CommandError(f"--format {options['format']!r}: use xml or csv")
        if options["layout"] not in ("envelope", "document"):
            raise CommandError(f"--layout {options['layout']!r}: use envelope or document")
        output = os.path.abspath(options["output"])
        folder = os.path.dirname(output)
        if os.path.isdir(output):
            raise CommandError(f"--output {output} is a directory")
        if not os.path.isdir(folder):
            raise CommandError(f"--output: folder {folder} does not exist")
        try:
            handle = tempfile.NamedTemporaryFile(dir=folder, prefix=".transaction_report-", delete=False)  # noqa: SIM115
        except OSError as exc:
            raise CommandError(f"--output: cannot write in {folder}: {exc.strerror}") from None
        try:
            export = self._write(day=day, file_format=file_format, layout=options["layout"], handle=handle)
            result = export.result
            for held in export.held_back:
                reasons = "; ".join(f"{r['code']} ({r['field']}): {r['message']}" for r in held["reasons"])
                self.stderr.write(f"held back: {held['trn']} (execution {held['execution_id']}): {reasons}")
            if result.empty:
                raise CommandError(
                    f"nothing to report for {day}: {result.held_back} held back, {result.out_of_scope} out of scope; "
                    "no file written"
                )
            try:
                os.replace(handle.name, output)
            except OSError as exc:
                raise CommandError(f"--output: cannot write {output}: {exc.strerror}") from None
        finally:
            if os.path.exists(handle.name):
                os.unlink(handle.name)
        self._audit(day=day, file_format=file_format, output=output, result=result)
        self.stdout.write(
            f"{output}: {result.reported} transactions ({file_format}), {result.held_back} held back, "
            f"{result.out_of_scope} out of MiFIR scope; sha256 {result.sha256}"
        )

    def _write(self, *, day, file_format, layout, handle):
        from compliance.reports.generators.transaction import transaction_report_export

        try:
            with handle:
                return transaction_report_export(day=day, file_format=file_format, out=handle, layout=layout)
        except ApplicationError as exc:
            raise CommandError(str(exc)) from None

    def _audit(self, *, day, file_format, output, result):
        from django.db import transaction

        from tradeops.audit.services import audit_record_change
        from tradeops.core.clock import utcnow

        with transaction.atomic():
            audit_record_change(
                action="report.exported",
                actor="service:command",
                object_type="transaction_report",
                object_id=day.isoformat(),
                before=None,
                after={"file": output, "format": file_format, "sha256": result.sha256, **result.summary()},
                occurred_at=utcnow(),
            )
