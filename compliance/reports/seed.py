"""Reporting configuration of the seeded demo firm (``manage.py seed`` runs ``reporting_seed``
through ``settings.SEED_EXTENSIONS``; trading never imports this app).

The demo firm deals on its own account (DEAL) through one broker and reports every CFD it
trades under MiFIR Art. 26, FX CFDs included: many firms report OTC FX CFDs under EMIR only
(the underlying is not traded on a venue), so reporting them is the conservative choice. It is
also what puts the replayed EURUSD fills in the demo's reports. Nothing here overwrites a
profile that exists (an edit in the admin stands).
"""

from __future__ import annotations

from compliance.reports.models import AccountReportingProfile, InstrumentReportingProfile, ReportingFirm
from tradeops.core.identifiers import lei_with_check_digits

ACTOR = "service:seed"
# The demo broker behind the paper MT5 server (a made-up LEI with valid check digits).
DEMO_COUNTERPARTY_LEI_PREFIX = "PAPERBROKERDEMO000"
DEMO_HOME_COUNTRY = "CY"

FX_RATIONALE = (
    "OTC FX CFD. Often reportable under EMIR only (no venue-traded underlying); this firm reports every "
    "CFD it trades under MiFIR Art. 26 as well (conservative choice)."
)
# Underlying indices (field 47: the index's ISIN).
INDEX_UNDERLYINGS = {"US500": "US78378X1072", "GER40": "DE0008469008"}


def instrument_profile_defaults(instrument) -> dict:
    """How a seeded CFD is described in a transaction report (RTS 22 fields 30-56)."""
    common = {
        "reportability": "mifir",
        "full_name": f"{instrument.description or instrument.symbol} CFD"[:350],
        "cfi_code": instrument.cfi_code,
        "price_currency": instrument.quote_currency,
        "venue": "XXXX",  # a CFD is not admitted to trading on a venue
        "delivery_type": "CASH",
    }
    if instrument.asset_class == "FX":
        return common | {
            "rationale": FX_RATIONALE,
            "notional_currency_1": instrument.currency,
            "notional_currency_2": instrument.quote_currency,
            "quantity_type": "NOML",  # lots x contract size, in the base currency
        }
    if instrument.asset_class == "COMMODITY":
        return common | {
            "rationale": "CFD on a spot commodity: a commodity derivative in MiFIR scope (venue XXXX).",
            "notional_currency_1": instrument.quote_currency,
            "commodity_derivative": True,
        }
    if instrument.asset_class == "CFD_INDEX":
        return common | {
            "rationale": "CFD on an index traded on venues: in MiFIR scope (venue XXXX).",
            "notional_currency_1": instrument.quote_currency,
            "underlying_isin": INDEX_UNDERLYINGS.get(instrument.symbol, ""),
            "underlying_index_name": "" if instrument.symbol in INDEX_UNDERLYINGS else instrument.symbol[:25],
        }
    return common | {
        "rationale": "CFD on a listed share: in MiFIR scope (venue XXXX).",
        "notional_currency_1": instrument.quote_currency,
        "underlying_isin": instrument.isin,
    }


def reporting_seed(*, stdout=None) -> None:
    """Idempotent: the firm's identity, a profile per instrument and per account, schedules."""
    from compliance.reports.configuration import (
        account_reporting_profile_save,
        instrument_reporting_profile_save,
        reporting_firm_save,
    )
    from compliance.reports.schedules import report_schedules_install
    from trading.models import Instrument, TradingAccount

    def say(text: str) -> None:
        if stdout is not None:
            stdout.write(text)

    account = TradingAccount.objects.order_by("pk").first()
    if not ReportingFirm.objects.filter(pk=1).exists() and account is not None:
        reporting_firm_save(
            actor=ACTOR,
            reason="demo firm",
            executing_entity_lei=account.firm_lei,
            submitting_entity_lei=account.firm_lei,
            home_country=DEMO_HOME_COUNTRY,
            header_to=DEMO_HOME_COUNTRY,
        )
        say(f"reporting firm: {account.firm_lei} (executing and submitting entity)")
    created = 0
    for instrument in Instrument.objects.order_by("symbol"):
        if not InstrumentReportingProfile.objects.filter(instrument=instrument).exists():
            instrument_reporting_profile_save(
                instrument=instrument, actor=ACTOR, reason="demo defaults", **instrument_profile_defaults(instrument)
            )
            created += 1
    say(f"instrument reporting profiles: {created} new (every CFD reported under MiFIR Art. 26)")
    counterparty = lei_with_check_digits(DEMO_COUNTERPARTY_LEI_PREFIX)
    for acc in TradingAccount.objects.order_by("pk"):
        if not AccountReportingProfile.objects.filter(account=acc).exists():
            account_reporting_profile_save(
                account=acc,
                actor=ACTOR,
                reason="demo defaults: own account",
                trading_capacity="DEAL",
                owner_type="firm",
                counterparty_lei=counterparty,
            )
            say(f"account reporting profile: {acc.name} (DEAL, own account, counterparty {counterparty})")
    installed = report_schedules_install()
    if installed:
        say(f"report schedules installed: {', '.join(installed)}")
