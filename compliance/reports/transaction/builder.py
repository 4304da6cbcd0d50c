"""Build RTS 22 transaction report records from executions. Pure: no Django, no I/O, no clock.

The configuration (firm, instruments, accounts, persons) comes in as plain values; executions
come in one at a time (``ExecutionRow``). What depends only on the configuration (an
instrument's description, an account's parties, an algorithm's code) is built and validated
once and reused for every execution, so a record costs little more than formatting its
quantity, price and time: that is what keeps a million-execution report streaming.

A record is ``BuiltRecord(values, reasons, ...)``: ``values`` in ``fields.COLUMNS`` order (the
CSV row), ``reasons`` the failed rules (empty when valid) and, for a valid record, the ``<Tx>``
element of the auth.016 report as a shape (constant per combination and side) and the texts
of its slots (reference, time, quantity, price, venue, venue id, short-selling indicator).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import NamedTuple
from xml.sax.saxutils import escape, quoteattr

from compliance.reports.transaction import rules
from compliance.reports.transaction.facets import TxShape
from compliance.reports.transaction.rules import Reason

OFF_VENUE = rules.venue_is_off_venue


@dataclass(frozen=True)
class FirmConfig:
    executing_entity_lei: str
    submitting_entity_lei: str
    investment_firm: bool = True
    trn_prefix: str = "TOPS"
    granularity: str = "microsecond"  # or "millisecond" (RTS 25)


@dataclass(frozen=True)
class InstrumentConfig:
    """An instrument as reported. ``reportability`` None = no profile configured."""

    instrument_id: int
    symbol: str
    reportability: str | None
    contract_size: Decimal = Decimal(1)
    isin: str = ""
    full_name: str = ""
    cfi_code: str = ""
    notional_currency_1: str = ""
    notional_currency_2: str = ""
    price_multiplier: Decimal = Decimal(1)
    underlying_isin: str = ""
    underlying_index_name: str = ""
    delivery_type: str = "CASH"
    quantity_type: str = "UNIT"
    price_currency: str = ""
    venue: str = ""  # override of the execution's venue
    commodity_derivative: bool = False
    short_selling_applicable: bool = False
    otc_post_trade_indicators: tuple[str, ...] = ()


@dataclass(frozen=True)
class AccountConfig:
    """Who stands behind an account. ``configured`` False = no profile."""

    account_id: int
    configured: bool
    trading_capacity: str = "DEAL"
    owner_type: str = "firm"  # firm | lei | person
    owner_lei: str = ""
    owner_first_name: str = ""
    owner_surname: str = ""
    owner_birth_date: date | None = None
    owner_national_id: str = ""
    owner_id_scheme: str = ""
    owner_country_of_branch: str = ""
    decision_maker_lei: str = ""
    counterparty_lei: str = ""


@dataclass(frozen=True)
class PersonConfig:
    user_id: int
    country_of_branch: str
    national_id: str
    id_scheme: str


CSV_SLOT_MARKS = tuple(f"\u2063SLOT{i}\u2063" for i in range(7))  # invisible separator: never in a value
_CSV_SPECIAL = re.compile(r'[",\r\n]')


class CsvShape:
    """A CSV row with holes: the constant columns as ``csv`` quotes them, split at the slots."""

    __slots__ = ("segments",)

    def __init__(self, segments: tuple[str, ...]):
        self.segments = segments

    @classmethod
    def from_row(cls, values: tuple[str, ...]) -> CsvShape:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerow(values)
        text, segments = buffer.getvalue(), []
        for mark in CSV_SLOT_MARKS:
            head, found, text = text.partition(mark)
            if not found:
                raise ValueError("a CSV slot mark was quoted or lost")
            segments.append(head)
        segments.append(text)
        return cls(tuple(segments))

    @staticmethod
    def fits(slots: tuple[str, ...]) -> bool:
        """True when no slot text needs quoting (then the row is the segments and the texts)."""
        return _CSV_SPECIAL.search("".join(slots)) is None

    def render(self, v: tuple[str, ...]) -> str:
        a, b, c, d, e, f, g, h = self.segments
        return "".join((a, v[0], b, v[1], c, v[2], d, v[3], e, v[4], f, v[5], g, v[6], h))


class ExecutionRow(NamedTuple):
    """One execution as the report reads it (a tuple: a million of them are made per report)."""

    execution_id: int
    account_id: int
    instrument_id: int
    side: str  # BUY | SELL
    quantity: Decimal  # lots
    price: Decimal
    venue: str
    broker_deal_id: str
    executed_at: datetime | str  # or its RTS 22 text in UTC, as the database formats it
    algo_id: str = ""
    trader_id: int | None = None
    units: str | None = None  # quantity x contract size as text, when the database formatted it


@dataclass(frozen=True, slots=True)
class BuiltRecord:
    """``values`` (the CSV row), ``reasons`` (empty when valid) and the ``<Tx>`` element: a
    NEWT record carries it as ``shape`` (the constant XML of its instrument, account, decision
    maker, side and optional fields) and ``slots`` (the texts that change per record), which is
    how the writer validates it without re-parsing the constant part; ``xml`` renders it."""

    values: tuple[str, ...]
    reasons: tuple[Reason, ...]
    text: str | None = None
    shape: TxShape | None = None
    slots: tuple[str, ...] = ()
    csv: CsvShape | None = None  # the CSV row as constant text and slots (valid NEWT records)
    csv_slots: tuple[str, ...] = ()

    @property
    def csv_line(self) -> str | None:
        """The record's CSV row (with its newline), or None: write ``values`` with ``csv``."""
        if self.csv is None:
            return None
        return self.csv.render(self.csv_slots)

    @property
    def xml(self) -> str | None:
        if self.shape is not None:
            return self.shape.render(self.slots)
        return self.text


# ---------------------------------------------------------------- static parts


@dataclass(frozen=True)
class _Party:
    """One side's columns (7-12 or 16-21) and XML (``Buyr``/``Sellr`` content)."""

    columns: tuple[str, ...]
    xml: str


@dataclass(frozen=True)
class _AccountPart:
    capacity: str
    buy: tuple[_Party, _Party]  # (buyer, seller) when the account buys
    sell: tuple[_Party, _Party]
    firm_decides: bool
    reasons: tuple[Reason, ...]


@dataclass(frozen=True)
class _InstrumentPart:
    scope: str  # mifir | out_of_scope | unknown
    columns: tuple[str, ...]  # 41-48, 56
    xml: str  # <FinInstrm>...</FinInstrm>
    quantity_type: str
    quantity_currency: str
    price_currency: str
    contract_size: Decimal
    venue: str
    indicator_columns: tuple[str, str, str, str]  # 61, (62 dynamic), 63, 64, 65 -> waiver, otc, commodity, sft
    indicator_xml_tail: str  # after ShrtSellgInd: OTC indicators, RskRdcgTx, SFT
    short_selling: bool
    reasons: tuple[Reason, ...]


@dataclass(frozen=True)
class _DecisionPart:
    columns: tuple[str, ...]  # 57 type, id, 58, 59 type, id, 60
    xml: str
    has_decision: bool
    reasons: tuple[Reason, ...]


@dataclass(frozen=True)
class _Combo:
    """The static part of the records of one (instrument, account, algorithm, trader)."""

    scope: str
    reasons: tuple[Reason, ...]
    capacity: str
    sides: dict[str, tuple[tuple[str, ...], str]]  # side -> (columns 4-27, XML from ExctgPty to OrdrTrnsmssn)
    quantity_type: str
    quantity_currency: str
    quantity_fraction: int
    contract_size: Decimal
    price_currency: str
    venue: str
    short_selling: bool
    trade_open: str
    price_open: str
    price_close: str
    instrument_xml: str
    tail_xml: str
    tail_values: tuple[str, ...]
    indicators: tuple[str, str, str, str]
    shapes: dict = field(default_factory=dict)  # (side, venue id?, short?) -> TxShape
    csv_shapes: dict = field(default_factory=dict)  # side -> CsvShape

    def csv_shape(self, side: str, side_values: tuple[str, ...]) -> CsvShape:
        """The CSV row of the records of one side: the constant columns quoted by ``csv`` once,
        the per-record ones (reference, venue id, time, quantity, price, venue, short selling)
        as slots."""
        shape = self.csv_shapes.get(side)
        if shape is None:
            s = CSV_SLOT_MARKS
            waiver, otc, commodity, sft = self.indicators
            values = (
                ("NEWT", s[0], s[1])
                + side_values
                + (s[2], self.capacity, self.quantity_type, s[3], self.quantity_currency, "")
                + (s[4], self.price_currency, "", s[5], "", "", "")
                + self.tail_values
                + (waiver, s[6], otc, commodity, sft)
            )
            shape = self.csv_shapes[side] = CsvShape.from_row(values)
        return shape

    def shape(self, side: str, side_xml: str, matched: bool, short: bool) -> TxShape:
        """The record's ``Tx`` with its per-record texts as slots (see ``facets.TxShape``)."""
        key = (side, matched, short)
        shape = self.shapes.get(key)
        if shape is None:
            segments = ["<Tx><New><TxId>", f"</TxId>{side_xml}<Tx><TradDt>", self.trade_open]
            paths = ["TxId", "Tx/TradDt", "Tx/Qty/NmnlVal" if self.quantity_type == "NOML" else "Tx/Qty/Unit"]
            segments += [self.price_open, self.price_close]
            paths += ["Tx/Pric/Pric/MntryVal/Amt", "Tx/TradVn"]
            tail = f"</TradVn>{self.instrument_xml}"
            if matched:
                segments.append("</TradVn><TradPlcMtchgId>")
                paths.append("Tx/TradPlcMtchgId")
                tail = f"</TradPlcMtchgId>{self.instrument_xml}"
            if short:
                segments.append(f"{tail}<ShrtSellgInd>")
                paths.append("AddtlAttrbts/ShrtSellgInd")
                tail = "</ShrtSellgInd>"
            segments.append(tail + self.tail_xml)
            shape = self.shapes[key] = TxShape(tuple(segments), tuple(paths))
        return shape


_ZERO = timedelta(0)


def _decimal_text(value: Decimal, fraction_digits: int, total_digits: int = 18) -> str | None:
    """Plain text of a positive decimal that fits the schema's digits, else None (ISO 20022
    quantity and amount facets: more than 0, at most ``total_digits`` significant digits and
    ``fraction_digits`` decimals)."""
    if not value.is_finite() or value <= 0:
        return None
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    whole, _, fraction = text.partition(".")
    if len(fraction) > fraction_digits or len(whole.lstrip("0")) + len(fraction) > total_digits:
        return None
    return text


def _plain_text(text: str, fraction_digits: int, total_digits: int = 18) -> str | None:
    """``_decimal_text`` for a number the database already wrote as plain text."""
    whole, _, fraction = text.partition(".")
    digits = whole + fraction
    if (
        not digits.isdigit()
        or len(fraction) > fraction_digits
        or len(whole.lstrip("0")) + len(fraction) > total_digits
        or not digits.strip("0")
    ):
        return None
    return text


def _lei_party(lei: str, country: str = "", decision_maker: str = "") -> _Party:
    owner = f"<AcctOwnr><Id><LEI>{escape(lei)}</LEI></Id>"
    if country:
        owner += f"<CtryOfBrnch>{escape(country)}</CtryOfBrnch>"
    owner += "</AcctOwnr>"
    if decision_maker:
        owner += f"<DcsnMakr><LEI>{escape(decision_maker)}</LEI></DcsnMakr>"
    return _Party(("LEI", lei, country, "", "", "", decision_maker), owner)


def _scheme_xml(scheme: str) -> str:
    return "<Prtry>CONCAT</Prtry>" if scheme == "CONCAT" else f"<Cd>{escape(scheme)}</Cd>"


def _person_party(account: AccountConfig) -> _Party:
    birth = account.owner_birth_date.isoformat() if account.owner_birth_date else ""
    xml = (
        f"<AcctOwnr><Id><Prsn><FrstNm>{escape(account.owner_first_name)}</FrstNm>"
        f"<Nm>{escape(account.owner_surname)}</Nm><BirthDt>{birth}</BirthDt>"
        f"<Othr><Id>{escape(account.owner_national_id)}</Id><SchmeNm>{_scheme_xml(account.owner_id_scheme)}"
        "</SchmeNm></Othr></Prsn></Id>"
    )
    if account.owner_country_of_branch:
        xml += f"<CtryOfBrnch>{escape(account.owner_country_of_branch)}</CtryOfBrnch>"
    xml += "</AcctOwnr>"
    if account.decision_maker_lei:
        xml += f"<DcsnMakr><LEI>{escape(account.decision_maker_lei)}</LEI></DcsnMakr>"
    columns = (
        account.owner_id_scheme,
        account.owner_national_id,
        account.owner_country_of_branch,
        account.owner_first_name,
        account.owner_surname,
        birth,
        account.decision_maker_lei,
    )
    return _Party(columns, xml)


class TransactionRecordBuilder:
    """Turns executions into RTS 22 records under one configuration. Not thread-safe (caches).

    ``scope(row)`` says whether an execution is reported (``mifir``), out of MiFIR scope
    (``out_of_scope``: EMIR only or not reportable, configured so) or of an instrument with no
    profile (``unknown``: held back, never silently dropped). ``build(row)`` makes the record.
    """

    def __init__(
        self,
        *,
        firm: FirmConfig,
        instruments: dict[int, InstrumentConfig],
        accounts: dict[int, AccountConfig],
        persons: dict[int, PersonConfig] | None = None,
    ):
        self.firm = firm
        self.instruments = instruments
        self.accounts = accounts
        self.persons = persons or {}
        self._firm_reasons = tuple(
            r
            for r in (
                rules.check_lei(firm.executing_entity_lei, "executing_entity_lei", "executing_entity_lei_invalid"),
                rules.check_lei(firm.submitting_entity_lei, "submitting_entity_lei", "submitting_entity_lei_invalid"),
            )
            if r
        )
        self._firm_columns = (
            firm.executing_entity_lei,
            "true" if firm.investment_firm else "false",
            firm.submitting_entity_lei,
        )
        self._firm_xml = (
            f"<ExctgPty>{escape(firm.executing_entity_lei)}</ExctgPty>"
            f"<InvstmtPtyInd>{self._firm_columns[1]}</InvstmtPtyInd>"
            f"<SubmitgPty>{escape(firm.submitting_entity_lei)}</SubmitgPty>"
        )
        self._instrument_parts: dict[int, _InstrumentPart] = {}
        self._account_parts: dict[int, _AccountPart] = {}
        self._decision_parts: dict[tuple[str, int | None, str], _DecisionPart] = {}
        self._algo_codes: dict[str, str] = {}  # reported code -> algorithm id (collisions)
        self._previous_trn: str | None = None
        self._combos: dict[tuple[int, int, str, int | None], _Combo] = {}
        self._venues: dict[str, Reason | bool] = {}
        self._trn_prefix = firm.trn_prefix
        # the prefix decides whether every reference fits [A-Z0-9]{1,52} (12 digits follow it)
        self._trn_ok = rules.check_trn(f"{firm.trn_prefix}{0:012d}") is None
        self._timespec = "milliseconds" if firm.granularity == "millisecond" else "microseconds"

    # ------------------------------------------------------------ scope

    def scope(self, row: ExecutionRow) -> str:
        combo = self._combos.get((row.instrument_id, row.account_id, row.algo_id, row.trader_id))
        if combo is None:
            combo = self._combo((row.instrument_id, row.account_id, row.algo_id, row.trader_id))
        return combo.scope

    # ------------------------------------------------------------ static parts

    def _instrument(self, instrument_id: int) -> _InstrumentPart:
        part = self._instrument_parts.get(instrument_id)
        if part is None:
            part = self._instrument_parts[instrument_id] = self._instrument_part(self.instruments.get(instrument_id))
        return part

    def _instrument_part(self, cfg: InstrumentConfig | None) -> _InstrumentPart:
        reasons: list[Reason] = []
        if cfg is None or cfg.reportability is None:
            symbol = cfg.symbol if cfg else "?"
            reason = Reason(
                "reportability_unknown",
                "instrument_isin",
                f"{symbol} has no reporting profile: configure whether MiFIR Art. 26 applies",
            )
            return _InstrumentPart(
                "unknown", ("",) * 9, "", "UNIT", "", "", Decimal(1), "", ("", "", "", "false"), "", False, (reason,)
            )
        scope = "mifir" if cfg.reportability == "mifir" else "out_of_scope"
        if cfg.isin:
            if r := rules.check_isin(cfg.isin, "instrument_isin", "instrument_isin_invalid"):
                reasons.append(r)
            columns = (cfg.isin, "", "", "", "", "", "", "", "")
            xml = f"<FinInstrm><Id>{escape(cfg.isin)}</Id></FinInstrm>"
        else:
            if not cfg.full_name:
                reasons.append(
                    Reason("instrument_full_name_missing", "instrument_full_name", f"{cfg.symbol}: full name required")
                )
            if r := rules.check_cfi(cfg.cfi_code):
                reasons.append(r)
            if cfg.notional_currency_1 and (r := rules.check_currency(cfg.notional_currency_1, "notional_currency_1")):
                reasons.append(r)
            if cfg.notional_currency_2 and (r := rules.check_currency(cfg.notional_currency_2, "notional_currency_2")):
                reasons.append(r)
            if cfg.price_multiplier <= 0:
                reasons.append(Reason("price_multiplier_invalid", "price_multiplier", "must be positive"))
            if cfg.delivery_type not in ("CASH", "PHYS", "OPTL"):
                reasons.append(Reason("delivery_type_invalid", "delivery_type", f"{cfg.delivery_type!r}"))
            if cfg.underlying_isin:
                if r := rules.check_isin(cfg.underlying_isin, "underlying_isin", "underlying_isin_invalid"):
                    reasons.append(r)
                underlying = f"<Othr><Sngl><ISIN>{escape(cfg.underlying_isin)}</ISIN></Sngl></Othr>"
            elif cfg.underlying_index_name:
                underlying = (
                    "<Othr><Sngl><Indx><Nm><RefRate><Nm>"
                    f"{escape(cfg.underlying_index_name)}</Nm></RefRate></Nm></Indx></Sngl></Othr>"
                )
            elif cfg.notional_currency_2 or cfg.commodity_derivative:
                # An FX derivative has no underlying instrument code (fields 47-48 empty; the pair
                # is notional currencies 1 and 2), nor has a CFD on a spot commodity; usage
                # guideline 1.0.3 makes the element mandatory all the same: an empty basket is
                # its only way of saying "none".
                underlying = "<Othr><Bskt/></Othr>"
            else:
                underlying = ""
                reasons.append(
                    Reason(
                        "underlying_missing", "underlying_isin", f"{cfg.symbol}: underlying ISIN or index name needed"
                    )
                )
            multiplier = rules.decimal_text(cfg.price_multiplier) if cfg.price_multiplier > 0 else ""
            general = f"<FullNm>{escape(cfg.full_name)}</FullNm><ClssfctnTp>{escape(cfg.cfi_code)}</ClssfctnTp>"
            if cfg.notional_currency_1:
                general += f"<NtnlCcy>{escape(cfg.notional_currency_1)}</NtnlCcy>"
            deriv = f"<PricMltplr>{multiplier}</PricMltplr><UndrlygInstrm>{underlying}</UndrlygInstrm>"
            deriv += f"<DlvryTp>{escape(cfg.delivery_type)}</DlvryTp>"
            if cfg.notional_currency_2:
                deriv += f"<AsstClssSpcfcAttrbts><FX><OthrNtnlCcy>{escape(cfg.notional_currency_2)}</OthrNtnlCcy>"
                deriv += "</FX></AsstClssSpcfcAttrbts>"
            xml = (
                f"<FinInstrm><Othr><FinInstrmGnlAttrbts>{general}</FinInstrmGnlAttrbts>"
                f"<DerivInstrmAttrbts>{deriv}</DerivInstrmAttrbts></Othr></FinInstrm>"
            )
            columns = (
                "",
                cfg.full_name,
                cfg.cfi_code,
                cfg.notional_currency_1,
                cfg.notional_currency_2,
                multiplier,
                cfg.underlying_isin,
                cfg.underlying_index_name,
                cfg.delivery_type,
            )
        price_currency = cfg.price_currency
        if r := rules.check_currency(price_currency, "price_currency"):
            reasons.append(r)
        quantity_currency = ""
        if cfg.quantity_type == "NOML":
            quantity_currency = cfg.notional_currency_1
            if r := rules.check_currency(quantity_currency, "quantity_currency"):
                reasons.append(r)
        elif cfg.quantity_type != "UNIT":
            reasons.append(Reason("quantity_type_invalid", "quantity_type", f"{cfg.quantity_type!r}"))
        if cfg.venue and (r := rules.check_mic(cfg.venue)):
            reasons.append(r)
        if r := rules.check_otc_indicators(cfg.otc_post_trade_indicators):
            reasons.append(r)
        otc = " ".join(cfg.otc_post_trade_indicators)
        tail = "".join(f"<OTCPstTradInd>{escape(c)}</OTCPstTradInd>" for c in cfg.otc_post_trade_indicators)
        commodity = "false" if cfg.commodity_derivative else ""
        if cfg.commodity_derivative:
            tail += "<RskRdcgTx>false</RskRdcgTx>"
        tail += "<SctiesFincgTxInd>false</SctiesFincgTxInd>"
        return _InstrumentPart(
            scope,
            columns,
            xml,
            cfg.quantity_type,
            quantity_currency,
            price_currency,
            cfg.contract_size,
            cfg.venue,
            ("", otc, commodity, "false"),
            tail,
            cfg.short_selling_applicable,
            tuple(reasons),
        )

    def _account(self, account_id: int) -> _AccountPart:
        part = self._account_parts.get(account_id)
        if part is None:
            part = self._account_parts[account_id] = self._account_part(account_id, self.accounts.get(account_id))
        return part

    def _account_part(self, account_id: int, cfg: AccountConfig | None) -> _AccountPart:
        empty = _Party(("",) * 7, "")
        if cfg is None or not cfg.configured:
            reason = Reason(
                "account_not_configured", "buyer_id", f"account {account_id} has no reporting profile (owner, capacity)"
            )
            return _AccountPart("", (empty, empty), (empty, empty), False, (reason,))
        reasons: list[Reason] = []
        owner_is_firm = cfg.owner_type == "firm"
        if r := rules.check_capacity_parties(capacity=cfg.trading_capacity, owner_is_firm=owner_is_firm):
            reasons.append(r)
        if r := rules.check_lei(cfg.counterparty_lei, "seller_id", "counterparty_lei_invalid"):
            reasons.append(r)
        if cfg.owner_country_of_branch and (
            r := rules.check_country(cfg.owner_country_of_branch, "buyer_country_of_branch")
        ):
            reasons.append(r)
        if cfg.decision_maker_lei and (
            r := rules.check_lei(cfg.decision_maker_lei, "buyer_decision_maker_lei", "decision_maker_lei_invalid")
        ):
            reasons.append(r)
        if owner_is_firm:
            owner = _lei_party(self.firm.executing_entity_lei)
        elif cfg.owner_type == "lei":
            if r := rules.check_lei(cfg.owner_lei, "buyer_id", "owner_lei_invalid"):
                reasons.append(r)
            owner = _lei_party(cfg.owner_lei, cfg.owner_country_of_branch, cfg.decision_maker_lei)
        elif cfg.owner_type == "person":
            for value, field in ((cfg.owner_first_name, "buyer_first_name"), (cfg.owner_surname, "buyer_surname")):
                if r := rules.check_person_name(value, field):
                    reasons.append(r)
            if cfg.owner_birth_date is None:
                reasons.append(Reason("person_birth_date_missing", "buyer_birth_date", "birth date required"))
            if r := rules.check_person_id(cfg.owner_national_id, cfg.owner_id_scheme, "buyer_id"):
                reasons.append(r)
            owner = _person_party(cfg)
        else:
            reasons.append(Reason("owner_type_invalid", "buyer_id_type", f"{cfg.owner_type!r}"))
            owner = empty
        counterparty = _lei_party(cfg.counterparty_lei)
        return _AccountPart(
            cfg.trading_capacity,
            (owner, counterparty),
            (counterparty, owner),
            bool(cfg.decision_maker_lei),
            tuple(reasons),
        )

    def _decision(self, algo_id: str, trader_id: int | None, capacity: str) -> _DecisionPart:
        key = (algo_id, trader_id, capacity)
        part = self._decision_parts.get(key)
        if part is None:
            part = self._decision_parts[key] = self._decision_part(algo_id, trader_id, capacity)
        return part

    def _decision_part(self, algo_id: str, trader_id: int | None, capacity: str) -> _DecisionPart:
        reasons: list[Reason] = []
        if algo_id:
            code = rules.algo_code(algo_id)
            if r := rules.check_algo_code(code, algo_id, "investment_decision_id"):
                reasons.append(r)
            other = self._algo_codes.setdefault(code, algo_id)
            if other != algo_id:
                reasons.append(
                    Reason(
                        "algo_id_collision",
                        "investment_decision_id",
                        f"algorithms {other!r} and {algo_id!r} both report as {code}",
                    )
                )
            inner = f"<Algo>{escape(code)}</Algo>"
            columns = ("ALGO", code, "", "ALGO", code, "")
            return _DecisionPart(
                columns,
                f"<InvstmtDcsnPrsn>{inner}</InvstmtDcsnPrsn><ExctgPrsn>{inner}</ExctgPrsn>",
                True,
                tuple(reasons),
            )
        if trader_id is not None:
            person = self.persons.get(trader_id)
            if person is None:
                reasons.append(
                    Reason(
                        "person_unidentified",
                        "investment_decision_id",
                        f"trader (user {trader_id}) has no national identifier configured",
                    )
                )
                return _DecisionPart(("PERSON", "", "", "PERSON", "", ""), "", True, tuple(reasons))
            if r := rules.check_person_id(person.national_id, person.id_scheme, "investment_decision_id"):
                reasons.append(r)
            if r := rules.check_country(person.country_of_branch, "investment_decision_country"):
                reasons.append(r)
            inner = (
                f"<Prsn><CtryOfBrnch>{escape(person.country_of_branch)}</CtryOfBrnch><Othr><Id>"
                f"{escape(person.national_id)}</Id><SchmeNm>{_scheme_xml(person.id_scheme)}</SchmeNm></Othr></Prsn>"
            )
            columns = (
                "PERSON",
                person.national_id,
                person.country_of_branch,
                "PERSON",
                person.national_id,
                person.country_of_branch,
            )
            return _DecisionPart(
                columns,
                f"<InvstmtDcsnPrsn>{inner}</InvstmtDcsnPrsn><ExctgPrsn>{inner}</ExctgPrsn>",
                True,
                tuple(reasons),
            )
        # Neither an algorithm nor a trader of the firm: the client decided and executed (NORE).
        if capacity in ("DEAL", "MTCH"):
            reasons.append(
                Reason(
                    "execution_decision_missing",
                    "execution_id",
                    f"{capacity}: the person or algorithm that executed is required (field 59)",
                )
            )
        return _DecisionPart(
            ("", "", "", "CLIENT", "NORE", ""), "<ExctgPrsn><Clnt>NORE</Clnt></ExctgPrsn>", False, tuple(reasons)
        )

    # ------------------------------------------------------------ one record

    def trn(self, execution_id: int) -> str:
        """Transaction reference number: stable (derived from the execution) and unique."""
        return f"{self.firm.trn_prefix}{execution_id:012d}"

    def _combo(self, key: tuple[int, int, str, int | None]) -> _Combo:
        """Everything of a record that depends only on its instrument, account and decision
        maker: built and checked once, reused for every execution that shares them."""
        instrument_id, account_id, algo_id, trader_id = key
        instrument = self._instrument(instrument_id)
        account = self._account(account_id)
        decision = self._decision(algo_id, trader_id, account.capacity)
        reasons = [*self._firm_reasons, *instrument.reasons, *account.reasons, *decision.reasons]
        if (
            instrument.scope == "mifir"
            and account.capacity
            and (
                r := rules.check_investment_decision(
                    capacity=account.capacity, has_decision=decision.has_decision, firm_decides=account.firm_decides
                )
            )
        ):
            reasons.append(r)
        head_values = ("false", "", "")
        sides = {}
        for side, (buyer, seller) in (("BUY", account.buy), ("SELL", account.sell)):
            sides[side] = (
                self._firm_columns + buyer.columns + seller.columns + head_values,
                f"{self._firm_xml}<Buyr>{buyer.xml}</Buyr><Sellr>{seller.xml}</Sellr>"
                "<OrdrTrnsmssn><TrnsmssnInd>false</TrnsmssnInd></OrdrTrnsmssn>",
            )
        if instrument.quantity_type == "NOML":
            qty_open = f"<Qty><NmnlVal Ccy={quoteattr(instrument.quantity_currency)}>"
            qty_close, qty_fraction = "</NmnlVal></Qty>", 5
        else:
            qty_open, qty_close, qty_fraction = "<Qty><Unit>", "</Unit></Qty>", 17
        combo = _Combo(
            scope=instrument.scope,
            reasons=tuple(reasons),
            capacity=account.capacity,
            sides=sides,
            quantity_type=instrument.quantity_type,
            quantity_currency=instrument.quantity_currency,
            quantity_fraction=qty_fraction,
            contract_size=instrument.contract_size,
            price_currency=instrument.price_currency,
            venue=instrument.venue,
            short_selling=instrument.short_selling,
            trade_open=f"</TradDt><TradgCpcty>{account.capacity}</TradgCpcty>{qty_open}",
            price_open=f"{qty_close}<Pric><Pric><MntryVal><Amt Ccy={quoteattr(instrument.price_currency)}>",
            price_close="</Amt></MntryVal></Pric></Pric><TradVn>",
            instrument_xml=f"</Tx>{instrument.xml}{decision.xml}<AddtlAttrbts>",
            tail_xml=f"{instrument.indicator_xml_tail}</AddtlAttrbts></New></Tx>",
            tail_values=instrument.columns + decision.columns,
            indicators=instrument.indicator_columns,
        )
        self._combos[key] = combo
        return combo

    def build(self, row: ExecutionRow, *, position_before: Decimal | None = None) -> BuiltRecord:
        """The NEWT record of one execution. ``position_before``: the account's net position
        in the instrument before this fill (short-selling indicator, where it applies)."""
        combo = self._combos.get((row.instrument_id, row.account_id, row.algo_id, row.trader_id))
        if combo is None:
            combo = self._combo((row.instrument_id, row.account_id, row.algo_id, row.trader_id))
        reasons: list[Reason] = []
        trn = f"{self._trn_prefix}{row.execution_id:012d}"
        if (not self._trn_ok or trn == self._previous_trn) and (r := rules.check_trn(trn, self._previous_trn)):
            reasons.append(r)
        self._previous_trn = trn
        executed_at = row.executed_at
        if executed_at.__class__ is str:
            # already RTS 22 text, formatted in UTC by the database (generators.transaction)
            timestamp = executed_at
            if not timestamp.endswith("Z"):
                reasons.append(Reason("timestamp_not_utc", "trading_date_time", f"{timestamp} is not in UTC"))
        elif executed_at.utcoffset() == _ZERO:
            timestamp = executed_at.isoformat(timespec=self._timespec)[:-6] + "Z"
        else:
            reasons.append(rules.check_utc_timestamp(executed_at))
            timestamp = executed_at.isoformat()
        if row.units is not None:
            quantity_text = _plain_text(row.units, combo.quantity_fraction)
        else:
            quantity_text = _decimal_text(row.quantity * combo.contract_size, combo.quantity_fraction)
        if quantity_text is None:
            quantity = row.units or row.quantity * combo.contract_size
            reasons.append(Reason("quantity_invalid", "quantity", f"{quantity} is not a positive quantity that fits"))
            quantity_text = str(quantity)
        price = row.price
        price_text = _plain_text(price, 13) if price.__class__ is str else _decimal_text(price, 13)
        if price_text is None:
            reasons.append(Reason("price_invalid", "price", f"{row.price} is not a positive price that fits"))
            price_text = str(row.price)
        venue = combo.venue or row.venue
        if not combo.venue:
            known = self._venues.get(venue)
            if known is None:
                known = self._venues[venue] = rules.check_mic(venue) or False
            if known:
                reasons.append(known)
        venue_tx_id = ""
        if venue and not OFF_VENUE(venue):
            venue_tx_id = rules.algo_code(row.broker_deal_id)[:52]  # capitals and digits only
            if not venue_tx_id:
                reasons.append(
                    Reason("venue_transaction_id_missing", "venue_transaction_id", "a venue trade needs the venue's id")
                )
        side = combo.sides.get(row.side)
        if side is None:
            reasons.append(Reason("side_invalid", "buyer_id", f"side {row.side!r}"))
            side = combo.sides["BUY"]
        short = ""
        if combo.short_selling and row.side == "SELL":
            short = "UNDI" if position_before is None else "SESH" if position_before - row.quantity < 0 else "SELL"
        waiver, otc, commodity, sft = combo.indicators
        values = (
            ("NEWT", trn, venue_tx_id)
            + side[0]
            + (timestamp, combo.capacity, combo.quantity_type, quantity_text, combo.quantity_currency, "")
            + (price_text, combo.price_currency, "", venue, "", "", "")
            + combo.tail_values
            + (waiver, short, otc, commodity, sft)
        )
        if combo.reasons or reasons:
            return BuiltRecord(values, combo.reasons + tuple(reasons))
        shape = combo.shapes.get((row.side, bool(venue_tx_id), bool(short)))
        if shape is None:
            shape = combo.shape(row.side, side[1], bool(venue_tx_id), bool(short))
        slots = (trn, timestamp, quantity_text, price_text, venue)
        if venue_tx_id:
            slots += (venue_tx_id,)
        if short:
            slots += (short,)
        csv_slots = (trn, venue_tx_id, timestamp, quantity_text, price_text, venue, short)
        csv_shape = combo.csv_shapes.get(row.side)
        if csv_shape is None:
            csv_shape = combo.csv_shape(row.side, side[0])
        if not csv_shape.fits(csv_slots):
            csv_shape = None  # a text that needs CSV quoting: the csv module writes ``values``
        return BuiltRecord(values, (), None, shape, slots, csv_shape, csv_slots)

    def cancellation(self, trn: str) -> BuiltRecord:
        """The CANC record that cancels the report ``trn`` (a correction sends CANC, then a new
        NEWT; ESMA's guidelines on transaction reporting, cancellations and amendments)."""
        reasons = list(self._firm_reasons)
        if r := rules.check_trn(trn):
            reasons.append(r)
        values = ["" for _ in range(56)]
        values[0], values[1] = "CANC", trn
        values[3], values[4], values[5] = self._firm_columns
        xml = None
        if not reasons:
            xml = (
                f"<Tx><Cxl><TxId>{trn}</TxId><ExctgPty>{escape(self.firm.executing_entity_lei)}</ExctgPty>"
                f"<SubmitgPty>{escape(self.firm.submitting_entity_lei)}</SubmitgPty></Cxl></Tx>"
            )
        return BuiltRecord(tuple(values), tuple(reasons), xml)

    def reset_sequence(self) -> None:
        """Forget the previous reference (a new file starts)."""
        self._previous_trn = None
