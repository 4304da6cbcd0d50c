"""Read an auth.016 transaction report back into records (``fields.COLUMNS``), streaming.

The inverse of the XML writer: a report read back gives the same values as the CSV of the same
records (the round trip the tests check), and it is how an ARM, or an officer's check before
submission, sees the file: one dict per transaction, without holding the tree.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import IO

from lxml import etree

from compliance.reports.transaction.fields import COLUMNS
from compliance.reports.xsd import NS_AUTH016

_N = f"{{{NS_AUTH016}}}"


def _find(element, path: str):
    return element.find("/".join(_N + part for part in path.split("/")))


def _t(element, path: str) -> str:
    if element is None:
        return ""
    found = _find(element, path)
    return (found.text or "") if found is not None else ""


def _party(element, prefix: str, values: dict[str, str]) -> None:
    if element is None:
        return
    owner = _find(element, "AcctOwnr")
    identifier = _find(owner, "Id") if owner is not None else None
    if identifier is not None and len(identifier):
        kind = identifier[0]
        tag = etree.QName(kind).localname
        if tag == "LEI":
            values[f"{prefix}_id_type"], values[f"{prefix}_id"] = "LEI", kind.text or ""
        elif tag == "Prsn":
            values[f"{prefix}_first_name"] = _t(kind, "FrstNm")
            values[f"{prefix}_surname"] = _t(kind, "Nm")
            values[f"{prefix}_birth_date"] = _t(kind, "BirthDt")
            values[f"{prefix}_id"] = _t(kind, "Othr/Id")
            scheme = _find(kind, "Othr/SchmeNm")
            values[f"{prefix}_id_type"] = scheme[0].text if scheme is not None and len(scheme) else ""
        else:
            values[f"{prefix}_id_type"], values[f"{prefix}_id"] = tag.upper(), kind.text or ""
    values[f"{prefix}_country_of_branch"] = _t(owner, "CtryOfBrnch") if owner is not None else ""
    values[f"{prefix}_decision_maker_lei"] = _t(element, "DcsnMakr/LEI")


def _decision(element, type_col: str, id_col: str, country_col: str, values: dict[str, str]) -> None:
    if element is None or not len(element):
        return
    kind = element[0]
    tag = etree.QName(kind).localname
    if tag == "Algo":
        values[type_col], values[id_col] = "ALGO", kind.text or ""
    elif tag == "Clnt":
        values[type_col], values[id_col] = "CLIENT", kind.text or ""
    else:
        values[type_col], values[id_col] = "PERSON", _t(kind, "Othr/Id")
        values[country_col] = _t(kind, "CtryOfBrnch")


def transaction_values(tx) -> dict[str, str]:
    """One ``<Tx>`` (``New`` or ``Cxl``) as column values."""
    values = dict.fromkeys(COLUMNS, "")
    body = tx[0]
    if etree.QName(body).localname == "Cxl":
        values["report_status"] = "CANC"
        values["transaction_reference_number"] = _t(body, "TxId")
        values["executing_entity_lei"] = _t(body, "ExctgPty")
        values["submitting_entity_lei"] = _t(body, "SubmitgPty")
        return values
    values["report_status"] = "NEWT"
    values["transaction_reference_number"] = _t(body, "TxId")
    values["executing_entity_lei"] = _t(body, "ExctgPty")
    values["investment_firm"] = _t(body, "InvstmtPtyInd")
    values["submitting_entity_lei"] = _t(body, "SubmitgPty")
    _party(_find(body, "Buyr"), "buyer", values)
    _party(_find(body, "Sellr"), "seller", values)
    values["transmission_of_order"] = _t(body, "OrdrTrnsmssn/TrnsmssnInd")
    values["transmitting_firm_buyer"] = _t(body, "OrdrTrnsmssn/TrnsmttgBuyr")
    values["transmitting_firm_seller"] = _t(body, "OrdrTrnsmssn/TrnsmttgSellr")
    trade = _find(body, "Tx")
    values["trading_date_time"] = _t(trade, "TradDt")
    values["trading_capacity"] = _t(trade, "TradgCpcty")
    quantity = _find(trade, "Qty")[0]
    tag = etree.QName(quantity).localname
    values["quantity_type"] = {"Unit": "UNIT", "NmnlVal": "NOML", "MntryVal": "MONE"}[tag]
    values["quantity"] = quantity.text or ""
    values["quantity_currency"] = quantity.get("Ccy", "")
    values["derivative_notional_change"] = _t(trade, "DerivNtnlChng")
    amount = _find(trade, "Pric/Pric/MntryVal/Amt")
    if amount is not None:
        values["price"], values["price_currency"] = amount.text or "", amount.get("Ccy", "")
    values["net_amount"] = _t(trade, "NetAmt")
    values["venue"] = _t(trade, "TradVn")
    values["country_of_branch_membership"] = _t(trade, "CtryOfBrnch")
    values["venue_transaction_id"] = _t(trade, "TradPlcMtchgId")
    values["complex_trade_component_id"] = _t(trade, "CmplxTradCmpntId")
    instrument = _find(body, "FinInstrm")
    values["instrument_isin"] = _t(instrument, "Id")
    other = _find(instrument, "Othr")
    if other is not None:
        values["instrument_full_name"] = _t(other, "FinInstrmGnlAttrbts/FullNm")
        values["instrument_classification"] = _t(other, "FinInstrmGnlAttrbts/ClssfctnTp")
        values["notional_currency_1"] = _t(other, "FinInstrmGnlAttrbts/NtnlCcy")
        deriv = _find(other, "DerivInstrmAttrbts")
        values["price_multiplier"] = _t(deriv, "PricMltplr")
        values["underlying_isin"] = _t(deriv, "UndrlygInstrm/Othr/Sngl/ISIN")
        values["underlying_index_name"] = _t(deriv, "UndrlygInstrm/Othr/Sngl/Indx/Nm/RefRate/Nm")
        values["delivery_type"] = _t(deriv, "DlvryTp")
        values["notional_currency_2"] = _t(deriv, "AsstClssSpcfcAttrbts/FX/OthrNtnlCcy")
    _decision(
        _find(body, "InvstmtDcsnPrsn"),
        "investment_decision_type",
        "investment_decision_id",
        "investment_decision_country",
        values,
    )
    _decision(_find(body, "ExctgPrsn"), "execution_type", "execution_id", "execution_country", values)
    extra = _find(body, "AddtlAttrbts")
    values["waiver_indicator"] = " ".join(e.text or "" for e in extra.iterfind(_N + "WvrInd"))
    values["short_selling_indicator"] = _t(extra, "ShrtSellgInd")
    values["otc_post_trade_indicator"] = " ".join(e.text or "" for e in extra.iterfind(_N + "OTCPstTradInd"))
    values["commodity_derivative_indicator"] = _t(extra, "RskRdcgTx")
    values["sft_indicator"] = _t(extra, "SctiesFincgTxInd")
    return values


def transactions_read(source: str | Path | IO[bytes]) -> Iterator[dict[str, str]]:
    """Every transaction of a report file (bare Document or BizData envelope), in file order."""
    report = f"{_N}FinInstrmRptgTxRpt"
    for _event, element in etree.iterparse(source, events=("end",), tag=f"{_N}Tx", huge_tree=True):
        parent = element.getparent()
        if parent is None or parent.tag != report:
            continue
        yield transaction_values(element)
        element.clear()
        while element.getprevious() is not None:
            del parent[0]
