"""One model row written in one plain statement, for write paths that run for every event of a
replay (a pre-trade decision, an outbox row): the ORM's ``save`` compiles its INSERT per row,
which was most of such a write's CPU (bench/pipeline_replay.py). The row reaches the database
exactly as the ORM would send it: each value goes through its field's ``pre_save`` and
``get_db_prep_save``; the model's own triggers (pgtrigger) fire as for any INSERT."""

from __future__ import annotations

from django.db import connections, router
from django.db.models import Model

_SQL: dict[tuple, tuple[str, list]] = {}  # (model, conflict column, vendor) -> (statement, fields)


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
        cached = _SQL[key] = _statement(model, on_conflict_skip)
    sql, fields = cached
    values = [f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        inserted = cursor.fetchone()
    if inserted is None:
        return False
    obj.pk = inserted[0]
    obj._state.adding, obj._state.db = False, alias
    return True


def _statement(model: type[Model], on_conflict_skip: str | None) -> tuple[str, list]:
    meta = model._meta
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    sql = (
        f"INSERT INTO {meta.db_table} ({', '.join(f.column for f in fields)}) "  # noqa: S608  names from the model
        f"VALUES ({', '.join(['%s'] * len(fields))})"
    )
    if on_conflict_skip is not None:
        sql += f" ON CONFLICT ({meta.get_field(on_conflict_skip).column}) DO NOTHING"
    return f"{sql} RETURNING {meta.pk.column}", fields
