"""Archive export: records as gzipped JSON lines, with a manifest carrying the file's SHA-256.

Used before a purge (nothing is deleted unless its archive was written) and on demand for an
auditor. Each line holds every column as stored, including ``prev_hash`` and ``hash``, so the
archive can be checked against the chain and the digests on its own.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import orjson

from tradeops.audit.canonical import ts
from tradeops.audit.exports import export_dir
from tradeops.audit.models import AuditRecord
from tradeops.audit.verify import FIELDS
from tradeops.core.clock import utcnow


def _line(row: tuple) -> bytes:
    doc = dict(zip(FIELDS, row, strict=True))
    for key in ("occurred_at", "recorded_at", "retain_until"):
        doc[key] = ts(doc[key])
    doc["event_id"] = str(doc["event_id"])
    doc["corrects"] = str(doc["corrects"]) if doc["corrects"] else None
    return orjson.dumps(doc) + b"\n"


def audit_archive_export(
    *, sequences: Sequence[int] | None = None, before=None, directory: str | Path | None = None, reason: str = "export"
) -> dict:
    """Write the records (by sequence list, or recorded before ``before``) to an archive file.

    Returns ``{"file", "path", "sha256", "count", "first", "last"}``; writes ``<file>.manifest.json``."""
    rows = AuditRecord.objects.order_by("sequence")
    if sequences is not None:
        rows = (
            rows.filter(sequence__in=list(sequences))
            if len(sequences) < 900
            else rows.filter(sequence__gte=min(sequences), sequence__lte=max(sequences))
        )
    if before is not None:
        rows = rows.filter(recorded_at__lt=before)
    wanted = set(sequences) if sequences is not None else None
    stamp = utcnow().strftime("%Y%m%dT%H%M%S%fZ")
    directory = export_dir("archive", directory)
    path = directory / f"audit-{reason}-{stamp}.jsonl.gz"
    count, first, last = 0, None, None
    with gzip.open(path, "wb") as out:
        for row in rows.values_list(*FIELDS).iterator(chunk_size=5000):
            if wanted is not None and row[0] not in wanted:
                continue
            out.write(_line(row))
            count += 1
            first = row[0] if first is None else first
            last = row[0]
    sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
    manifest = {"file": path.name, "sha256": sha256, "count": count, "first": first, "last": last, "reason": reason}
    (directory / f"{path.name}.manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return {**manifest, "path": str(path)}
