"""Checks for the identifiers a regulator validates (ESMA's transaction-reporting rules, RTS 22):
LEI (ISO 17442), ISIN (ISO 6166), MIC (ISO 10383), currency (ISO 4217), country (ISO 3166-1)
and CFI (ISO 10962).

The code lists come from pinned packages, never from the network: ISO 10383 from ``iso10383``
(the ISO registration authority's published list, one release per package version), ISO 4217
and ISO 3166-1 from ``pycountry`` (Debian's iso-codes data). Lists are loaded on first use.
"""

from __future__ import annotations

import functools
import re

_LEI = re.compile(r"^[A-Z0-9]{18}[0-9]{2}$")
_ISIN = re.compile(r"^[A-Z]{2}[A-Z0-9]{9}[0-9]$")
_MIC = re.compile(r"^[A-Z0-9]{4}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_CFI = re.compile(r"^[A-Z]{6}$")

# ISO 10383 codes for a transaction not made on a trading venue (RTS 22 field 36): XOFF for an
# instrument admitted to trading on a venue but traded off it, XXXX for one that is not.
OFF_VENUE_MICS = frozenset({"XOFF", "XXXX"})
# ISO 10962 categories (the CFI's first letter), 2019 edition.
CFI_CATEGORIES = frozenset("ECDROFSHIJKLTM")


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


@functools.cache
def _active_mics() -> frozenset[str]:
    from iso10383 import MIC, Status

    return frozenset(entry.value.mic for entry in MIC if entry.value.status == Status.active)


def mic_is_valid(mic: str, *, allow_off_venue: bool = True) -> bool:
    """ISO 10383: four characters and an active code of the published list. ``XOFF`` and
    ``XXXX`` (off venue) pass unless ``allow_off_venue`` is false."""
    if not isinstance(mic, str) or not _MIC.match(mic):
        return False
    if mic in OFF_VENUE_MICS:
        return allow_off_venue
    return mic in _active_mics()


@functools.cache
def _currencies() -> frozenset[str]:
    import pycountry

    return frozenset(c.alpha_3 for c in pycountry.currencies)


def currency_is_valid(code: str) -> bool:
    """ISO 4217 alphabetic code, current list (includes the precious-metal codes such as XAU)."""
    return isinstance(code, str) and bool(_CURRENCY.match(code)) and code in _currencies()


@functools.cache
def _countries() -> frozenset[str]:
    import pycountry

    return frozenset(c.alpha_2 for c in pycountry.countries)


def country_is_valid(code: str) -> bool:
    """ISO 3166-1 alpha-2 country code."""
    return isinstance(code, str) and bool(_COUNTRY.match(code)) and code in _countries()


def cfi_is_valid(code: str) -> bool:
    """ISO 10962 CFI: six capital letters whose first names a category. (The per-category
    attribute tables are not checked: the ANNA DSB assigns the codes we report.)"""
    return isinstance(code, str) and bool(_CFI.match(code)) and code[0] in CFI_CATEGORIES
