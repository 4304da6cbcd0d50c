"""The object id the audit trail files an ``alert.raised`` under, in one place: the audit-trail
stage's two ways of recording an event (``event_entry``, ``_prepare_events``) and the audit
search's reading of an id typed into it (``alert_object_id_searched``).

- a market-data alert (``market_data.<flag>``: the market monitor's, the collector's):
  ``market_data.<flag>:<symbol>:<first finding's event time>``; the symbol, or the event's key
  (the broker) when the alert names no one symbol; the time is the alert's ``start`` (else its
  ``ts``) as ``tradeops.audit.canonical.ts`` writes it, ``2017-03-02T09:00:00.000000Z``;
- an alert for an account: ``<alert type>:<symbol>:<account>`` (unchanged);
- any other alert, one that names no account (an ``anomaly.<series>`` of the platform's own
  metrics, a model's drift, a breaker over every account, a surveillance alert of a history
  without accounts): ``<alert type>:<subject>:<first finding's event time>``, the subject its
  symbol, else its owner (``operations`` for an anomaly), else the event's key; the time as above.

Until 2026-12-06 every alert was filed as ``<alert type>:<symbol>:<account>``, and these name no
account: every spike of EURUSD was ``market_data.spike:EURUSD:``, every anomaly of a series
``anomaly.<series>::``, one object for all of them, its last part empty. Those records stay as
they were (the chain is immutable); a search by object id finds them beside the new ones
(``alert_object_id_searched``). An alert the compliance desk records (``compliance.services``) is
filed by its row (``alert``, its database number) and its ``alert.raised`` carries that record's
event id, so the audit-trail stage does not file it again. Pure: no Django.
"""

from __future__ import annotations

import re

from tradeops.audit.canonical import ts
from tradeops.core.operator_alerts import OPERATOR_ALERT_PREFIXES

MARKET_DATA = "market_data."
# an id's last part that is a first finding's time, as ``ts`` writes it
_TRAIL_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")


def alert_object_id(payload, *, key: str = "") -> str:
    """The object id of an ``alert.raised`` payload (``tradeops.events.Alert``; ``key``: the
    event's key), as the table above says."""
    alert_type = payload.alert_type
    if alert_type.startswith(MARKET_DATA):
        return f"{alert_type}:{payload.symbol or key}:{ts(payload.start or payload.ts)}"
    if payload.account:
        return f"{alert_type}:{payload.symbol}:{payload.account}"
    subject = payload.symbol or payload.owner or key
    return f"{alert_type}:{subject}:{ts(payload.start or payload.ts)}"


def alert_object_id_searched(object_type: str, object_id: str) -> tuple[tuple[str, ...], str]:
    """What a search by ``object_id`` (of type ``object_type``, or any) also matches for an
    alert filed under its first finding's time: (other ids, an id prefix).

    - One alert's id (``market_data.spike:EURUSD:<time>``, ``anomaly.latency:operations:<time>``)
      also finds the records of its type and subject from before the id carried the time
      (``market_data.spike:EURUSD:``; ``<type>::`` for one filed then without a symbol, an
      anomaly, a collector outage): which of them was this alert, the old id cannot tell.
    - An old id, its last part empty (``market_data.spike:EURUSD:``, ``model_drift:EURUSD:``),
      finds every alert of its type and subject, old and new (a prefix; for a type also raised
      for accounts, ``spoofing:EURUSD:`` finds that type's alerts on the symbol for every
      account too); its subject empty too (``anomaly.latency::``), every alert of the type.
    - An operator alert's type and subject alone (``market_data.spike:EURUSD``) find every
      alert of them, old and new.

    ``((), "")`` for anything else (``spoofing:EURUSD:7``, an order's id)."""
    if object_type not in ("", "alert") or ":" not in object_id:
        return (), ""
    parts = object_id.split(":", 2)
    if len(parts) == 3:
        alert_type, subject, last = parts
        if not alert_type:
            return (), ""
        if _TRAIL_TIME.fullmatch(last):  # one alert's id
            old = [f"{alert_type}:{subject}:", f"{alert_type}::"]
            return tuple(dict.fromkeys(old)), ""
        if not last:  # the old form
            return (), f"{alert_type}:{subject}:" if subject else f"{alert_type}:"
        return (), ""
    if parts[0].startswith(OPERATOR_ALERT_PREFIXES) and parts[1]:  # type and subject, without the last colon
        return (), f"{parts[0]}:{parts[1]}:"
    return (), ""
