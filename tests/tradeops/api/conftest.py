"""Fixtures of the integration API tests: people per role, API clients per role, real tokens from
the real token endpoint, and a cache namespace per test (throttle counters never leak)."""

from __future__ import annotations

import base64
import copy
import itertools
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from tradeops.core.roles import Role

_names = itertools.count(1)


@pytest.fixture(autouse=True)
def _throttle_namespace(settings):
    caches = copy.deepcopy(settings.CACHES)
    for config in caches.values():
        config["KEY_PREFIX"] = f"{config.get('KEY_PREFIX', '')}:{uuid.uuid4().hex[:8]}"
    settings.CACHES = caches
    # Client secrets are hashed with the first password hasher (PBKDF2, ~0.3 s a hash by
    # design): the tests issue hundreds of tokens, so they hash with a fast one.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def report_storage(settings, tmp_path):
    """Report files go to a temporary folder (the storage alias "reports")."""
    from django.core.files.storage import storages

    settings.STORAGES = {
        **settings.STORAGES,
        "reports": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path)}},
    }
    storages._storages.pop("reports", None)
    yield
    storages._storages.pop("reports", None)


@pytest.fixture
def roles(db):
    from tradeops.core.services import roles_sync

    roles_sync()


@pytest.fixture
def person(roles):
    """person(role, name=None) -> a user in the role's group (admin: a superuser)."""

    def make(role: Role | None, name: str | None = None):
        user = get_user_model().objects.create_user(
            username=name or f"{role or 'nobody'}-{next(_names)}", password="pw-not-used-12", is_staff=True
        )
        if role is not None:
            user.groups.add(Group.objects.get(name=str(role)))
            if role == Role.ADMIN:
                user.is_superuser = True
                user.save(update_fields=["is_superuser"])
        return user

    return make


@pytest.fixture
def make_api_client(roles):
    """make_api_client(role, scopes=None (all the role may hold), rate="") -> (ApiClient, secret)."""
    from tradeops.api.matrix import scopes_for_role
    from tradeops.api.services import api_client_create

    def make(role: Role, scopes=None, rate: str = "", name: str | None = None):
        return api_client_create(
            name=name or f"{str(role).replace('_', '-')}-{next(_names)}",
            role=role,
            scopes=sorted(scopes_for_role(role)) if scopes is None else scopes,
            throttle_rate=rate,
            actor="user:test",
        )

    return make


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def token_request(http: APIClient, client, secret: str, scope: str | None = None, **extra):
    data = {"grant_type": "client_credentials"}
    if scope is not None:
        data["scope"] = scope
    return http.post(
        "/o/token/", data, format="multipart", HTTP_AUTHORIZATION=basic(client.application.client_id, secret), **extra
    )


@pytest.fixture
def issue_token(make_api_client):
    """issue_token(role, scopes=None, rate="") -> (access token, ApiClient), from /o/token/."""

    def issue(role: Role, scopes=None, rate: str = ""):
        client, secret = make_api_client(role, scopes, rate)
        response = token_request(APIClient(), client, secret)
        assert response.status_code == 200, response.content
        return response.json()["access_token"], client

    return issue


@pytest.fixture
def bearer():
    def make(token: str, **extra) -> APIClient:
        http = APIClient(**extra)
        http.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        return http

    return make


T0 = datetime(2026, 3, 2, 9, 30, 0, 123456, tzinfo=UTC)


def filled_order(*, account, instrument, client_order_id: str, side: str = "BUY", quantity="1.00", price="1.10000"):
    """An order taken through NEW -> RISK_APPROVED -> SUBMITTED -> FILLED with its fill and position."""
    from trading.order_states import OrderStatus
    from trading.orders.plan import FillDraft
    from trading.orders.services import execution_record, order_create, order_transition

    order, _ = order_create(
        client_order_id=client_order_id,
        account=account,
        instrument=instrument,
        side=side,
        quantity=Decimal(quantity),
        algo_id="algo-1",
        at=T0,
    )
    order = order_transition(order=order, to=OrderStatus.RISK_APPROVED, at=T0)
    order = order_transition(order=order, to=OrderStatus.SUBMITTED, at=T0, broker_order_id=f"B-{client_order_id}")
    result = execution_record(
        order=order,
        fill=FillDraft(
            broker_deal_id=f"D-{client_order_id}",
            quantity=Decimal(quantity),
            price=Decimal(price),
            executed_at=T0 + timedelta(milliseconds=40),
        ),
    )
    return result


def spoofing_alert(*, account):
    """One recorded spoofing alert on EURUSD about ``account`` (owner OWNER-1), with its case."""
    from compliance.services import alerts_record

    return alerts_record(
        alerts=[
            {
                "alert_type": "spoofing",
                "account": str(account.pk),
                "owner": "OWNER-1",
                "symbol": "EURUSD",
                "order_ids": ["X-1"],
                "score": 0.9,
                "start": "2026-03-02T09:30:00+00:00",
                "end": "2026-03-02T09:30:04+00:00",
                "evidence": {"ratio": 4.0, "threshold": 3.0},
            }
        ]
    )


@pytest.fixture
def book(db, instrument, account):
    """A small book: two filled orders on EURUSD (one position), a second instrument."""
    from trading.models import Instrument

    gbp = Instrument.objects.create(
        symbol="GBPUSD",
        asset_class="FX",
        currency="GBP",
        quote_currency="USD",
        tick_size=Decimal("0.00001"),
        contract_size=Decimal(100000),
    )
    first = filled_order(account=account, instrument=instrument, client_order_id="API-T-1")
    second = filled_order(account=account, instrument=gbp, client_order_id="API-T-2", side="SELL", price="1.25000")
    return {"instrument": instrument, "account": account, "gbp": gbp, "orders": [first.order, second.order]}


ALGO_IDS = tuple(f"algo-{n}" for n in range(1000))


def algo_ids_for_tests() -> tuple[str, ...]:
    """The algorithms the API tests' kill switches name (``algo-<n>``), known to the platform as a
    configured producer's would be (``KILL_SWITCH_ALGO_SOURCES``): no order carries them here."""
    return ALGO_IDS


@pytest.fixture(autouse=True)
def _known_test_algorithms(settings):
    settings.KILL_SWITCH_ALGO_SOURCES = [*settings.KILL_SWITCH_ALGO_SOURCES, f"{__name__}.algo_ids_for_tests"]
