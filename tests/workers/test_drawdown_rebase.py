"""An account made REDUCING by its drawdown limit, then flat, stays REDUCING: a flat account
cannot earn the drawdown back. A risk manager proposes re-basing its peak equity with a reason,
a different one approves (four eyes), and the worker applies it on ``risk.drawdown_rebased``
with no restart (as ``risk.limit_changed`` reloads the limits): the account trades again, the
figures recorded before and after with both times. A re-base approved while no worker ran is
applied at the next start. Until 2026-12-07 only a change of the limit ended it."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from tests.workers.conftest import T0, make_worker, signal, tick
from tradeops.audit.models import AuditRecord
from tradeops.core.errors import FourEyesViolation
from tradeops.core.roles import Role
from tradeops.events import decode
from tradeops.outbox.models import Outbox
from trading.controls.drawdown import drawdown_rebase_approve, drawdown_rebase_propose
from trading.models import AccountRiskSnapshot, DrawdownRebase, Order, Position
from trading.risk import RiskLimits

LIMITS = RiskLimits(max_drawdown=Decimal("0.005"), duplicate_window_ms=None)


def risk_manager(name):
    user = get_user_model().objects.create_user(name, password="x" * 16)
    user.groups.add(Group.objects.get_or_create(name=str(Role.RISK_MANAGER))[0])
    return user


def reducing_and_flat(worker, account):
    """Buy, the price falls 0.5 %+ of equity below the peak, the position is closed: flat, REDUCING."""
    worker.handle(tick())
    worker.handle(signal(signal_id="open"))  # 2.50 lots
    fell = T0 + timedelta(seconds=1)
    worker.handle(tick(bid="1.09750", ask="1.09752", at=fell))  # -631: 0.63 % below the peak
    worker.handle(signal(side="SELL", signal_id="close", price="1.09751", atr=0.0005, at=fell))  # capped at 2.50
    assert Position.objects.get(account=account).net_quantity == 0
    assert worker.status()["accounts"][account.pk]["trading_state"] == "REDUCING"
    return fell


def test_a_rebase_approved_by_a_second_risk_manager_ends_the_reducing_without_a_restart(broker, account):
    worker = make_worker(broker, account, limits=LIMITS).start()
    fell = reducing_and_flat(worker, account)
    for n in range(2):  # flat: hours pass, nothing brings the drawdown back
        later = fell + timedelta(hours=1 + n)
        worker.handle(tick(bid="1.09750", ask="1.09752", at=later))
        worker.handle(signal(signal_id=f"stuck-{n}", price="1.09751", at=later))
    stuck = AuditRecord.objects.filter(action="signal.skipped", object_id__startswith="stuck")
    assert {r.payload_data["code"] for r in stuck} == {"strategy.reduce_only"}
    assert "drawdown 0.6" in stuck[0].payload_data["reason"] and ">= limit 0.50%" in stuck[0].payload_data["reason"]

    rick, rita = risk_manager("rick"), risk_manager("rita")
    rebase = drawdown_rebase_propose(proposed_by=rick, account=account, reason="loss understood; model retrained")
    snapshot = AccountRiskSnapshot.objects.get(account=account)
    assert rebase.seen_drawdown == snapshot.drawdown > Decimal("0.005")
    with pytest.raises(FourEyesViolation):
        drawdown_rebase_approve(rebase=rebase, approver=rick)
    drawdown_rebase_approve(rebase=rebase, approver=rita, note="agreed")
    assert worker.status()["accounts"][account.pk]["trading_state"] == "REDUCING"  # not before the event

    (row,) = Outbox.objects.filter(event_type="risk.drawdown_rebased")
    worker.handle(decode(bytes(row.message)))  # as the bus delivers it: no restart
    equity = worker.risk.account(account.pk).equity()
    status = worker.status()["accounts"][account.pk]
    assert status["trading_state"] == "ACTIVE" and Decimal(status["peak_equity"]) == equity
    snapshot.refresh_from_db()
    assert (snapshot.trading_state, snapshot.drawdown, snapshot.peak_equity) == ("ACTIVE", 0, equity)
    rebase.refresh_from_db()
    assert rebase.peak_after == equity and rebase.peak_before == Decimal(100000)
    # flat, so the drawdown the worker ended is the one the proposer saw
    assert rebase.drawdown_before == rebase.seen_drawdown > Decimal("0.005")
    assert rebase.applied_at is not None and rebase.applied_recorded_at is not None

    trail = AuditRecord.objects.filter(object_type="drawdown_rebase", object_id=str(rebase.pk)).order_by("sequence")
    assert [r.action for r in trail] == [
        "drawdown_rebase.proposed",
        "drawdown_rebase.approved",
        "drawdown_rebase.applied",
    ]
    proposed, approved, applied = trail
    assert proposed.actor == "user:rick" and approved.actor == "user:rita"
    assert proposed.payload_data["reason"] == "loss understood; model retrained"
    assert applied.payload_data["before"]["peak_equity"] == "100000"
    assert Decimal(applied.payload_data["after"]["peak_equity"]) == equity
    assert applied.occurred_at == rebase.applied_at and applied.recorded_at >= applied.occurred_at - timedelta(days=1)

    worker.handle(decode(bytes(row.message)))  # delivered twice: applied once
    assert AuditRecord.objects.filter(action="drawdown_rebase.applied").count() == 1

    resumed = fell + timedelta(hours=3)
    worker.handle(tick(bid="1.09750", ask="1.09752", at=resumed))
    worker.handle(signal(signal_id="resumed", price="1.09751", at=resumed))
    assert Order.objects.get(signal_id="resumed").status == "FILLED"
    worker.close()


def test_a_rebase_approved_while_no_worker_runs_is_applied_at_start(broker, account):
    worker = make_worker(broker, account, limits=LIMITS).start()
    reducing_and_flat(worker, account)
    worker.close()
    rebase = drawdown_rebase_propose(proposed_by=risk_manager("rick"), account=account, reason="resume")
    drawdown_rebase_approve(rebase=rebase, approver=risk_manager("rita"))

    restarted = make_worker(broker, account, limits=LIMITS).start()
    assert restarted.status()["accounts"][account.pk]["trading_state"] == "ACTIVE"
    assert DrawdownRebase.objects.get(pk=rebase.pk).applied_at is not None
    assert AccountRiskSnapshot.objects.get(account=account).drawdown == 0
    restarted.close()
