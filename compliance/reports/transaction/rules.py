"""Validation rules a transaction report record must pass before it leaves (RTS 22; the checks
an ARM and ESMA's validation rules apply). Pure functions: values in, reasons out.

Each failing rule yields a ``Reason(code, field, message)``; ``code`` is stable (tests and the
review screens match on it), ``field`` is the CSV column (``fields.COLUMNS``). A record with any
reason is held back from the file with its reasons; the rest of the report still goes.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from decimal import Decimal
from typing import NamedTuple

from tradeops.core.identifiers import (
    OFF_VENUE_MICS,
    cfi_is_valid,
    country_is_valid,
    currency_is_valid,
    isin_is_valid,
    lei_is_valid,
    mic_is_valid,
)


class Reason(NamedTuple):
    code: str
    field: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "field": self.field, "message": self.message}


TRN_PATTERN = re.compile(r"^[A-Z0-9]{1,52}$")
ALGO_PATTERN = re.compile(r"^[A-Z0-9]{1,50}$")
# ESMA_PersonalIdentification_Pattern (auth.016 usage guideline): national ids and CONCAT.
PERSON_ID_PATTERN = re.compile(
    r"^(([A-Z]{2}[A-Z0-9]{1,33})|([A-Z]{2}[0-9]{8}[A-Z][A-Z#]{4}[A-Z][A-Z#]{4})|(FI[A-Z0-9\-+]{1,33})|(LV[A-Z0-9\-]{1,33}))$"
)
CONCAT_PATTERN = re.compile(r"^[A-Z]{2}[0-9]{8}[A-Z][A-Z#]{4}[A-Z][A-Z#]{4}$")
# ESMA_EeaEuropeanAlphabetMax140_Pattern, in short: capitals (Latin incl. accented, Greek,
# Cyrillic), comma, space, apostrophe, hyphen, en dash.
NAME_PATTERN = re.compile(r"^[A-Z\u00C0-\u00DE\u0100-\u017E\u0391-\u03A9\u0410-\u042F\u1E9E ,'\-\u2013]{1,140}$")
OTC_POST_TRADE_CODES = frozenset(
    {"BENC", "ACTX", "ILQD", "SIZE", "CANC", "AMND", "SDIV", "RPRI", "DUPL", "LRGS", "TNCP", "TPAC", "XFPH"}
)
CAPACITIES = frozenset({"DEAL", "MTCH", "AOTC"})


def check_lei(value: str, field: str, code: str) -> Reason | None:
    """ISO 17442 format and ISO 7064 MOD 97-10 check digits."""
    if not value:
        return Reason(code, field, f"{field} is required (an LEI)")
    if not lei_is_valid(value):
        return Reason(code, field, f"{value!r} is not a valid LEI (ISO 17442: 20 characters, MOD 97-10 check digits)")
    return None


def check_isin(value: str, field: str, code: str) -> Reason | None:
    """ISO 6166 format and Luhn check digit."""
    if not isin_is_valid(value):
        return Reason(code, field, f"{value!r} is not a valid ISIN (ISO 6166 check digit)")
    return None


def check_mic(value: str, field: str = "venue") -> Reason | None:
    """ISO 10383 MIC of the published list, or XOFF / XXXX for off-venue."""
    if not mic_is_valid(value):
        return Reason("venue_invalid", field, f"{value!r} is not an ISO 10383 MIC (nor XOFF/XXXX)")
    return None


def check_currency(value: str, field: str) -> Reason | None:
    """ISO 4217 alphabetic code."""
    if not currency_is_valid(value):
        return Reason("currency_invalid", field, f"{value!r} is not an ISO 4217 currency")
    return None


def check_country(value: str, field: str) -> Reason | None:
    """ISO 3166-1 alpha-2."""
    if not country_is_valid(value):
        return Reason("country_invalid", field, f"{value!r} is not an ISO 3166-1 country code")
    return None


def check_cfi(value: str, field: str = "instrument_classification") -> Reason | None:
    if not cfi_is_valid(value):
        return Reason("cfi_invalid", field, f"{value!r} is not an ISO 10962 CFI code")
    return None


def check_trn(value: str, previous: str | None = None) -> Reason | None:
    """``[A-Z0-9]{1,52}``, and unique: records are generated in reference order, so a repeat
    is the record just before."""
    if not TRN_PATTERN.match(value):
        return Reason(
            "trn_invalid", "transaction_reference_number", f"{value!r} must be 1-52 capital letters or digits"
        )
    if value == previous:
        return Reason("trn_duplicate", "transaction_reference_number", f"{value} is already in this report")
    return None


def check_utc_timestamp(value: datetime) -> Reason | None:
    """Field 28 in UTC (RTS 22; RTS 25 clocks): an aware time with a zero offset."""
    if value.tzinfo is None or value.utcoffset() != timedelta(0):
        return Reason("timestamp_not_utc", "trading_date_time", f"{value.isoformat()} is not a UTC timestamp")
    return None


def decimal_text(value: Decimal) -> str:
    """Plain decimal text without exponent or trailing zeros (``2.5E+5`` -> ``250000``)."""
    text = format(value.normalize(), "f")
    return text


def check_decimal(
    value: Decimal, field: str, code: str, *, fraction_digits: int, total_digits: int = 18
) -> Reason | None:
    """Positive and within the schema's digits (ISO 20022 amount and quantity facets)."""
    if not value.is_finite() or value <= 0:
        return Reason(code, field, f"{value} must be a positive number")
    sign, digits, exponent = value.normalize().as_tuple()
    fraction = max(0, -exponent)
    total = max(len(digits), fraction) if exponent < 0 else len(digits) + exponent
    if fraction > fraction_digits or total > total_digits:
        return Reason(
            code, field, f"{value} has more than {total_digits} digits or {fraction_digits} decimals (ISO 20022 limit)"
        )
    return None


def check_person_id(national_id: str, scheme: str, field: str) -> Reason | None:
    """A natural person's identifier: NIDN/CCPT or CONCAT, in ESMA's pattern."""
    if scheme not in ("NIDN", "CCPT", "CONCAT"):
        return Reason("person_id_invalid", field, f"identifier scheme {scheme!r} is not NIDN, CCPT or CONCAT")
    pattern = CONCAT_PATTERN if scheme == "CONCAT" else PERSON_ID_PATTERN
    if not national_id or not pattern.match(national_id):
        return Reason("person_id_invalid", field, f"{national_id!r} is not a valid {scheme} identifier")
    return None


def check_person_name(value: str, field: str) -> Reason | None:
    if not value or not NAME_PATTERN.match(value):
        return Reason("person_name_invalid", field, f"{value!r}: names are in capitals of the EEA alphabets")
    return None


def algo_code(algo_id: str) -> str:
    """The code reported for an algorithm (fields 57/59: up to 50 capitals or digits): the
    firm's algorithm id in capitals without separators (``momentum-v2`` -> ``MOMENTUMV2``)."""
    return re.sub(r"[^A-Z0-9]", "", algo_id.upper())


def check_algo_code(code: str, algo_id: str, field: str) -> Reason | None:
    if not ALGO_PATTERN.match(code):
        return Reason("algo_id_invalid", field, f"algorithm {algo_id!r} gives {code!r}, not 1-50 capitals or digits")
    return None


def check_capacity_parties(*, capacity: str, owner_is_firm: bool) -> Reason | None:
    """Mandatory parties per trading capacity: dealing on own account (DEAL) means the firm is
    the buyer or the seller; matched principal and any other capacity (MTCH, AOTC) mean the
    client is, never the executing firm."""
    if capacity not in CAPACITIES:
        return Reason("trading_capacity_invalid", "trading_capacity", f"{capacity!r} is not DEAL, MTCH or AOTC")
    if capacity == "DEAL" and not owner_is_firm:
        return Reason(
            "trading_capacity_mismatch", "trading_capacity", "DEAL needs the firm as buyer or seller (own account)"
        )
    if capacity != "DEAL" and owner_is_firm:
        return Reason(
            "trading_capacity_mismatch", "trading_capacity", f"{capacity} is for a client's account, not the firm's own"
        )
    return None


def check_investment_decision(*, capacity: str, has_decision: bool, firm_decides: bool) -> Reason | None:
    """Field 57 is mandatory when the firm made the investment decision: always for DEAL and
    MTCH, and for AOTC under a discretionary mandate (a decision maker is set)."""
    if not has_decision and (capacity in ("DEAL", "MTCH") or firm_decides):
        return Reason(
            "investment_decision_missing",
            "investment_decision_id",
            f"{capacity}: the person or algorithm that decided is required (field 57)",
        )
    return None


def check_otc_indicators(codes: tuple[str, ...]) -> Reason | None:
    unknown = [c for c in codes if c not in OTC_POST_TRADE_CODES]
    if unknown:
        return Reason("otc_indicator_invalid", "otc_post_trade_indicator", f"unknown codes {unknown}")
    return None


def venue_is_off_venue(venue: str) -> bool:
    return venue in OFF_VENUE_MICS
