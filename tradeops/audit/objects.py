"""The object id the audit trail files an ``alert.raised`` under, in one place: the audit-trail
stage's two ways of recording an event (``event_entry``, ``_prepare_events``) and the audit
search's reading of an id typed into it (``alert_object_id_searched``).

- a market-data alert (``market_data.<flag>``: the market monitor's, the collector's):
  ``market_data.<flag>:<symbol>:<first finding's event time>``; the symbol, or the event's key
  (the broker) when the alert names no one symbol; the time is the alert's ``start`` (else its
  ``ts``) as ``tradeops.audit.canonical.ts`` writes it, ``2017-03-02T09:00:00.000000Z``;
- any other alert: ``<alert type>:<symbol>:<account>`` (unchanged).

Until 2026-12-06 a market-data alert was filed as ``<alert type>:<symbol>:<account>`` too, and
the monitor's alerts name no account (a feed, not an account, raised them): every spike of EURUSD
was ``market_data.spike:EURUSD:``, one object for all of them, its last part empty. Those records
stay as they were (the chain is immutable); a search by object id finds them beside the new ones
(``alert_object_id_searched``). Pure: no Django.
"""

from __future__ import annotations

from tradeops.audit.canonical import ts

MARKET_DATA = "market_data."


def alert_object_id(payload, *, key: str = "") -> str:
    """The object id of an ``alert.raised`` payload (``tradeops.events.Alert``; ``key``: the
    event's key), as the table above says."""
    alert_type = payload.alert_type
    if alert_type.startswith(MARKET_DATA):
        first = payload.start or payload.ts
        return f"{alert_type}:{payload.symbol or key}:{ts(first)}"
    return f"{alert_type}:{payload.symbol}:{payload.account}"


def alert_object_id_searched(object_type: str, object_id: str) -> tuple[tuple[str, ...], str]:
    """What a search by ``object_id`` (of type ``object_type``, or any) also matches for a
    market-data alert: (other ids, an id prefix). One alert's id (``market_data.spike:EURUSD:<time>``)
    also finds the records of its flag and symbol from before the id carried the time
    (``market_data.spike:EURUSD:``: which of them was this alert the id cannot tell); the flag and
    symbol alone (``market_data.spike:EURUSD``, or the old id with its empty last part) find every
    alert of them, old and new. ``((), "")`` for anything else."""
    if object_type not in ("", "alert") or not object_id.startswith(MARKET_DATA):
        return (), ""
    parts = object_id.split(":", 2)
    if len(parts) == 3 and parts[2]:  # one alert's id
        return (f"{parts[0]}:{parts[1]}:",), ""
    if len(parts) >= 2:  # flag and symbol, the old form or without the last colon
        return (), f"{parts[0]}:{parts[1]}:"
    return (), ""
