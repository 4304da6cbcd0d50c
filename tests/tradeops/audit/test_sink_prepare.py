"""The audit-trail sink prepares its rows without an ``AuditEntry`` per event and builds each
record's header from parts formatted once per batch: the records must be byte-identical to what
``event_entry`` + ``record_header`` + ``chain_hash`` give (the chain's format does not move)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import msgspec
import pytest

from tradeops.audit import canonical
from tradeops.audit.canonical import (
    GENESIS_HASH,
    canonical_json,
    chain_hash,
    chain_hash_parts,
    header_join,
    header_middle,
    header_parts,
    record_header,
    ts,
)
from tradeops.audit.models import AuditRecord
from tradeops.audit.services import (
    YEAR,
    _chain,
    _prepare,
    _prepare_events,
    actor_parse,
    audit_append_events,
    audit_append_many,
    audit_known_event_ids,
    event_entry,
    retention_years,
)
from tradeops.audit.verify import audit_verify
from tradeops.events import (
    Alert,
    Bar,
    Features,
    KillSwitchChanged,
    PositionChanged,
    Prediction,
    Signal,
    Tick,
    make_event,
)

WHOLE = datetime(2017, 4, 23, 21, 0, tzinfo=UTC)  # whole seconds: ".000000" must stay in the text
FRACTION = datetime(2017, 4, 23, 21, 0, 0, 1, tzinfo=UTC)
PARIS = timezone(timedelta(hours=2))


def _events() -> list:
    bar = Bar(
        symbol="EURUSD",
        timeframe="H1",
        ts=WHOLE,
        open=Decimal("1.07000"),
        high=Decimal("1.07500"),
        low=Decimal("1.06900"),
        close=Decimal("1.07200"),
    )
    tick = Tick(symbol="EURUSD", bid=Decimal("1.0719"), ask=Decimal("1.0721"), ts=FRACTION, flags=("gap",))
    signal = Signal(
        signal_id="sig-1",
        symbol="EURUSD",
        ts=WHOLE,
        side="BUY",
        confidence=0.6125,
        price=Decimal("1.07200"),
        model_versions={"xgb": "20261204T101010123456Z", "lgbm": "v2"},
        algo_id="momo-v2",
        atr=0.00123,
    )
    position = PositionChanged(
        account_id=7,
        symbol="EURUSD",
        net_quantity=Decimal("0.10"),
        average_price=Decimal("1.07210"),
        realised_pnl=Decimal("-1.5"),
        ts=datetime(2017, 4, 23, 23, 0, tzinfo=PARIS),  # not UTC: stored and hashed as UTC
    )
    alert = Alert(
        alert_type="spoofing", symbol="EURUSD", account="7", ts=FRACTION, start=WHOLE, evidence={"é": [1, 2.5]}
    )
    kill = KillSwitchChanged(
        scope="account", scope_value="7", engaged=True, actor="alice", reason="a test", ts=FRACTION
    )
    kill_service = KillSwitchChanged(scope="all", engaged=False, actor="service:risk", reason="", ts=WHOLE)
    # a bar's decision inputs share its time (object ids "EURUSD:<ts>"); one in another zone
    features = Features(symbol="EURUSD", ts=WHOLE, values={"ret_1": -3.8e-05, "rsi_14": 42.5}, price=Decimal("1.0720"))
    predictions = [
        Prediction(symbol="EURUSD", ts=ts_, model=m, model_version="v1", direction=-1, probability=0.53)
        for ts_, m in [(WHOLE, "a"), (datetime(2017, 4, 23, 21, 0, tzinfo=UTC), "b"), (FRACTION, "a")]
    ]
    paris = msgspec.structs.replace(predictions[0], ts=datetime(2017, 4, 23, 23, 0, tzinfo=PARIS))  # not UTC
    events = [
        make_event(bar, source="collector", key="EURUSD"),
        make_event(tick, source="collector", key="EURUSD", traceparent="00-abc-def-01"),
        make_event(signal, source="validator", key="EURUSD"),
        make_event(position, source="execution-worker", key="7"),
        make_event(alert, source="surveillance", key="EURUSD"),
        make_event(kill, source="api", key="all", occurred_at=FRACTION),
        make_event(kill_service, source="api", key="all", occurred_at=datetime(2026, 12, 4, 11, 0, tzinfo=PARIS)),
        make_event(features, source="mlmodels.features", key="EURUSD"),
        *[make_event(p, source="mlmodels.predict", key="EURUSD") for p in predictions],
        make_event(paris, source="mlmodels.predict", key="EURUSD", occurred_at=WHOLE),
    ]
    return [*events, events[2]]  # a repeat in the batch: recorded once


def _reference_rows(entries, sequence: int, prev: str, now: datetime) -> list[tuple]:
    """The rows as the code before computed them: one ``record_header`` and ``chain_hash`` per
    record, every time formatted per record."""
    rows, seen = [], set()
    for entry in entries:
        if entry.event_id in seen:
            continue
        seen.add(entry.event_id)
        sequence += 1
        occurred = entry.occurred_at.astimezone(UTC)
        retain = now + retention_years(str(entry.category)) * YEAR
        actor_type, actor_id = actor_parse(entry.actor)
        payload = canonical_json(entry.payload)
        header = record_header(
            sequence=sequence,
            event_id=entry.event_id,
            occurred_at=occurred,
            recorded_at=now,
            retain_until=retain,
            category=str(entry.category),
            actor_type=actor_type,
            actor_id=actor_id,
            action=entry.action,
            object_type=entry.object_type,
            object_id=str(entry.object_id),
            corrects=entry.corrects,
        )
        digest = chain_hash(prev, header, payload)
        rows.append(
            (
                sequence,
                entry.event_id,
                occurred,
                now,
                retain,
                str(entry.category),
                actor_type,
                actor_id,
                entry.action,
                entry.object_type,
                str(entry.object_id),
                payload,
                entry.corrects,
                prev,
                digest,
            )
        )
        prev = digest
    return rows


@pytest.mark.parametrize("now", [WHOLE + timedelta(days=3500), datetime(2026, 12, 4, 11, 30, 0, 654321, tzinfo=UTC)])
def test_the_sinks_rows_are_the_rows_of_event_entries(now):
    events = _events()
    entries = [event_entry(e) for e in events]
    fast, fast_ids = _prepare_events(events)
    slow, slow_ids = _prepare(entries)
    assert fast == slow
    assert fast_ids == slow_ids
    rows, sequence, head = _chain(fast, 41, "ab" * 32, now, set())
    reference = _reference_rows(entries, 41, "ab" * 32, now)
    assert rows == reference
    assert [type(v) for row in rows for v in row] == [type(v) for row in reference for v in row]
    assert (sequence, head) == (reference[-1][0], reference[-1][14])
    assert len(rows) == len(events) - 1


def test_known_ids_are_skipped_and_the_chain_continues_from_the_one_before():
    events = _events()
    prepared, _ = _prepare_events(events)
    known = {events[1].event_id}
    rows, _, _ = _chain(prepared, 0, GENESIS_HASH, WHOLE, known)
    entries = [event_entry(e) for e in events if e.event_id not in known]
    assert rows == _reference_rows(entries, 0, GENESIS_HASH, WHOLE)


def test_the_header_from_parts_is_record_header():
    event_id, corrects = uuid.uuid4(), uuid.uuid4()
    for occurred, recorded in [(WHOLE, FRACTION), (FRACTION, WHOLE), (datetime(1, 1, 1, tzinfo=UTC), WHOLE)]:
        retain = recorded + 7 * YEAR
        fields = dict(
            category="compliance",
            actor_type="user",
            actor_id='a "quoted" \\ name, with commas',
            action="alert.raised",
            object_type="alert",
            object_id="spoofing:EURUSD:7",
            corrects=corrects,
        )
        lead, rest = header_parts(event_id, ts(occurred), *fields.values())
        assert header_join(5, lead, header_middle(recorded, retain), rest) == record_header(
            sequence=5, event_id=event_id, occurred_at=occurred, recorded_at=recorded, retain_until=retain, **fields
        )
        header, payload = header_join(5, lead, header_middle(recorded, retain), rest), '{"a":"é"}'
        assert chain_hash_parts(GENESIS_HASH, 5, lead, header_middle(recorded, retain), rest, payload.encode()) == (
            chain_hash(GENESIS_HASH, header, payload)
        )


def test_ts_remembers_utc_times_by_value_and_gives_the_same_text():
    one = datetime(2017, 4, 23, 21, 0, tzinfo=UTC)
    assert ts(one) == "2017-04-23T21:00:00.000000Z"
    assert ts(datetime(2017, 4, 23, 21, 0, tzinfo=UTC)) == "2017-04-23T21:00:00.000000Z"  # equal, another object
    other = datetime(2017, 4, 23, 23, 0, tzinfo=PARIS)  # equal instant, another zone: not remembered
    assert other == one and ts(other) == "2017-04-23T21:00:00.000000Z"
    assert ts(FRACTION) == "2017-04-23T21:00:00.000001Z"
    assert canonical._TS_TEXT[FRACTION] == "2017-04-23T21:00:00.000001Z"
    assert other not in canonical._TS_TEXT or canonical._TS_TEXT[other] == ts(one)
    with pytest.raises(ValueError, match="naive"):
        ts(datetime(2017, 4, 23, 21, 0))
    with pytest.raises(ValueError, match="naive"):  # refused again: a refusal is not remembered
        ts(datetime(2017, 4, 23, 21, 0))


def test_ts_of_a_zone_with_a_fold_is_not_taken_from_the_other_side_of_it():
    """Two times of one ``zoneinfo`` zone on either side of a DST fold compare equal (Python
    compares same-zone times by wall clock) but are an hour apart: each keeps its own text."""
    from zoneinfo import ZoneInfo

    new_york = ZoneInfo("America/New_York")
    first = datetime(2021, 11, 7, 1, 30, tzinfo=new_york)
    second = datetime(2021, 11, 7, 1, 30, fold=1, tzinfo=new_york)
    assert first == second
    assert ts(first) == "2021-11-07T05:30:00.000000Z"
    assert ts(second) == "2021-11-07T06:30:00.000000Z"


def test_ts_gives_the_text_it_always_gave(monkeypatch):
    """The remembered UTC path gives ``_ts``'s text (the chain's format) across the calendar and
    the microsecond range, and stays bounded."""
    import random

    monkeypatch.setattr(canonical, "_TS_TEXT_MAX", 50)
    canonical._TS_TEXT.clear()
    rng = random.Random(12)
    values = [datetime(1, 1, 1, tzinfo=UTC), datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), WHOLE, FRACTION]
    start, span = datetime(1, 1, 1, tzinfo=UTC), 315_537_897_600_000_000  # microseconds to 9999-12-31
    values += [start + timedelta(microseconds=rng.randrange(span)) for _ in range(2000)]
    for value in values + values:
        v = value
        spelled = f"{v.year:04d}-{v.month:02d}-{v.day:02d}T{v.hour:02d}:{v.minute:02d}:{v.second:02d}"
        spelled += f".{v.microsecond:06d}Z"
        assert ts(value) == canonical._ts(value) == spelled
    assert len(canonical._TS_TEXT) <= 50


@pytest.mark.django_db(transaction=True)
def test_the_sink_and_the_entries_write_the_same_records():
    """Through the database: the sink's append and ``audit_append_many`` of the same events'
    entries (a second copy of each event under a fresh id) store the same payload text and the
    same header fields; the whole chain verifies."""
    events = _events()
    assert audit_append_events(events=events) == len(events) - 1
    copies = [
        e.__class__(**{**{f: getattr(e, f) for f in e.__struct_fields__}, "event_id": uuid.uuid4()})
        for e in events[:-1]
    ]
    audit_append_many(entries=[event_entry(e) for e in copies])
    fields = ("occurred_at", "category", "actor_type", "actor_id", "action", "object_type", "object_id", "payload")
    by_id = {r.event_id: r for r in AuditRecord.objects.all()}
    for original, copy in zip(events[:-1], copies, strict=True):
        a, b = by_id[original.event_id], by_id[copy.event_id]
        assert [getattr(a, f) for f in fields] == [getattr(b, f) for f in fields]
        assert a.payload == canonical_json(event_entry(original).payload)
    assert audit_append_events(events=events) == 0  # redelivered: nothing new
    report = audit_verify()
    assert report.ok, report
    assert AuditRecord.objects.count() == 2 * (len(events) - 1)


@pytest.mark.django_db
def test_known_ids_are_told_from_unknown_ones():
    """``audit_known_event_ids`` (one array parameter on PostgreSQL, placeholders elsewhere)."""
    events = _events()
    audit_append_events(events=events[:3])
    ids = [e.event_id for e in events] + [uuid.uuid4() for _ in range(5)]
    assert audit_known_event_ids(ids) == {e.event_id for e in events[:3]}
    assert audit_known_event_ids([uuid.uuid4()]) == set()


def test_server_rows_carry_record_header_parts():
    """The order path's database-side append gets ``record_header_parts``' text from the parts
    ``_prepare`` built once."""
    from tradeops.audit.canonical import record_header_parts
    from tradeops.audit.services import audit_server_rows

    entries = [event_entry(e) for e in _events()[:-1]]
    for entry, row in zip(entries, audit_server_rows(entries), strict=True):
        actor_type, actor_id = actor_parse(entry.actor)
        assert (row["lead"], row["rest"]) == record_header_parts(
            event_id=entry.event_id,
            occurred_at=entry.occurred_at,
            category=str(entry.category),
            actor_type=actor_type,
            actor_id=actor_id,
            action=entry.action,
            object_type=entry.object_type,
            object_id=entry.object_id,
            corrects=entry.corrects,
        )
        assert row["payload"] == canonical_json(entry.payload)
