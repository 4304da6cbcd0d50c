"""The audit record's indexes, as written by every append (issue 12: the order write's server CPU).

Each order appends six audit records in its one statement; each index is written for each.
``audit_record`` had 10 indexes; one is dropped, 9 kept:

- kept ``audit_record_pkey`` (``sequence``): the chain's order, verification, archive, digests.
- kept ``event_id`` (unique): the idempotency key (the same event is recorded once) and every
  lookup of a record by event id (corrections, digests' proofs, the search).
- kept ``hash`` (unique): the chain's integrity constraint (two records never sign alike).
- kept ``audit_occurred_idx`` (``occurred_at``): the audit search's and reports' time ranges.
- kept ``audit_recorded_idx`` (``recorded_at``): the daily digest's and the archive's ranges, the
  console's recent records.
- kept ``audit_action_idx`` (``action, occurred_at``): reports by action (prefix) over a period,
  the story of an order (``signal.validated``).
- kept ``audit_actor_idx`` (``actor_type, actor_id``): the audit search by actor.
- kept ``audit_object_idx`` (``object_type, object_id``): an object's history (order stories,
  the console's breaker changes).
- kept ``audit_corrects_idx`` (``corrects``): the corrections of a record (audit views).
- dropped ``audit_record_hash_a5b271e3_like``: Django's ``varchar_pattern_ops`` twin of the
  unique ``hash`` (for ``LIKE 'prefix%'``); no query looks a hash up by prefix. ``hash`` stays
  ``unique=True`` in the model; the index is dropped by SQL on PostgreSQL (the only database
  that had it). Reversible: ``migrate audit 0006`` rebuilds it under its old name.
"""

from django.db import migrations

LIKE_INDEX = "audit_record_hash_a5b271e3_like"


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {LIKE_INDEX}")


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {LIKE_INDEX} ON audit_record (hash varchar_pattern_ops)")


class Migration(migrations.Migration):
    dependencies = [("audit", "0006_pgtrigger_append_only")]

    operations = [migrations.RunPython(forward, backward)]
