"""Identifier checks a regulator applies to a transaction report (RTS 22), each on a valid and
an invalid value."""

import pytest

from tradeops.core.identifiers import (
    cfi_is_valid,
    country_is_valid,
    currency_is_valid,
    isin_is_valid,
    lei_is_valid,
    lei_with_check_digits,
    mic_is_valid,
)


@pytest.mark.parametrize("lei", ["HWUPKR0MPOU8FGXBT394", "5493001KJTIIGC8Y1R12", "529900T8BM49AURSDO55"])
def test_real_leis_pass(lei):
    assert lei_is_valid(lei)


@pytest.mark.parametrize(
    "lei",
    [
        "HWUPKR0MPOU8FGXBT395",  # check digits off by one
        "hwupkr0mpou8fgxbt394",  # lower case
        "HWUPKR0MPOU8FGXBT39",  # 19 characters
        "HWUPKR0MPOU8FGXBT3AB",  # letters where the check digits go
        "",
    ],
)
def test_bad_leis_fail(lei):
    assert not lei_is_valid(lei)


def test_lei_check_digits_complete_a_prefix():
    lei = lei_with_check_digits("TRADEOPSDEMO000000")
    assert lei_is_valid(lei) and lei.startswith("TRADEOPSDEMO000000")
    with pytest.raises(ValueError):
        lei_with_check_digits("short")


@pytest.mark.parametrize("isin", ["US0378331005", "DE0008469008", "US78378X1072", "GB0002634946"])
def test_real_isins_pass(isin):
    assert isin_is_valid(isin)


@pytest.mark.parametrize("isin", ["US0378331006", "us0378331005", "US037833100", "1S0378331005", ""])
def test_bad_isins_fail(isin):
    assert not isin_is_valid(isin)


@pytest.mark.parametrize("mic", ["XLON", "XNYS", "XETR", "XOFF", "XXXX"])
def test_listed_mics_pass(mic):
    assert mic_is_valid(mic)


@pytest.mark.parametrize("mic", ["ZZZZ", "xlon", "XLO", "XLONX", "", None])
def test_unknown_or_malformed_mics_fail(mic):
    assert not mic_is_valid(mic)


def test_off_venue_codes_can_be_refused_where_a_venue_is_required():
    assert not mic_is_valid("XOFF", allow_off_venue=False)
    assert mic_is_valid("XLON", allow_off_venue=False)


@pytest.mark.parametrize("code", ["EUR", "USD", "JPY", "XAU"])
def test_iso4217_currencies_pass(code):
    assert currency_is_valid(code)


@pytest.mark.parametrize("code", ["EURO", "eur", "ABC", "US", ""])
def test_unknown_currencies_fail(code):
    assert not currency_is_valid(code)


@pytest.mark.parametrize("code", ["GB", "DE", "CY", "US"])
def test_iso3166_countries_pass(code):
    assert country_is_valid(code)


@pytest.mark.parametrize("code", ["UK", "gb", "GBR", "XX", ""])
def test_unknown_countries_fail(code):
    assert not country_is_valid(code)


@pytest.mark.parametrize("code", ["JFTXFC", "ESVUFR", "JEIXFC"])
def test_cfi_codes_pass(code):
    assert cfi_is_valid(code)


@pytest.mark.parametrize("code", ["ZFTXFC", "JFTXF", "jftxfc", "JFTXF1"])
def test_bad_cfi_codes_fail(code):
    assert not cfi_is_valid(code)
