"""Signed checkpoints of the chain head: the anchor that does not live in the database.

Whoever holds the database owner's password can rewrite the trail behind the triggers and make it
consistent again (re-hash from one record on, delete the tail and rewind the head, empty it all):
the chain then verifies against itself. A checkpoint is a small JSON document (the head's
``sequence`` and ``hash``, when the head last moved, when the checkpoint was taken) signed with
HMAC-SHA256 under ``AUDIT_CHECKPOINT_KEY`` (a secret the database never sees) and written through
Django's storage API to every storage in ``AUDIT_CHECKPOINT_STORAGES`` (``audit_checkpoints``, a
local directory, by default; add e.g. an S3 bucket with Object Lock through django-storages as
the WORM copy). ``audit_verify`` (``tradeops.audit.verify``) then checks the table against them:
a record a checkpoint signed must still carry that hash (else a re-hashed range), the table and
the head must reach the newest checkpoint (else a missing tail, a rewound head).

Each checkpoint names the database whose chain it signed (``database_identity``: the engine,
host, port and database name of the settings, or ``AUDIT_CHECKPOINT_DATABASE``): configuration,
which whoever holds the database cannot change from inside it. ``audit_verify`` checks a chain
against its own database's checkpoints only and says how many of other databases it skipped (one
checkpoint storage may serve a SQLite first run, a PostgreSQL database and a test database); a
chain with records but no checkpoint of its own while others have some is itself a finding.
Another database's checkpoint that signs a record of the verified chain (same sequence and hash)
shows that database to be this chain under a former name: its checkpoints are compared too.
Checkpoints written before they named their database (version 1) are taken as this database's:
they keep anchoring the one database a deployment had, and if one was another's it shows as a
finding rather than as silence.

When: every ``AUDIT_CHECKPOINT_EVERY_RECORDS`` records or ``AUDIT_CHECKPOINT_EVERY_MINUTES``
minutes, whichever comes first (``audit_checkpoint_if_due``: Celery beat every 30 s, and the
audit-trail stage after its batches, at most every ``AUDIT_CHECKPOINT_CHECK_SECONDS``), and at
once with ``manage.py audit_checkpoint``. Regulation: 2017/565 Art. 72(1)(c), records not open
to manipulation; the checkpoints make a manipulation by the database's own owner visible.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path

import orjson
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.core.signals import setting_changed
from django.db import connections, router
from django.dispatch import receiver
from django.utils.crypto import salted_hmac

from tradeops.audit.canonical import GENESIS_HASH
from tradeops.audit.models import ChainHead
from tradeops.core.clock import utcnow
from tradeops.core.errors import ApplicationError

log = logging.getLogger(__name__)

KIND = "tradeops.audit.checkpoint"
ALGORITHM = "hmac-sha256"
NAME_RE = re.compile(r"^checkpoint-(\d{15})-(\d{8}T\d{12})Z\.json$")
# The engine at the head of a database identity as ``database_identity`` writes it: a vendor name
# then ``://`` (``postgresql://host:port/name``), or ``sqlite:`` then its file (``sqlite:/abs/path``).
ENGINE_RE = re.compile(r"^(?:([a-z][a-z0-9]*)://|(sqlite):)")


class CheckpointError(ApplicationError):
    code = "audit_checkpoint_error"


@dataclass(frozen=True)
class Checkpoint:
    sequence: int
    hash: str
    head_updated_at: str | None
    created_at: datetime
    key_id: str
    name: str
    database: str | None = None  # None: written before checkpoints named their database (version 1)

    def __str__(self) -> str:
        return f"checkpoint of {self.created_at.isoformat()} (record {self.sequence}, {self.hash[:12]}…)"


@dataclass(frozen=True)
class CheckpointProblem:
    name: str
    detail: str


@dataclass(frozen=True)
class DatabaseCheckpoints:
    """The checkpoints of one database, and what the storages hold besides."""

    database: str
    anchors: list[Checkpoint]  # this database's (unlabelled ones included), oldest first
    unlabelled: int = 0  # of the anchors, written before checkpoints named their database
    foreign: list[Checkpoint] = field(default_factory=list)  # other databases' (verify: this chain under another name?)
    problems: list[CheckpointProblem] = field(default_factory=list)  # files that do not verify, any database
    adopted: frozenset[str] = frozenset()  # other databases whose checkpoints, in anchors, sign records of this chain

    @property
    def others(self) -> dict[str, int]:
        """Another database -> how many of its checkpoints are left aside."""
        return dict(sorted(Counter(c.database for c in self.foreign).items()))

    @property
    def skipped(self) -> int:
        return len(self.foreign)

    def sources(self) -> list[CheckpointSource]:
        """Whose checkpoints were compared with this chain (this database's, those that name no
        database, adopted ones) and whose were skipped as another database's, one line each."""
        groups: dict[tuple[str, str | None], list[Checkpoint]] = {}
        for checkpoint in self.anchors:
            if checkpoint.database is None:
                role = "unlabelled"
            elif checkpoint.database == self.database:
                role = "this"
            else:
                role = "adopted"
            groups.setdefault((role, checkpoint.database), []).append(checkpoint)
        for checkpoint in self.foreign:
            groups.setdefault(("skipped", checkpoint.database), []).append(checkpoint)
        order = {role: index for index, role in enumerate(CheckpointSource.ROLES)}
        return [
            CheckpointSource(
                role=role,
                database=database,
                count=len(found),
                first_sequence=min(c.sequence for c in found),
                last_sequence=max(c.sequence for c in found),
                newest_created_at=max(c.created_at for c in found),
            )
            for (role, database), found in sorted(groups.items(), key=lambda g: (order[g[0][0]], g[0][1] or ""))
        ]


@dataclass(frozen=True)
class CheckpointSource:
    """The checkpoints of one database as a verification used them: ``role`` is ``this`` (this
    database's), ``unlabelled`` (written before checkpoints named their database, taken as this
    one's), ``adopted`` (another database's that sign records of this chain: compared as this
    one's) or ``skipped`` (another database's, not compared)."""

    ROLES = ("this", "unlabelled", "adopted", "skipped")

    role: str
    database: str | None
    count: int
    first_sequence: int
    last_sequence: int
    newest_created_at: datetime

    @property
    def compared(self) -> bool:
        return self.role != "skipped"


def databases_vouching(foreign: list[Checkpoint], hashes: dict[int, str]) -> set[str]:
    """The other databases one of whose checkpoints signs a record of this chain as ``hashes``
    (sequence -> hash in the table) has it: the same chain, by construction of the hashes, so that
    database is this one under a former name (a move, a rename, another spelling of DATABASE_URL)."""
    return {c.database for c in foreign if hashes.get(c.sequence) == c.hash}


def database_identity() -> str:
    """Which database the audit chain lives in, as checkpoints name it: ``AUDIT_CHECKPOINT_DATABASE``
    when set (a database that moved keeps the identity its checkpoints name), else the engine,
    host, port and name of the connection the chain is written through (``postgresql://127.0.0.1:
    5432/tradeops``; ``sqlite:/abs/path/db.sqlite3``). Read from the settings, never from the
    database, so its owner cannot make a truncated chain look like another database's."""
    pinned = getattr(settings, "AUDIT_CHECKPOINT_DATABASE", "")
    if pinned:
        return pinned
    connection = connections[router.db_for_write(ChainHead)]
    config = connection.settings_dict
    name = str(config.get("NAME") or "")
    if connection.vendor == "sqlite":
        if name and name != ":memory:" and not name.startswith("file:"):
            name = str(Path(name).resolve())
        return f"sqlite:{name}"
    return f"{connection.vendor}://{config.get('HOST') or ''}:{config.get('PORT') or ''}/{name}"


def names_an_address(identity: str) -> bool:
    """Whether a database identity carries where the database lives (a host, a port, a path):
    every identity ``database_identity`` derives from the settings does; an
    ``AUDIT_CHECKPOINT_DATABASE`` label may not (``tradeops-prod``), or may (a moved database's
    old ``postgresql://host:port/name``, or a bare host name or address pinned as the label:
    ``db01.prod.internal``, ``10.0.4.7``, hence the dot)."""
    return any(mark in identity for mark in (":", "/", "\\", "@", "."))


def database_label(identity: str | None) -> str | None:
    """What the audit screens and the integration API show for a database identity: the identity
    itself when it names no address (an ``AUDIT_CHECKPOINT_DATABASE`` label such as
    ``tradeops-prod``), else its engine and a keyed fingerprint (``postgresql#3f9a0c1be2d4``). The
    host, port, name or path of the database are reconnaissance an auditor and an integration do
    not need; ``manage.py audit_verify`` and ``audit_checkpoint --list`` print the full identity,
    with this label beside it, for the operator. Keyed with ``SECRET_KEY`` (Django's
    ``salted_hmac``), so the fingerprint cannot be matched against guessed addresses by whoever
    reads it; it changes when ``SECRET_KEY`` is rotated, as the label of the same database."""
    if identity is None or not names_an_address(identity):
        return identity
    # The engine only when the identity starts with one (``postgresql://``, ``sqlite:``): a pinned
    # identity of another form (``db-prod.internal:5432/tradeops``) must not lend its host as one.
    scheme = ENGINE_RE.match(identity)
    engine = (scheme.group(1) or scheme.group(2)) if scheme else "database"
    return f"{engine}#{salted_hmac('tradeops.audit.database_label', identity).hexdigest()[:12]}"


def _keys() -> list[bytes]:
    """The signing key first, then retired keys still accepted when verifying."""
    key = getattr(settings, "AUDIT_CHECKPOINT_KEY", "")
    if not key:
        raise CheckpointError("AUDIT_CHECKPOINT_KEY is not set: checkpoints cannot be signed or checked")
    return [key.encode(), *(k.encode() for k in getattr(settings, "AUDIT_CHECKPOINT_OLD_KEYS", []) if k)]


def key_id(key: bytes) -> str:
    """A public name for a key (never the key): which key signed a checkpoint."""
    return hashlib.sha256(b"tradeops.audit.checkpoint key id\x00" + key).hexdigest()[:16]


def _signed_body(document: dict) -> bytes:
    return orjson.dumps({k: v for k, v in document.items() if k != "signature"}, option=orjson.OPT_SORT_KEYS)


def _sign(document: dict, key: bytes) -> str:
    return hmac.new(key, _signed_body(document), hashlib.sha256).hexdigest()


def checkpoint_storages() -> list:
    aliases = getattr(settings, "AUDIT_CHECKPOINT_STORAGES", ["audit_checkpoints"])
    if not aliases:
        raise CheckpointError("AUDIT_CHECKPOINT_STORAGES names no storage")
    return [storages[alias] for alias in aliases]


def _head() -> tuple[int, str, datetime | None]:
    head = ChainHead.objects.filter(pk=1).values_list("last_sequence", "last_hash", "updated_at").first()
    return head if head is not None else (0, GENESIS_HASH, None)


def audit_checkpoint_create() -> Checkpoint:
    """Sign the chain head as it is now and write it to every checkpoint storage.

    Side effects: one file per storage (``checkpoint-<sequence>-<time>Z.json``). The first
    storage must take it (else ``CheckpointError``); a failure of another one (the external
    copy) is logged at ERROR and the others are still written."""
    key = _keys()[0]
    sequence, head_hash, updated_at = _head()
    created_at = utcnow()
    document = {
        "kind": KIND,
        "version": 2,
        "database": database_identity(),
        "sequence": sequence,
        "hash": head_hash,
        "head_updated_at": updated_at.isoformat() if updated_at else None,
        "created_at": created_at.isoformat(),
        "algorithm": ALGORITHM,
        "key_id": key_id(key),
    }
    document["signature"] = _sign(document, key)
    name = f"checkpoint-{sequence:015d}-{created_at:%Y%m%dT%H%M%S%f}Z.json"
    content = orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
    for index, storage in enumerate(checkpoint_storages()):
        try:
            storage.save(name, ContentFile(content))
        except Exception as exc:
            if index == 0:
                raise CheckpointError(f"cannot write checkpoint {name}: {exc}") from exc
            log.error("audit checkpoint %s not written to %s: %s", name, storage, exc)
    checkpoint = Checkpoint(
        sequence, head_hash, document["head_updated_at"], created_at, document["key_id"], name, document["database"]
    )
    _STATE["last"] = checkpoint
    return checkpoint


def _parse(name: str, raw: bytes, keys: list[bytes]) -> Checkpoint | CheckpointProblem:
    try:
        document = orjson.loads(raw)
        if document.get("kind") != KIND or document.get("algorithm") != ALGORITHM:
            return CheckpointProblem(name, "not a tradeops checkpoint (kind or algorithm)")
        signature = str(document.get("signature", ""))
        if not any(hmac.compare_digest(_sign(document, key), signature) for key in keys):
            known = {key_id(key) for key in keys}
            signed_by = document.get("key_id")
            why = "signed with another key" if signed_by not in known else "content changed after signing"
            return CheckpointProblem(name, f"signature does not verify ({why}; key id {signed_by})")
        return Checkpoint(
            sequence=int(document["sequence"]),
            hash=str(document["hash"]),
            head_updated_at=document.get("head_updated_at"),
            created_at=datetime.fromisoformat(document["created_at"]),
            key_id=str(document.get("key_id", "")),
            name=name,
            database=None if document.get("database") is None else str(document["database"]),
        )
    except (ValueError, KeyError, TypeError) as exc:
        return CheckpointProblem(name, f"unreadable: {exc}")


def checkpoints_load() -> tuple[list[Checkpoint], list[CheckpointProblem]]:
    """Every checkpoint in every checkpoint storage (the same file in two storages counts once),
    oldest first; and the files that are not valid signed checkpoints."""
    keys = _keys()
    found: dict[str, Checkpoint] = {}
    problems: dict[str, CheckpointProblem] = {}
    for storage in checkpoint_storages():
        try:
            _, files = storage.listdir("")
        except FileNotFoundError:
            continue
        for name in files:
            if not name.startswith("checkpoint-") or name in found:
                continue
            with storage.open(name, "rb") as handle:
                parsed = _parse(name, handle.read(), keys)
            if isinstance(parsed, CheckpointProblem):
                problems.setdefault(name, parsed)
            else:
                found[name] = parsed
                problems.pop(name, None)  # a good copy elsewhere outweighs a damaged one
    ordered = sorted(found.values(), key=lambda c: (c.sequence, c.created_at))
    return ordered, sorted(problems.values(), key=lambda p: p.name)


def checkpoints_newest(*, limit: int):
    """The valid signed checkpoints among the ``limit`` newest files of the first checkpoint
    storage, newest first (names sort by sequence, then time): a cheap look for the system check,
    which must not read every file. Files that do not verify are left out (``audit_verify`` names them)."""
    storage = checkpoint_storages()[0]
    keys = _keys()
    try:
        _, files = storage.listdir("")
    except FileNotFoundError:
        return
    for name in sorted((n for n in files if NAME_RE.match(n)), reverse=True)[:limit]:
        with storage.open(name, "rb") as handle:
            parsed = _parse(name, handle.read(), keys)
        if isinstance(parsed, Checkpoint):
            yield parsed


def _of_this_database(checkpoint: Checkpoint, database: str) -> bool:
    return checkpoint.database is None or checkpoint.database == database


def checkpoints_of_this_database() -> DatabaseCheckpoints:
    """``checkpoints_load`` split by database: this database's checkpoints (``database_identity``;
    those that name no database count as this one's), how many of each other database's were
    left aside, and every file that does not verify (a forged file is a finding whichever
    database it claims: its claim is unsigned)."""
    database = database_identity()
    anchors, problems = checkpoints_load()
    mine = [c for c in anchors if _of_this_database(c, database)]
    return DatabaseCheckpoints(
        database=database,
        anchors=mine,
        unlabelled=sum(1 for c in mine if c.database is None),
        foreign=[c for c in anchors if not _of_this_database(c, database)],
        problems=problems,
    )


def checkpoints_adopt(stored: DatabaseCheckpoints, hashes: dict[int, str]) -> DatabaseCheckpoints:
    """``stored`` with the checkpoints of every other database that vouches for this chain
    (``databases_vouching``: one of its checkpoints signs a record as ``hashes``, sequence -> hash
    in the table, has it) moved from ``foreign`` to ``anchors``, and those databases named in
    ``adopted``: their checkpoints are this chain's history under a former name, compared as this
    database's (a tail deleted on the way to the new name is then still named)."""
    moved = databases_vouching(stored.foreign, hashes)
    if not moved:
        return stored
    return replace(
        stored,
        anchors=sorted([*stored.anchors, *(c for c in stored.foreign if c.database in moved)], key=_age),
        foreign=[c for c in stored.foreign if c.database not in moved],
        adopted=frozenset(moved),
    )


def checkpoints_with_adopted(stored: DatabaseCheckpoints | None = None) -> DatabaseCheckpoints:
    """This database's checkpoints (``checkpoints_of_this_database``) with those adopted from other
    databases that sign records of this chain as the table has them now (one indexed read of the
    records those checkpoints signed). What the audit screens list; ``audit_verify`` adopts from
    the hashes it walked."""
    from tradeops.audit.models import AuditRecord

    stored = stored if stored is not None else checkpoints_of_this_database()
    if not stored.foreign:
        return stored
    signed = {c.sequence for c in stored.foreign}
    return checkpoints_adopt(
        stored, dict(AuditRecord.objects.filter(sequence__in=signed).values_list("sequence", "hash"))
    )


def _age(checkpoint: Checkpoint) -> tuple[int, datetime]:
    return checkpoint.sequence, checkpoint.created_at


# ---------------------------------------------------------------- scheduling

_STATE: dict = {"last": None, "loaded": False, "checked": float("-inf")}


@receiver(setting_changed)
def _forget(setting, **kwargs) -> None:
    if setting in ("STORAGES", "DATABASES") or setting.startswith("AUDIT_CHECKPOINT"):
        _STATE.update(last=None, loaded=False, checked=float("-inf"))


def _last() -> Checkpoint | None:
    if not _STATE["loaded"]:
        storage = checkpoint_storages()[0]
        try:
            _, files = storage.listdir("")
        except FileNotFoundError:
            files = []
        names = sorted(name for name in files if NAME_RE.match(name))
        last = None
        database = database_identity()
        for name in reversed(names):  # this database's newest valid one; names sort by sequence, then time
            with storage.open(name, "rb") as handle:
                parsed = _parse(name, handle.read(), _keys())
            if isinstance(parsed, Checkpoint) and _of_this_database(parsed, database):
                last = parsed
                break
        _STATE.update(last=last, loaded=True)
    return _STATE["last"]


def _first_may_be_automatic() -> bool:
    """Whether the scheduler may sign this database's first checkpoint by itself: when no
    checkpoint of another database exists (a new deployment), or one of them signs a record of
    this chain as the table has it (the same chain under a former name: a move, a rename, another
    spelling of DATABASE_URL). Otherwise a person takes the first (``manage.py audit_checkpoint``):
    signed by the scheduler, a chain erased or cut below the old name's checkpoints on the way to
    a new name would be anchored as it is now and pass ``audit_verify`` with the old checkpoints
    skipped as another database's; unsigned, ``audit_verify`` reports it (a chain with records
    and no checkpoint of its own while others have some)."""
    stored = checkpoints_of_this_database()
    if not stored.foreign or checkpoints_with_adopted(stored).adopted:
        return True
    log.error(
        "audit checkpoint: none of %s yet, and the %d checkpoint(s) of other databases sign no record of this "
        "chain: not signing its first automatically; a person takes it (manage.py audit_checkpoint) once "
        "audit_verify has been read, or sets AUDIT_CHECKPOINT_DATABASE if this database was renamed",
        stored.database,
        stored.skipped,
    )
    return False


def audit_checkpoint_if_due(*, force_check: bool = False) -> Checkpoint | None:
    """Write a checkpoint when the head has moved ``AUDIT_CHECKPOINT_EVERY_RECORDS`` records past
    the last one, or has moved at all and ``AUDIT_CHECKPOINT_EVERY_MINUTES`` have passed (or there
    is none yet). Cheap when not due: without ``force_check`` it looks at most every
    ``AUDIT_CHECKPOINT_CHECK_SECONDS`` (one read of the head row). Returns the new checkpoint."""
    now_mono = time.monotonic()
    if not force_check and now_mono - _STATE["checked"] < settings.AUDIT_CHECKPOINT_CHECK_SECONDS:
        return None
    _STATE["checked"] = now_mono
    sequence = _head()[0]
    last = _last()
    if sequence == 0 or (last is not None and sequence <= last.sequence):
        return None
    if last is None and not _first_may_be_automatic():
        return None
    every = timedelta(minutes=settings.AUDIT_CHECKPOINT_EVERY_MINUTES)
    if (
        last is None
        or sequence - last.sequence >= settings.AUDIT_CHECKPOINT_EVERY_RECORDS
        or utcnow() - last.created_at >= every
    ):
        return audit_checkpoint_create()
    return None
