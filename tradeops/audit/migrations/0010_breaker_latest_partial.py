"""``audit_breaker_latest_idx``: a restarted execution worker restores each account's trading
breaker from its latest ``trading_breaker.*`` record (wip/breaker48), one ``LIMIT 1`` probe per
breaker. Without it the probe either reads every record of that breaker (``audit_object_idx``,
then a sort: a breaker that flapped through a day's outage has thousands) or walks the trail
backwards from its head until it meets one. A partial index holds only the breaker records.
Built ``CONCURRENTLY`` on PostgreSQL: the trail takes every order's records while it builds (an
interrupted build leaves an INVALID index: drop it and migrate again)."""

from django.db import migrations, models

from tradeops.core.migration_operations import AddIndexConcurrentlyOnPostgres


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY runs outside a transaction

    dependencies = [
        ("audit", "0009_alert_recorded_partial"),
    ]

    operations = [
        AddIndexConcurrentlyOnPostgres(
            model_name="auditrecord",
            index=models.Index(
                condition=models.Q(("object_type", "trading_breaker")),
                fields=["object_id", "-sequence"],
                name="audit_breaker_latest_idx",
            ),
        ),
    ]
