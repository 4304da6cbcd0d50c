"""Who may engage which kill switch, and on what (issue 19): the whole firm needs the risk manager
role on every way in (API, admin, command); a scope value must exist in the system of record, and
a bad one is a clear 400, never a 201 for a switch that blocks nothing nor a 500."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from rest_framework.test import APIClient

from tradeops.core.roles import Role
from trading.models import KillSwitch

URL = "/api/trading/kill-switch/"


def user_with(role: Role | None, name: str, **extra) -> User:
    user = User.objects.create_user(name, password="x" * 16, **extra)
    if role is not None:
        user.groups.add(Group.objects.get_or_create(name=str(role))[0])
    return user


def api_as(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.mark.parametrize(
    "role,expected",
    [
        (Role.TRADER, 403),
        (Role.COMPLIANCE_OFFICER, 403),
        (Role.RISK_MANAGER, 201),
    ],
)
def test_the_firm_wide_switch_needs_the_risk_manager_role_on_the_api(db, role, expected):
    response = api_as(user_with(role, "u")).post(URL, {"scope": "all", "reason": "panic"}, format="json")
    assert response.status_code == expected, response.content
    if expected == 403:
        assert response.json()["error"]["code"] == "kill_switch_scope_forbidden"
        assert not KillSwitch.objects.exists()


def _messages(response) -> list[str]:
    return [str(m) for m in response.wsgi_request._messages]


def test_a_superuser_without_the_role_cannot_stop_the_firm_from_the_admin(client, db):
    root = user_with(None, "root", is_staff=True, is_superuser=True)
    client.force_login(root)
    response = client.post("/admin/trading/killswitch/add/", {"scope": "all", "scope_value": "", "reason": "x"})
    assert response.status_code == 200  # the form again, with the refusal beside it
    assert not KillSwitch.objects.exists()
    assert b"kill_switch_scope_forbidden" in response.content
    assert not any("successfully" in m for m in _messages(response)), _messages(response)


def test_the_admin_refuses_an_algorithm_nobody_knows_and_does_not_say_it_added_it(client, db):
    """The walk of 2026-12-06: adding a switch on an unknown algorithm in the admin showed the
    service's refusal AND "The kill switch ... was added successfully", though nothing was added."""
    client.force_login(user_with(Role.RISK_MANAGER, "rhea", is_staff=True, is_superuser=True))
    response = client.post(
        "/admin/trading/killswitch/add/", {"scope": "algo", "scope_value": "nope", "reason": "runaway"}
    )
    assert response.status_code == 200
    assert not KillSwitch.objects.exists()
    assert b"kill_switch_unknown_algo" in response.content
    assert b"nope" in response.content  # what was typed stays in the form
    assert not any("successfully" in m for m in _messages(response)), _messages(response)


def test_a_release_the_service_refuses_is_not_reported_as_changed(client, db):
    root = user_with(None, "root", is_staff=True, is_superuser=True)
    switch = KillSwitch.objects.create(
        scope="instrument", scope_value="EURUSD", engaged=True, engaged_by="user:x", engaged_at=timezone.now()
    )
    client.force_login(root)
    url = f"/admin/trading/killswitch/{switch.pk}/change/"
    response = client.post(url, {"release_now": "on", "reason": "not a risk manager"})
    assert response.status_code == 302 and response["Location"] == url
    switch.refresh_from_db()
    assert switch.engaged
    messages = _messages(response)
    assert any("risk_manager" in m for m in messages), messages
    assert not any("successfully" in m for m in messages), messages


def test_the_command_needs_a_risk_manager_for_the_whole_firm(db, capsys):
    with pytest.raises(CommandError, match="kill_switch_scope_forbidden"):
        call_command("kill_switch", "engage", "--scope", "all", "--reason", "fire")
    user_with(Role.TRADER, "tess")
    with pytest.raises(CommandError, match="kill_switch_scope_forbidden"):
        call_command("kill_switch", "engage", "--scope", "all", "--reason", "fire", "--user", "tess")
    user_with(Role.RISK_MANAGER, "rhea")
    call_command("kill_switch", "engage", "--scope", "all", "--reason", "fire", "--user", "rhea")
    assert KillSwitch.objects.get().engaged_by == "user:rhea"


def test_a_trader_may_still_stop_one_instrument(instrument, db):
    response = api_as(user_with(Role.TRADER, "tess")).post(
        URL, {"scope": "instrument", "scope_value": "EURUSD", "reason": "runaway quotes"}, format="json"
    )
    assert response.status_code == 201, response.content


@pytest.mark.parametrize(
    "scope,value,code,words",
    [
        ("instrument", "NOSUCHSYMBOL", "kill_switch_unknown_instrument", "no instrument 'NOSUCHSYMBOL'"),
        ("account", "999999", "kill_switch_unknown_account", "no trading account"),
        ("trader", "999999", "kill_switch_unknown_trader", "no user"),
        ("algo", "momentum v2; drop", "kill_switch_scope", "algo id"),
        ("instrument", "E" * 10_000, "", "64 characters"),
    ],
)
def test_scope_values_are_checked_against_the_system_of_record(instrument, account, db, scope, value, code, words):
    client = api_as(user_with(Role.RISK_MANAGER, "rhea"))
    response = client.post(URL, {"scope": scope, "scope_value": value, "reason": "x"}, format="json")
    assert response.status_code == 400, response.content
    body = response.json()["error"]
    assert not code or body["code"] == code
    assert words in str(body)
    assert not KillSwitch.objects.exists()


def test_a_switch_on_an_algorithm_nobody_knows_is_refused_naming_the_known_ones(instrument, account, db):
    """A typo silently protected nothing: an algo id must be one orders carry or a signal producer
    is configured to stamp (the ML validator's, before its first order)."""
    from decimal import Decimal

    from trading.orders.services import order_create

    order_create(
        client_order_id="ALGO-KNOWN-1",
        account=account,
        instrument=instrument,
        side="BUY",
        quantity=Decimal("0.10"),
        algo_id="momentum-v2",
    )
    client = api_as(user_with(Role.TRADER, "tess"))
    response = client.post(URL, {"scope": "algo", "scope_value": "momentum-v3", "reason": "runaway"}, format="json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "kill_switch_unknown_algo"
    assert "no algorithm 'momentum-v3' is known to the platform" in error["message"]
    assert "momentum-v2" in error["message"] and "tradeops-ml" in error["message"]
    assert "momentum-v2" in error["extra"]["known"]
    response = client.post(URL, {"scope": "algo", "scope_value": "Momentum-V2", "reason": "x"}, format="json")
    assert "did you mean 'momentum-v2'?" in response.json()["error"]["message"]
    assert not KillSwitch.objects.exists()
    # an algorithm on orders, and the ML validator's before any of its orders: engaged
    for algo in ("momentum-v2", "tradeops-ml"):
        response = client.post(URL, {"scope": "algo", "scope_value": algo, "reason": "runaway"}, format="json")
        assert response.status_code == 201, response.content


def test_the_add_form_asks_what_to_stop_and_why_and_shows_no_state_before_anything_is_engaged(client, db):
    """The add form listed the switch's read-only state, "Engaged ✓" among it, before anything was
    engaged (walked 2026-12-06)."""
    client.force_login(user_with(Role.RISK_MANAGER, "rhea", is_staff=True, is_superuser=True))
    page = client.get("/admin/trading/killswitch/add/").content.decode()
    for field in ("scope", "scope_value", "reason"):
        assert f'name="{field}"' in page
    for state in ("Engaged:", "Engaged at:", "Release now", "Cancelled orders:"):
        assert state not in page
