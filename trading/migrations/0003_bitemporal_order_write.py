"""Two times on every trading record, and the order write in one statement on PostgreSQL.

1. Bitemporal columns (issue 12): ``Order.recorded_at`` (wall clock of the first write; the stage
   timestamps are event times and ``updated_at`` the wall clock of the last write),
   ``Position.as_of`` and ``AccountRiskSnapshot.as_of`` (event time of the figures). Existing
   rows take their old wall-clock stamps.

2. ``trading_order_write(w jsonb)`` (PostgreSQL only): the row half of ``trading.orders.write``'s
   PostgreSQL writer. ``trading.orders.plan.OrderPlan`` decides every row, audit record and
   event in Python; this function only puts them in the database, in one statement (one round
   trip, one commit when called outside a transaction):

   - the new order (``ON CONFLICT (client_order_id) DO NOTHING``: an existing id writes nothing
     and answers ``written: false`` with its id: idempotency);
   - its fills (a broker deal already recorded raises ``tradeops:deal_recorded`` naming the deals);
   - the positions, in id order, each updated only if it still holds what the writer computed
     from (``expect``), or inserted when the writer expected none: otherwise it raises
     ``tradeops:position_moved`` and the writer reads the rows and computes again;
   - the account's risk snapshot (upsert), the outbox rows;
   - the audit records: the chain head is locked here (the one point of serialisation, after the
     position rows, as every writer locks them), each record is numbered after it and hashed
     exactly as ``tradeops.audit.canonical.chain_hash`` does: SHA-256 over the previous hash,
     the canonical header (built in Python but for the sequence, ``recorded_at`` and
     ``retain_until``, which are only known under the lock: ``record_header_parts``) and the
     canonical payload text, both as the writer sent them. ``recorded_at`` is the server's
     clock after the lock, so record time grows with the sequence. ``audit_verify`` recomputes
     every hash in Python (tests/trading/orders/test_write.py).

   Raising rolls the whole statement back: nothing of the order is written.
"""

from django.db import migrations, models

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
        INSERT INTO outbox (event_id, topic, key, event_type, version, occurred_at, traceparent, message,
                            created_at, attempts, last_error)
        SELECT event_id, topic, key, event_type, version, occurred_at, traceparent, message, created_at, attempts,
               last_error
          FROM jsonb_populate_recordset(NULL::outbox, w->'outbox');
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

ORDER_WRITE_REVERSE = "DROP FUNCTION IF EXISTS trading_order_write(jsonb);"


def order_write_create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(ORDER_WRITE_SQL, params=None)


def order_write_drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(ORDER_WRITE_REVERSE, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("trading", "0002_risk_controls"),
        ("audit", "0004_chain_head_guard"),
        ("outbox", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="order",
            name="recorded_at",
            field=models.DateTimeField(null=True, help_text="Wall clock of the first write"),
        ),
        migrations.RunSQL("UPDATE trading_order SET recorded_at = created_at", migrations.RunSQL.noop),
        migrations.AlterField(
            model_name="order",
            name="recorded_at",
            field=models.DateTimeField(help_text="Wall clock of the first write"),
        ),
        migrations.AlterField(
            model_name="order",
            name="updated_at",
            field=models.DateTimeField(help_text="Wall clock of the last write"),
        ),
        migrations.AlterField(
            model_name="order",
            name="created_at",
            field=models.DateTimeField(db_index=True, help_text="Received (event time)"),
        ),
        migrations.AlterField(
            model_name="order",
            name="decided_at",
            field=models.DateTimeField(blank=True, help_text="Risk/compliance decision (event time)", null=True),
        ),
        migrations.AlterField(
            model_name="order",
            name="submitted_at",
            field=models.DateTimeField(blank=True, help_text="Sent to the broker (event time)", null=True),
        ),
        migrations.AlterField(
            model_name="order",
            name="closed_at",
            field=models.DateTimeField(blank=True, help_text="Reached a terminal state (event time)", null=True),
        ),
        migrations.AlterField(
            model_name="execution",
            name="executed_at",
            field=models.DateTimeField(db_index=True, help_text="The deal's time (event time)"),
        ),
        migrations.AlterField(
            model_name="execution",
            name="recorded_at",
            field=models.DateTimeField(help_text="Wall clock of the write"),
        ),
        migrations.AddField(
            model_name="position",
            name="as_of",
            field=models.DateTimeField(
                blank=True, null=True, help_text="Event time of the last fill or mark that changed it (null before any)"
            ),
        ),
        migrations.RunSQL("UPDATE trading_position SET as_of = updated_at", migrations.RunSQL.noop),
        migrations.AlterField(
            model_name="position",
            name="updated_at",
            field=models.DateTimeField(help_text="Wall clock of the last write"),
        ),
        migrations.AddField(
            model_name="accountrisksnapshot",
            name="as_of",
            field=models.DateTimeField(null=True, help_text="Event time of the figures"),
        ),
        migrations.RunSQL("UPDATE trading_accountrisksnapshot SET as_of = updated_at", migrations.RunSQL.noop),
        migrations.AlterField(
            model_name="accountrisksnapshot",
            name="as_of",
            field=models.DateTimeField(help_text="Event time of the figures"),
        ),
        migrations.AlterField(
            model_name="accountrisksnapshot",
            name="updated_at",
            field=models.DateTimeField(help_text="Wall clock of the write"),
        ),
        migrations.RunPython(order_write_create, order_write_drop),
    ]
