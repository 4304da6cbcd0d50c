"""In Chromium: an account REDUCING on its drawdown says why on the console; a risk manager
proposes re-basing its peak equity with a reason through the form, and a second risk manager
approves it on the same card (four eyes). Screenshots kept as artifacts."""

from __future__ import annotations

from tests.screens.browser import shoot
from tests.screens.test_browser import WAIT, ChromiumScreens, pytestmark  # noqa: F401 - the same marks
from tests.screens.test_drawdown_rebase import reducing_on_drawdown
from tests.screens.world import user_make
from tradeops.core.roles import Role


def reducing_world(account):
    """The screens test's REDUCING account (a flat account 1.2 % under its peak, a 1 % limit) and
    a second risk manager to approve."""
    reducing_on_drawdown(account)
    user_make("rita", Role.RISK_MANAGER)


class DrawdownRebaseInChromium(ChromiumScreens):
    def test_a_risk_manager_proposes_the_rebase_and_a_second_one_approves_it(self):
        from tests.screens.browser import in_thread

        alpha = self.world.accounts[0]
        in_thread(lambda: reducing_world(alpha))
        card = f"#account-{alpha.pk}"
        page = self.go(self.open_as("risk"), "/console/")
        why = page.inner_text(f"{card} [data-field=reducing]")
        self.assertIn("drawdown 1.20 % of peak equity 100,000.00 (equity 98,800.00) at or past its limit 1.00 %", why)
        shoot(page, "drawdown-rebase-1-reducing")
        page.fill(f"{card} form[data-form=rebase] input[name=reason]", "loss explained: a spread spike at the open")
        page.click(f"{card} form[data-form=rebase] button")
        page.wait_for_selector(f"{card} [data-field=rebase-pending]", timeout=WAIT)
        self.assertIn("a second risk manager approves", page.inner_text(card))
        self.assertEqual(page.locator(f"{card} button:has-text('Approve the re-base')").count(), 0)
        shoot(page, "drawdown-rebase-2-proposed")

        from tests.screens.browser import sign_in
        from tests.screens.world import PASSWORD

        context = self.browser.new_context(viewport={"width": 1440, "height": 900})
        other = context.new_page()
        sign_in(other, self.live_server_url, "rita", PASSWORD)
        self.go(other, "/console/")
        other.fill(f"{card} input[name=note]", "agreed")
        other.click(f"{card} button:has-text('Approve the re-base')")
        other.wait_for_selector(f"{card} [data-field=rebase-last]", timeout=WAIT)
        self.assertIn("approved by rita", other.inner_text(f"{card} [data-field=rebase-last]"))
        self.assertIn("the execution worker applies it now", other.inner_text("body"))
        shoot(other, "drawdown-rebase-3-approved")

    def test_the_equity_chart_measures_the_drawdown_from_the_applied_rebase(self):
        from tests.screens.browser import in_thread
        from tests.screens.test_drawdown_rebase import equity_history, rebase_applied, rebase_approved

        def history():
            beta, t = equity_history(self.world)
            rebase_applied(rebase_approved(self.world, beta), at=t[2])
            return beta

        beta = in_thread(history)
        page = self.go(self.open_as("trader"), "/console/")
        page.select_option("#equity-account", str(beta.pk))
        page.wait_for_function("document.getElementById('equity-note').textContent.includes('re-based')", timeout=WAIT)
        note = page.inner_text("#equity-note")
        self.assertIn("Drawdown measured from the peak equity re-based at 2026-01-05 12:02:00 UTC (re-base", note)
        self.assertIn("6 points", note)
        page.locator("#equity-chart").scroll_into_view_if_needed()
        shoot(page, "drawdown-rebase-4-equity-chart")
