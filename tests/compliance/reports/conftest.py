"""Reporting fixtures: the firm's identity, profiles for the test instruments and account,
trades made through the real order path (execution worker, paper broker), report storage in a
temporary folder."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from compliance.reports.configuration import (
    account_reporting_profile_save,
    instrument_reporting_profile_save,
    reporting_firm_save,
)
from tests.workers import conftest as execution_fixtures
from tests.workers.conftest import T0, make_worker, paper_broker, signal, tick
from tradeops.core.identifiers import lei_with_check_digits

gbpusd = execution_fixtures.gbpusd  # the second instrument's fixture
COUNTERPARTY_LEI = lei_with_check_digits("PAPERBROKERTEST000")


@pytest.fixture(autouse=True)
def report_storage(settings, tmp_path):
    """Report files go to a temporary folder (the storage alias "reports")."""
    from django.core.files.storage import storages

    settings.REPORTS_DIR = str(tmp_path / "reports")
    settings.STORAGES = {
        **settings.STORAGES,
        "reports": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": settings.REPORTS_DIR},
        },
    }
    storages._storages.pop("reports", None)
    yield
    storages._storages.pop("reports", None)


@pytest.fixture
def firm(account):
    return reporting_firm_save(
        actor="service:test",
        executing_entity_lei=account.firm_lei,
        submitting_entity_lei=account.firm_lei,
        home_country="CY",
        header_to="CY",
    )


def fx_profile(instrument, **overrides):
    fields = {
        "reportability": "mifir",
        "full_name": f"{instrument.symbol} CFD",
        "cfi_code": "JFTXFC",
        "notional_currency_1": instrument.currency,
        "notional_currency_2": instrument.quote_currency,
        "quantity_type": "NOML",
        "price_currency": instrument.quote_currency,
        "venue": "XXXX",
    }
    fields.update(overrides)
    return instrument_reporting_profile_save(instrument=instrument, actor="service:test", **fields)


@pytest.fixture
def configured(firm, account, instrument, gbpusd):
    """EURUSD and GBPUSD reportable (FX CFDs, as the demo firm chooses); the account is the
    firm's own (DEAL) with the paper broker as counterparty."""
    fx_profile(instrument)
    fx_profile(gbpusd)
    account_reporting_profile_save(
        account=account,
        actor="service:test",
        trading_capacity="DEAL",
        owner_type="firm",
        counterparty_lei=COUNTERPARTY_LEI,
    )
    return firm


@pytest.fixture
def traded(configured, account, instrument, gbpusd):
    """Fills made by the execution worker from signals, through the gate and the paper broker:
    buys and sells of EURUSD and GBPUSD on the trade date. Returns the worker's broker."""
    broker = paper_broker(instrument, gbpusd)
    worker = make_worker(broker, account).start()
    at = T0
    for n, (symbol, side) in enumerate(
        [("EURUSD", "BUY"), ("GBPUSD", "BUY"), ("EURUSD", "SELL"), ("GBPUSD", "SELL"), ("EURUSD", "BUY")]
    ):
        at = T0 + timedelta(minutes=5 * n)
        bid = Decimal("1.10000") if symbol == "EURUSD" else Decimal("1.30000")
        bid += Decimal(n) / 10000
        worker.handle(tick(symbol, str(bid), str(bid + Decimal("0.00002")), at=at))
        worker.handle(signal(side=side, symbol=symbol, price=str(bid), at=at, signal_id=f"rep-{n}"))
    return broker


@pytest.fixture
def trade_date(traded):
    """The UTC date of the fills' event time (the paper broker's deal time)."""
    from trading.models import Execution

    dates = {e.executed_at.date() for e in Execution.objects.all()}
    assert len(dates) == 1, f"fills on several dates: {dates}"
    return dates.pop()
