"""The audit trail's SQLite insert adapts datetimes with a shortcut (``sqlite_datetime_adapter``):
it must give the very text Django's SQLite backend gives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from django.db.backends.sqlite3.base import DatabaseWrapper

from tradeops.audit.services import sqlite_datetime_adapter

VALUES = [
    datetime(2017, 4, 23, 21, 0, tzinfo=UTC),
    datetime(2017, 4, 23, 21, 0, 0, 1, tzinfo=UTC),
    datetime(2026, 12, 3, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(2026, 12, 3, 23, 0, tzinfo=timezone(timedelta(hours=2))),  # not UTC: Django's own path
    datetime(1, 1, 1, tzinfo=UTC),
]


@pytest.mark.parametrize("time_zone", [None, "Europe/Paris"])
def test_the_shortcut_gives_djangos_text(time_zone):
    sqlite = DatabaseWrapper({"NAME": ":memory:", "TIME_ZONE": time_zone, "OPTIONS": {}})
    fast, django = sqlite_datetime_adapter(sqlite), sqlite.ops.adapt_datetimefield_value
    for value in VALUES:
        assert fast(value) == django(value), value


@pytest.mark.parametrize("time_zone", [None, "Europe/Paris"])
def test_the_rows_values_are_the_fields_own(time_zone, monkeypatch):
    """``_sqlite_values`` (the SQLite insert's values, each distinct time adapted once) gives
    what every field's ``get_db_prep_save`` gives, for the values the chain hands it and others
    (a UUID as text, a non-UTC time, a correction, one time object shared by rows)."""
    import uuid

    from tradeops.audit import services
    from tradeops.audit.models import AuditRecord

    sqlite = DatabaseWrapper({"NAME": ":memory:", "TIME_ZONE": time_zone, "OPTIONS": {}})
    monkeypatch.setattr(services, "connection", sqlite)
    now = datetime(2026, 12, 4, 19, 30, 0, 123456, tzinfo=UTC)
    retain = now + services.YEAR * 5
    rows = []
    for i, occurred in enumerate([*VALUES, VALUES[0], datetime(2017, 4, 23, 21, 0, tzinfo=UTC)]):
        event_id = uuid.uuid5(uuid.NAMESPACE_URL, str(i))
        corrects = [None, uuid.uuid4(), str(uuid.uuid4())][i % 3]
        rows.append(
            (i + 1, event_id if i != 2 else str(event_id), occurred, now, retain if i % 2 else now + services.YEAR)
            + ("trading", "service", "x", "feature.vector", "features", "EURUSD", "{}", corrects, "0" * 64, "f" * 64)
        )
    fields = AuditRecord._meta.concrete_fields
    expected = [tuple(f.get_db_prep_save(v, sqlite) for f, v in zip(fields, row, strict=True)) for row in rows]
    assert services._sqlite_values(rows) == expected


def test_known_ids_on_sqlite_through_one_json_parameter(monkeypatch, django_db_blocker):
    """``audit_known_event_ids`` on SQLite (json_each, one parameter): the recorded ids among those
    asked, as UUIDs whether asked as UUIDs or as text, nothing for the others."""
    with django_db_blocker.unblock():  # a database of its own, in memory (the suite's is PostgreSQL)
        _known_ids_on_sqlite(monkeypatch)


def _known_ids_on_sqlite(monkeypatch):
    import uuid

    from tradeops.audit import services
    from tradeops.audit.models import AuditRecord

    options = {"CONN_HEALTH_CHECKS": False, "CONN_MAX_AGE": 0, "AUTOCOMMIT": True, "ATOMIC_REQUESTS": False}
    sqlite = DatabaseWrapper({"NAME": ":memory:", "TIME_ZONE": None, "OPTIONS": {}, **options})
    with sqlite.schema_editor() as editor:
        editor.create_model(AuditRecord)
    monkeypatch.setattr(services, "connection", sqlite)
    recorded = [uuid.uuid5(uuid.NAMESPACE_URL, str(i)) for i in range(5)]
    rows = [
        (i + 1, event_id, VALUES[0], VALUES[0], VALUES[0], "trading", "service", "x", "a", "o", "1", "{}", None)
        + ("0" * 64, f"{i:064x}")
        for i, event_id in enumerate(recorded)
    ]
    with sqlite.cursor() as cursor:
        cursor.executemany(services._INSERT_SQL, services._sqlite_values(rows))
    assert sqlite.features.supports_json_field  # the json_each path, not the placeholders' fallback
    fresh = [uuid.uuid4() for _ in range(3)]
    assert services.audit_known_event_ids([*fresh, *recorded[1:4]]) == set(recorded[1:4])
    assert services.audit_known_event_ids([str(recorded[0]), fresh[0]]) == {recorded[0]}
    assert services.audit_known_event_ids(fresh) == set()
    assert all(type(i) is uuid.UUID for i in services.audit_known_event_ids(recorded))
