"""The per-record field checks (``facets``) agree with libxml2 and ESMA's XSD: property tests
around every facet boundary of every slot of a ``Tx`` shape, in both directions (a text the
checks accept, libxml2 accepts in that place of a real record; a text they refuse, libxml2
refuses). Pure: the builder, the facets and lxml, no database."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from xml.sax.saxutils import escape

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from lxml import etree

from compliance.reports import xsd
from compliance.reports.transaction.builder import ExecutionRow, TransactionRecordBuilder
from compliance.reports.transaction.facets import (
    PLACEHOLDERS,
    TX_PATH,
    UnsupportedFacet,
    field_check,
    simple_type,
    xsd_regex,
)
from tests.compliance.reports.test_rules import ACCOUNT, AT, EURUSD, FIRM

# an instrument whose records have every optional slot: the execution's own venue (so the
# venue's transaction id) and the short-selling indicator; quantity in units
EQUITY_CFD = replace(
    EURUSD,
    quantity_type="UNIT",
    venue="",
    short_selling_applicable=True,
    notional_currency_1="USD",
    notional_currency_2="",
    underlying_isin="US0378331005",
)
SLOT_PATHS = sorted(PLACEHOLDERS)
PARSER = etree.XMLParser(schema=xsd.document_schema(), collect_ids=False, resolve_entities=False)
OPEN = f'<Document xmlns="{xsd.NS_AUTH016}"><FinInstrmRptgTxRpt>'
CLOSE = "</FinInstrmRptgTxRpt></Document>"


def full_record(instrument=EQUITY_CFD):
    """A valid record with every slot of its instrument (SELL: the short-selling indicator)."""
    builder = TransactionRecordBuilder(firm=FIRM, instruments={1: instrument}, accounts={1: ACCOUNT})
    row = ExecutionRow(7, 1, 1, "SELL", Decimal("2.5"), Decimal("101.25"), "XLON", "D7", AT, "algo-1")
    built = builder.build(row, position_before=Decimal(1))
    assert built.reasons == () and built.shape is not None
    return built


RECORDS = {path: full_record() for path in SLOT_PATHS if path != "Tx/Qty/NmnlVal"}
RECORDS["Tx/Qty/NmnlVal"] = full_record(EURUSD)


def libxml2_accepts(path: str, text: str) -> bool:
    """libxml2's verdict on ``text`` in the element ``path`` of a real record. Text with markup
    goes in escaped (the value itself is judged; the writer never lets raw markup through)."""
    built = RECORDS[path]
    index = built.shape.paths.index(path)
    placed = escape(text) if ("<" in text or "&" in text) else text
    slots = built.slots[:index] + (placed,) + built.slots[index + 1 :]
    try:
        etree.fromstring(OPEN + built.shape.render(slots) + CLOSE, PARSER)
    except (etree.XMLSyntaxError, ValueError):
        return False
    return True


def agree(path: str, text: str) -> None:
    check = field_check(TX_PATH + path)
    mine = check.error(text)
    theirs = libxml2_accepts(path, text)
    assert (mine is None) == theirs, f"{path} {text!r}: checks say {mine!r}, libxml2 says {theirs}"


def test_every_slot_resolves_to_its_xsd_type():
    names = {path: field_check(TX_PATH + path).type_name for path in SLOT_PATHS}
    assert names == {
        "AddtlAttrbts/ShrtSellgInd": "Side5Code",
        "TxId": "ESMA_AlphaNumericMax52_Pattern",
        "Tx/Pric/Pric/MntryVal/Amt": "ActiveCurrencyAnd13DecimalAmount",
        "Tx/Qty/NmnlVal": "ESMA_PositiveExcludingZeroMax18",
        "Tx/Qty/Unit": "ESMA_NonNegativeExcludingZeroMax18",
        "Tx/TradDt": "ISONormalisedDateTime",
        "Tx/TradPlcMtchgId": "ESMA_AlphaNumericMax52_Pattern",
        "Tx/TradVn": "MICIdentifier",
    }
    # the facets are the XSD's, e.g. the price's 13 decimals within 18 digits, not less than 0
    price = simple_type("ActiveCurrencyAnd13DecimalAmount")
    assert (price.fraction_digits, price.total_digits, price.min_inclusive) == (13, 18, "0")


def test_the_records_used_here_have_every_slot_and_are_valid():
    for path, built in RECORDS.items():
        assert path in built.shape.paths
        assert libxml2_accepts(path, built.slots[built.shape.paths.index(path)])


def test_placeholders_are_valid_and_distinct():
    assert all(field_check(TX_PATH + p).error(t) is None for p, t in PLACEHOLDERS.items())
    distinct = {t for p, t in PLACEHOLDERS.items() if p != "Tx/Qty/NmnlVal"}
    assert len(distinct) == len(PLACEHOLDERS) - 1


@pytest.mark.parametrize(
    ("pattern", "yes", "no"),
    [
        ("([A-Z]|[0-9]){1,52}", "AB12", "ab"),
        (".*Z", "xZ", "x\nZ"),
        ("a$b^", "a$b^", "ab"),
    ],
)
def test_xsd_patterns_are_anchored_and_dot_stops_at_newlines(pattern, yes, no):
    assert xsd_regex(pattern).match(yes) and not xsd_regex(pattern).match(no)


def test_unknown_regular_expression_features_refuse_to_build():
    for pattern in (r"\i\c*", r"[a-z-[aeiou]]", r"\p{Lu}"):
        with pytest.raises(UnsupportedFacet):
            xsd_regex(pattern)


# ---------------------------------------------------------------- generated around the facets

SPACE = st.sampled_from(["", "", "", " ", "\t", "\n", "  "])


@st.composite
def decimals(draw):
    sign = draw(st.sampled_from(["", "", "", "+", "-"]))
    zeros = "0" * draw(st.integers(0, 2))
    whole = draw(st.text("0123456789", min_size=0, max_size=20))
    dot = draw(st.sampled_from(["", ".", "."]))
    fraction = draw(st.text("0123456789", min_size=0, max_size=20)) if dot else ""
    trailing = "0" * draw(st.integers(0, 3)) if dot else ""
    junk = draw(st.sampled_from(["", "", "", "", "e5", "x", ",", "..1", " 1"]))
    return draw(SPACE) + sign + zeros + whole + dot + fraction + trailing + junk + draw(SPACE)


@st.composite
def around_digits(draw):
    """Numbers right at and past 18 digits in total and 5, 13 or 17 decimals."""
    fraction_len = draw(st.sampled_from([0, 4, 5, 6, 12, 13, 14, 16, 17, 18]))
    whole_len = draw(st.integers(0, 19 - min(fraction_len, 19)))
    whole = draw(st.text("0123456789", min_size=whole_len, max_size=whole_len)) or "0"
    fraction = draw(st.text("0123456789", min_size=fraction_len, max_size=fraction_len))
    return whole + ("." + fraction if fraction else "")


@st.composite
def datetimes(draw):
    year = draw(st.sampled_from(["2026", "2024", "2023", "1900", "2000", "0000", "0001", "9999", "10000", "-0001"]))
    month = draw(st.sampled_from(["01", "02", "04", "12", "00", "13", "1"]))
    day = draw(st.sampled_from(["01", "28", "29", "30", "31", "00", "32", "1"]))
    hour = draw(st.sampled_from(["00", "09", "23", "24", "25"]))
    minute = draw(st.sampled_from(["00", "59", "60"]))
    second = draw(st.sampled_from(["00", "59", "60", "61"]))
    fraction = draw(st.sampled_from(["", ".1", ".0", ".000", ".123456", ".123456789012", ".", ".5Z"]))
    zone = draw(st.sampled_from(["Z", "Z", "Z", "", "+00:00", "+14:00", "+14:01", "-13:59", "+00:00Z", "z"]))
    separator = draw(st.sampled_from(["T", "T", "T", " ", "t"]))
    text = f"{year}-{month}-{day}{separator}{hour}:{minute}:{second}{fraction}{zone}"
    if draw(st.booleans()) and hour == "24":
        text = f"{year}-{month}-{day}T24:00:00{fraction}{zone}"
    return draw(SPACE) + text + draw(SPACE)


def codes(max_size: int):
    alphabet = st.sampled_from(list("ABCXYZ0189") + list("az -_.é<&\t"))
    return st.text(alphabet, min_size=0, max_size=max_size)


@st.composite
def around_length(draw, limit: int):
    n = draw(st.sampled_from([0, 1, limit - 1, limit, limit + 1]))
    body = draw(st.text(st.sampled_from(list("AZ09")), min_size=n, max_size=n))
    if n and draw(st.booleans()):
        i = draw(st.integers(0, n - 1))
        body = body[:i] + draw(st.sampled_from(["a", " ", "-", "<", "&", "é"])) + body[i + 1 :]
    return body


PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(st.one_of(decimals(), around_digits()))
@example("0")
@example("0.0")
@example("0.00000000000000001")
@example("1" * 18)
@example("1" * 19)
@example("1." + "1" * 17)
@example("0." + "1" * 18)
@example(".5")
@example("5.")
@example("-0")
@example("+1")
@example(" 1 ")
@example("")
def test_quantity_and_price_checks_agree_with_libxml2(text):
    for path in ("Tx/Qty/Unit", "Tx/Qty/NmnlVal", "Tx/Pric/Pric/MntryVal/Amt"):
        agree(path, text)


@PROPERTY
@given(datetimes())
@example("2026-03-02T09:30:00.123456Z")
@example("2024-02-29T00:00:00Z")
@example("2023-02-29T00:00:00Z")
@example("2026-03-02T24:00:00Z")
@example("2026-03-02T09:30:00")
@example("2026-03-02T09:30:00+01:00")
@example(" 2026-03-02T09:30:00Z ")
def test_trading_time_check_agrees_with_libxml2(text):
    agree("Tx/TradDt", text)


@PROPERTY
@given(st.one_of(codes(54), around_length(52)))
def test_reference_and_venue_id_checks_agree_with_libxml2(text):
    agree("TxId", text)
    agree("Tx/TradPlcMtchgId", text)


@PROPERTY
@given(st.one_of(codes(6), around_length(4)))
@example("XOFF")
@example("xoff")
def test_venue_check_agrees_with_libxml2(text):
    agree("Tx/TradVn", text)


@PROPERTY
@given(st.one_of(st.sampled_from(["SESH", "SSEX", "SELL", "UNDI"]), codes(5)))
@example("SELL ")
@example("sell")
def test_short_selling_check_agrees_with_libxml2(text):
    agree("AddtlAttrbts/ShrtSellgInd", text)
