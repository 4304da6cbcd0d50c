"""The console's operator alerts in headless Chromium: a risk manager's home tile leads to the
panel, and an alert raised while the console is open arrives over the live channel without a
reload. The server listens on port 8344 (this worktree's port), not a random one."""

from __future__ import annotations

from datetime import timedelta
from functools import partial

from daphne.testing import DaphneProcess

from tests.screens.browser import in_thread, shoot
from tests.screens.test_browser import WAIT, ChromiumScreens, pytestmark  # noqa: F401 (the marks apply here too)
from tests.screens.world import pump_live

PORT = 8344


def mismatch_raise() -> int:
    """A reconciliation mismatch as the execution worker raises it (the outbox), recorded by the
    audit-trail stage (the system of record the panel reads) and pushed to the screens."""
    from django.db import transaction

    from tradeops.audit.services import audit_append_events
    from tradeops.core.clock import utcnow
    from tradeops.events import decode
    from tradeops.outbox.models import Outbox
    from trading.controls.services import risk_alert_raise

    with transaction.atomic():
        risk_alert_raise(
            alert_type="reconciliation_position_mismatch",
            severity="high",
            account="7000001",
            evidence={"EURUSD": {"ours": "1.25", "broker": "0"}},
            at=utcnow() - timedelta(seconds=3),
            source="execution",
        )
    rows = Outbox.objects.filter(sent_at__isnull=True, event_type="alert.raised")
    audit_append_events(events=[decode(bytes(r.message)) for r in rows])
    return pump_live()


class OperatorAlertsInChromium(ChromiumScreens):
    ProtocolServerProcess = partial(DaphneProcess, port=PORT)

    def test_an_operator_alert_arrives_live_and_the_home_tile_counts_it(self):
        page = self.go(self.open_as("risk"), "/console/", live=True)
        self.assertIn("No operator alert in the last 24 hours.", page.inner_text("#operator-alerts"))
        self.assertEqual(self.live_server_url, f"http://localhost:{PORT}")
        self.assertGreater(in_thread(mismatch_raise), 0)
        page.wait_for_selector("#operator-alerts-table td.mono:text('reconciliation_position_mismatch')", timeout=WAIT)
        row = page.inner_text("#operator-alerts-table tbody tr:first-child")
        self.assertIn("Positions differ from the broker: EURUSD ours 1.25 broker 0", row)
        self.assertIn("account 7000001", row)
        self.assertIn("high", row)
        shoot(page, "console-operator-alert")
        self.go(page, "/")
        tile = page.locator("a[href='/console/#operator-alerts']").first
        self.assertIn("1", tile.inner_text())
        tile.click()
        page.wait_for_selector("#operator-alerts-table", timeout=WAIT)
        self.assertIn("reconciliation_position_mismatch", page.inner_text("#operator-alerts"))
