"""Readers for the console's operator alerts: the ``alert.raised`` events of the platform about
itself (reconciliation, trading breaker, model drift, market data, anomalies;
``tradeops.core.operator_alerts``), read from the audit trail, their system of record (the audit
consumer records every compliance-events alert). Surveillance's alerts are never listed: they are
the compliance desk's (no tipping off, 2016/957 Art. 5).

One indexed query (``audit_alert_recorded_idx``: alerts only, newest recorded first), bounded by
record time and a count: record time, not event time, because a replay raises its alerts at the
replayed market time. Each row keeps both times (RTS 25)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import reduce
from operator import or_
from typing import Any

import orjson
from django.db.models import Q

from tradeops.audit.models import AuditRecord
from tradeops.core.clock import utcnow
from tradeops.core.operator_alerts import (
    HIGH_SEVERITIES,
    OPERATOR_ALERT_PREFIXES,
    OPERATOR_ALERT_TYPES,
    alert_is_operator,
    operator_alert_explanation,
)

PANEL_HOURS = 24  # the panel: the last 24 hours' alerts ...
PANEL_LIMIT = 50  # ... the newest 50 of them at most
HIGH_HOURS = 1  # the home page's tile: high and critical alerts of the last hour
HIGH_LIMIT = 500  # counted up to this many ("500 or more")


@dataclass(frozen=True)
class OperatorAlert:
    """One operator alert as the console shows it. ``occurred_at``: event time (the alert's own
    ``ts``); ``recorded_at``: when the audit trail recorded it (wall clock)."""

    sequence: int
    event_id: str
    alert_type: str
    severity: str
    occurred_at: datetime
    recorded_at: datetime
    account: str
    symbol: str
    process: str  # the event's source: execution worker, collector, anomaly-detector, ...
    explanation: str

    @property
    def subject(self) -> str:
        return " · ".join(
            part
            for part in (
                f"account {self.account}" if self.account else "",
                self.symbol,
                self.process,
            )
            if part
        )

    @property
    def high(self) -> bool:
        return self.severity in HIGH_SEVERITIES


def _operator_types() -> Q:
    """The operator alerts' records: the object id starts with the alert type
    (``alert_type:symbol:account``, ``tradeops.audit.services._EVENT_OBJECTS``)."""
    exact = [Q(object_id__startswith=f"{t}:") for t in sorted(OPERATOR_ALERT_TYPES)]
    prefixes = [Q(object_id__startswith=p) for p in OPERATOR_ALERT_PREFIXES]
    return reduce(or_, exact + prefixes)


def _row(record: AuditRecord) -> OperatorAlert | None:
    try:
        body = orjson.loads(record.payload)
    except orjson.JSONDecodeError:
        return None
    data: dict[str, Any] = body.get("data") or {}
    alert_type = str(data.get("alert_type", ""))
    if not alert_is_operator(alert_type):  # the object id's prefix matched; the payload decides
        return None
    return OperatorAlert(
        sequence=record.sequence,
        event_id=str(record.event_id),
        alert_type=alert_type,
        severity=str(data.get("severity") or "medium"),
        occurred_at=record.occurred_at,
        recorded_at=record.recorded_at,
        account=str(data.get("account") or ""),
        symbol=str(data.get("symbol") or ""),
        process=str((body.get("event") or {}).get("source") or record.actor_id),
        explanation=operator_alert_explanation(alert_type, data.get("evidence"), symbol=str(data.get("symbol") or "")),
    )


def operator_alerts_recent(
    *, since: datetime | None = None, limit: int = PANEL_LIMIT, now: datetime | None = None
) -> list[OperatorAlert]:
    """Operator alerts recorded since ``since`` (default: the last ``PANEL_HOURS`` hours), newest
    recorded first, at most ``limit``. Surveillance's alerts are left out. No permission check:
    the caller is a console view or selector that checked ``console_visible``."""
    if since is None:
        since = (now or utcnow()) - timedelta(hours=PANEL_HOURS)
    records = (
        AuditRecord.objects.filter(action="alert.raised", recorded_at__gte=since)
        .filter(_operator_types())
        .order_by("-recorded_at", "-sequence")
        .only("sequence", "event_id", "occurred_at", "recorded_at", "actor_id", "payload")[:limit]
    )
    return [row for row in map(_row, records) if row is not None]


def operator_alerts_high_count(*, now: datetime | None = None) -> int:
    """High and critical operator alerts recorded in the last ``HIGH_HOURS`` hour (counted up to
    ``HIGH_LIMIT``), for the home page."""
    since = (now or utcnow()) - timedelta(hours=HIGH_HOURS)
    return sum(row.high for row in operator_alerts_recent(since=since, limit=HIGH_LIMIT))
