"""Checks for the identifiers a regulator validates: LEI (ISO 17442) and ISIN (ISO 6166)."""

from __future__ import annotations

import re

_LEI = re.compile(r"^[A-Z0-9]{18}[0-9]{2}$")
_ISIN = re.compile(r"^[A-Z]{2}[A-Z0-9]{9}[0-9]$")


def _letters_to_digits(text: str) -> str:
    return "".join(str(int(ch, 36)) for ch in text)


def lei_is_valid(lei: str) -> bool:
    """ISO 17442: 20 characters, ISO 7064 MOD 97-10 check digits."""
    return bool(_LEI.match(lei)) and int(_letters_to_digits(lei)) % 97 == 1


def lei_with_check_digits(prefix18: str) -> str:
    """Complete an 18-character LEI prefix with its two check digits."""
    if not re.fullmatch(r"[A-Z0-9]{18}", prefix18):
        raise ValueError(f"an LEI prefix is 18 upper-case letters or digits, got {prefix18!r}")
    check = 98 - int(_letters_to_digits(prefix18 + "00")) % 97
    return f"{prefix18}{check:02d}"


def isin_is_valid(isin: str) -> bool:
    """ISO 6166: two letters, nine alphanumerics, a Luhn check digit over the digit expansion."""
    if not _ISIN.match(isin):
        return False
    digits = _letters_to_digits(isin[:-1])
    total = 0
    for index, ch in enumerate(reversed(digits)):
        value = int(ch)
        if index % 2 == 0:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return (10 - total % 10) % 10 == int(isin[-1])
