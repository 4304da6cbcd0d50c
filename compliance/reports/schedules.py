"""The report schedules as django-celery-beat rows (kept in the database, editable in the admin).

``report_schedules_install`` writes the defaults of ``settings.REPORTING_SCHEDULES`` that are
missing, with their cron in ``REPORTING_TIMEZONE`` and the ``reports`` queue; a schedule that
exists (perhaps edited in the admin) is left as it is unless ``overwrite``.
"""

from __future__ import annotations

import json

from django.conf import settings
from django.db import transaction

QUEUE = "reports"


def _crontab(expression: str, timezone: str):
    from django_celery_beat.models import CrontabSchedule

    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(f"cron expression {expression!r} needs 5 fields (minute hour day month weekday)")
    minute, hour, day_of_month, month_of_year, day_of_week = fields
    schedule, _ = CrontabSchedule.objects.get_or_create(
        minute=minute,
        hour=hour,
        day_of_month=day_of_month,
        month_of_year=month_of_year,
        day_of_week=day_of_week,
        timezone=timezone,
    )
    return schedule


@transaction.atomic
def report_schedules_install(*, overwrite: bool = False) -> list[str]:
    """Create the missing report schedules (or reset all with ``overwrite``). Returns the names
    written. Audited as ``report_schedule.installed``."""
    from django_celery_beat.models import PeriodicTask

    from tradeops.audit.services import audit_record_change
    from tradeops.core.clock import utcnow

    written = []
    for name, spec in settings.REPORTING_SCHEDULES.items():
        existing = PeriodicTask.objects.filter(name=name).first()
        if existing is not None and not overwrite:
            continue
        crontab = _crontab(spec["crontab"], settings.REPORTING_TIMEZONE)
        values = {
            "task": spec["task"],
            "crontab": crontab,
            "interval": None,
            "kwargs": json.dumps(spec.get("kwargs", {})),
            "queue": QUEUE,
            "enabled": True,
            "description": f"regulatory report schedule ({settings.REPORTING_TIMEZONE})",
        }
        PeriodicTask.objects.update_or_create(name=name, defaults=values)
        audit_record_change(
            action="report_schedule.installed",
            actor="service:reports",
            object_type="periodic_task",
            object_id=name,
            before=None,
            after={"task": spec["task"], "crontab": spec["crontab"], "timezone": settings.REPORTING_TIMEZONE},
            occurred_at=utcnow(),
        )
        written.append(name)
    return written
