"""The console says WHY an account is REDUCING (which loss limit, the figure against it) and, when
it is the drawdown, offers a risk manager the way out: propose re-basing the peak equity with a
reason; a different risk manager approves (four eyes), and the worker applies it on the event.
Until 2026-12-07 the console showed REDUCING and nothing else, and only a limit change ended it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
from django.test import Client

from tests.screens.world import user_make, world_build
from tradeops.audit.models import AuditRecord
from tradeops.core.roles import Role
from tradeops.outbox.models import Outbox
from trading.models import AccountRiskSnapshot, DrawdownRebase, RiskLimit

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


def test_a_reducing_snapshot_no_limit_explains_any_more_says_a_limit_changed_since(world):
    """The snapshot says REDUCING, but the limit it breached was loosened after it was written (the
    worker reloads limits at once, its snapshot at its next write): the console says so. Until
    2026-12-07 it said "an operator set it", which no operator could do."""
    from trading.controls.services import risk_limit_save

    alpha = world.accounts[0]
    reducing_on_drawdown(alpha)
    firm = RiskLimit.objects.get(account=None, instrument=None)
    risk_limit_save(actor="user:rick", limit=firm, max_drawdown=D("0.05"))  # 1.2 % is within 5 %
    seen = card(logged_in(world.users["risk"]), alpha)
    assert "<strong>REDUCING</strong>" in seen and "an operator" not in seen
    assert "its figures breach no loss limit now (a limit changed since" in seen
    assert 'data-form="rebase"' not in seen  # no drawdown to acknowledge


def equity_history(world):
    """The second account's position records in the trail: equity 100,000, then 98,800 (1.2 %
    under its peak), 98,700 and 99,000; its snapshot after them (the worker's figures, from a
    peak re-based on 98,800 between the second and third). Returns (account, event times)."""
    from tradeops.recorder import recording
    from trading.models import Position

    beta = world.accounts[1]  # no fills of its own: its curve is what this records
    position = Position.objects.create(account=beta, instrument=world.instrument, updated_at=AS_OF)
    t = [AS_OF + timedelta(minutes=m) for m in range(6)]
    with recording() as rec:
        for at, unrealised in [(t[0], "0"), (t[1], "-1200"), (t[3], "-1300"), (t[4], "-1000")]:
            rec.change(
                action="position.updated",
                actor="service:execution-worker",
                object_type="position",
                object_id=str(position.pk),
                before=None,
                after={"realised_pnl": "0", "unrealised_pnl": unrealised},
                at=at,
            )
    AccountRiskSnapshot.objects.create(
        account=beta,
        balance=D("100000"),
        equity=D("99000"),
        unrealised_pnl=D("-1000"),
        peak_equity=D("99000"),
        drawdown=D(0),
        daily_pnl=D("-1000"),
        trading_state="ACTIVE",
        as_of=t[5],
        updated_at=t[5],
    )
    return beta, t


def rebase_approved(world, account) -> DrawdownRebase:
    from trading.controls.drawdown import drawdown_rebase_approve, drawdown_rebase_propose

    rita = user_make("rita", Role.RISK_MANAGER)
    rebase = drawdown_rebase_propose(proposed_by=world.users["risk"], account=account, reason="loss understood")
    return drawdown_rebase_approve(rebase=rebase, approver=rita)


def rebase_applied(rebase: DrawdownRebase, *, at: datetime) -> None:
    """The worker re-based the peak from 100,000 on the 98,800 it held at ``at`` (event time)."""
    from trading.controls.drawdown import drawdown_rebase_applied_record

    drawdown_rebase_applied_record(
        rebase_id=rebase.pk,
        peak_before=D("100000"),
        peak_after=D("98800"),
        drawdown_before=D("0.012"),
        at=at,
        actor="service:execution-worker",
        source="execution-worker",
    )


def test_the_equity_charts_drawdown_restarts_from_an_applied_rebase(world):
    """The console's equity chart rebuilds the drawdown from the audit trail's position records;
    after a re-base the worker applied, it is measured from the peak the worker re-based on
    (``peak_after``), not from the first peak in the trail. Until 2026-12-07 only the chart's last
    point (the snapshot's) showed the re-based figure: here the point after the re-base read
    1.3 % where the worker (and the drawdown limit) counted 0.1 %."""
    beta, t = equity_history(world)
    rebase = rebase_approved(world, beta)
    trader = logged_in(world.users["trader"])

    def chart():
        body = trader.get(f"/console/accounts/{beta.pk}/equity.json").json()
        return [(p["t"], p["equity"], round(p["drawdown"], 6), p.get("rebase")) for p in body["points"]]

    # Approved, not applied: the worker has not moved the peak, nor does the chart.
    assert [dd for _, _, dd, _ in chart()] == [0.0, 0.012, 0.013, 0.01, 0.0]

    rebase_applied(rebase, at=t[2])
    assert chart() == [
        (t[0].isoformat(), 100000.0, 0.0, None),
        (t[1].isoformat(), 98800.0, 0.012, None),
        (t[2].isoformat(), 98800.0, 0.0, rebase.pk),  # the re-base: the peak is the equity it re-based on
        (t[3].isoformat(), 98700.0, round(100 / 98800, 6), None),  # 0.1 % from the new peak, not 1.3 %
        (t[4].isoformat(), 99000.0, 0.0, None),  # a new high after the re-base
        (t[5].isoformat(), 99000.0, 0.0, None),  # the snapshot's point, the worker's figures
    ]


def test_the_rebase_point_survives_when_the_chart_is_thinned(world):
    """The chart is thinned to ``points`` before it goes to the browser; the re-base point is
    kept, so the drawdown still restarts at the re-base. Until 2026-12-07 every n-th point was
    kept: thinned to 4, the six points kept 0, 1, 3 and 5, the re-base (2) was not among them."""
    from trading.console.selectors import equity_curve

    beta, t = equity_history(world)
    rebase = rebase_approved(world, beta)
    rebase_applied(rebase, at=t[2])
    thin = equity_curve(account=beta, points=4)
    assert [(p["t"], p.get("rebase")) for p in thin] == [
        (t[0].isoformat(), None),
        (t[1].isoformat(), None),
        (t[2].isoformat(), rebase.pk),
        (t[5].isoformat(), None),
    ]
