"""How numbers and times look on every screen (and in the live script, which follows the same
rules: static/js/live.js). Lots to the instrument's volume step, prices to its digits, money to
two decimals with separators, times in UTC with milliseconds (RTS 25 granularity for other
algorithmic trading). Pure: no Django."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation


def step_decimals(step) -> int:
    """Decimal places a step has: 0.01 -> 2, 1 -> 0, 0.5 -> 1."""
    try:
        exponent = Decimal(str(step)).normalize().as_tuple().exponent
    except (InvalidOperation, TypeError, ValueError):
        return 2
    return max(0, -int(exponent))


def fixed(value, places: int, *, separators: bool = False, sign: bool = False) -> str:
    """``value`` with exactly ``places`` decimals ("" for None), rounded half-even."""
    if value is None or value == "":
        return ""
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return str(value)
    quantum = Decimal(1).scaleb(-places)
    number = number.quantize(quantum, rounding=ROUND_HALF_EVEN)
    text = f"{number:,.{places}f}" if separators else f"{number:.{places}f}"
    if sign and number > 0:
        text = "+" + text
    return text


def lots(value, volume_step) -> str:
    return fixed(value, step_decimals(volume_step))


def price(value, digits) -> str:
    return fixed(value, int(digits if digits is not None else 5))


def money(value, *, sign: bool = False) -> str:
    return fixed(value, 2, separators=True, sign=sign)


def utc(value: datetime | None, *, micro: bool = False) -> str:
    """ "2026-01-05 10:00:00.123" (UTC; ``micro``: to the microsecond)."""
    if not isinstance(value, datetime):
        return "" if value is None else str(value)
    value = value.astimezone(UTC)
    text = value.strftime("%Y-%m-%d %H:%M:%S.%f")
    return text if micro else text[:-3]
