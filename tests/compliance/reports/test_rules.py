"""Each validation rule of a transaction report record on a valid and an invalid value (pure:
the builder and its rules, no database). A failing rule holds the record back with its reason;
a passing record's XML is what the XSD then checks."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from compliance.reports.transaction import rules
from compliance.reports.transaction.builder import (
    AccountConfig,
    ExecutionRow,
    FirmConfig,
    InstrumentConfig,
    PersonConfig,
    TransactionRecordBuilder,
)
from compliance.reports.xsd import xml_validate_bytes
from tradeops.core.identifiers import lei_with_check_digits

FIRM_LEI = lei_with_check_digits("TRADEOPSRULES00000")
BROKER_LEI = lei_with_check_digits("BROKERRULES0000000")
CLIENT_LEI = lei_with_check_digits("CLIENTRULES0000000")
AT = datetime(2026, 3, 2, 9, 30, 0, 123456, tzinfo=UTC)

FIRM = FirmConfig(FIRM_LEI, FIRM_LEI)
EURUSD = InstrumentConfig(
    1,
    "EURUSD",
    "mifir",
    Decimal(100000),
    full_name="EURUSD CFD",
    cfi_code="JFTXFC",
    notional_currency_1="EUR",
    notional_currency_2="USD",
    quantity_type="NOML",
    price_currency="USD",
    venue="XXXX",
)
ACCOUNT = AccountConfig(1, True, counterparty_lei=BROKER_LEI)
ROW = ExecutionRow(7, 1, 1, "BUY", Decimal("2.5"), Decimal("1.10002"), "XOFF", "D7", AT, "algo-1")


def build(*, firm=FIRM, instrument=EURUSD, account=ACCOUNT, persons=None, row=ROW, **row_changes):
    builder = TransactionRecordBuilder(
        firm=firm, instruments={1: instrument}, accounts={account.account_id: account}, persons=persons or {}
    )
    return builder.build(row._replace(**row_changes) if row_changes else row)


def codes(record) -> set[str]:
    return {r.code for r in record.reasons}


def assert_valid(record):
    assert record.reasons == (), record.reasons
    doc = f'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:auth.016.001.01"><FinInstrmRptgTxRpt>{record.xml}'
    result = xml_validate_bytes((doc + "</FinInstrmRptgTxRpt></Document>").encode())
    assert result.valid, result.errors


def test_a_complete_record_passes_and_its_xml_is_schema_valid():
    assert_valid(build())


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"executing_entity_lei": FIRM_LEI[:-1] + "0"}, "executing_entity_lei_invalid"),
        ({"submitting_entity_lei": "NOTANLEI"}, "submitting_entity_lei_invalid"),
        ({"submitting_entity_lei": ""}, "submitting_entity_lei_invalid"),
    ],
)
def test_firm_leis(changes, code):
    assert code in codes(build(firm=replace(FIRM, **changes)))
    assert_valid(build(firm=replace(FIRM, submitting_entity_lei=BROKER_LEI)))  # an ARM submitting for the firm


def test_counterparty_lei():
    assert "counterparty_lei_invalid" in codes(build(account=replace(ACCOUNT, counterparty_lei="X" * 20)))


def test_client_owner_lei_and_capacity():
    client = replace(ACCOUNT, trading_capacity="AOTC", owner_type="lei", owner_lei=CLIENT_LEI)
    assert_valid(build(account=client))
    assert "owner_lei_invalid" in codes(build(account=replace(client, owner_lei=CLIENT_LEI[:-2] + "00")))


@pytest.mark.parametrize(
    ("account", "code"),
    [
        (replace(ACCOUNT, trading_capacity="AOTC"), "trading_capacity_mismatch"),  # own account is DEAL
        (
            replace(ACCOUNT, trading_capacity="DEAL", owner_type="lei", owner_lei=CLIENT_LEI),
            "trading_capacity_mismatch",
        ),
        (replace(ACCOUNT, trading_capacity="SELF"), "trading_capacity_invalid"),
    ],
)
def test_mandatory_parties_per_trading_capacity(account, code):
    assert code in codes(build(account=account))


def test_investment_decision_required_when_the_firm_decides():
    # DEAL without an algorithm or a trader behind the order: field 57 and 59 are missing
    record = build(algo_id="", trader_id=None)
    assert {"investment_decision_missing", "execution_decision_missing"} <= codes(record)
    # AOTC for a client who decided and executed: fine (execution by the client, NORE)
    client = replace(ACCOUNT, trading_capacity="AOTC", owner_type="lei", owner_lei=CLIENT_LEI)
    assert_valid(build(account=client, algo_id="", trader_id=None))
    # ... unless the firm decides under a mandate (a decision maker is set)
    mandate = replace(client, decision_maker_lei=FIRM_LEI)
    assert "investment_decision_missing" in codes(build(account=mandate, algo_id="", trader_id=None))
    assert_valid(build(account=mandate))


def test_person_deciding_needs_a_valid_national_identifier():
    persons = {5: PersonConfig(5, "CY", "CY12345678", "NIDN")}
    assert_valid(build(algo_id="", trader_id=5, persons=persons))
    assert "person_unidentified" in codes(build(algo_id="", trader_id=6, persons=persons))
    bad = {5: PersonConfig(5, "CY", "cy-123", "NIDN")}
    assert "person_id_invalid" in codes(build(algo_id="", trader_id=5, persons=bad))
    assert "country_invalid" in codes(build(algo_id="", trader_id=5, persons={5: PersonConfig(5, "UK", "GB1", "NIDN")}))


def test_natural_person_client_names_birth_date_and_concat():
    person = replace(
        ACCOUNT,
        trading_capacity="AOTC",
        owner_type="person",
        owner_first_name="JOHN",
        owner_surname="O'NEILL",
        owner_birth_date=date(1980, 5, 17),
        owner_national_id="IE19800517JOHN#ONEIL",
        owner_id_scheme="CONCAT",
        owner_country_of_branch="IE",
    )
    assert_valid(build(account=person))
    assert "person_id_invalid" in codes(build(account=replace(person, owner_national_id="IE1980JOHN")))
    assert "person_name_invalid" in codes(build(account=replace(person, owner_first_name="john3")))
    assert "person_birth_date_missing" in codes(build(account=replace(person, owner_birth_date=None)))
    assert "country_invalid" in codes(build(account=replace(person, owner_country_of_branch="XX")))


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"isin": "US0378331006"}, "instrument_isin_invalid"),
        ({"cfi_code": "ZFTXFC"}, "cfi_invalid"),
        ({"notional_currency_1": "EURO"}, "currency_invalid"),
        ({"price_currency": "XYZ"}, "currency_invalid"),
        ({"full_name": ""}, "instrument_full_name_missing"),
        ({"venue": "ABCD"}, "venue_invalid"),
        ({"price_multiplier": Decimal(0)}, "price_multiplier_invalid"),
        ({"otc_post_trade_indicators": ("SIZE", "NOPE")}, "otc_indicator_invalid"),
    ],
)
def test_instrument_description(changes, code):
    assert code in codes(build(instrument=replace(EURUSD, **changes)))


def test_instrument_identified_by_isin_or_by_its_underlying():
    assert_valid(build(instrument=replace(EURUSD, isin="US0378331005")))
    index = replace(
        EURUSD, notional_currency_2="", quantity_type="UNIT", underlying_isin="US78378X1072", notional_currency_1="USD"
    )
    assert_valid(build(instrument=index))
    assert "underlying_isin_invalid" in codes(build(instrument=replace(index, underlying_isin="US78378X1073")))
    assert "underlying_missing" in codes(build(instrument=replace(index, underlying_isin="")))
    assert_valid(build(instrument=replace(index, underlying_isin="", underlying_index_name="S&P 500")))


def test_reportability_unknown_and_account_not_configured_are_held_back():
    unknown = replace(EURUSD, reportability=None)
    builder = TransactionRecordBuilder(firm=FIRM, instruments={1: unknown}, accounts={1: ACCOUNT})
    assert builder.scope(ROW) == "unknown"
    assert "reportability_unknown" in codes(builder.build(ROW))
    assert "account_not_configured" in codes(build(account=AccountConfig(1, False)))


def test_execution_venue_is_a_mic():
    no_override = replace(EURUSD, venue="")
    assert_valid(build(instrument=no_override, venue="XOFF"))
    assert "venue_invalid" in codes(build(instrument=no_override, venue="QQQQ"))
    # a venue trade carries the venue's transaction id (field 3)
    on_venue = build(instrument=no_override, venue="XLON", broker_deal_id="abc-123")
    assert on_venue.values[2] == "ABC123"
    assert_valid(on_venue)


def test_trading_time_must_be_utc():
    assert "timestamp_not_utc" in codes(build(executed_at=AT.astimezone(timezone(timedelta(hours=2)))))
    assert "timestamp_not_utc" in codes(build(executed_at=AT.replace(tzinfo=None)))
    assert build().values[23] == "2026-03-02T09:30:00.123456Z"
    millis = build(firm=replace(FIRM, granularity="millisecond"))
    assert millis.values[23] == "2026-03-02T09:30:00.123Z"


def test_transaction_reference_format_and_uniqueness():
    assert rules.check_trn("TOPS000000000001") is None
    assert rules.check_trn("tops-1").code == "trn_invalid"
    assert rules.check_trn("A" * 53).code == "trn_invalid"
    assert rules.check_trn("TOPS1", previous="TOPS1").code == "trn_duplicate"
    builder = TransactionRecordBuilder(firm=FIRM, instruments={1: EURUSD}, accounts={1: ACCOUNT})
    assert builder.build(ROW).reasons == ()
    assert "trn_duplicate" in codes(builder.build(ROW))  # the same execution twice in one file
    assert "trn_invalid" in codes(build(firm=replace(FIRM, trn_prefix="tops")))


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"quantity": Decimal(0)}, "quantity_invalid"),
        ({"quantity": Decimal("-1")}, "quantity_invalid"),
        ({"quantity": Decimal("1.00000000001")}, "quantity_invalid"),  # x 100,000: 6 decimals, NmnlVal has 5
        ({"price": Decimal(0)}, "price_invalid"),
        ({"price": Decimal("1.12345678901234")}, "price_invalid"),  # 14 decimals > 13
        ({"price": Decimal("1E+19")}, "price_invalid"),  # more than 18 digits
    ],
)
def test_quantity_and_price(changes, code):
    assert code in codes(build(**changes))
    assert_valid(build(price=Decimal("1.1234567890123")))


def test_algorithm_codes():
    assert rules.algo_code("momentum-v2") == "MOMENTUMV2"
    assert "algo_id_invalid" in codes(build(algo_id="---"))
    assert "algo_id_invalid" in codes(build(algo_id="a" * 51))
    builder = TransactionRecordBuilder(firm=FIRM, instruments={1: EURUSD}, accounts={1: ACCOUNT})
    assert builder.build(ROW._replace(algo_id="algo-1")).reasons == ()
    assert "algo_id_collision" in codes(builder.build(ROW._replace(execution_id=8, algo_id="ALGO_1")))


def test_short_selling_indicator_where_it_applies():
    share = replace(
        EURUSD,
        notional_currency_2="",
        notional_currency_1="USD",
        quantity_type="UNIT",
        underlying_isin="US0378331005",
        short_selling_applicable=True,
    )
    builder = TransactionRecordBuilder(firm=FIRM, instruments={1: share}, accounts={1: ACCOUNT})
    sell = ROW._replace(side="SELL", quantity=Decimal(3))
    assert builder.build(sell, position_before=Decimal(1)).values[52] == "SESH"  # goes short
    builder.reset_sequence()
    assert builder.build(sell, position_before=Decimal(5)).values[52] == "SELL"
    builder.reset_sequence()
    record = builder.build(sell, position_before=Decimal(1))
    assert_valid(record)
    assert builder.build(ROW._replace(execution_id=9)).values[52] == ""  # a buy: not applicable


def test_cancellation_record():
    builder = TransactionRecordBuilder(firm=FIRM, instruments={1: EURUSD}, accounts={1: ACCOUNT})
    record = builder.cancellation("TOPS000000000007")
    assert record.values[0] == "CANC" and record.reasons == ()
    assert_valid(record)
    assert "trn_invalid" in codes(builder.cancellation("bad ref"))
