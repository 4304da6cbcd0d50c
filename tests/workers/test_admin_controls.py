"""Risk limits and the kill switch through the admin: every save goes through the audited services."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, User

from tests.workers.test_kill_switch import resting
from tradeops.audit.models import AuditRecord
from tradeops.core.roles import Role
from trading.models import KillSwitch, Order, RiskLimit


@pytest.fixture
def admin_client(client, db):
    user = User.objects.create_superuser("root", password="x" * 16)
    client.force_login(user)
    return client


def _risk_manager(name: str) -> User:
    user = User.objects.create_user(name, password="x" * 16, is_staff=True, is_superuser=True)
    user.groups.add(Group.objects.get_or_create(name=str(Role.RISK_MANAGER))[0])
    return user


def test_a_limit_changed_in_the_admin_is_proposed_and_takes_effect_when_a_second_risk_manager_approves(
    client, db, account, instrument
):
    """Four eyes in the admin as over the API (the walk of 2026-12-06: the admin saved a limit at
    once, so one risk manager changed what the API lets only two change)."""
    from trading.models import RiskLimitProposal

    rhea, remy = _risk_manager("rhea"), _risk_manager("remy")
    client.force_login(rhea)
    response = client.post(
        "/admin/trading/risklimit/add/",
        {
            "account": account.pk,
            "instrument": instrument.pk,
            "max_position_lots": "2",
            "check_margin": "on",
            "duplicate_window_ms": "1000",
            "is_active": "on",
            "reason": "new desk",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    assert not RiskLimit.objects.exists(), "proposed, not saved"
    proposal = RiskLimitProposal.objects.get()
    assert response.headers["Location"] == f"/admin/trading/risklimitproposal/{proposal.pk}/change/"
    # the proposer cannot approve
    client.post(f"/admin/trading/risklimitproposal/{proposal.pk}/change/", {"decision": "approve", "note": "me"})
    assert not RiskLimit.objects.exists()
    page = client.get("/admin/trading/risklimitproposal/").content.decode()
    assert "cannot also approve it" in page
    client.force_login(remy)
    client.post(f"/admin/trading/risklimitproposal/{proposal.pk}/change/", {"decision": "approve", "note": "agreed"})
    limit = RiskLimit.objects.get()
    assert limit.max_position_lots == Decimal(2)
    # a change proposes only the field changed; a second risk manager approves it
    response = client.post(
        f"/admin/trading/risklimit/{limit.pk}/change/",
        {
            "max_position_lots": "1.5",
            "check_margin": "on",
            "duplicate_window_ms": "1000",
            "is_active": "on",
            "reason": "tighter",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    limit.refresh_from_db()
    assert limit.max_position_lots == Decimal(2)
    change = RiskLimitProposal.objects.get(status="pending")
    assert change.values == {"max_position_lots": "1.5"} and change.proposed_by == remy
    client.force_login(rhea)
    client.post(f"/admin/trading/risklimitproposal/{change.pk}/change/", {"decision": "approve", "note": "ok"})
    limit.refresh_from_db()
    assert limit.max_position_lots == Decimal("1.5")
    changed = AuditRecord.objects.get(action="risk_limit.changed")
    assert Decimal(changed.payload_data["before"]["max_position_lots"]) == 2
    assert Decimal(changed.payload_data["after"]["max_position_lots"]) == Decimal("1.5")
    # someone without the risk manager role is refused in words, and nothing is filed
    root = User.objects.create_superuser("root", password="x" * 16)
    client.force_login(root)
    client.post(
        f"/admin/trading/risklimit/{limit.pk}/change/",
        {
            "max_position_lots": "9",
            "check_margin": "on",
            "duplicate_window_ms": "1000",
            "is_active": "on",
            "reason": "x",
        },
    )
    assert RiskLimitProposal.objects.filter(status="pending").count() == 0
    assert "is not a risk manager" in client.get("/admin/trading/risklimit/").content.decode()


def test_kill_switch_engaged_from_the_admin_and_released_by_a_risk_manager(admin_client, client, worker, account):
    order = resting(worker, account, 1)
    response = admin_client.post(
        "/admin/trading/killswitch/add/", {"scope": "account", "scope_value": str(account.pk), "reason": "desk fire"}
    )
    assert response.status_code == 302, response.content[:2000]
    switch = KillSwitch.objects.get(engaged=True)
    assert switch.source == "admin" and switch.engaged_by == "user:root"
    # no broker session in the admin process: the order at the broker waits for the worker
    assert Order.objects.get(pk=order.pk).status == "SUBMITTED"
    rm = User.objects.create_user("rhea", password="x" * 16, is_staff=True)
    rm.groups.add(Group.objects.get_or_create(name=str(Role.RISK_MANAGER))[0])
    response = admin_client.post(
        f"/admin/trading/killswitch/{switch.pk}/change/", {"release_now": "on", "reason": "not a risk manager"}
    )
    switch.refresh_from_db()
    assert switch.engaged, "a superuser without the risk_manager role cannot release"
    rm.is_superuser = True  # admin page access; the release rule is the role, checked by the service
    rm.save()
    client.force_login(rm)
    response = client.post(f"/admin/trading/killswitch/{switch.pk}/change/", {"release_now": "on", "reason": "ok"})
    assert response.status_code == 302
    switch.refresh_from_db()
    assert not switch.engaged and switch.released_by == rm and switch.release_reason == "ok"
