"""The audit trail's writers. ``audit_append_many`` is the one path into ``audit_record`` from
Python; the order path's one-statement write on PostgreSQL appends under the same head lock in
the database, from rows prepared here (``audit_server_rows``).

Every service that changes the system of record calls ``audit_append`` (or one of the helpers
below) inside its own transaction, so work done by tasks, consumers and commands is audited as
well as work done in a request (NetBox's lesson; 2017/565 Art. 72). The audit consumer records
trading-events and compliance-events through ``audit_append_event``.

Concurrency: appenders lock the one-row ``ChainHead`` (``select_for_update``; on SQLite the
IMMEDIATE transaction mode serialises writers), so sequence numbers are gap-free and each record's
``prev_hash`` is the hash of the record before it. Idempotency: ``event_id`` is unique; a batch
drops ids already recorded (checked after taking the lock, so two appenders of one event cannot
race) and duplicates within itself.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson
from django.conf import settings
from django.db import connection, transaction
from msgspec import Struct as _Struct
from msgspec.structs import asdict as _struct_asdict

from tradeops.audit.actors import event_actor
from tradeops.audit.canonical import (
    CANONICAL_OPTIONS,
    GENESIS_HASH,
    canonical_bytes,
    canonical_default,
    chain_hash_parts,
    header_middle,
    header_parts,
    ts,
)
from tradeops.audit.models import ActorType, AuditRecord, Category, ChainHead, RetentionHold, SearchDocument
from tradeops.audit.objects import alert_object_id
from tradeops.core.clock import ensure_utc, utcnow
from tradeops.core.errors import ApplicationError, NotFound

if TYPE_CHECKING:
    from tradeops.audit.verify import VerifyReport

# Rows per INSERT statement where COPY is not used (SQLite, small batches): 1,000 keeps a statement
# under SQLite's 32,766-parameter limit (15 columns x 1,000 = 15,000).
INSERT_BATCH = 1000
LOOKUP_BATCH = 900  # event_ids per IN (...) lookup

DEFAULT_RETENTION_YEARS = {"default": 5, Category.COMPLIANCE: 7}
YEAR = timedelta(days=365, hours=6)  # Julian year: "5 years" never falls a day short


class AuditError(ApplicationError):
    code = "audit_error"


@dataclass(frozen=True)
class AuditEntry:
    """One thing to record. ``payload`` must be JSON-able through ``canonical_json``."""

    action: str
    object_type: str
    object_id: str
    occurred_at: datetime
    payload: Mapping[str, Any] = field(default_factory=dict)
    actor: str = "system"  # "user:alice", "service:execution-worker", "algorithm:momo-v2", "system"
    event_id: uuid.UUID | None = None
    category: str = Category.TRADING
    corrects: uuid.UUID | None = None
    # ``canonical_bytes(payload)`` when the caller has serialised the payload already (the order
    # path hashes it for the event id: ``trading.orders.records``), stored and hashed as is; the
    # same bytes as the payload would give, never anything else. Not part of the entry's identity.
    canonical: bytes | None = field(default=None, compare=False, repr=False)


_ACTOR_PREFIXES = {
    "user": ActorType.USER,
    "service": ActorType.SERVICE,
    "svc": ActorType.SERVICE,
    "algorithm": ActorType.ALGORITHM,
    "algo": ActorType.ALGORITHM,
    "system": ActorType.SYSTEM,
}


_ACTORS_PARSED: dict[str, tuple[str, str]] = {}  # actor_parse's answers (a pure function of a few names)


def _actor_parsed(actor: str) -> tuple[str, str]:
    """``actor_parse``, remembered per actor text (a handful in a run: the stages, the people)."""
    parsed = _ACTORS_PARSED.get(actor)
    if parsed is None:
        if len(_ACTORS_PARSED) > 4096:
            _ACTORS_PARSED.clear()
        parsed = _ACTORS_PARSED[actor] = actor_parse(actor)
    return parsed


def actor_parse(actor: str) -> tuple[str, str]:
    """``"user:alice"`` -> ``("user", "alice")``; a bare name is a service, ``"system"`` the system."""
    kind, sep, ident = actor.partition(":")
    if sep and kind in _ACTOR_PREFIXES:
        return _ACTOR_PREFIXES[kind], ident or kind
    if actor in ("", "system"):
        return ActorType.SYSTEM, "system"
    return ActorType.SERVICE, actor


def retention_years(category: str) -> int:
    years = {**DEFAULT_RETENTION_YEARS, **getattr(settings, "AUDIT_RETENTION_YEARS", {})}
    return int(years.get(category, years["default"]))


def _lock_head_values() -> tuple[int, str]:
    """Lock the chain head and return its (sequence, hash): one plain statement (the append's
    hot path: a lock-step replay appends several times a second), the ORM only to create it on
    first use. Precondition: inside ``transaction.atomic``."""
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT last_sequence, last_hash FROM audit_chain_head WHERE id = 1{lock}")  # noqa: S608  constant text
        row = cursor.fetchone()
    if row is not None:
        return int(row[0]), row[1]
    head = _lock_head()
    return head.last_sequence, head.last_hash


def _lock_head() -> ChainHead:
    """Lock the chain head (creating it on first use). Precondition: inside ``transaction.atomic``."""
    head = ChainHead.objects.select_for_update().filter(pk=1).first()
    if head is not None:
        return head
    last = AuditRecord.objects.order_by("-sequence").values_list("sequence", "hash").first()
    seq, last_hash = last if last else (0, GENESIS_HASH)
    # get_or_create retries a lost race (a concurrent first appender) inside a savepoint
    ChainHead.objects.get_or_create(pk=1, defaults={"last_sequence": seq, "last_hash": last_hash})
    return ChainHead.objects.select_for_update().get(pk=1)


COLUMNS = tuple(f.attname for f in AuditRecord._meta.concrete_fields)


def _insert(rows: list[tuple]) -> None:
    """Insert rows (tuples in ``COLUMNS`` order). PostgreSQL: ``COPY``, whatever the batch's size
    (no SQL to build or parse: several times less CPU per row than an INSERT, and in a lock-step
    replay's small batches less than ``bulk_create``'s compilation: bench/pipeline_replay.py);
    SQLite: one prepared INSERT run for every row; elsewhere ``bulk_create``."""
    if connection.vendor == "postgresql":
        with (
            connection.cursor() as cursor,
            cursor.cursor.copy(f"COPY audit_record ({', '.join(COLUMNS)}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)
        return
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.executemany(_INSERT_SQL, _sqlite_values(rows))
        return
    AuditRecord.objects.bulk_create([AuditRecord(*row) for row in rows], batch_size=INSERT_BATCH)


def _sqlite_values(rows: list[tuple]) -> list[tuple]:
    """The rows' values as SQLite stores them, as the fields' ``get_db_prep_save`` would give:
    UUIDs as hex text, aware datetimes as naive UTC text (``sqlite_datetime_adapter``), the rest
    as they are. One prepared INSERT is run for every row: bulk_create's SQL compilation was most
    of the append's CPU in a lock-step replay (bench/pipeline_replay.py). A batch's rows share
    their ``recorded_at`` and ``retain_until`` (one object per batch and category) and a replayed
    bar's records their ``occurred_at``: each distinct time is adapted once
    (tests/tradeops/audit/test_sqlite_adapt.py holds the values to the fields' own)."""
    adapt_time = sqlite_datetime_adapter()
    texts: dict[datetime, str] = {}  # exact aware-UTC datetimes only: equal means the same instant

    def time_text(value):
        if type(value) is datetime and value.tzinfo is UTC:
            text = texts.get(value)
            if text is None:
                text = texts[value] = adapt_time(value)
            return text
        return adapt_time(value)

    def uuid_hex(value):
        return value.hex if isinstance(value, uuid.UUID) else uuid.UUID(str(value)).hex

    values = []
    last_now = last_retain = None
    now_text = retain_text = ""
    for (
        sequence,
        event_id,
        occurred_at,
        now,
        retain_until,
        category,
        actor_type,
        actor_id,
        action,
        object_type,
        object_id,
        payload,
        corrects,
        prev_hash,
        digest,
    ) in rows:
        if now is not last_now:
            last_now, now_text = now, None if now is None else time_text(now)
        if retain_until is not last_retain:
            last_retain, retain_text = retain_until, None if retain_until is None else time_text(retain_until)
        values.append(
            (
                sequence,
                None if event_id is None else (event_id.hex if type(event_id) is uuid.UUID else uuid_hex(event_id)),
                None if occurred_at is None else time_text(occurred_at),
                now_text,
                retain_text,
                category,
                actor_type,
                actor_id,
                action,
                object_type,
                object_id,
                payload,
                None if corrects is None else uuid_hex(corrects),
                prev_hash,
                digest,
            )
        )
    return values


# _sqlite_values' order: a field added to AuditRecord must be added there too
_SQLITE_VALUES_COLUMNS = (
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
    "payload",
    "corrects",
    "prev_hash",
    "hash",
)
if COLUMNS != _SQLITE_VALUES_COLUMNS:
    raise RuntimeError(f"audit_record's columns {COLUMNS} are not the ones _sqlite_values writes")


def sqlite_datetime_adapter(conn=None):
    """SQLite's ``adapt_datetimefield_value`` (an aware datetime as naive text in the connection's
    time zone), with a shortcut for what the trail holds, aware UTC times on a UTC connection:
    the same text without Django's checks and ``astimezone`` per value (tests/tradeops/audit)."""
    conn = conn if conn is not None else connection
    adapt = conn.ops.adapt_datetimefield_value
    if not settings.USE_TZ or conn.timezone is not UTC:
        return adapt

    def adapt_utc(value):
        if type(value) is datetime and value.tzinfo is UTC:
            return str(value.replace(tzinfo=None))
        return adapt(value)

    return adapt_utc


_INSERT_SQL = f"INSERT INTO audit_record ({', '.join(COLUMNS)}) VALUES ({', '.join(['%s'] * len(COLUMNS))})"  # noqa: S608  column names from the model


def audit_known_event_ids(ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    """Which of ``ids`` the trail holds already: plain statements (an append's hot path)."""
    known: set[uuid.UUID] = set()
    field_prep = _EVENT_ID_FIELD.get_db_prep_value
    native = connection.features.has_native_uuid_field

    def prep(i):  # as the field prepares it (a UUID as is, or as hex text), without its checks
        if type(i) is uuid.UUID:
            return i if native else i.hex
        return field_prep(i, connection)

    postgres = connection.vendor == "postgresql"
    if connection.vendor == "sqlite" and connection.features.supports_json_field:
        # One JSON array parameter (SQLite's json_each): the same statement text whatever the
        # batch's size, so compiled once, and no placeholder to bind per id; about half the CPU
        # per id of an IN list of placeholders through Django's cursor (bench/README.md).
        asked = {prep(i): i for i in ids}  # as stored -> as asked (a UUID back without parsing its text)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT event_id FROM audit_record WHERE event_id IN (SELECT value FROM json_each(%s))",
                [_orjson_dumps(list(asked)).decode()],
            )
            for (v,) in cursor.fetchall():
                i = asked.get(v)
                known.add(i if type(i) is uuid.UUID else uuid.UUID(v))
        return known
    with connection.cursor() as cursor:
        for start in range(0, len(ids), LOOKUP_BATCH):
            chunk = [prep(i) for i in ids[start : start + LOOKUP_BATCH]]
            if postgres:  # one array parameter: the same statement text whatever the batch's size
                cursor.execute("SELECT event_id FROM audit_record WHERE event_id = ANY(%s)", [chunk])
                known.update(v if isinstance(v, uuid.UUID) else uuid.UUID(v) for (v,) in cursor.fetchall())
                continue
            marks = ", ".join(["%s"] * len(chunk))
            cursor.execute(f"SELECT event_id FROM audit_record WHERE event_id IN ({marks})", chunk)  # noqa: S608  placeholders only
            known.update(v if isinstance(v, uuid.UUID) else uuid.UUID(v) for (v,) in cursor.fetchall())
    return known


_EVENT_ID_FIELD = AuditRecord._meta.get_field("event_id")
_orjson_dumps = orjson.dumps
_HEAD_UPDATED_AT = ChainHead._meta.get_field("updated_at")


def audit_append_many(*, entries: Iterable[AuditEntry], recorded_at: datetime | None = None) -> list[AuditRecord]:
    """Append entries to the chain, in order, under the chain-head lock. Returns the new records.

    Entries whose ``event_id`` is already in the trail (or repeated in the batch) are skipped:
    redelivered events are recorded once. Entries without an ``event_id`` get a random one.
    ``recorded_at`` defaults to the clock read after the lock is taken (so it grows with the
    sequence); pass it only to import historical records. Bad input (a naive datetime, a value
    JSON cannot hold) is refused before any write. Side effects: inserts rows, moves the chain
    head; on commit, indexes the new rows in Elasticsearch when that backend is on."""
    rows = _append(entries, recorded_at)
    records = [AuditRecord(*row) for row in rows]
    for record in records:
        record._state.adding = False
    return records


def _append(entries: Iterable[AuditEntry], recorded_at: datetime | None) -> list[tuple]:
    """``audit_append_many`` returning the rows written (tuples in ``COLUMNS`` order), not model
    instances: the audit-trail sink, which appends thousands a second, has no use for them."""
    # Everything that can refuse the input runs first, outside the transaction, so a refusal
    # leaves the caller's transaction usable; the lock is held only for numbering and hashing.
    return _append_prepared(_prepare(entries), recorded_at)


def _append_prepared(
    prepared_supplied: tuple[list[tuple], list[uuid.UUID]], recorded_at: datetime | None
) -> list[tuple]:
    """``_append`` of entries already prepared (``_prepare``, ``_prepare_events``)."""
    prepared, supplied = prepared_supplied
    if not prepared:
        return []
    fixed_now = ensure_utc(recorded_at) if recorded_at else None
    # savepoint=False: no SAVEPOINT/RELEASE round trips inside the caller's transaction; a
    # database error here aborts the caller's transaction, which is what an audit failure must do.
    with transaction.atomic(savepoint=False):
        head_sequence, head_hash = _lock_head_values()
        known = audit_known_event_ids(supplied) if supplied else set()
        now = fixed_now or utcnow()
        rows, sequence, last_hash = _chain(prepared, head_sequence, head_hash, now, known)
        if not rows:
            return []
        _insert(rows)
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE audit_chain_head SET last_sequence = %s, last_hash = %s, updated_at = %s WHERE id = 1",
                [sequence, last_hash, _HEAD_UPDATED_AT.get_db_prep_save(now, connection)],
            )
        audit_index_on_commit([row[0] for row in rows])
        audit_appends_count(row[5] for row in rows)  # category (COLUMNS order)
        return rows


def _prepare(entries: Iterable[AuditEntry]) -> tuple[list[tuple], list[uuid.UUID]]:
    """Validate and serialise entries (canonical payload text, parsed actor, aware UTC times,
    the header's text but for what the lock gives: ``_prepared``), dropping ids repeated in the
    batch. Returns the prepared tuples and the caller-supplied ids (those may be redeliveries;
    fresh uuid4s cannot be). Raises on bad input; touches no table."""
    prepared: list[tuple] = []
    seen: set[uuid.UUID] = set()
    supplied: list[uuid.UUID] = []
    for entry in entries:
        event_id = entry.event_id or uuid.uuid4()
        if event_id in seen:
            continue
        seen.add(event_id)
        if entry.event_id is not None:
            supplied.append(event_id)
        prepared.append(
            _prepared(
                event_id,
                entry.occurred_at,
                str(entry.category),
                entry.actor,
                entry.action,
                entry.object_type,
                str(entry.object_id),
                entry.payload,
                entry.corrects,
                entry.canonical,
            )
        )
    return prepared, supplied


def _prepared(
    event_id: uuid.UUID,
    occurred_at: datetime,
    category: str,
    actor: str,
    action: str,
    object_type: str,
    object_id: str,
    payload: Any,
    corrects: uuid.UUID | None,
    canonical: bytes | None = None,
) -> tuple:
    """One entry prepared: ``(event_id, occurred_at, category, actor_type, actor_id, action,
    object_type, object_id, payload text, corrects, header lead, header rest, payload bytes)``;
    the header's bytes are ``header_join(sequence, lead, header_middle(recorded_at,
    retain_until), rest)``, what ``record_header`` gives (tests/tradeops/audit/test_sink_prepare.py)."""
    if type(occurred_at) is not datetime or occurred_at.tzinfo is not UTC:
        occurred_at = ensure_utc(occurred_at)  # refuses a naive time; else the same instant in UTC
    actor_type, actor_id = _actor_parsed(actor)
    # before ts(occurred_at): the payload's own time is often the same object; ``canonical``: the
    # caller's canonical_bytes(payload) (AuditEntry.canonical)
    body = canonical_bytes(payload) if canonical is None else canonical
    lead, rest = header_parts(
        event_id, ts(occurred_at), category, actor_type, actor_id, action, object_type, object_id, corrects
    )
    return (
        event_id,
        occurred_at,
        category,
        actor_type,
        actor_id,
        action,
        object_type,
        object_id,
        body.decode(),
        corrects,
        lead,
        rest,
        body,
    )


def _chain(
    prepared: list[tuple], sequence: int, prev: str, now: datetime, known: set[uuid.UUID]
) -> tuple[list[tuple], int, str]:
    """Number and hash prepared entries after the head ``(sequence, prev)``, skipping ``known``
    ids. Returns the rows (tuples in ``COLUMNS`` order) and the new head. Pure; the caller holds
    the chain-head lock. The header's two lock-time stamps are formatted once per category."""
    rows: list[tuple] = []
    middles: dict[str, tuple[datetime, bytes]] = {}
    for (
        event_id,
        occurred_at,
        category,
        actor_type,
        actor_id,
        action,
        object_type,
        object_id,
        payload,
        corrects,
        lead,
        rest,
        body,
    ) in prepared:
        if known and event_id in known:
            continue
        sequence += 1
        stamped = middles.get(category)
        if stamped is None:
            retain = now + retention_years(category) * YEAR
            stamped = middles[category] = (retain, header_middle(now, retain))
        retain_until, middle = stamped
        digest = chain_hash_parts(prev, sequence, lead, middle, rest, body)
        # positional, in COLUMNS order (Model.__init__ is several times faster with args)
        rows.append(
            (
                sequence,
                event_id,
                occurred_at,
                now,
                retain_until,
                category,
                actor_type,
                actor_id,
                action,
                object_type,
                object_id,
                payload,
                corrects,
                prev,
                digest,
            )
        )
        prev = digest
    return rows, sequence, prev


# ---------------------------------------------------------------- appends numbered in the database
# For a writer that appends in ONE statement on PostgreSQL (trading.orders.write: the order path's
# ``trading_order_write`` function, trading migration 0003). Same chain, same rows, same head lock
# as audit_append_many; everything that does not need the head (validation, canonical payload and
# header text) is done here, before the statement; the database numbers the records under the
# head lock, stamps ``recorded_at`` with its clock and hashes them as ``chain_hash`` does.


def audit_server_rows(entries: Iterable[AuditEntry]) -> list[dict]:
    """Validate and serialise entries for a database-side append (no database access): each
    with its canonical payload text, its header text but for the sequence, ``recorded_at`` and
    ``retain_until`` (``record_header_parts``: ``lead`` and ``rest``) and its retention in
    microseconds. Raises on bad input (a naive datetime, a value JSON cannot hold).
    Precondition for the caller: the entries carry fresh event ids (no redelivery check)."""
    rows = []
    retention_us: dict[str, int] = {}
    for (
        event_id,
        occurred_at,
        category,
        actor_type,
        actor_id,
        action,
        object_type,
        object_id,
        payload,
        corrects,
        lead,
        rest,
        _body,
    ) in _prepare(entries)[0]:
        # record_header_parts' text: _prepared built the same parts (header_parts) as bytes
        lead, rest = lead.decode(), rest.decode()
        retain = retention_us.get(category)
        if retain is None:
            retain = retention_us[category] = (retention_years(category) * YEAR) // timedelta(microseconds=1)
        rows.append(
            {
                "event_id": event_id,
                "occurred_at": occurred_at,
                "category": category,
                "actor_type": actor_type,
                "actor_id": actor_id,
                "action": action,
                "object_type": object_type,
                "object_id": object_id,
                "payload": payload,
                "corrects": corrects,
                "lead": lead,
                "rest": rest,
                "retain_us": retain,
            }
        )
    return rows


def audit_append(
    *,
    action: str,
    object_type: str,
    object_id: str,
    occurred_at: datetime,
    payload: Mapping[str, Any] | None = None,
    actor: str = "system",
    event_id: uuid.UUID | None = None,
    category: str = Category.TRADING,
    corrects: uuid.UUID | None = None,
) -> AuditRecord | None:
    """Append one record; returns it, or ``None`` when ``event_id`` was already recorded.

    Preconditions: call inside the writer's transaction so the record exists exactly when the
    write it describes commits. Regulation: 2017/565 Art. 72, MiFIR Art. 25."""
    created = audit_append_many(
        entries=[
            AuditEntry(
                action=action,
                object_type=object_type,
                object_id=str(object_id),
                occurred_at=occurred_at,
                payload=payload or {},
                actor=actor,
                event_id=event_id,
                category=category,
                corrects=corrects,
            )
        ]
    )
    return created[0] if created else None


# ---------------------------------------------------------------- events (the audit consumer)

_EVENT_OBJECTS: dict[str, tuple[str, tuple[str, ...]]] = {
    # event type -> (object type, payload fields that make the object id)
    "order.lifecycle": ("order", ("client_order_id",)),
    "order.requested": ("order", ("client_order_id",)),
    "execution.fill": ("execution", ("broker_deal_id",)),
    "position.changed": ("position", ("account_id", "symbol")),
    "risk.decision": ("order", ("client_order_id",)),
    "compliance.decision": ("order", ("client_order_id",)),
    "alert.raised": ("alert", ("alert_type", "symbol", "account")),  # tradeops.audit.objects.alert_object_id
    "killswitch.changed": ("killswitch", ("scope", "scope_value")),
    # The decision inputs of an algorithmic order (RTS 6 Art. 17; 2017/589 Art. 28: reconstruct
    # how each order came to be): the feature vector and each model's prediction on the bar, and
    # the validated signal the strategy turned into orders (``Order.signal_id``).
    "feature.vector": ("features", ("symbol", "ts")),
    "prediction.made": ("prediction", ("symbol", "ts")),
    "signal.validated": ("signal", ("signal_id",)),
}


def event_entry(event) -> AuditEntry:
    """The audit entry of one envelope (``tradeops.events.Envelope``): same ``event_id``, so the
    consumer and a service that recorded the same event id cannot record it twice."""
    from tradeops.events import Topic

    payload = event.payload
    object_type, fields = _EVENT_OBJECTS.get(event.type, (event.type.split(".")[0], ()))
    if event.type == "alert.raised":
        object_id = alert_object_id(payload, key=event.key)
    else:
        object_id = ":".join(str(getattr(payload, name, "")) for name in fields) or event.key
    actor = event_actor(getattr(payload, "actor", ""), event.source)  # a person (kill switch) or the stage
    return AuditEntry(
        action=event.type,
        object_type=object_type,
        object_id=object_id,
        occurred_at=event.occurred_at,
        payload={
            "event": {
                "type": event.type,
                "version": event.version,
                "source": event.source,
                "key": event.key,
                "traceparent": event.traceparent,
            },
            "data": payload,
        },
        actor=actor,
        event_id=event.event_id,
        category=Category.COMPLIANCE if event.topic == Topic.COMPLIANCE else Category.TRADING,
    )


def audit_append_events(*, events: Sequence) -> int:
    """Record consumed events (trading-events, compliance-events, and the decision inputs on
    feature-events and prediction-events); redeliveries are no-ops. Returns how many records
    were appended (the sink has no use for model instances). Most trading-events were
    recorded by the service that wrote them (same event id): when every one is known already,
    nothing is locked or written (one read)."""
    # The shortcut only pays when every event may have been recorded already: a batch with a
    # decision input (never recorded by a service) takes the lock anyway, which checks again.
    if not any(e.type in _DECISION_INPUTS for e in events) and len(
        audit_known_event_ids([e.event_id for e in events])
    ) == len({e.event_id for e in events}):
        return 0
    return len(_append_prepared(_prepare_events(events), None))


def _prepare_events(events: Sequence) -> tuple[list[tuple], list[uuid.UUID]]:
    """``_prepare([event_entry(e) for e in events])`` without the ``AuditEntry`` in between (the
    sink's hot path): the same prepared tuples, so the same rows and hashes
    (tests/tradeops/audit/test_sink_prepare.py compares the two).

    What ``_prepared`` does per entry, done once per batch where it can be: per event type the
    category and object; per (type, actor) the header's text up to the object id (the same
    ``orjson`` text as the whole list's, cut at its commas); a Struct payload turned into its
    fields here rather than by canonical JSON's ``default`` (the same dict: ``_default``)."""
    from tradeops.events import TOPICS_BY_TYPE, Topic

    prepared: list[tuple] = []
    seen: set[int] = set()  # the ids' integers: a UUID's own hash is a Python call
    supplied: list[uuid.UUID] = []
    objects = _EVENT_OBJECTS
    kinds: dict[str, tuple[str, str, tuple[str, ...]]] = {}  # type -> (category, object type, id fields)
    heads: dict[tuple[str, str], tuple[str, str, bytes]] = {}  # (type, actor) -> (actor type, id, rest's start)
    times: dict[datetime, str] = {}  # str() of the batch's aware-UTC times in object ids
    dumps, options, default = _orjson_dumps, CANONICAL_OPTIONS, canonical_default
    for event in events:
        event_id = event.event_id or uuid.uuid4()
        if event_id.int in seen:
            continue
        seen.add(event_id.int)
        if event.event_id is not None:
            supplied.append(event_id)
        payload = event.payload
        kind = event.type
        spec = kinds.get(kind)
        if spec is None:
            object_type, fields = objects.get(kind) or (kind.split(".")[0], ())
            category = _COMPLIANCE if TOPICS_BY_TYPE[kind] == Topic.COMPLIANCE else _TRADING
            spec = kinds[kind] = (category, object_type, fields)
        category, object_type, fields = spec
        if kind == "alert.raised":  # a market-data alert's id is not its payload fields joined
            object_id = alert_object_id(payload, key=event.key)
        elif len(fields) == 1:
            object_id = str(getattr(payload, fields[0], "")) or event.key
        elif len(fields) == 2:  # (symbol, ts) of a bar's feature vector and predictions: its time's text once
            second = getattr(payload, fields[1], "")
            if type(second) is datetime and second.tzinfo is UTC:  # equal exactly when the same instant
                text = times.get(second)
                if text is None:
                    text = times[second] = str(second)
            else:
                text = str(second)
            object_id = f"{str(getattr(payload, fields[0], ''))}:{text}"  # never empty: ":".join's text
        else:
            object_id = ":".join([str(getattr(payload, name, "")) for name in fields]) or event.key
        actor = event_actor(getattr(payload, "actor", ""), event.source)
        head = heads.get((kind, actor))
        if head is None:
            actor_type, actor_id = _actor_parsed(actor)
            start = dumps([category, actor_type, actor_id, kind, object_type])[1:-1]
            head = heads[(kind, actor)] = (actor_type, actor_id, start)
        actor_type, actor_id, start = head
        occurred_at = event.occurred_at
        if type(occurred_at) is not datetime or occurred_at.tzinfo is not UTC:
            occurred_at = ensure_utc(occurred_at)  # refuses a naive time; else the same instant in UTC
        body = dumps(
            {
                "event": {
                    "type": kind,
                    "version": event.version,
                    "source": event.source,
                    "key": event.key,
                    "traceparent": event.traceparent,
                },
                # what canonical JSON's default gives a Struct, without the call into Python
                "data": _struct_asdict(payload) if isinstance(payload, _Struct) else payload,
            },
            default=default,
            option=options,
        )
        prepared.append(
            (
                event_id,
                occurred_at,
                category,
                actor_type,
                actor_id,
                kind,
                object_type,
                object_id,
                body.decode(),
                None,
                # header_parts' text: a UUID's and a ts text need no JSON escaping
                b'"%s","%s"' % (str(event_id).encode(), ts(occurred_at).encode()),
                b"%s,%s,null" % (start, dumps(object_id)),
                body,
            )
        )
    return prepared, supplied


_COMPLIANCE, _TRADING = str(Category.COMPLIANCE), str(Category.TRADING)


_DECISION_INPUTS = frozenset({"feature.vector", "prediction.made", "signal.validated"})


# ---------------------------------------------------------------- helpers other services call


def audit_record_change(
    *,
    action: str,
    actor: str,
    object_type: str,
    object_id: str,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    occurred_at: datetime | None = None,
    reason: str = "",
    category: str = Category.COMPLIANCE,
    event_id: uuid.UUID | None = None,
) -> AuditRecord | None:
    """Record a change with its before and after (rule and limit changes, kill switch engaged or
    released, model activations, report generation and submission, case actions).

    ``before`` is ``None`` for a creation, ``after`` ``None`` for a removal. Call inside the
    changing service's transaction. Regulation: 2017/565 Art. 72 (content before a change)."""
    return audit_append(
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        occurred_at=occurred_at or utcnow(),
        payload={"before": before, "after": after, "reason": reason},
        actor=actor,
        event_id=event_id,
        category=category,
    )


@transaction.atomic
def audit_correct(
    *, corrects: uuid.UUID, actor: str, reason: str, corrected: Mapping[str, Any], occurred_at: datetime | None = None
) -> AuditRecord:
    """Append a correction of a recorded entry. The original stays as it was (the database
    refuses to change it); the correction references it and carries its content before and the
    corrected content, so both are visible (2017/565 Art. 72(1)(b))."""
    if not reason.strip():
        raise AuditError("a correction needs a reason", code="audit_correction_reason")
    original = AuditRecord.objects.filter(event_id=corrects).first()
    if original is None:
        raise NotFound(f"no audit record with event_id {corrects}", code="audit_record_not_found")
    record = audit_append(
        action="audit.corrected",
        object_type=original.object_type,
        object_id=original.object_id,
        occurred_at=occurred_at or utcnow(),
        payload={
            "corrected_action": original.action,
            "corrected_sequence": original.sequence,
            "before": original.payload_data,
            "after": corrected,
            "reason": reason,
        },
        actor=actor,
        category=original.category,
        corrects=original.event_id,
    )
    if record is None:  # a fresh random event_id is never a duplicate: this is a bug, say so
        raise RuntimeError(f"the correction of audit record {original.sequence} was taken for a duplicate")
    return record


# ---------------------------------------------------------------- retention


@transaction.atomic
def retention_hold_place(*, category: str, reason: str, placed_by: str) -> RetentionHold:
    """Stop every purge of ``category`` until released (e.g. a regulator asks for 7 years)."""
    hold = RetentionHold.objects.create(category=category, reason=reason, placed_by=placed_by, placed_at=utcnow())
    audit_record_change(
        action="audit.retention_hold_placed",
        actor=placed_by,
        object_type="retention_hold",
        object_id=str(hold.pk),
        before=None,
        after={"category": category, "reason": reason},
    )
    return hold


@transaction.atomic
def retention_hold_release(*, hold: RetentionHold, released_by: str) -> RetentionHold:
    hold.released_at = utcnow()
    hold.save(update_fields=["released_at"])
    audit_record_change(
        action="audit.retention_hold_released",
        actor=released_by,
        object_type="retention_hold",
        object_id=str(hold.pk),
        before={"category": hold.category, "active": True},
        after={"category": hold.category, "active": False},
    )
    return hold


def _purge_grant() -> None:
    """Open the purge gate for this transaction only (the trigger still checks each row's age)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL tradeops.audit_purge = 'on'")
        else:
            cursor.execute("INSERT INTO audit_purge_grant (granted_at) VALUES (%s)", [utcnow().isoformat()])


def _purge_revoke() -> None:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL tradeops.audit_purge = 'off'")
        else:
            cursor.execute("DELETE FROM audit_purge_grant")


def _purge_delete(sequences: list[int]) -> int:
    """Delete the records (and their search documents). PostgreSQL: through the owner's
    ``audit_purge_delete`` function (migration 0005; the runtime role cannot DELETE); SQLite:
    directly, inside the purge gate. The trigger refuses any record still within retention."""
    deleted = 0
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            for start in range(0, len(sequences), LOOKUP_BATCH):
                cursor.execute("SELECT audit_purge_delete(%s)", [sequences[start : start + LOOKUP_BATCH]])
                deleted += cursor.fetchone()[0]
        return deleted
    _purge_grant()
    for start in range(0, len(sequences), LOOKUP_BATCH):
        chunk = sequences[start : start + LOOKUP_BATCH]
        deleted += AuditRecord.objects.filter(sequence__in=chunk).delete()[0]
        SearchDocument.objects.filter(sequence__in=chunk).delete()  # the index must not outlive the record
    _purge_revoke()
    return deleted


@transaction.atomic
def audit_purge(*, actor: str, archive_dir, category: str | None = None, limit: int = 100_000) -> dict:
    """Archive, then remove, records past their retention (oldest first, at most ``limit``).

    Side effects: writes an archive file (``audit_archive_export``), deletes the rows (the
    trigger writes a tombstone per row into ``audit_purged`` and refuses any row still within
    retention or under a hold), appends an ``audit.purged`` record (count, first and last
    sequence, the archive's SHA-256 and, on PostgreSQL, the tombstones' ``purged_at``): the
    authorisation ``audit_verify`` looks for behind every tombstone. Returns a summary. Nothing
    is deleted unless its archive file was written first."""
    from tradeops.audit.archive import audit_archive_export

    now = utcnow()
    held = set(RetentionHold.objects.filter(released_at__isnull=True).values_list("category", flat=True))
    candidates = AuditRecord.objects.filter(retain_until__lt=now).exclude(category__in=held)
    if category:
        candidates = candidates.filter(category=category)
    sequences = list(candidates.order_by("sequence").values_list("sequence", flat=True)[:limit])
    if not sequences:
        return {"purged": 0, "archive": None}
    archive = audit_archive_export(sequences=sequences, directory=archive_dir, reason="purge")
    deleted = _purge_delete(sequences)
    purged_at = None  # the tombstones' purged_at: the transaction's now() on PostgreSQL
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT now()")
            purged_at = cursor.fetchone()[0].isoformat()
    _unindex_on_commit(sequences)
    audit_append(
        action="audit.purged",
        object_type="audit_archive",
        object_id=archive["file"],
        occurred_at=now,
        payload={
            "count": deleted,
            "first": sequences[0],
            "last": sequences[-1],
            "sha256": archive["sha256"],
            **({"purged_at": purged_at} if purged_at else {}),
        },
        actor=actor,
        category=Category.COMPLIANCE,
    )
    return {"purged": deleted, "archive": archive}


_appends_children: dict[str, Any] = {}


def audit_appends_count(categories: Iterable[str]) -> None:
    """Count appended records per category in ``tradeops_audit_appends_total`` once the
    transaction commits (an append rolled back is not counted; at once outside a transaction).
    Nothing with ``METRICS_ENABLED`` off. Every append path calls it (``audit_append_many``, the
    order path's server-side append)."""
    if not getattr(settings, "METRICS_ENABLED", True):
        return
    counts: dict[str, int] = {}
    for category in categories:
        counts[category] = counts.get(category, 0) + 1
    if not counts:
        return

    def observe() -> None:
        from tradeops.observability.metrics import audit_appends

        for category, n in counts.items():
            child = _appends_children.get(category)
            if child is None:
                child = _appends_children[category] = audit_appends.labels(category)
            child.inc(n)

    transaction.on_commit(observe)


def audit_index_on_commit(sequences: list[int]) -> None:
    """Index new records in Elasticsearch once they commit (at once outside a transaction)."""
    _search_on_commit("index_sequences", sequences)


def _unindex_on_commit(sequences: list[int]) -> None:
    _search_on_commit("unindex_sequences", sequences)


def _search_on_commit(operation: str, sequences: list[int]) -> None:
    """Run ``tradeops.audit.search.<operation>(sequences)`` once the transaction commits, when
    the audit search backend is Elasticsearch (nothing on the default PostgreSQL search)."""
    if getattr(settings, "AUDIT_SEARCH_BACKEND", "postgres") != "elasticsearch":
        return

    def run() -> None:
        from tradeops.audit import search

        getattr(search, operation)(sequences)

    transaction.on_commit(run)


# ---------------------------------------------------------------- verification runs


@transaction.atomic
def audit_verification_record(*, report, actor: str, at: datetime | None = None) -> AuditRecord:
    """Record that the chain was verified, by whom and with what result (``audit.verified``): the
    trail keeps the history of its own checks, so the screens can say when it was last verified
    and a later reader can see that nobody looked away (2017/565 Art. 72). ``report`` is a
    ``tradeops.audit.verify.VerifyReport``. The record is appended after the walk, so it is not
    part of what it vouches for. Its findings name databases by label, never by address
    (``verify_report_labelled``): auditors and integrations read the trail."""
    from tradeops.audit.verify import verify_report_labelled
    from tradeops.core.clock import utcnow

    report = verify_report_labelled(report)

    return audit_append(
        action="audit.verified",
        object_type="audit_chain",
        object_id="chain",
        occurred_at=at or utcnow(),
        payload={
            "ok": report.ok,
            "checked": report.checked,
            "bridged_purged": report.bridged_purged,
            "head_sequence": report.head_sequence,
            "last_sequence": report.last_sequence,
            "checkpoints": report.checkpoints,
            "newest_checkpoint": report.newest_checkpoint,
            "findings": [{"kind": f.kind, "sequence": f.sequence, "detail": f.detail} for f in report.findings[:20]],
            "seconds": round(report.seconds, 3),
            # whose checkpoints were compared or skipped, and the notes, so that the latest run
            # can be read back as it was reported (``GET /api/v1/audit/verification/``)
            "database": report.database,
            "skipped_checkpoints": report.skipped_checkpoints,
            "checkpoint_sources": [
                {
                    "role": source.role,
                    "database": source.database,
                    "count": source.count,
                    "first_sequence": source.first_sequence,
                    "last_sequence": source.last_sequence,
                    "newest_created_at": ts(source.newest_created_at),
                }
                for source in report.checkpoint_sources
            ],
            "notes": [str(note) for note in report.notes],
        },
        actor=actor,
        category=Category.SYSTEM,
    )


def audit_verification_run(
    *, actor: str, record: bool = True, chunk_size: int = 10_000, checkpoints: bool = True
) -> tuple[VerifyReport, AuditRecord | None]:
    """Verify the whole chain now (``tradeops.audit.verify.audit_verify``) and, unless ``record``
    is false (``manage.py audit_verify --no-record``), record the run in the trail
    (``audit_verification_record``: ``audit.verified``, by ``actor``), so the audit screens' "last
    verification", ``GET /api/v1/audit/verification/`` and the ``tradeops_audit_chain_verified*``
    metrics see every run, whoever made it (2017/565 Art. 72). Walks every record (seconds per
    million): callers throttle it. Returns the report as computed (databases by identity: label
    it before showing it to anyone but an operator or an admin) and the record written, if any.
    Raises ``CheckpointError`` when checkpoints are wanted but no key is configured (nothing is
    recorded then)."""
    from tradeops.audit.verify import audit_verify

    report = audit_verify(chunk_size=chunk_size, checkpoints=checkpoints)
    written = audit_verification_record(report=report, actor=actor) if record else None
    return report, written
