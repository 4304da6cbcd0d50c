"""The columns of a transaction report record (MiFIR Art. 26, RTS 22 Annex I, Table 2).

One CSV column per field, in this order; ``FIELD_NUMBERS`` maps each column to its RTS 22
field number (fields split into type and value columns share a number). Fields the firm cannot
have (e.g. 49-54: interest-rate terms, options, maturity) are not columns; 26-27, 32, 35, 37,
38, 40 are columns that stay empty for the instruments and capacities this firm trades.
"""

from __future__ import annotations

COLUMNS: tuple[str, ...] = (
    "report_status",  # 1 NEWT | CANC
    "transaction_reference_number",  # 2
    "venue_transaction_id",  # 3
    "executing_entity_lei",  # 4
    "investment_firm",  # 5 true | false
    "submitting_entity_lei",  # 6
    "buyer_id_type",  # 7 LEI | NIDN | CCPT | CONCAT | INTC
    "buyer_id",  # 7
    "buyer_country_of_branch",  # 8
    "buyer_first_name",  # 9
    "buyer_surname",  # 10
    "buyer_birth_date",  # 11
    "buyer_decision_maker_lei",  # 12
    "seller_id_type",  # 16
    "seller_id",  # 16
    "seller_country_of_branch",  # 17
    "seller_first_name",  # 18
    "seller_surname",  # 19
    "seller_birth_date",  # 20
    "seller_decision_maker_lei",  # 21
    "transmission_of_order",  # 25 true | false
    "transmitting_firm_buyer",  # 26
    "transmitting_firm_seller",  # 27
    "trading_date_time",  # 28 UTC, RTS 25 granularity
    "trading_capacity",  # 29 DEAL | MTCH | AOTC
    "quantity_type",  # 30 UNIT | NOML
    "quantity",  # 30
    "quantity_currency",  # 31
    "derivative_notional_change",  # 32
    "price",  # 33
    "price_currency",  # 34
    "net_amount",  # 35 (debt instruments only)
    "venue",  # 36 segment MIC, XOFF or XXXX
    "country_of_branch_membership",  # 37
    "up_front_payment",  # 38
    "complex_trade_component_id",  # 40
    "instrument_isin",  # 41
    "instrument_full_name",  # 42
    "instrument_classification",  # 43 CFI
    "notional_currency_1",  # 44
    "notional_currency_2",  # 45
    "price_multiplier",  # 46
    "underlying_isin",  # 47
    "underlying_index_name",  # 48
    "delivery_type",  # 56
    "investment_decision_type",  # 57 ALGO | PERSON
    "investment_decision_id",  # 57
    "investment_decision_country",  # 58
    "execution_type",  # 59 ALGO | PERSON | CLIENT
    "execution_id",  # 59
    "execution_country",  # 60
    "waiver_indicator",  # 61
    "short_selling_indicator",  # 62 SESH | SSEX | SELL | UNDI
    "otc_post_trade_indicator",  # 63
    "commodity_derivative_indicator",  # 64 true | false
    "sft_indicator",  # 65 true | false
)

FIELD_NUMBERS: dict[str, int] = dict(
    zip(
        COLUMNS,
        (1, 2, 3, 4, 5, 6, 7, 7, 8, 9, 10, 11, 12, 16, 16, 17, 18, 19, 20, 21, 25, 26, 27, 28, 29, 30, 30, 31, 32, 33)
        + (34, 35, 36, 37, 38, 40, 41, 42, 43, 44, 45, 46, 47, 48, 56, 57, 57, 58, 59, 59, 60, 61, 62, 63, 64, 65),
        strict=True,
    )
)
INDEX: dict[str, int] = {name: i for i, name in enumerate(COLUMNS)}


def as_dict(values: tuple[str, ...]) -> dict[str, str]:
    """A record's values by column name (for storage and review)."""
    return dict(zip(COLUMNS, values, strict=True))
