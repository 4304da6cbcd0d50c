"""Shared fixtures. Integration tests talk to the real services started by scripts/services.sh."""

from __future__ import annotations

import os
from decimal import Decimal

import pytest

from tradeops.core.identifiers import lei_with_check_digits


def service_unavailable(reason: str):
    """Skip a test whose real service is missing, on a developer's machine. In CI
    (``TRADEOPS_REQUIRE_SERVICES=1``, set by .ci/run) a missing service fails the test instead,
    so a broker that died cannot turn the integration tests into silent skips."""
    if os.environ.get("TRADEOPS_REQUIRE_SERVICES") == "1":
        pytest.fail(f"required service unavailable: {reason}", pytrace=False)
    pytest.skip(reason)


def requires_postgres():
    from django.db import connection

    if connection.vendor != "postgresql":
        service_unavailable("needs PostgreSQL: set DATABASE_URL (scripts/test.sh does)")


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """The test database is disposable: let Django flush the append-only audit tables between
    TransactionTestCase tests (tradeops/audit/migrations/0002_immutability.py explains the permit)."""
    from tradeops.audit.testing import flush_permit_grant

    with django_db_blocker.unblock():
        flush_permit_grant()


@pytest.fixture
def postgres(db):
    requires_postgres()


@pytest.fixture
def kafka_bootstrap() -> str:
    return os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")


@pytest.fixture
def instrument(db):
    from trading.models import Instrument

    return Instrument.objects.create(
        symbol="EURUSD",
        description="Euro vs US Dollar",
        asset_class="FX",
        cfi_code="JFTXFC",
        currency="EUR",
        quote_currency="USD",
        digits=5,
        tick_size=Decimal("0.00001"),
        contract_size=Decimal(100000),
        min_volume=Decimal("0.01"),
        max_volume=Decimal("100"),
        volume_step=Decimal("0.01"),
        venue_mic="XOFF",
    )


@pytest.fixture
def account(db):
    from trading.models import TradingAccount

    return TradingAccount.objects.create(
        name="Test account",
        mt5_login=7000001,
        mt5_server="test-server",
        firm_lei=lei_with_check_digits("TRADEOPSTEST000000"),
        client_id="CLIENT-1",
        beneficial_owner="OWNER-1",
    )
