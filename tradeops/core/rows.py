"""One model row written in one plain statement, for write paths that run for every event of a
replay (a pre-trade decision, an outbox row): the ORM's ``save`` compiles its INSERT per row,
which was most of such a write's CPU (bench/pipeline_replay.py). The row reaches the database
exactly as the ORM would send it: each value goes through its field's ``pre_save`` and
``get_db_prep_save``; the model's own triggers (pgtrigger) fire as for any INSERT."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal

from django.conf import settings
from django.db import connections, models, router
from django.db.backends.base.operations import BaseDatabaseOperations
from django.db.models import Model

_SQL: dict[tuple, tuple] = {}  # (model, conflict column, vendor) -> (statement, fields, adapters)

Adapter = Callable[[object, object], object]  # (value, connection) -> what the database is sent

# Django's own field classes whose ``get_db_prep_save`` hands an exact instance of these types
# back unchanged (``to_python`` returns it as it is, or ``int()`` / ``bool()`` of it, which is
# the same object for an exact int or bool), as long as the backend does not adapt it further.
_PASSING = {
    models.CharField: (str,),
    models.TextField: (str,),
    models.BooleanField: (bool,),
}
_INTEGERS = (
    models.IntegerField,
    models.BigIntegerField,
    models.SmallIntegerField,
    models.PositiveIntegerField,
    models.PositiveBigIntegerField,
    models.PositiveSmallIntegerField,
)
_AUTO = (models.AutoField, models.BigAutoField, models.SmallAutoField)


def row_insert(obj: Model, *, on_conflict_skip: str | None = None) -> bool:
    """INSERT ``obj`` (its primary key left to the database) with ``RETURNING`` its key, then set
    the key on ``obj`` and mark it saved, as ``save(force_insert=True)`` does. With
    ``on_conflict_skip`` (a unique column), a row already holding the same value there is left
    as it is (``ON CONFLICT (column) DO NOTHING``: a redelivered event, no error and no
    savepoint) and False is returned; else True. Signals are not sent (the models written this
    way have no receivers). Precondition: inside the caller's ``transaction.atomic`` when the row
    belongs with other writes."""
    model = type(obj)
    alias = router.db_for_write(model, instance=obj)
    connection = connections[alias]
    key = (model, on_conflict_skip, connection.vendor)
    cached = _SQL.get(key)
    if cached is None:
        cached = _SQL[key] = _statement(model, on_conflict_skip, connection)
    sql, fields, adapters = cached
    values = [adapt(f.pre_save(obj, True), connection) for f, adapt in zip(fields, adapters, strict=True)]
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        inserted = cursor.fetchone()
    if inserted is None:
        return False
    obj.pk = inserted[0]
    obj._state.adding, obj._state.db = False, alias
    return True


def _statement(model: type[Model], on_conflict_skip: str | None, connection) -> tuple[str, list, list[Adapter]]:
    meta = model._meta
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    sql = (
        f"INSERT INTO {meta.db_table} ({', '.join(f.column for f in fields)}) "  # noqa: S608  names from the model
        f"VALUES ({', '.join(['%s'] * len(fields))})"
    )
    if on_conflict_skip is not None:
        sql += f" ON CONFLICT ({meta.get_field(on_conflict_skip).column}) DO NOTHING"
    return f"{sql} RETURNING {meta.pk.column}", fields, value_adapters(fields, connection)


def value_adapters(fields: Sequence[models.Field], connection) -> list[Adapter]:
    """Per field, an ``adapt(value, connection)`` that gives exactly what
    ``field.get_db_prep_save(value, connection)`` gives, for the write paths that adapt every
    column of every row in plain statements (the order path's statements writer adapts ~250
    values per order; ``row_insert``). The usual values (an exact ``str``, ``int``, ``bool``,
    ``Decimal``, ``UUID``, aware ``datetime`` or None in a field of one of Django's own classes)
    skip the four calls ``get_db_prep_save`` makes before the backend's adapter (and on SQLite a
    UTC time on a UTC connection is its text at once, as ``make_naive`` would leave it); anything else
    (another type, a subclassed field, a JSON field) goes through the field itself
    (``tests/tradeops/test_rows.py`` holds them to the fields' answers on PostgreSQL and SQLite).
    Build them once per field list and vendor, and keep them: they depend on the vendor's
    operations and features, not on the connection they are later called with. Call them with
    the database connection itself (``connections[alias]``), not the ``django.db.connection``
    proxy: each attribute read through the proxy is a thread-local lookup."""
    return [value_adapter(f, connection) for f in fields]


def value_adapter(field: models.Field, connection) -> Adapter:
    """``field.get_db_prep_save`` for one field, with the usual values' shortcut (``value_adapters``)."""
    slow = field.get_db_prep_save
    cls = type(field)
    ops = type(connection.ops)
    passing: tuple[type, ...] = _PASSING.get(cls, ())
    if cls in _INTEGERS and ops.adapt_integerfield_value is BaseDatabaseOperations.adapt_integerfield_value:
        passing = (int,)
    elif (
        cls is models.ForeignKey
        and type(field.target_field) in _AUTO
        and ops.validate_autopk_value is BaseDatabaseOperations.validate_autopk_value
    ):
        passing = (int,)  # the key as the target's AutoField sends it: int() of an int
    if passing:

        def adapt_passing(value, conn):
            if value is None or type(value) in passing:
                return value
            return slow(value, conn)

        return adapt_passing
    if cls is models.DecimalField:
        digits, places = field.max_digits, field.decimal_places

        def adapt_decimal(value, conn):
            if type(value) is Decimal and value.is_finite():  # to_python's copy is an equal Decimal
                return conn.ops.adapt_decimalfield_value(value, digits, places)
            return None if value is None else slow(value, conn)

        return adapt_decimal
    if cls is models.DateTimeField:
        utc_text = connection.vendor == "sqlite" and settings.USE_TZ

        def adapt_datetime(value, conn):
            if type(value) is datetime and value.tzinfo is not None:  # aware: no naive-time warning to give
                if utc_text and value.tzinfo is UTC and conn.timezone is UTC:
                    return str(value.replace(tzinfo=None))  # SQLite's text of a UTC time on a UTC connection
                return conn.ops.adapt_datetimefield_value(value)
            return None if value is None else slow(value, conn)

        return adapt_datetime
    if cls is models.UUIDField:
        native = connection.features.has_native_uuid_field

        def adapt_uuid(value, conn):
            if type(value) is uuid.UUID:
                return value if native else value.hex
            return None if value is None else slow(value, conn)

        return adapt_uuid
    return slow
