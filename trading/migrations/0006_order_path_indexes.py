"""Index diet on the order path's hot tables (issue 12: the order write's server CPU).

Every order inserts one ``trading_order`` row (in its final state) and one ``trading_execution``
row per fill in its one statement (``trading_order_write``); each index on those tables is one
more btree insertion per row, in the server's CPU that every order waits for, and one more page
to keep in memory. ``trading_order`` had 15 indexes, ``trading_execution`` 6.
Kept only those a query needs (the querysets, admin, API filters, reports, surveillance, the
kill switch and the order write were read for this list):

trading_order, 15 -> 8:

- kept ``trading_order_pkey``: every write and ``select_for_update(pk)``.
- kept ``trading_order_client_order_id_key`` (unique): the idempotency key, ``ON CONFLICT
  (client_order_id)`` in the order write, every lookup by client order id (stories, cases,
  reconciliation, the API).
- kept ``(account_id, status)``: the worker's hot state (``order_list_open``, reconciliation's
  open orders), the kill switch's account scope; also serves every ``account_id`` lookup
  (leading column) and the PROTECT check when an account is deleted.
- kept ``(instrument_id, created_at)``: surveillance/desk per symbol over time; also serves the
  PROTECT check on an instrument (leading column).
- kept ``created_at``: the default ordering (``-created_at``: console, API lists) and the
  reports' date ranges (``created_at__gte/lt``).
- kept ``algo_id`` (now ``order_algo_idx``): the API's ``algo_id`` filter, the kill switch's
  algorithm scope, ``algo_ids_traded`` (distinct algo ids).
- kept ``signal_id`` (now ``order_signal_idx``): the API's ``signal_id`` filter.
- kept ``trader_id``: the kill switch's trader scope and the PROTECT check when a user is
  deleted (a scan of every order otherwise).
- dropped ``account_id`` alone and ``instrument_id`` alone: duplicates of the leading column of
  the two composite indexes above.
- dropped ``broker_order_id`` (and its ``varchar_pattern_ops`` twin): no query filters on it
  (the admin's search is ``icontains``, which no btree index serves; reconciliation matches by
  client order id and the broker's comment).
- dropped the ``varchar_pattern_ops`` twins of ``client_order_id``, ``algo_id``, ``signal_id``
  (Django's ``_like`` indexes for ``LIKE 'prefix%'``): no query filters these columns by prefix
  (grep ``__startswith`` / ``LIKE``); exact matches use the plain btree. ``client_order_id``
  stays ``unique=True`` in the model (forms, serializers, ``ON CONFLICT``): only its ``_like``
  index is dropped here, by SQL on PostgreSQL (the other databases never had one).

trading_execution, 6 -> 5:

- dropped ``account_id`` alone: the leading column of ``execution_unique_deal (account_id,
  broker_deal_id)``. Kept the pkey, that unique constraint (one fill per deal), ``order_id``
  (an order's fills), ``instrument_id`` (per-symbol reports and the PROTECT check),
  ``executed_at`` (the default ordering and the reports' date ranges).

Measured in ``bench/order_path.py`` (bench/README.md). Reversible: ``migrate trading 0005``
rebuilds every dropped index under its old name.
"""

from django.db import migrations, models

ORDER = "trading_order"
RENAMED = (  # (Django's db_index name, the Meta index's name, column)
    ("trading_order_algo_id_68ef058d", "order_algo_idx", "algo_id"),
    ("trading_order_signal_id_1bfb227d", "order_signal_idx", "signal_id"),
)
LIKE = (  # PostgreSQL's varchar_pattern_ops twins, dropped
    ("trading_order_client_order_id_a81b3b98_like", "client_order_id"),
    ("trading_order_algo_id_68ef058d_like", "algo_id"),
    ("trading_order_signal_id_1bfb227d_like", "signal_id"),
)


def forward(apps, schema_editor):
    postgres = schema_editor.connection.vendor == "postgresql"
    for old, new, column in RENAMED:
        if postgres:
            schema_editor.execute(f"ALTER INDEX {old} RENAME TO {new}")
        else:  # SQLite has no ALTER INDEX
            schema_editor.execute(f"DROP INDEX {old}")
            schema_editor.execute(f"CREATE INDEX {new} ON {ORDER} ({column})")
    if postgres:
        for name, _column in LIKE:
            schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


def backward(apps, schema_editor):
    postgres = schema_editor.connection.vendor == "postgresql"
    if postgres:
        for name, column in LIKE:
            schema_editor.execute(f"CREATE INDEX {name} ON {ORDER} ({column} varchar_pattern_ops)")
    for old, new, column in RENAMED:
        if postgres:
            schema_editor.execute(f"ALTER INDEX {new} RENAME TO {old}")
        else:
            schema_editor.execute(f"DROP INDEX {new}")
            schema_editor.execute(f"CREATE INDEX {old} ON {ORDER} ({column})")


class Migration(migrations.Migration):
    dependencies = [("trading", "0005_order_write_text_messages")]

    operations = [
        # Plain AlterFields: Django drops these indexes (and, on PostgreSQL, the _like twin).
        migrations.AlterField(
            model_name="order",
            name="account",
            field=models.ForeignKey(
                db_index=False,
                on_delete=models.deletion.PROTECT,
                related_name="orders",
                to="trading.tradingaccount",
            ),
        ),
        migrations.AlterField(
            model_name="order",
            name="instrument",
            field=models.ForeignKey(
                db_index=False,
                on_delete=models.deletion.PROTECT,
                related_name="orders",
                to="trading.instrument",
            ),
        ),
        migrations.AlterField(
            model_name="order",
            name="broker_order_id",
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.AlterField(
            model_name="execution",
            name="account",
            field=models.ForeignKey(
                db_index=False,
                on_delete=models.deletion.PROTECT,
                related_name="executions",
                to="trading.tradingaccount",
            ),
        ),
        # algo_id and signal_id keep their btree index, renamed and moved to Meta.indexes (no
        # rebuild); their _like twins and client_order_id's are dropped.
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="order",
                    name="algo_id",
                    field=models.CharField(blank=True, max_length=64, verbose_name="algorithm id"),
                ),
                migrations.AlterField(
                    model_name="order",
                    name="signal_id",
                    field=models.CharField(blank=True, help_text="Prediction that led to it", max_length=64),
                ),
                migrations.AddIndex(
                    model_name="order",
                    index=models.Index(fields=["algo_id"], name="order_algo_idx"),
                ),
                migrations.AddIndex(
                    model_name="order",
                    index=models.Index(fields=["signal_id"], name="order_signal_idx"),
                ),
            ],
            database_operations=[migrations.RunPython(forward, backward)],
        ),
    ]
