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

ORDER_WRITE_SQL = r"""
CREATE OR REPLACE FUNCTION trading_order_write(w jsonb) RETURNS json LANGUAGE plpgsql AS $fn$
DECLARE
    new_id bigint;
    sent int;
    added text[];
    pos jsonb;
    n int;
    moved boolean := false;
    head_seq bigint;
    head_hash text;
    first_seq bigint;
    rec jsonb;
    hashes text[] := '{}';
    prev0 text;
    now_ts timestamptz;
    retain timestamptz;
BEGIN
    -- 1. the new order; an existing client_order_id writes nothing (idempotency)
    IF w->'order' IS NOT NULL THEN
        INSERT INTO trading_order SELECT * FROM jsonb_populate_record(NULL::trading_order, w->'order')
            ON CONFLICT (client_order_id) DO NOTHING RETURNING id INTO new_id;
        IF new_id IS NULL THEN
            RETURN json_build_object('written', false, 'order_id',
                (SELECT id FROM trading_order WHERE client_order_id = w->'order'->>'client_order_id'));
        END IF;
    END IF;

    -- 2. its fills, unique per account and broker deal
    sent := coalesce(jsonb_array_length(w->'fills'), 0);
    IF sent > 0 THEN
        WITH inserted AS (
            INSERT INTO trading_execution
            SELECT * FROM jsonb_populate_recordset(NULL::trading_execution, w->'fills')
            ON CONFLICT (account_id, broker_deal_id) DO NOTHING RETURNING broker_deal_id
        )
        SELECT array_agg(broker_deal_id) INTO added FROM inserted;
        IF coalesce(cardinality(added), 0) < sent THEN
            RAISE EXCEPTION 'tradeops:deal_recorded' USING DETAIL = (
                SELECT jsonb_agg(f->>'broker_deal_id') FROM jsonb_array_elements(w->'fills') f
                WHERE NOT (f->>'broker_deal_id' = ANY(coalesce(added, '{}'::text[]))))::text;
        END IF;
    END IF;

    -- 3. positions, in id order: each only if it still holds what the writer computed from
    FOR pos IN SELECT value FROM jsonb_array_elements(w->'positions') ORDER BY (value->'row'->>'id')::bigint LOOP
        IF jsonb_typeof(pos->'expect') = 'object' THEN
            UPDATE trading_position p
               SET net_quantity = r.net_quantity, average_price = r.average_price, realised_pnl = r.realised_pnl,
                   unrealised_pnl = r.unrealised_pnl, mark_price = r.mark_price, as_of = r.as_of,
                   updated_at = r.updated_at
              FROM jsonb_populate_record(NULL::trading_position, pos->'row') r,
                   jsonb_populate_record(NULL::trading_position, pos->'expect') e
             WHERE p.id = r.id AND p.net_quantity = e.net_quantity AND p.average_price = e.average_price
               AND p.realised_pnl = e.realised_pnl AND p.mark_price IS NOT DISTINCT FROM e.mark_price;
        ELSE
            INSERT INTO trading_position SELECT * FROM jsonb_populate_record(NULL::trading_position, pos->'row')
                ON CONFLICT (account_id, instrument_id) DO NOTHING;
        END IF;
        GET DIAGNOSTICS n = ROW_COUNT;
        IF n = 0 THEN
            moved := true;
        END IF;
    END LOOP;
    IF moved THEN
        RAISE EXCEPTION 'tradeops:position_moved';
    END IF;

    -- 4. the account's risk snapshot (derived data: upserted, not audited)
    IF w->'snapshot' IS NOT NULL THEN
        INSERT INTO trading_accountrisksnapshot (account_id, balance, equity, unrealised_pnl, peak_equity, drawdown,
                daily_pnl, used_margin, trading_state, breaker_state, as_of, updated_at)
        SELECT account_id, balance, equity, unrealised_pnl, peak_equity, drawdown, daily_pnl, used_margin,
               trading_state, breaker_state, as_of, updated_at
          FROM jsonb_populate_record(NULL::trading_accountrisksnapshot, w->'snapshot')
        ON CONFLICT (account_id) DO UPDATE SET balance = EXCLUDED.balance, equity = EXCLUDED.equity,
            unrealised_pnl = EXCLUDED.unrealised_pnl, peak_equity = EXCLUDED.peak_equity,
            drawdown = EXCLUDED.drawdown, daily_pnl = EXCLUDED.daily_pnl, used_margin = EXCLUDED.used_margin,
            trading_state = EXCLUDED.trading_state, breaker_state = EXCLUDED.breaker_state,
            as_of = EXCLUDED.as_of, updated_at = EXCLUDED.updated_at;
    END IF;

    -- 5. the outbox, in order
    IF coalesce(jsonb_array_length(w->'outbox'), 0) > 0 THEN
        -- message: the encoded envelope (JSON) as UTF-8 text, stored as its bytes; a '\x' hex
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
    END IF;

    -- 6. the audit trail, chained after the head locked here
    IF coalesce(jsonb_array_length(w->'audit'), 0) > 0 THEN
        SELECT last_sequence, last_hash INTO head_seq, head_hash FROM audit_chain_head WHERE id = 1 FOR UPDATE;
        IF NOT FOUND THEN  -- the first record ever: the head starts at the last record (or the genesis)
            SELECT sequence, hash INTO head_seq, head_hash FROM audit_record ORDER BY sequence DESC LIMIT 1;
            IF NOT FOUND THEN
                head_seq := 0;
                head_hash := repeat('0', 64);
            END IF;
            INSERT INTO audit_chain_head (id, last_sequence, last_hash, updated_at)
                VALUES (1, head_seq, head_hash, clock_timestamp()) ON CONFLICT (id) DO NOTHING;
            SELECT last_sequence, last_hash INTO head_seq, head_hash FROM audit_chain_head WHERE id = 1 FOR UPDATE;
        END IF;
        now_ts := clock_timestamp();
        first_seq := head_seq + 1;
        prev0 := head_hash;
        FOR rec IN SELECT value FROM jsonb_array_elements(w->'audit') LOOP
            head_seq := head_seq + 1;
            retain := now_ts + (rec->>'retain_us')::bigint * interval '1 microsecond';
            head_hash := encode(sha256(convert_to(
                head_hash || E'\n'
                || '[' || head_seq || ',' || (rec->>'lead')
                || ',"' || to_char(now_ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
                || '","' || to_char(retain AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
                || '",' || (rec->>'rest') || ']'
                || E'\n' || (rec->>'payload'), 'UTF8')), 'hex');
            hashes := hashes || head_hash;
        END LOOP;
        -- one INSERT for the records, numbered and linked by the hashes just computed
        INSERT INTO audit_record (sequence, event_id, occurred_at, recorded_at, retain_until, category, actor_type,
                                  actor_id, action, object_type, object_id, payload, corrects, prev_hash, hash)
        SELECT first_seq + a.i - 1, (a.rec->>'event_id')::uuid, (a.rec->>'occurred_at')::timestamptz, now_ts,
               now_ts + (a.rec->>'retain_us')::bigint * interval '1 microsecond', a.rec->>'category',
               a.rec->>'actor_type', a.rec->>'actor_id', a.rec->>'action', a.rec->>'object_type',
               a.rec->>'object_id', a.rec->>'payload', (a.rec->>'corrects')::uuid,
               CASE WHEN a.i = 1 THEN prev0 ELSE hashes[a.i::int - 1] END, hashes[a.i::int]
          FROM jsonb_array_elements(w->'audit') WITH ORDINALITY AS a(rec, i);
        UPDATE audit_chain_head SET last_sequence = head_seq, last_hash = head_hash, updated_at = now_ts
         WHERE id = 1;
    END IF;
    RETURN json_build_object('written', true, 'order_id', new_id, 'first_sequence', first_seq,
                             'last_sequence', head_seq);
END
$fn$;
REVOKE ALL ON FUNCTION trading_order_write(jsonb) FROM PUBLIC;
"""


PREVIOUS_SQL = import_module("trading.migrations.0003_bitemporal_order_write").ORDER_WRITE_SQL  # the hex-only one


def order_write_text_messages(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(ORDER_WRITE_SQL, params=None)


def order_write_hex_messages(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PREVIOUS_SQL, params=None)


class Migration(migrations.Migration):
    dependencies = [("trading", "0004_risklimitproposal")]

    operations = [migrations.RunPython(order_write_text_messages, order_write_hex_messages)]
