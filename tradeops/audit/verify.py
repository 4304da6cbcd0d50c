"""Chain verification: recompute every hash and name the first broken record.

``audit_verify`` walks ``audit_record`` in sequence order and checks, for each row: the sequence
follows the previous one (or the gap is covered by tombstones of purged records), the stored
hash equals the hash recomputed from the row's fields, and the row's ``prev_hash`` is the hash of
the row before it; at the end the last row must match ``ChainHead``. The first failure is
classified:

- ``tampered``: a row's content no longer matches its hash (or a row was rewritten with a fresh
  hash, so its successor no longer links to it);
- ``deleted``: sequence numbers are missing with no tombstone (or the tail is shorter than the head);
- ``inserted``: rows that are not part of the original chain (renumbered in, or after the head);
- ``reordered``: a row sits at a position other than the one it was signed at.

A rewrite with fresh hashes is consistent by construction, so the table is also checked against
what was anchored outside the database, where the database's own owner cannot reach:

- the signed **checkpoints** of the chain head (``tradeops.audit.checkpoint``): a record a
  checkpoint signed must still carry that hash (``rehashed``: the range between the last
  checkpoint that still matches and the first that does not), and the table and the head must
  reach the newest checkpoint (``missing_tail``, ``rewound_head``); a checkpoint file whose
  signature does not verify is itself a finding (``checkpoint``). Only this database's
  checkpoints are compared (each names its database, from the settings); those of other
  databases sharing the storage are counted and skipped, and a chain with records that no
  checkpoint of its own anchors while other databases' exist is a ``checkpoint`` finding;
- the **tombstones** of purged records (``tombstone``): purged at or after ``retain_until``,
  ``retain_until`` not before the statutory minimum after ``recorded_at``, and the purge
  authorised and recorded in the chain (an ``audit.purged`` record after it covers it, and its
  count matches the tombstones it covers);
- the daily Merkle digests (``tradeops.audit.digest``, ``audit_digest_verify``).

Every finding is kept (``VerifyReport.findings``); ``problem`` is the first.
"""

from __future__ import annotations

import functools
import heapq
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime

import orjson
from django.db import connection

from tradeops.audit.canonical import GENESIS_HASH, chain_hash, record_header
from tradeops.audit.models import AuditRecord, ChainHead, PurgedRecord

FIELDS = (
    "sequence",
    "event_id",
    "occurred_at",
    "recorded_at",
    "retain_until",
    "category",
    "actor_type",
    "actor_id",
    "action",
    "object_type",
    "object_id",
    "corrects",
    "payload",
    "prev_hash",
    "hash",
)
logger = logging.getLogger(__name__)
MOVE_WINDOW = 64  # how far from its position a moved row is searched for (classification only)


def _as_is(identity: str) -> str:
    return identity


def _named_text(template: str, databases: tuple[str, ...], name: Callable[[str], str]) -> str:
    """``template`` with each ``{i}`` given by ``name(databases[i])`` (no database: as it is)."""
    return template.format(*map(name, databases)) if databases else template


@dataclass(frozen=True)
class ChainProblem:
    """A finding. A database it names is a field (``databases``), never part of the text:
    ``detail`` holds ``{0}``, ``{1}``... where they go, and whoever shows the finding names them
    (``text(name)``: the label for auditors and integrations, the identity for admins and the
    command), so no text substitution can miss or mangle one."""

    # tampered | deleted | inserted | reordered (the chain against itself);
    # missing_tail | rewound_head | rehashed | checkpoint (against the checkpoints); tombstone
    kind: str
    sequence: int
    detail: str
    databases: tuple[str, ...] = ()

    def text(self, name: Callable[[str], str] = _as_is) -> str:
        return _named_text(self.detail, self.databases, name)

    def __str__(self) -> str:
        return f"{self.kind}: record {self.sequence}: {self.text()}"


@dataclass(frozen=True)
class VerifyNote:
    """A note of the report; like a finding, the databases it names are fields (``{0}``...)."""

    template: str
    databases: tuple[str, ...] = ()

    def text(self, name: Callable[[str], str] = _as_is) -> str:
        return _named_text(self.template, self.databases, name)

    def __str__(self) -> str:
        return self.text()


@dataclass
class VerifyReport:
    checked: int = 0
    bridged_purged: int = 0
    last_sequence: int = 0
    head_sequence: int | None = None
    seconds: float = 0.0
    problem: ChainProblem | None = None
    findings: list[ChainProblem] = field(default_factory=list)
    checkpoints: int = 0  # of this database (``database``)
    newest_checkpoint: str = ""
    database: str = ""  # the identity checkpoints name this database by (tradeops.audit.checkpoint)
    skipped_checkpoints: int = 0  # of other databases, not compared
    checkpoint_sources: list = field(default_factory=list)  # CheckpointSource: whose were compared, whose skipped
    notes: list[VerifyNote | str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.problem is None and not self.findings

    def add(self, problem: ChainProblem) -> None:
        self.findings.append(problem)
        if self.problem is None:
            self.problem = problem

    @property
    def rate(self) -> float:
        return self.checked / self.seconds if self.seconds else 0.0


_PG_TS = "to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
# PostgreSQL formats the timestamps and UUIDs exactly as ``canonical.ts``/``str`` do, so the hot
# loop never parses a datetime (parsing and re-formatting was most of the verification time).
PG_SELECT = (
    "SELECT sequence, event_id::text, "
    + ", ".join(_PG_TS.format(c) for c in ("occurred_at", "recorded_at", "retain_until"))
    + ", category, actor_type, actor_id, action, object_type, object_id, corrects::text, payload, prev_hash, hash"
    " FROM audit_record"
    " UNION ALL SELECT sequence" + ", NULL" * 12 + ", prev_hash, hash"
    " FROM audit_purged"
    " ORDER BY sequence"
)


def _header(row: tuple, sequence: int | None = None) -> bytes:
    if isinstance(row[2], str):  # pre-formatted by PostgreSQL
        return orjson.dumps([row[0] if sequence is None else sequence, *row[1:12]])
    return record_header(
        sequence=row[0] if sequence is None else sequence,
        event_id=row[1],
        occurred_at=row[2],
        recorded_at=row[3],
        retain_until=row[4],
        category=row[5],
        actor_type=row[6],
        actor_id=row[7],
        action=row[8],
        object_type=row[9],
        object_id=row[10],
        corrects=row[11],
    )


def _holder_of(hash_hex: str) -> int | None:
    """Sequence of the row (or tombstone) whose hash is ``hash_hex``; 0 for the genesis."""
    if hash_hex == GENESIS_HASH:
        return 0
    found = AuditRecord.objects.filter(hash=hash_hex).values_list("sequence", flat=True).first()
    if found is None:
        found = PurgedRecord.objects.filter(hash=hash_hex).values_list("sequence", flat=True).first()
    return found


def _classify_content(row: tuple, prev_seq: int) -> ChainProblem:
    seq = row[0]
    moved_from = None
    for k in range(max(1, seq - MOVE_WINDOW), seq + MOVE_WINDOW + 1):
        if k != seq and chain_hash(row[13], _header(row, k), row[12]) == row[14]:
            moved_from = k
            break
    if moved_from is None:
        return ChainProblem("tampered", seq, "stored hash does not match the record's content")
    holder = _holder_of(row[13])
    if holder is None and moved_from > seq:
        return ChainProblem(
            "deleted",
            moved_from - 1,
            f"the record signed as {moved_from - 1} is gone and later records were renumbered down "
            f"(record now at {seq} was signed at {moved_from})",
        )
    if holder is not None and moved_from < seq and holder < prev_seq:
        return ChainProblem(
            "inserted",
            holder + 1,
            f"records {holder + 1}..{seq - 1} are not part of the chain: record now at {seq} was signed at "
            f"{moved_from}, right after record {holder}",
        )
    return ChainProblem("reordered", seq, f"record now at {seq} was signed at position {moved_from}")


def _classify_link(row: tuple, prev_seq: int) -> ChainProblem:
    holder = _holder_of(row[13])
    if holder is None:
        return ChainProblem(
            "tampered",
            prev_seq,
            f"record {prev_seq} was rewritten: record {row[0]} was chained to a different hash",
        )
    return ChainProblem("reordered", row[0], f"record {row[0]} follows record {holder} in the chain, not {prev_seq}")


_TOMBSTONE_PAD = (None,) * 11  # a tombstone row: sequence, 11 empty fields, no payload, prev_hash, hash


def _rows(chunk_size: int):
    """Records and tombstones of purged records, merged in sequence order. A tombstone has
    ``event_id`` None: it carries only its links (its content left with the archive)."""
    if connection.vendor != "postgresql":
        records = AuditRecord.objects.order_by("sequence").values_list(*FIELDS).iterator(chunk_size=chunk_size)
        tombstones = (
            (seq, *_TOMBSTONE_PAD, None, prev, digest)
            for seq, prev, digest in PurgedRecord.objects.order_by("sequence")
            .values_list("sequence", "prev_hash", "hash")
            .iterator(chunk_size=chunk_size)
        )
        yield from heapq.merge(records, tombstones, key=lambda row: row[0])
        return
    # COPY streams the rows while this loop hashes them (a server-side cursor spent half its time
    # in FETCH round trips, keyset pages left the two processes taking turns); every value arrives
    # as text, which is what the hash needs anyway. The connection is busy until the stream ends:
    # no other query may run on it meanwhile (classification runs after the stream is closed).
    with connection.cursor() as cursor, cursor.cursor.copy(f"COPY ({PG_SELECT}) TO STDOUT") as copy:
        for row in copy.rows():
            yield (int(row[0]), *row[1:])


def audit_verify(*, chunk_size: int = 10_000, checkpoints: bool = True) -> VerifyReport:
    """Recompute the whole chain, then check it against the signed checkpoints (``checkpoints``)
    and the tombstones. Read-only; streams rows in constant memory.

    Returns a report whose ``findings`` name every problem (``problem``: the first), empty when
    intact. Raises ``CheckpointError`` when checkpoints are wanted but no key is configured."""
    from tradeops.audit.checkpoint import checkpoints_of_this_database

    report = VerifyReport()
    started = time.perf_counter()
    stored = checkpoints_of_this_database() if checkpoints else None
    anchors, bad_checkpoints = (stored.anchors, stored.problems) if stored else ([], [])
    # Other databases' checkpoints are read too: one that signs a record of this chain is its own
    # history under another name (_adopt_moved).
    anchored = {c.sequence for c in anchors} | {c.sequence for c in (stored.foreign if stored else [])}
    seen: dict[int, str] = {}  # sequence -> hash in the table, for the anchored sequences
    expected_prev, expected_seq, prev_seq = GENESIS_HASH, 1, 0
    failed: tuple[str, tuple] | None = None
    rows = _rows(chunk_size)
    try:
        for row in rows:
            seq = row[0]
            if seq in anchored:
                seen[seq] = row[14]
            if seq != expected_seq:
                failed = ("sequence", row)
                break
            if row[1] is None:  # tombstone of a purged record: check its link only
                if row[13] != expected_prev:
                    failed = ("tombstone", row)
                    break
                report.bridged_purged += 1
            elif chain_hash(row[13], _header(row), row[12]) != row[14]:
                failed = ("content", row)
                break
            elif row[13] != expected_prev:
                failed = ("link", row)
                break
            else:
                report.checked += 1
            expected_prev, expected_seq, prev_seq = row[14], seq + 1, seq
    finally:
        rows.close()  # end the stream before any other query on this connection
    report.last_sequence = prev_seq
    if failed is None:
        _check_head(report, expected_prev, expected_seq)
    else:
        kind, row = failed
        if kind == "sequence":
            missing = f"records {expected_seq}..{row[0] - 1} are missing (no tombstone)"
            report.add(ChainProblem("deleted", expected_seq, missing))
        elif kind == "tombstone":
            report.add(ChainProblem("tampered", row[0], "the tombstone of a purged record does not link"))
        elif kind == "content":
            report.add(_classify_content(row, prev_seq))
        else:
            report.add(_classify_link(row, prev_seq))
    if report.head_sequence is None and failed is not None:
        head = ChainHead.objects.filter(pk=1).values_list("last_sequence", flat=True).first()
        report.head_sequence = head
    if stored is not None:
        stored = _adopt_moved(report, stored, seen)
        _check_database(report, stored)
        _check_checkpoints(report, stored.anchors, bad_checkpoints, seen, walked_all=failed is None)
    _check_tombstones(report)
    report.seconds = time.perf_counter() - started
    return report


def _adopt_moved(report: VerifyReport, stored, seen: dict[int, str]):
    """Another database's checkpoints that sign a record of this chain as the table has it (same
    sequence, same hash: the same chain, by construction of the hashes) are this chain's history
    under a name it no longer has (the database moved or was renamed, DATABASE_URL spelled
    another way): every checkpoint of that database is compared as this one's
    (``checkpoint.checkpoints_adopt``). Else a tail deleted on the way would pass once the
    scheduler anchored the rewound head under the new name, with the old name's checkpoints
    skipped as another database's."""
    from tradeops.audit.checkpoint import checkpoints_adopt

    others = stored.others
    stored = checkpoints_adopt(stored, seen)
    if stored.adopted:
        adopted = tuple(sorted(stored.adopted))
        listed = ", ".join(f"{{{i}}} ({others[database]})" for i, database in enumerate(adopted))
        report.notes.append(
            VerifyNote(
                f"checkpoints of {listed} sign records of this chain: compared as this database's (it moved or was "
                "renamed; set AUDIT_CHECKPOINT_DATABASE to keep one identity)",
                adopted,
            )
        )
    return stored


def _check_database(report: VerifyReport, stored) -> None:
    """Which checkpoints are this database's: say what was left aside, and refuse a chain with
    records that none of them anchors while other databases' checkpoints exist (this database
    new and not anchored yet, or moved under another identity: either way nothing outside it
    vouches for it)."""
    report.database = stored.database
    report.skipped_checkpoints = stored.skipped
    report.checkpoint_sources = stored.sources()
    if stored.others:
        others = tuple(stored.others)
        listed = ", ".join(f"{{{i}}} ({stored.others[database]})" for i, database in enumerate(others))
        report.notes.append(
            VerifyNote(
                f"{stored.skipped} checkpoint(s) of other databases skipped: {listed}; this one is {{{len(others)}}}",
                (*others, stored.database),
            )
        )
    if stored.unlabelled:
        report.notes.append(
            f"{stored.unlabelled} checkpoint(s) name no database (written before checkpoints did): "
            f"checked as this database's"
        )
    head = report.head_sequence or report.last_sequence
    if not stored.anchors and stored.others and head:
        report.add(
            ChainProblem(
                "checkpoint",
                0,
                f"no signed checkpoint names this database ({{0}}), but {stored.skipped} of other "
                "databases do: nothing outside the database vouches for its chain. If it is new, take its "
                "first checkpoint (manage.py audit_checkpoint; the scheduler does it too); if it moved (another "
                "host, port or name), set AUDIT_CHECKPOINT_DATABASE to the identity its checkpoints name",
                (stored.database,),
            )
        )


def _unlabelled(checkpoint) -> str:
    """What to add to a finding against a checkpoint that names no database (version 1)."""
    if checkpoint.database is not None:
        return ""
    return (
        f" ({checkpoint.name} names no database: written before checkpoints did, so taken as this one's; "
        "if it was another database's, move it out of the checkpoint storage)"
    )


def _check_checkpoints(report: VerifyReport, anchors, bad, seen: dict[int, str], *, walked_all: bool) -> None:
    """The table against the signed checkpoints (see the module doc)."""
    report.checkpoints = len(anchors)
    for problem in bad:
        report.add(ChainProblem("checkpoint", 0, f"checkpoint {problem.name}: {problem.detail}"))
    if not anchors:
        report.notes.append("no signed checkpoint of this database yet: the chain was checked against itself only")
        return
    newest = max(anchors, key=lambda c: (c.sequence, c.created_at))
    report.newest_checkpoint = str(newest)
    last_good = None
    for anchor in anchors:  # oldest first
        found = seen.get(anchor.sequence)
        if found is None:
            continue
        if found == anchor.hash:
            last_good = anchor
            continue
        start = last_good.sequence + 1 if last_good else 1
        since = f"records up to {last_good.sequence} still match the {last_good}" if last_good else "no earlier match"
        report.add(
            ChainProblem(
                "rehashed",
                start,
                f"records {start}..{anchor.sequence} were re-hashed: the {anchor} signed record {anchor.sequence} "
                f"as {anchor.hash[:16]}…, the table has {found[:16]}… ({since}){_unlabelled(anchor)}",
            )
        )
        break
    if walked_all and report.last_sequence < newest.sequence:
        report.add(
            ChainProblem(
                "missing_tail",
                report.last_sequence + 1,
                f"records {report.last_sequence + 1}..{newest.sequence} are missing: the {newest} had them"
                + _unlabelled(newest),
            )
        )
    head = report.head_sequence
    if head is None or head < newest.sequence:
        where = "is missing" if head is None else f"is at record {head}"
        report.add(
            ChainProblem(
                "rewound_head",
                head or 0,
                f"the chain head {where}, but the {newest} saw it at record {newest.sequence}" + _unlabelled(newest),
            )
        )


def _check_tombstones(report: VerifyReport) -> None:
    """Every purge was due and authorised, and is itself recorded in the chain (see module doc)."""
    from tradeops.audit.services import DEFAULT_RETENTION_YEARS, YEAR

    tombstones = list(
        PurgedRecord.objects.order_by("sequence").values_list(
            "sequence", "category", "recorded_at", "retain_until", "purged_at"
        )
    )
    if not tombstones:
        return
    purges = []  # (sequence, first, last, count, purged_at or None, actor)
    for seq, payload, actor in AuditRecord.objects.filter(action="audit.purged").values_list(
        "sequence", "payload", "actor_id"
    ):
        data = orjson.loads(payload)
        when = data.get("purged_at")
        when = datetime.fromisoformat(when) if when else None
        first, last, count = int(data.get("first", 0)), int(data.get("last", -1)), int(data.get("count", 0))
        purges.append((seq, first, last, count, when, actor))
    covered: dict[int, int] = {}
    for seq, category, recorded_at, retain_until, purged_at in tombstones:
        if purged_at < retain_until:
            report.add(
                ChainProblem(
                    "tombstone",
                    seq,
                    f"purged at {purged_at.isoformat()}, before its retention ended ({retain_until.isoformat()})",
                )
            )
        years = DEFAULT_RETENTION_YEARS.get(category, DEFAULT_RETENTION_YEARS["default"])
        if retain_until < recorded_at + years * YEAR:
            report.add(
                ChainProblem(
                    "tombstone",
                    seq,
                    f"retain_until {retain_until.isoformat()} is less than the {years} years the law requires "
                    f"for {category} records after {recorded_at.isoformat()}",
                )
            )
        cover = next(
            (p for p in purges if p[0] > seq and p[1] <= seq <= p[2] and (p[4] is None or p[4] == purged_at) and p[5]),
            None,
        )
        if cover is None:
            report.add(
                ChainProblem(
                    "tombstone",
                    seq,
                    "no audit.purged record in the chain authorises this purge (a record deleted behind the triggers?)",
                )
            )
        else:
            covered[cover[0]] = covered.get(cover[0], 0) + 1
    for seq, first, last, count, _, _ in purges:
        if covered.get(seq, 0) != count:
            report.add(
                ChainProblem(
                    "tombstone",
                    seq,
                    f"the purge recorded at {seq} removed {count} records of {first}..{last}, "
                    f"but {covered.get(seq, 0)} tombstones belong to it",
                )
            )


def verify_report_named(report: VerifyReport, *, name: Callable[[str], str | None]) -> VerifyReport:
    """The report as a screen or the API shows it: every database it names (``database``, the
    checkpoint sources, and the findings' and notes' ``databases`` fields) given by ``name``,
    its findings and notes as text. ``name`` is ``database_label`` for auditors and integrations
    (``verify_report_labelled``), the identity itself for admins. Nothing is replaced in text:
    each finding and note puts the name where its template says."""

    @functools.cache
    def named(identity: str) -> str:
        return name(identity) or identity

    def note_text(note: VerifyNote | str) -> str:
        return note.text(named) if isinstance(note, VerifyNote) else note

    def finding(problem: ChainProblem) -> ChainProblem:
        return ChainProblem(problem.kind, problem.sequence, problem.text(named))

    return replace(
        report,
        database=named(report.database) if report.database else report.database,
        checkpoint_sources=[
            replace(source, database=named(source.database)) if source.database else source
            for source in report.checkpoint_sources
        ],
        notes=[note_text(note) for note in report.notes],
        findings=[finding(problem) for problem in report.findings],
        problem=finding(report.problem) if report.problem else None,
    )


def verify_report_labelled(report: VerifyReport) -> VerifyReport:
    """The report as auditors, officers and the integration API see it (and as ``audit.verified``
    records it): every database by its label (``tradeops.audit.checkpoint.database_label``:
    engine and a keyed fingerprint, or the ``AUDIT_CHECKPOINT_DATABASE`` label), so no host,
    port, database name or path reaches them. ``manage.py audit_verify`` prints identities."""
    from tradeops.audit.checkpoint import database_label

    labelled = verify_report_named(report, name=database_label)
    if labelled.database != report.database or any(
        a.database != b.database for a, b in zip(labelled.checkpoint_sources, report.checkpoint_sources, strict=True)
    ):
        labelled.notes.append(
            "databases are shown by label (engine#fingerprint); manage.py audit_verify prints them in full"
        )
    return labelled


# A database identity as ``database_identity`` writes it (``postgresql://host:port/name``,
# ``sqlite:/path``), an IPv4 address (with a port), a host name with a port.
ADDRESS = re.compile(
    r"(?:postgresql|postgres|mysql|oracle|sqlite)(?:://|:)[^\s,;()'\"]+"
    r"|\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?(?:/[^\s,;()'\"]*)?"
    r"|\b(?:localhost|[A-Za-z][\w-]*(?:\.[\w-]+)+):\d{2,5}(?:/[^\s,;()'\"]*)?"
)


def _known_identities() -> list[str]:
    """This database's identity and those the checkpoints name (best effort: the storage may be
    unreadable or unkeyed here), longest first."""
    from tradeops.audit.checkpoint import checkpoints_load, database_identity

    identities = {database_identity()}
    try:
        identities |= {c.database for c in checkpoints_load()[0] if c.database}
    except Exception as exc:  # noqa: BLE001 - display only: the address sweep below still applies
        logger.warning("audit: checkpoints unreadable while labelling a verification record: %s", exc)
    return sorted(identities, key=len, reverse=True)


def verified_payload_labelled(data):
    """An ``audit.verified`` record's payload as a non-admin sees it. Records written before
    findings named databases by field may hold full identities in their text; the trail is
    immutable, so they are labelled when shown (screens and API): every string in the payload
    with the identities this deployment knows, then anything shaped like a database address
    (``postgresql://...``, ``sqlite:...``, an IP address, ``host:port``), replaced by its label."""
    from tradeops.audit.checkpoint import database_label, names_an_address

    known = [i for i in _known_identities() if names_an_address(i)]

    def label(text: str) -> str:
        for identity in known:
            if identity in text:
                text = text.replace(identity, database_label(identity))
        return ADDRESS.sub(lambda m: database_label(m.group(0)) or m.group(0), text)

    def walk(value):
        if isinstance(value, str):
            return label(value)
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        return value

    return walk(data)


def verified_payload_may_name_addresses(data) -> bool:
    """Whether an ``audit.verified`` record's payload may name a database by address: one written
    before 2026-12-06, which has no ``checkpoint_sources`` (every run recorded since has them, and
    names databases by label only: ``audit_verification_record`` labels the report it records).
    The audit search's ``_LEGACY_VERIFIED`` is this test in SQL."""
    return not isinstance(data, dict) or "checkpoint_sources" not in data


def audit_payload_shown(record, *, addresses: bool = False):
    """The payload of ``record`` (an ``AuditRecord``) as a screen or the API shows it: as
    recorded, except an older ``audit.verified`` record's databases for whoever may not see
    addresses (``verified_payload_labelled``; ``addresses``: admins on the audit screens). A
    record written since holds labels already: shown as recorded, without reading the
    checkpoints for the identities this deployment knows."""
    data = record.payload_data
    if record.action == "audit.verified" and not addresses and verified_payload_may_name_addresses(data):
        return verified_payload_labelled(data)
    return data


def _check_head(report: VerifyReport, last_hash: str, next_seq: int) -> None:
    head = ChainHead.objects.filter(pk=1).values_list("last_sequence", "last_hash").first()
    if head is None:
        if report.checked:
            report.add(ChainProblem("tampered", 0, "the chain head row is missing"))
        return
    head_seq, head_hash = head
    report.head_sequence = head_seq
    last = next_seq - 1
    if last < head_seq:
        report.add(ChainProblem("deleted", last + 1, f"records {last + 1}..{head_seq} (the tail) are missing"))
    elif last > head_seq:
        added = f"records {head_seq + 1}..{last} were added after the chain head"
        report.add(ChainProblem("inserted", head_seq + 1, added))
    elif head_hash != last_hash:
        report.add(ChainProblem("tampered", last, "the last record's hash differs from the chain head"))
