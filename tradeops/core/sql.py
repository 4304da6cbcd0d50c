"""SQL shapes the ORM does not build for us. PostgreSQL only.

``json_insert_sql``: many rows in ONE short statement with ONE parameter, a JSON array of
objects that PostgreSQL unpacks (``json_populate_recordset``) into the table's own column
types. Measured on the order path (``bench/order_path.py``): psycopg spends ~25 µs of Python per
array or per row of parameters it adapts, and past 50 parameters it stops caching its parse of
the query text; one orjson-encoded text parameter costs a few µs for the whole batch, and the
statement text is the same for any number of rows, so it is parsed and prepared once. Values
travel as their text forms (Decimal and UUID as strings, datetimes as RFC 3339 with their
microseconds, bytes as ``\\x`` hex), which PostgreSQL reads back exactly.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable, Sequence
from decimal import Decimal

import orjson


@functools.cache
def json_insert_sql(model, columns: tuple[str, ...]) -> str:
    """``INSERT INTO <table> (<columns>) SELECT <columns> FROM json_populate_recordset(...)``:
    the parameter is ``json_rows(rows, columns)``."""
    table = model._meta.db_table
    names = ", ".join(columns)
    return f"INSERT INTO {table} ({names}) SELECT {names} FROM json_populate_recordset(NULL::{table}, %s::json)"


def _text(value):
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return "\\x" + bytes(value).hex()
    raise TypeError(f"cannot send {type(value).__name__} as a row value: {value!r}")


def json_rows(rows: Iterable[Sequence], columns: Sequence[str]) -> str:
    """Rows (values in ``columns`` order) as the JSON text ``json_insert_sql`` takes."""
    return orjson.dumps([dict(zip(columns, row, strict=True)) for row in rows], default=_text).decode()
