"""Trading sessions: is a market open at an instant, and how much open time lies between two.

``trading_hours`` is ``Instrument.trading_hours``: UTC sessions per weekday, e.g.
``{"mon": [["00:00", "24:00"]], "fri": [["00:00", "21:55"]]}``; an empty dict means always open.
Pure (no clock): the instant comes in as an argument.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from tradeops.core.clock import ensure_utc

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Compiled = tuple[tuple[tuple[int, int], ...], ...]


def _minutes(text: str) -> int:
    hours, _, minutes = text.partition(":")
    value = int(hours) * 60 + int(minutes or 0)
    if not 0 <= value <= 1440:
        raise ValueError(f"session time {text!r} is outside 00:00-24:00")
    return value


def compile_hours(hours: dict) -> Compiled:
    """Per weekday (Monday first), the sessions as (start, end) seconds after midnight; ``()``
    (always open) for empty hours."""
    if not hours:
        return ()
    unknown = set(hours) - set(DAYS)
    if unknown:
        raise ValueError(f"trading_hours has unknown weekdays {sorted(unknown)}; use {', '.join(DAYS)}")
    days = []
    for day in DAYS:
        sessions = []
        for pair in hours.get(day, ()):
            start, end = _minutes(pair[0]) * 60, _minutes(pair[1]) * 60
            if end <= start:
                raise ValueError(f"trading_hours {day}: session {pair} ends before it starts")
            sessions.append((start, end))
        days.append(tuple(sorted(sessions)))
    return tuple(days)


def _compiled(hours: dict | Compiled) -> Compiled:
    return hours if isinstance(hours, tuple) else compile_hours(hours)


def is_open(hours: dict | Compiled, at: datetime) -> bool:
    """True when ``at`` (aware) falls inside a session; always True for empty ``hours``.
    ``hours`` may be pre-compiled with ``compile_hours`` for hot paths."""
    if not hours:
        return True
    at = ensure_utc(at)
    second = at.hour * 3600 + at.minute * 60 + at.second + at.microsecond / 1e6
    return any(start <= second < end for start, end in _compiled(hours)[at.weekday()])


def open_seconds_between(hours: dict | Compiled, start: datetime, end: datetime) -> float:
    """Seconds of session time in ``[start, end)``. For gap detection: a weekend is not a gap."""
    start, end = ensure_utc(start), ensure_utc(end)
    if end <= start:
        return 0.0
    if not hours:
        return (end - start).total_seconds()
    compiled = _compiled(hours)
    total = 0.0
    day_start = start.replace(hour=0, minute=0, second=0, microsecond=0)
    while day_start < end:
        for s, e in compiled[day_start.weekday()]:
            lo = max(start, day_start + timedelta(seconds=s))
            hi = min(end, day_start + timedelta(seconds=e))
            if hi > lo:
                total += (hi - lo).total_seconds()
        day_start += timedelta(days=1)
    return total
