"""The ARM's feedback file: accepted or rejected per transaction, with reason codes. Pure.

Format (JSON Lines, UTF-8; documented in docs/reporting.md): the first line
is the header, then one line per transaction of the submission::

    {"type": "header", "submission_id": "S-1", "file_sha256": "<hex>", "status": "PART",
     "received_at": "2026-03-03T00:41:05Z", "accepted": 2, "rejected": 1}
    {"type": "record", "trn": "TOPS000000000017", "status": "ACPT"}
    {"type": "record", "trn": "TOPS000000000018", "status": "RJCT",
     "reasons": [{"code": "CON-412", "text": "Buyer LEI not found in GLEIF"}]}

``status`` of the file: ``ACPT`` (all accepted), ``PART`` (some rejected), ``RJCT`` (the file
itself was refused, e.g. schema errors: then the header carries ``reasons`` and there are no
record lines). A record's ``status`` is ``ACPT`` or ``RJCT`` (with at least one reason).
Anything else is refused with the line number, and nothing of the file is applied.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field


class FeedbackFormatError(ValueError):
    """The feedback file does not follow the documented format (message names the line)."""


@dataclass(frozen=True)
class FeedbackRecord:
    trn: str
    accepted: bool
    reasons: tuple[dict, ...] = ()


@dataclass
class FeedbackHeader:
    submission_id: str
    file_sha256: str
    status: str  # ACPT | PART | RJCT
    received_at: str = ""
    accepted: int | None = None
    rejected: int | None = None
    reasons: tuple[dict, ...] = field(default_factory=tuple)


def _reasons(value, line: int) -> tuple[dict, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise FeedbackFormatError(f"line {line}: 'reasons' must be a list")
    out = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("code"), str) or not item["code"]:
            raise FeedbackFormatError(f"line {line}: each reason needs a 'code'")
        out.append({"code": item["code"], "text": str(item.get("text", ""))})
    return tuple(out)


def feedback_parse(lines: Iterable[bytes | str]) -> tuple[FeedbackHeader, Iterator[FeedbackRecord]]:
    """Parse the header at once and return an iterator over the records (streamed: a feedback
    file has one line per transaction). Raises ``FeedbackFormatError`` naming the line."""
    it = iter(lines)
    number = 0

    def load(raw) -> dict:
        nonlocal number
        number += 1
        try:
            text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        except UnicodeDecodeError as exc:
            raise FeedbackFormatError(f"line {number}: not UTF-8 (byte {exc.start + 1})") from None
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise FeedbackFormatError(f"line {number}: not JSON ({exc.msg})") from None
        if not isinstance(value, dict):
            raise FeedbackFormatError(f"line {number}: expected an object")
        return value

    first = None
    for raw in it:
        if raw.strip() if isinstance(raw, (bytes, str)) else raw:
            first = load(raw)
            break
        number += 1
    if first is None:
        raise FeedbackFormatError("empty feedback file")
    if first.get("type") != "header":
        raise FeedbackFormatError(f"line {number}: the first line must be the header")
    status = first.get("status")
    if status not in ("ACPT", "PART", "RJCT"):
        raise FeedbackFormatError(f"line {number}: header status {status!r} is not ACPT, PART or RJCT")
    for key in ("submission_id", "file_sha256"):
        if not isinstance(first.get(key), str) or not first[key]:
            raise FeedbackFormatError(f"line {number}: header needs {key!r}")
    for key in ("accepted", "rejected"):
        count = first.get(key)
        if count is not None and (type(count) is not int or count < 0):
            raise FeedbackFormatError(f"line {number}: header {key!r} must be a count (an integer >= 0)")
    header = FeedbackHeader(
        submission_id=first["submission_id"],
        file_sha256=first["file_sha256"],
        status=status,
        received_at=str(first.get("received_at", "")),
        accepted=first.get("accepted"),
        rejected=first.get("rejected"),
        reasons=_reasons(first.get("reasons"), number),
    )

    def records() -> Iterator[FeedbackRecord]:
        nonlocal number
        for raw in it:
            if not (raw.strip() if isinstance(raw, (bytes, str)) else raw):
                number += 1  # a blank line still counts, so errors name the right line
                continue
            item = load(raw)
            if item.get("type") != "record":
                raise FeedbackFormatError(f"line {number}: expected a record line")
            trn = item.get("trn")
            if not isinstance(trn, str) or not trn:
                raise FeedbackFormatError(f"line {number}: record needs 'trn'")
            if item.get("status") not in ("ACPT", "RJCT"):
                raise FeedbackFormatError(f"line {number}: record status {item.get('status')!r} is not ACPT or RJCT")
            reasons = _reasons(item.get("reasons"), number)
            accepted = item["status"] == "ACPT"
            if not accepted and not reasons:
                raise FeedbackFormatError(f"line {number}: a rejected record needs at least one reason")
            yield FeedbackRecord(trn=trn, accepted=accepted, reasons=reasons)

    return header, records()


def feedback_render(header: FeedbackHeader, records: Iterable[FeedbackRecord]) -> bytes:
    """The file for a header and records (the ARM stand-in in the tests writes it this way)."""
    head = {
        "type": "header",
        "submission_id": header.submission_id,
        "file_sha256": header.file_sha256,
        "status": header.status,
        "received_at": header.received_at,
        "accepted": header.accepted,
        "rejected": header.rejected,
    }
    if header.reasons:
        head["reasons"] = list(header.reasons)
    lines = [json.dumps(head)]
    for r in records:
        item = {"type": "record", "trn": r.trn, "status": "ACPT" if r.accepted else "RJCT"}
        if r.reasons:
            item["reasons"] = list(r.reasons)
        lines.append(json.dumps(item))
    return ("\n".join(lines) + "\n").encode()
