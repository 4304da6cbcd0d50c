"""The execution's UTC trading date on each transaction record (``TransactionRecord.trade_date``),
for the home page's T+1 reminder: step 1 of 2, the column, nullable. Adding a nullable column
without a default changes only the catalogue (PostgreSQL and SQLite: no table rewrite), so this
migration is atomic and instant; 0004 fills it, makes it NOT NULL and indexes it. Two
migrations so that an interrupted 0004 can simply be migrated again."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("reports", "0002_record_standing_unreported")]

    operations = [
        migrations.AddField(model_name="transactionrecord", name="trade_date", field=models.DateField(null=True)),
    ]
