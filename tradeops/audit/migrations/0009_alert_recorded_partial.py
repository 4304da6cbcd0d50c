"""``audit_alert_recorded_idx``: the operator alerts' panel and home tile (wip/ops44) read the
``alert.raised`` records of the last 24 hours, newest recorded first; a partial index holds only
those (on a million-record trail: 1.7 ms against 30.9 ms without it). Built ``CONCURRENTLY`` on
PostgreSQL: the trail takes every order's records while it builds (an interrupted build leaves an
INVALID index: drop it and migrate again)."""

from django.db import migrations, models

from tradeops.core.migration_operations import AddIndexConcurrentlyOnPostgres


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY runs outside a transaction

    dependencies = [
        ("audit", "0008_corrects_partial"),
    ]

    operations = [
        AddIndexConcurrentlyOnPostgres(
            model_name="auditrecord",
            index=models.Index(
                condition=models.Q(("action", "alert.raised")), fields=["-recorded_at"], name="audit_alert_recorded_idx"
            ),
        ),
    ]
