"""The order's trader index holds only the orders that have a trader (issue 12: the order write's
server cost).

``trader`` is NULL on every order an algorithm sends (the execution worker's, the bench's): each
such order wrote a NULL entry into ``trading_order_trader_id_9c305c05``, one of the 8 indexes
every order writes. Its readers look orders up by a trader: the kill switch's trader scope
(``trader_id = <id>``, ``trading/controls/services.py``) and the PROTECT check when a user is
deleted (``trader_id IN (...)``); both imply NOT NULL, so the planner uses the partial
``order_trader_idx``, and nothing asks for the orders without a trader through it. Measured in
``bench/order_statement_items.py`` (bench/README.md). Reversible: ``migrate trading 0006``
rebuilds the full index under its old name.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("trading", "0006_order_path_indexes"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterField(  # drops trading_order_trader_id_9c305c05 (the full index)
            model_name="order",
            name="trader",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="orders",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddIndex(
            model_name="order",
            index=models.Index(
                condition=models.Q(("trader__isnull", False)), fields=["trader"], name="order_trader_idx"
            ),
        ),
    ]
