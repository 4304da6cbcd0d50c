"""``outbox_sent_at_idx`` becomes partial: ``WHERE sent_at IS NOT NULL`` (issue 12).

Every outbox row is inserted unsent (``sent_at`` NULL): the order path inserts eight per order.
A full btree on ``sent_at`` indexes those NULLs too, so every append wrote it, and the relay's
``UPDATE ... SET sent_at`` moved each row within it once more. Its only reader is
``outbox_prune`` (``sent_at < cutoff``, which implies NOT NULL, so the planner uses the partial
index); the unsent rows have their own partial index (``outbox_unsent_idx``, the relay's scan,
unchanged). After this migration an append writes the pkey, ``event_id``'s unique index and
``outbox_unsent_idx`` only; the outbox keeps its 4 indexes. Reversible (rebuilds the full one).
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("outbox", "0002_notify_relay")]

    operations = [
        migrations.RemoveIndex(model_name="outbox", name="outbox_sent_at_idx"),
        migrations.AddIndex(
            model_name="outbox",
            index=models.Index(
                condition=models.Q(("sent_at__isnull", False)), fields=["sent_at"], name="outbox_sent_at_idx"
            ),
        ),
    ]
