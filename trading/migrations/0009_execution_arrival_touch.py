"""Each fill keeps the touch quoted when its order arrived: ``arrival_bid`` and ``arrival_ask``
beside ``arrival_mid`` (nullable).

The best-execution report measured every fill against the arrival mid, so a market order filled
at the touch (ask to buy, bid to sell) was adverse by half the spread every time and every client
read as "adverse slippage passed on" (sign test z = sqrt(n)). The report now measures against the
touch where the fill has it (``compliance/reports/generators/others.py``); fills recorded before
this migration keep only the mid and the report says so (``reference`` = ``mid``).

The order write's PostgreSQL function (trading 0003/0005/0008) inserts fills with ``INSERT INTO
trading_execution SELECT * FROM jsonb_populate_recordset(NULL::trading_execution, ...)``: the
new columns are taken by name from the jsonb (absent: NULL), so the function is unchanged.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("trading", "0008_order_write_messages_bytea"),
    ]

    operations = [
        migrations.AddField(
            model_name="execution",
            name="arrival_bid",
            field=models.DecimalField(
                blank=True, decimal_places=10, help_text="Bid when the order arrived", max_digits=24, null=True
            ),
        ),
        migrations.AddField(
            model_name="execution",
            name="arrival_ask",
            field=models.DecimalField(
                blank=True, decimal_places=10, help_text="Ask when the order arrived", max_digits=24, null=True
            ),
        ),
    ]
