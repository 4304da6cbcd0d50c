"""``audit_corrects_idx`` becomes partial: ``WHERE corrects IS NOT NULL`` (issue 12: the order
write's server cost).

``corrects`` names the record a correction corrects; every other record has NULL there, and the
order path appends six such records per order, each of which wrote a NULL entry into this btree
(one of the 6 secondary indexes written per record). Its readers look corrections up by a value
(``audit_corrections``: ``corrects = <event id>``; the admin's exact search), which implies NOT
NULL, so the planner uses the partial index; nothing asks for ``corrects IS NULL`` through it.
Measured in ``bench/order_statement_items.py`` (bench/README.md). Reversible: rebuilds the full
index under the same name, as outbox 0003 did for ``sent_at``.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("audit", "0007_append_indexes")]

    operations = [
        migrations.RemoveIndex(model_name="auditrecord", name="audit_corrects_idx"),
        migrations.AddIndex(
            model_name="auditrecord",
            index=models.Index(
                condition=models.Q(("corrects__isnull", False)), fields=["corrects"], name="audit_corrects_idx"
            ),
        ),
    ]
