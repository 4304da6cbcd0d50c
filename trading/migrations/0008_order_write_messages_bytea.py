"""The order write's outbox messages travel beside its jsonb, as bytea[] (issue 12: the statement's size).

``trading_order_write`` (trading 0005) took each outbox message, an encoded envelope (JSON,
UTF-8), as a JSON string inside its jsonb parameter: every quote of the envelope escaped, ~6 KB of
the ~17 KB parameter, and the server parsed all of it as jsonb (the whole parameter ~100 us an
order, the messages' share 17-41 us: ``bench/order_statement_items.py``, bench/README.md) only to
store the bytes again in ``outbox.message`` (bytea).
Now the function takes a second parameter, ``messages bytea[]`` (the writer sends it in binary:
each message's bytes as they are, no escaping, no parse), the i-th message for the i-th outbox row;
the rows' other columns stay in the jsonb. ``messages`` defaults to NULL: a call with the jsonb
alone (a writer of before this migration) stores the message from the jsonb as before. The same
bytes land in ``outbox.message`` either way. Nothing else in the function changes.

The one-argument function is dropped (a call with one argument resolves to this one through the
default); the runtime role's grant follows the new signature (``TradingConfig.runtime_functions``).
"""

from importlib import import_module

from django.db import migrations

PREVIOUS_SQL = import_module("trading.migrations.0005_order_write_text_messages").ORDER_WRITE_SQL

TEXT_OUTBOX = import_module("trading.migrations.0005_order_write_text_messages").TEXT_OUTBOX

BYTEA_OUTBOX = r"""
        -- message: the i-th of ``messages`` (the encoded envelope's bytes, sent in binary) when the
        -- writer sent them apart; else from the jsonb as before trading 0008: text stored as its
        -- UTF-8 bytes, or a '\x' hex string (before trading 0005)
        IF messages IS NOT NULL AND cardinality(messages) <> jsonb_array_length(w->'outbox') THEN
            RAISE EXCEPTION 'tradeops:outbox_messages' USING DETAIL = format('%s outbox rows, %s messages',
                jsonb_array_length(w->'outbox'), cardinality(messages));
        END IF;
        INSERT INTO outbox (event_id, topic, key, event_type, version, occurred_at, traceparent, message,
                            created_at, attempts, last_error)
        SELECT r.event_id, r.topic, r.key, r.event_type, r.version, r.occurred_at, r.traceparent,
               CASE WHEN messages IS NOT NULL THEN messages[o.i]
                    WHEN left(o.value->>'message', 2) = '\x' THEN decode(substr(o.value->>'message', 3), 'hex')
                    ELSE convert_to(o.value->>'message', 'UTF8') END,
               r.created_at, r.attempts, r.last_error
          FROM jsonb_array_elements(w->'outbox') WITH ORDINALITY AS o(value, i),
               jsonb_populate_record(NULL::outbox, o.value - 'message') AS r
         ORDER BY o.i;
"""

OLD_SIGNATURE = "CREATE OR REPLACE FUNCTION trading_order_write(w jsonb) RETURNS json"
NEW_SIGNATURE = "CREATE OR REPLACE FUNCTION trading_order_write(w jsonb, messages bytea[] DEFAULT NULL) RETURNS json"
OLD_REVOKE = "REVOKE ALL ON FUNCTION trading_order_write(jsonb) FROM PUBLIC;"
NEW_REVOKE = "REVOKE ALL ON FUNCTION trading_order_write(jsonb, bytea[]) FROM PUBLIC;"

for old, what in ((TEXT_OUTBOX, "outbox step"), (OLD_SIGNATURE, "signature"), (OLD_REVOKE, "revoke")):
    if PREVIOUS_SQL.count(old) != 1:
        raise RuntimeError(f"trading 0008: the {what} of trading 0005's function was not found")
ORDER_WRITE_SQL = (
    PREVIOUS_SQL.replace(TEXT_OUTBOX, BYTEA_OUTBOX)
    .replace(OLD_SIGNATURE, NEW_SIGNATURE)
    .replace(OLD_REVOKE, NEW_REVOKE)
)


def order_write_messages_apart(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP FUNCTION IF EXISTS trading_order_write(jsonb)", params=None)
        schema_editor.execute(ORDER_WRITE_SQL, params=None)


def order_write_messages_inside(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP FUNCTION IF EXISTS trading_order_write(jsonb, bytea[])", params=None)
        schema_editor.execute(PREVIOUS_SQL, params=None)


class Migration(migrations.Migration):
    dependencies = [("trading", "0007_order_trader_partial")]

    operations = [migrations.RunPython(order_write_messages_apart, order_write_messages_inside)]
