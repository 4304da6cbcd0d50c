"""The console says WHY an account is REDUCING (which loss limit, the figure against it) and, when
it is the drawdown, offers a risk manager the way out: propose re-basing the peak equity with a
reason; a different risk manager approves (four eyes), and the worker applies it on the event.
Until 2026-12-07 the console showed REDUCING and nothing else, and only a limit change ended it."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
from django.test import Client

from tests.screens.world import user_make, world_build
from tradeops.audit.models import AuditRecord
from tradeops.core.roles import Role
from tradeops.outbox.models import Outbox
from trading.models import AccountRiskSnapshot, DrawdownRebase

AS_OF = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


@pytest.fixture
def world(db):
    return world_build()


def reducing_on_drawdown(account):
    """The worker's snapshot of a flat account 1.2 % under its peak, against a 1 % drawdown limit."""
    from trading.controls.services import risk_limit_save

    risk_limit_save(actor="user:rick", account=None, max_drawdown=D("0.01"))  # firm-wide
    AccountRiskSnapshot.objects.create(
        account=account,
        balance=D("98800"),
        equity=D("98800"),
        unrealised_pnl=D(0),
        peak_equity=D("100000"),
        drawdown=D("0.012"),
        daily_pnl=D("-200"),
        trading_state="REDUCING",
        as_of=AS_OF,
        updated_at=AS_OF,
    )


def card(client: Client, account) -> str:
    page = client.get("/console/?fragment=accounts").content.decode()
    return page[page.index(f'id="account-{account.pk}"') :].split('<div class="grid three">')[0]


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_console_says_why_an_account_is_reducing_and_a_second_risk_manager_approves_the_rebase(world):
    alpha = world.accounts[0]
    reducing_on_drawdown(alpha)
    rick, rita = world.users["risk"], user_make("rita", Role.RISK_MANAGER)
    trader = logged_in(world.users["trader"])

    seen = card(trader, alpha)
    assert "<strong>REDUCING</strong>" in seen
    assert "drawdown 1.20 % of peak equity 100,000.00 (equity 98,800.00) at or past its limit 1.00 %" in seen
    assert "A risk manager re-bases the peak equity (four eyes)." in seen and "<form" not in seen
    assert trader.post(f"/console/accounts/{alpha.pk}/drawdown-rebase/", {"reason": "x"}).status_code == 403
    assert "REDUCING" not in card(trader, world.accounts[1])  # the other account: nothing to say

    as_rick = logged_in(rick)
    assert 'data-form="rebase"' in card(as_rick, alpha)
    refused = as_rick.post(f"/console/accounts/{alpha.pk}/drawdown-rebase/", {"reason": "  "}, follow=True)
    assert "A reason is required" in refused.content.decode() and not DrawdownRebase.objects.exists()
    response = as_rick.post(
        f"/console/accounts/{alpha.pk}/drawdown-rebase/", {"reason": "loss explained: spread spike"}
    )
    assert response.status_code == 302 and response["Location"] == f"/console/#account-{alpha.pk}"
    rebase = DrawdownRebase.objects.get()
    assert (rebase.status, rebase.seen_drawdown, rebase.seen_peak_equity) == ("pending", D("0.012"), D("100000"))
    mine = card(as_rick, alpha)
    assert "proposed by rick" in mine and "loss explained: spread spike" in mine
    assert "you proposed it: a second risk manager approves" in mine and "Approve the re-base" not in mine
    own = as_rick.post(f"/console/drawdown-rebases/{rebase.pk}/approve/", follow=True).content.decode()
    assert "Refused (four eyes)" in own
    rebase.refresh_from_db()
    assert rebase.status == "pending" and not Outbox.objects.filter(event_type="risk.drawdown_rebased").exists()

    as_rita = logged_in(rita)
    assert "Approve the re-base" in card(as_rita, alpha)
    done = as_rita.post(f"/console/drawdown-rebases/{rebase.pk}/approve/", {"note": "agreed"}, follow=True)
    assert "the execution worker applies it now" in done.content.decode()
    rebase.refresh_from_db()
    assert (rebase.status, rebase.decided_by, rebase.decision_note) == ("approved", rita, "agreed")
    assert Outbox.objects.filter(event_type="risk.drawdown_rebased").count() == 1
    approved = card(as_rita, alpha)
    assert "approved by rita; the execution worker applies it" in approved
    assert 'data-form="rebase"' not in approved  # no second one while it awaits the worker
    twice = as_rita.post(f"/console/accounts/{alpha.pk}/drawdown-rebase/", {"reason": "again"}, follow=True)
    assert "awaits the execution worker" in twice.content.decode()
    assert [r.action for r in AuditRecord.objects.filter(object_type="drawdown_rebase").order_by("sequence")] == [
        "drawdown_rebase.proposed",
        "drawdown_rebase.approved",
    ]


def test_a_pending_rebase_is_withdrawn_or_rejected_with_a_note(world):
    alpha = world.accounts[0]
    reducing_on_drawdown(alpha)
    rick = world.users["risk"]
    as_rick = logged_in(rick)
    as_rick.post(f"/console/accounts/{alpha.pk}/drawdown-rebase/", {"reason": "resume"})
    again = as_rick.post(f"/console/accounts/{alpha.pk}/drawdown-rebase/", {"reason": "twice"}, follow=True)
    assert "already awaiting approval" in again.content.decode() and DrawdownRebase.objects.count() == 1
    rebase = DrawdownRebase.objects.get()
    assert "Withdraw" in card(as_rick, alpha)
    as_rick.post(f"/console/drawdown-rebases/{rebase.pk}/reject/", {"note": "wrong account"})
    rebase.refresh_from_db()
    assert rebase.status == "rejected" and rebase.decided_by is None  # withdrawn by its proposer
    assert 'data-form="rebase"' in card(as_rick, alpha)  # it may be proposed again
