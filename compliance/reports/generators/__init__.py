"""Report generation, one module per kind, behind ``generate(run=, out=)`` and ``file_check``.

Generators read the system of record and write the run's file to ``out`` (binary). They are
called by ``compliance.reports.services`` inside the run's transaction; they write no other
table than ``TransactionRecord`` (transaction reports).
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from dataclasses import dataclass, field
from typing import IO

from compliance.reports.models import ReportKind, ReportRun


@dataclass
class Outcome:
    records: int = 0
    held_back: int = 0
    out_of_scope: int = 0
    sha256: str = ""
    size: int = 0
    empty: bool = False
    summary: dict = field(default_factory=dict)


def generate(*, run: ReportRun, out: IO[bytes]) -> Outcome:
    if run.kind == ReportKind.TRANSACTION:
        from compliance.reports.generators.transaction import transaction_run_generate

        return transaction_run_generate(run=run, out=out)
    from compliance.reports.generators import others

    writer = {
        ReportKind.BEST_EXECUTION: others.best_execution_write,
        ReportKind.ALERTS_SUMMARY: others.alerts_summary_write,
        ReportKind.ORDER_RECORD: others.order_record_write,
        ReportKind.RTS6_PACK: others.rts6_pack_write,
    }[run.kind]
    return writer(run=run, out=out)


def file_check(*, run: ReportRun, fh: IO[bytes], deep: bool = True) -> list[str]:
    """What ``report_run_validate`` checks beyond the SHA-256; returns the problems found.
    ``deep`` False skips the second XSD pass over an XML file (see ``report_run_validate``)."""
    if run.file_format == "xml" and not deep:
        return []
    if run.file_format == "xml":
        from compliance.reports.xsd import xml_validate_stream

        result = xml_validate_stream(fh)
        errors = list(result.errors)
        if result.valid and result.transactions != run.record_count:
            errors.append(f"{result.transactions} transactions in the file, {run.record_count} recorded")
        return errors
    if run.file_format == "csv":
        text = io.TextIOWrapper(fh, encoding="utf-8", newline="")
        reader = csv.reader(text)
        header = next(reader, None)
        if not header:
            return ["empty CSV file"]
        rows = 0
        for row in reader:
            rows += 1
            if len(row) != len(header):
                return [f"row {rows + 1} has {len(row)} columns, the header {len(header)}"]
        text.detach()
        if run.kind == ReportKind.TRANSACTION and rows != run.record_count:
            return [f"{rows} rows in the file, {run.record_count} recorded"]
        return []
    if run.file_format == "json":
        try:
            json.load(fh)
        except ValueError as exc:
            return [f"not JSON: {exc}"]
        return []
    if run.file_format == "zip":
        from compliance.reports.generators.others import pack_verify

        try:
            with zipfile.ZipFile(fh) as archive:
                return pack_verify(archive)
        except zipfile.BadZipFile as exc:
            return [f"not a zip archive: {exc}"]
    return [f"unknown format {run.file_format}"]
