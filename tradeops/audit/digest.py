"""Daily Merkle digests: anchoring the chain outside the database.

A digest is the Merkle root (RFC 6962) over the hashes of one UTC day's records (by
``recorded_at``, in sequence order, tombstones of purged records included) plus the hash of the
day's last record. It is written to a JSON file meant to leave the building (e-mailed to the
auditor, written to WORM storage, timestamped). Later, ``audit_digest_check`` recomputes the day
from the table and compares: a rewrite of the whole table with fresh hashes (which
``audit_verify`` alone cannot see) changes the root. An inclusion proof shows that one record is
in a day's digest without the rest of the day.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from django.db import transaction

from tradeops.audit.exports import export_dir
from tradeops.audit.merkle import inclusion_proof, inclusion_verify, merkle_root
from tradeops.audit.models import AuditRecord, Digest, PurgedRecord
from tradeops.core.clock import utcnow
from tradeops.core.errors import ApplicationError, NotFound

ALGORITHM = "sha256; RFC 6962 Merkle tree over record hashes in sequence order (leaf 0x00, node 0x01)"


class DigestError(ApplicationError):
    code = "audit_digest_error"


def _bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time.min, tzinfo=UTC)
    return start, start + timedelta(days=1)


def day_hashes(day: date) -> list[tuple[int, str]]:
    """(sequence, hash) of the day's records and tombstones, in sequence order."""
    start, end = _bounds(day)
    live = AuditRecord.objects.filter(recorded_at__gte=start, recorded_at__lt=end).values_list("sequence", "hash")
    gone = PurgedRecord.objects.filter(recorded_at__gte=start, recorded_at__lt=end).values_list("sequence", "hash")
    return sorted([*live, *gone])


def digest_document(digest: Digest) -> dict:
    return {
        "kind": "tradeops.audit.digest",
        "version": 1,
        "day": digest.day.isoformat(),
        "record_count": digest.record_count,
        "first_sequence": digest.first_sequence,
        "last_sequence": digest.last_sequence,
        "merkle_root": digest.merkle_root,
        "chain_hash": digest.chain_hash,
        "created_at": digest.created_at.isoformat(),
        "algorithm": ALGORITHM,
    }


@transaction.atomic
def audit_digest_create(*, day: date, directory: str | Path | None = None) -> tuple[Digest, Path]:
    """Compute the day's digest, store it (once: ``audit_digest`` is insert-only) and write its
    export file ``<dir>/<day>.json``. Refuses a day that is not over yet (it would change).
    Re-running for a day already digested rewrites the file from the stored row."""
    if day >= utcnow().date():
        raise DigestError(f"{day} is not over yet (UTC); digest a finished day", code="audit_digest_day_open")
    digest = Digest.objects.filter(day=day).first()
    path = export_dir("digests", directory) / f"{day.isoformat()}.json"
    if digest is None:
        hashes = day_hashes(day)
        digest = Digest.objects.create(
            day=day,
            first_sequence=hashes[0][0] if hashes else None,
            last_sequence=hashes[-1][0] if hashes else None,
            record_count=len(hashes),
            merkle_root=merkle_root([h for _, h in hashes]),
            chain_hash=hashes[-1][1] if hashes else "",
            created_at=utcnow(),
            file_name=path.name,
        )
    path.write_text(json.dumps(digest_document(digest), indent=2) + "\n")
    return digest, path


@dataclass(frozen=True)
class DigestCheck:
    day: str
    ok: bool
    detail: str


def audit_digest_check(*, document: dict) -> DigestCheck:
    """Recompute a digest file's day from the table and compare root, count and chain hash."""
    day = date.fromisoformat(document["day"])
    hashes = day_hashes(day)
    root = merkle_root([h for _, h in hashes])
    if len(hashes) != document["record_count"]:
        return DigestCheck(
            document["day"], False, f"{len(hashes)} records in the table, {document['record_count']} in the digest"
        )
    if root != document["merkle_root"]:
        return DigestCheck(
            document["day"], False, f"Merkle root differs: table {root}, digest {document['merkle_root']}"
        )
    last_hash = hashes[-1][1] if hashes else ""
    if last_hash != document["chain_hash"]:
        return DigestCheck(document["day"], False, "the day's last chain hash differs from the digest")
    return DigestCheck(document["day"], True, f"{len(hashes)} records match root {root[:16]}…")


class ProofDayOpen(DigestError):
    """An inclusion proof asked for a record of a day not over yet (UTC)."""

    code = "audit_proof_day_open"
    http_status = 409  # the request is sound, the day is not: ask again once it is over


def check_proof_day_over(*, sequence: int, day: date) -> None:
    """Refuse an inclusion proof of a record of ``day`` while that day is not over (UTC): more
    records will join the day's tree, so the proof would lead to a root that no digest file will
    ever have. The one refusal, in the same words, for ``audit_digest --proof``, the record screen
    and ``/api/v1/audit/records/{sequence}/proof/``; it names when the day's digest can be made
    (midnight UTC after it; Celery beat makes it at 00:10). Raises ``ProofDayOpen``."""
    if day < utcnow().date():
        return
    digest_from = _bounds(day)[1]
    raise ProofDayOpen(
        f"record {sequence} was recorded on {day} (UTC), a day not over yet: its proof would not match the "
        f"day's digest, which can be made from {digest_from:%Y-%m-%d %H:%M} UTC "
        f"(audit_digest --day {day}); ask for the proof then",
        extra={"day": day.isoformat(), "digest_from": digest_from.isoformat().replace("+00:00", "Z")},
    )


def audit_proof(*, event_id: uuid.UUID | str) -> dict:
    """An inclusion proof for one record in its day's digest, for a record of a finished day
    (UTC; ``check_proof_day_over`` refuses one of today). The day need not be digested yet: the
    proof checks against the day's digest file whenever that is made."""
    record = AuditRecord.objects.filter(event_id=event_id).values_list("sequence", "hash", "recorded_at").first()
    if record is None:
        raise NotFound(f"no audit record with event_id {event_id}", code="audit_record_not_found")
    sequence, record_hash, recorded_at = record
    day = recorded_at.astimezone(UTC).date()
    check_proof_day_over(sequence=sequence, day=day)
    hashes = day_hashes(day)
    index = [s for s, _ in hashes].index(sequence)
    leaves = [h for _, h in hashes]
    return {
        "kind": "tradeops.audit.inclusion_proof",
        "version": 1,
        "day": day.isoformat(),
        "event_id": str(event_id),
        "sequence": sequence,
        "record_hash": record_hash,
        "leaf_index": index,
        "tree_size": len(leaves),
        "proof": inclusion_proof(leaves, index),
        "merkle_root": merkle_root(leaves),
    }


def proof_verify(*, proof: dict, digest: dict) -> DigestCheck:
    """Check an inclusion proof against a digest file, offline (no database)."""
    if proof["day"] != digest["day"]:
        return DigestCheck(proof["day"], False, f"proof is for {proof['day']}, digest for {digest['day']}")
    if proof["tree_size"] != digest["record_count"]:
        return DigestCheck(proof["day"], False, "proof tree size differs from the digest's record count")
    ok = inclusion_verify(
        record_hash=proof["record_hash"],
        index=proof["leaf_index"],
        size=proof["tree_size"],
        proof=proof["proof"],
        root=digest["merkle_root"],
    )
    detail = "record is in the digest" if ok else "proof does not lead to the digest's root"
    return DigestCheck(proof["day"], ok, f"record {proof['sequence']}: {detail}")
