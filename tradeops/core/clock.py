"""Time, UTC with microseconds (RTS 25). Handlers never read the clock; runners call this."""

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def ensure_utc(value: datetime) -> datetime:
    """Refuse naive datetimes: a naive timestamp is taken as local time by MT5 and is ambiguous."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value.isoformat()} refused: timestamps must be timezone-aware UTC")
    return value.astimezone(UTC)
