"""Actor strings: who did what the audit trail records.

An actor string is ``"<kind>:<name>"``. Every writer hands one to the audit trail
(``AuditEntry.actor``, ``audit_append(actor=...)``), and the trail stores it split in two,
``AuditRecord.actor_type`` and ``actor_id`` (``tradeops.audit.services.actor_parse``), so the audit
search can ask for ``"user:alice"`` or just ``"alice"``. The same text labels who generated a
report, engaged a kill switch or placed a retention hold. The kinds in use:

- ``user:<username>``: a person, signed in to the screens or the admin, or named by a command's
  ``--user``; an API client too, which acts as its own service user, so its records read
  ``user:api.<client name>`` (``tradeops.api.services.SERVICE_USER_PREFIX``). A failed or locked
  out sign-in names the username tried (``user:unknown`` when none was given).
- ``service:<name>``: a process acting on its own: a worker or stage (``service:execution-worker``;
  an event recorded by the audit consumer without a person on it is ``service:<event source>``),
  a Celery task (``service:celery``, ``service:celery-beat``, ``service:audit-verify-nightly``),
  a command (``service:manage.py ...``), the seed (``service:seed``).
- ``system``: the platform itself, with no one to name (an API authentication refused, an
  entry's default).
- ``algorithm:<id>``: parsed (``actor_parse``), for an algorithm's own decisions; no writer uses
  it yet. A bare name without a kind is read as a service.

The text is hashed into the chain, so it never changes shape: these helpers build exactly the
text the writers built before they existed. Pure: no Django, no clock.
"""

from __future__ import annotations

from typing import Protocol


class _HasUsername(Protocol):
    def get_username(self) -> str: ...


def user_actor(user: _HasUsername) -> str:
    """The actor string of a person or an API client's service user: ``"user:<username>"``."""
    return f"user:{user.get_username()}"


def username_actor(username: str) -> str:
    """``"user:<username>"`` for a username given as text (a command's ``--user``, the name a
    failed sign-in tried, a person named on an event), with no user row at hand."""
    return f"user:{username}"


def event_actor(actor: str, source: str) -> str:
    """The actor of an event the audit consumer records: the person or actor string on the event
    (``payload.actor``: a bare name is a username) or, when there is none, the stage that
    emitted it, ``"service:<source>"``."""
    if not actor:
        return f"service:{source}"
    return actor if ":" in actor else f"user:{actor}"
