"""tradeops.core.pgpipeline.Batch on a real PostgreSQL: results loaded as a cursor loads them,
statements prepared once per server connection, errors raised and the connection left usable."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import psycopg
import pytest
from django.db import connection

from tradeops.core.pgpipeline import Batch, ByteaArray, _numbered

pytestmark = pytest.mark.django_db(transaction=True)

T = datetime(2026, 11, 27, 3, 0, 0, 123456, tzinfo=UTC)


@pytest.fixture
def conn(postgres):
    from tests.conftest import scratch_table_ddl

    scratch_table_ddl(  # as the owner: the application's role may not create tables
        "DROP TABLE IF EXISTS batch_probe",
        "CREATE TABLE batch_probe (id bigserial PRIMARY KEY, name text UNIQUE NOT NULL, "
        "amount numeric(12, 5), at timestamptz, doc json)",
        tables=("batch_probe",),
    )
    connection.ensure_connection()
    yield connection.connection
    connection.close()  # the owner cannot drop a table this session still holds a lock on
    scratch_table_ddl("DROP TABLE IF EXISTS batch_probe", tables=())


def _count(raw) -> int:
    with raw.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM batch_probe")
        return cursor.fetchone()[0]


def test_two_round_trips_in_one_transaction_load_values_as_a_cursor_does(conn):
    insert = "INSERT INTO batch_probe (name, amount, at, doc) VALUES (%s, %s, %s, %s::json) RETURNING id, amount, at"
    with Batch(conn) as batch:
        batch.execute("BEGIN")
        first = batch.execute(insert, ["a", Decimal("1.10002"), T, '{"k": [1, 2]}'])
        second = batch.execute(insert, ["b", None, T, "null"])
        batch.send()
        batch.sync()
        row = first.fetchone()
        assert isinstance(row[0], int) and row[1:] == (Decimal("1.10002"), T)
        assert second.fetchone()[1] is None
        names = batch.execute("SELECT name FROM batch_probe WHERE id >= %s ORDER BY id", [row[0]])
        nothing = batch.execute("SELECT name FROM batch_probe WHERE name = %s", ["zz"])
        batch.execute("COMMIT")
        batch.sync()
    assert names.fetchall() == [("a",), ("b",)] and nothing.fetchone() is None
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    assert conn.pgconn.pipeline_status == psycopg.pq.PipelineStatus.OFF
    assert _count(conn) == 2


def test_statements_are_prepared_once_per_server_connection(conn):
    sql = "SELECT count(*) FROM batch_probe WHERE name <> %s"
    for _ in range(3):
        with Batch(conn) as batch:
            batch.execute(sql, ["x"])
            batch.sync()
    with conn.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s", ["%name <> $1%"])
        assert cursor.fetchone()[0] == 1


def test_an_error_is_raised_the_rest_skipped_and_the_connection_stays_usable(conn):
    insert = "INSERT INTO batch_probe (name) VALUES (%s) RETURNING id"
    with Batch(conn) as batch:
        batch.execute("BEGIN")
        batch.execute(insert, ["same"])
        batch.execute(insert, ["same"])  # unique violation
        after = batch.execute(insert, ["after"])
        with pytest.raises(psycopg.errors.UniqueViolation):
            batch.sync()
    assert after.rows is None and after._result is None  # skipped by the server
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR
    conn.execute("ROLLBACK")
    assert _count(conn) == 0
    with Batch(conn) as batch:  # the statement that failed was prepared and is reused
        batch.execute(insert, ["later"])
        batch.sync()
    assert _count(conn) == 1


def test_leaving_with_an_exception_before_the_sync_settles_what_was_sent(conn):
    with pytest.raises(RuntimeError), Batch(conn) as batch:
        batch.execute("BEGIN")
        batch.execute("INSERT INTO batch_probe (name) VALUES (%s)", ["half"])
        batch.send()
        raise RuntimeError("failed while building the second round trip")
    assert conn.pgconn.pipeline_status == psycopg.pq.PipelineStatus.OFF
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS  # the caller rolls back
    conn.execute("ROLLBACK")
    assert _count(conn) == 0


def test_reading_a_result_before_its_sync_is_refused(conn):
    with Batch(conn) as batch:
        pending = batch.execute("SELECT 1")
        with pytest.raises(psycopg.ProgrammingError):
            pending.fetchone()
        batch.sync()
    assert pending.fetchone() == (1,)


def test_a_value_read_raw_is_the_servers_text_unloaded(conn):
    with Batch(conn) as batch:
        doc = batch.execute("SELECT json_build_object('written', true, 'n', %s::bigint)", [7])
        null = batch.execute("SELECT NULL::json")
        with pytest.raises(psycopg.ProgrammingError):
            doc.raw()
        batch.sync()
    assert doc.raw() == b'{"written" : true, "n" : 7}'  # as the server wrote it, for the caller to parse
    assert null.raw() is None


def test_placeholders_are_numbered():
    assert _numbered("SELECT %s, %s::json FROM t WHERE a = %s") == "SELECT $1, $2::json FROM t WHERE a = $3"
    assert _numbered("SELECT 1") == "SELECT 1"
    assert _numbered("SELECT %s::jsonb, %b::bytea[]") == "SELECT $1::jsonb, $2::bytea[]"


def test_a_binary_placeholder_sends_bytes_as_they_are(conn):
    # %b: the order write's outbox messages (trading 0008), bytes with quotes, backslashes, a NUL
    # and UTF-8, each stored exactly; beside a %s parameter in the same statement
    messages = [b'{"a": "q\\"uote"}', "caf\u00e9 \\x00".encode(), b"\x00\xff", b""]
    with Batch(conn) as batch:
        sent = batch.execute("SELECT %s::text, cardinality(%b::bytea[])", ["x", messages])
        each = batch.execute("SELECT unnest(%b::bytea[])", [messages])
        empty = batch.execute("SELECT cardinality(%b::bytea[]), %b::bytea[] IS NULL", [[], None])
        ours = batch.execute("SELECT unnest(%b::bytea[])", [ByteaArray(messages)])
        ours_empty = batch.execute("SELECT cardinality(%b::bytea[])", [ByteaArray()])
        with_null = batch.execute("SELECT %b::bytea[]", [ByteaArray([b"a", None])])
        batch.sync()
    assert sent.fetchone() == ("x", 4)
    assert empty.fetchone() == (0, True)  # psycopg dumps an empty list as text whatever was asked
    # ByteaArray: the same array, its wire form joined at once (the order write's messages)
    assert [bytes(row[0]) for row in ours.fetchall()] == messages
    assert ours_empty.fetchone() == (0,)
    assert [None if v is None else bytes(v) for v in with_null.fetchone()[0]] == [b"a", None]
    with psycopg.Cursor(conn) as cursor:  # a server-binding cursor on a connection Batch has used sends it too
        cursor.execute("SELECT %b::bytea[] = %b::bytea[]", [ByteaArray(messages), messages])
        assert cursor.fetchone() == (True,)
    assert [bytes(row[0]) for row in each.fetchall()] == messages
