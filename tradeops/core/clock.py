"""Time, UTC with microseconds (RTS 25). Handlers never read the clock; runners do, through a
``Clock`` they are given.

Every record of something that happened keeps two times: when it happened (event time) and when
it was recorded (record time, always the wall clock, ``utcnow``). Event time comes from a
``Clock`` object chosen by the runner and passed in (never a global):

* ``WallClock`` in live trading: event time is the wall clock's reading at the moment the
  thing happens (RTS 25: the moment an order is received, decided, sent);
* ``ReplayClock`` in a replay: event time is the market time of the event being handled, so a
  replay of 2017 data produces trading records dated 2017 (recorded today).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol


def utcnow() -> datetime:
    """The wall clock (record time)."""
    return datetime.now(UTC)


def ensure_utc(value: datetime) -> datetime:
    """Refuse naive datetimes: a naive timestamp is taken as local time by MT5 and is ambiguous."""
    if value.tzinfo is UTC:  # every feed's and every decoded event's: what astimezone(UTC) returns as is
        return value
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value.isoformat()} refused: timestamps must be timezone-aware UTC")
    return value.astimezone(UTC)


class Clock(Protocol):
    """Event time for a runner and the services it calls."""

    def now(self) -> datetime:
        """The event time of what is happening now (aware UTC)."""

    def observe(self, at: datetime) -> None:
        """The market time of the event about to be handled."""

    @property
    def started(self) -> bool:
        """Whether ``now`` has a reading (a replay clock has none before its first event)."""


class WallClock:
    """Live: event time is the wall clock's reading at the moment. ``observe`` is a no-op."""

    started = True

    def now(self) -> datetime:
        return datetime.now(UTC)

    def observe(self, at: datetime) -> None:
        return None

    def __repr__(self) -> str:
        return "WallClock()"


class ClockNotStarted(RuntimeError):
    """A replay clock read before it saw any event."""


class ReplayClock:
    """Replay: event time is the market time of the latest event handled (never moves back).

    ``start`` gives it a reading before the first event (e.g. the replayed data's first
    timestamp); without it, ``now`` raises ``ClockNotStarted`` until ``observe`` is called."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = ensure_utc(start) if start is not None else None

    @property
    def started(self) -> bool:
        return self._now is not None

    def now(self) -> datetime:
        if self._now is None:
            raise ClockNotStarted("the replay clock has seen no event yet: no market time to give")
        return self._now

    def observe(self, at: datetime) -> None:
        if self._now is None or at > self._now:
            self._now = at

    def __repr__(self) -> str:
        return f"ReplayClock({self._now.isoformat() if self._now else 'not started'})"
