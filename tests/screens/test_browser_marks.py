"""The console's figures move between fills: the execution worker writes marks and each account's
figures on its wall-clock cadence without an event (``account_state_save``: derived data), and an
open console re-reads them every 5 s. Until 2026-12-06 (wip/walk50) they stood still until the next
fill or a reload: on the cluster a 300-bar replay moved the account's equity by 4,800 with no fill
while the risk manager's open console still showed the first figure."""

from __future__ import annotations

from decimal import Decimal as D
from functools import partial

from tests.screens.browser import in_thread, shoot
from tests.screens.test_browser import WAIT, ChromiumScreens, pytestmark  # noqa: F401 (the marks apply here too)


def marks_written(account_id: int) -> None:
    """What the worker's mark write leaves (positions' mark and unrealised P&L, the account's
    equity), with no event: nothing is pushed."""
    from tradeops.core.clock import utcnow
    from trading.models import AccountRiskSnapshot, Position

    now = utcnow()

    Position.objects.filter(account_id=account_id, instrument__symbol="EURUSD").update(
        mark_price=D("1.20000"), unrealised_pnl=D("-4321.50")
    )
    AccountRiskSnapshot.objects.update_or_create(
        account_id=account_id,
        defaults={
            "balance": D("100000"),
            "equity": D("95678.50"),
            "unrealised_pnl": D("-4321.50"),
            "peak_equity": D("100000"),
            "drawdown": D("0.043215"),
            "daily_pnl": D("-4321.50"),
            "used_margin": D("0"),
            "as_of": now,
            "updated_at": now,
        },
    )


class MarksInChromium(ChromiumScreens):
    def test_marks_written_without_an_event_reach_an_open_console(self):
        page = self.go(self.open_as("risk"), "/console/", live=True)
        account = self.world.accounts[0]
        row = f'#accounts tr[data-key="{account.pk}:EURUSD"]'
        self.assertNotEqual(page.inner_text(f'{row} [data-field="unrealised"]'), "-4,321.50")
        page.wait_for_timeout(2_000)  # the first connection's catch-up re-reads the accounts once: over
        in_thread(partial(marks_written, account.pk))
        page.wait_for_function(
            "sel => document.querySelector(sel)?.textContent === '-4,321.50'",
            arg=f'{row} [data-field="unrealised"]',
            timeout=WAIT,
        )
        card = page.inner_text(f'#accounts .account[data-account="{account.pk}"]')
        self.assertIn("95,678.50", card)  # the equity beside it, from the account's snapshot
        shoot(page, "console-marks-reread")
