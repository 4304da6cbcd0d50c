"""The order write's outbox messages travel as text, not hex (issue 12, item 4).

``trading_order_write`` (trading 0003) took each outbox message, an encoded envelope (JSON,
UTF-8), as a ``\\x`` hex string inside its jsonb parameter: twice the message's size to encode
in Python, send, parse as jsonb and decode from hex; the messages were ~14 KB of the ~22 KB
statement. Now the writer sends the message as a JSON string and the function stores its UTF-8
bytes (``convert_to``): the same bytes in ``outbox.message``. A hex string is still accepted, so
a writer of before this migration keeps working. Measured in ``bench/order_path.py``
(bench/README.md). Nothing else in the function changes.
"""

from importlib import import_module

from django.db import migrations

PREVIOUS_SQL = import_module("trading.migrations.0003_bitemporal_order_write").ORDER_WRITE_SQL  # hex only

HEX_OUTBOX = r"""
        INSERT INTO outbox (event_id, topic, key, event_type, version, occurred_at, traceparent, message,
                            created_at, attempts, last_error)
        SELECT event_id, topic, key, event_type, version, occurred_at, traceparent, message, created_at, attempts,
               last_error
          FROM jsonb_populate_recordset(NULL::outbox, w->'outbox');
"""

TEXT_OUTBOX = r"""
        -- message: the encoded envelope (JSON) as text, stored as its UTF-8 bytes; a '\x' hex
        -- string (what the writer sent before trading 0005) is still taken
        INSERT INTO outbox (event_id, topic, key, event_type, version, occurred_at, traceparent, message,
                            created_at, attempts, last_error)
        SELECT r.event_id, r.topic, r.key, r.event_type, r.version, r.occurred_at, r.traceparent,
               CASE WHEN left(o.value->>'message', 2) = '\x' THEN decode(substr(o.value->>'message', 3), 'hex')
                    ELSE convert_to(o.value->>'message', 'UTF8') END,
               r.created_at, r.attempts, r.last_error
          FROM jsonb_array_elements(w->'outbox') WITH ORDINALITY AS o(value, i),
               jsonb_populate_record(NULL::outbox, o.value - 'message') AS r
         ORDER BY o.i;
"""

if PREVIOUS_SQL.count(HEX_OUTBOX) != 1:
    raise RuntimeError("trading 0005: the outbox step of trading 0003's function was not found")
ORDER_WRITE_SQL = PREVIOUS_SQL.replace(HEX_OUTBOX, TEXT_OUTBOX)  # the rest of the function as in 0003


def order_write_text_messages(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(ORDER_WRITE_SQL, params=None)


def order_write_hex_messages(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PREVIOUS_SQL, params=None)


class Migration(migrations.Migration):
    dependencies = [("trading", "0004_risklimitproposal")]

    operations = [migrations.RunPython(order_write_text_messages, order_write_hex_messages)]
