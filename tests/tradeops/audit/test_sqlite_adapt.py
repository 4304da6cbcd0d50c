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
