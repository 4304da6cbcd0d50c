"""manage.py seed configures the demo firm's reporting: every CFD it trades, EURUSD included."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from compliance.reports.models import AccountReportingProfile, InstrumentReportingProfile, ReportingFirm
from trading.models import Instrument, TradingAccount

pytestmark = pytest.mark.django_db


def test_seed_reports_every_cfd_and_is_idempotent():
    out = io.StringIO()
    call_command("seed", stdout=out)
    firm = ReportingFirm.objects.get()
    account = TradingAccount.objects.get()
    assert firm.executing_entity_lei == account.firm_lei
    profiles = {p.instrument.symbol: p for p in InstrumentReportingProfile.objects.select_related("instrument")}
    assert set(profiles) == set(Instrument.objects.values_list("symbol", flat=True))
    assert {p.reportability for p in profiles.values()} == {"mifir"}
    eurusd = profiles["EURUSD"]
    assert (eurusd.notional_currency_1, eurusd.notional_currency_2, eurusd.quantity_type) == ("EUR", "USD", "NOML")
    assert "EMIR" in eurusd.rationale
    assert profiles["US500"].underlying_isin == "US78378X1072"
    assert profiles["AAPL"].underlying_isin == "US0378331005" and profiles["AAPL"].isin == ""
    assert profiles["XAUUSD"].commodity_derivative
    assert AccountReportingProfile.objects.get(account=account).trading_capacity == "DEAL"
    eurusd.reportability = "emir_only"  # an officer's decision stands
    eurusd.save()
    call_command("seed", stdout=out)
    assert InstrumentReportingProfile.objects.get(instrument__symbol="EURUSD").reportability == "emir_only"
    assert InstrumentReportingProfile.objects.count() == len(profiles)
