"""The screens in real headless Chromium (Debian's package), against a live Daphne server with
the Redis channel layer: sign-in per role, a position change arriving after a fill, the kill
switch engaged and released, two officers working a case to closure, a rule approved by a
second officer and refused to its proposer, and a dropped WebSocket catching up without a
reload. Every page's stylesheets and scripts must load; screenshots are kept as artifacts."""

from __future__ import annotations

import os
from decimal import Decimal as D

import pytest
from channels.testing import ChannelsLiveServerTestCase
from django.conf import settings

from tests.screens import browser
from tests.screens.browser import AssetWatch, in_thread, shoot, sign_in
from tests.screens.world import PASSWORD, order_filled, pump_live, world_build

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not settings.REDIS_URL, reason="needs Redis (REDIS_URL): the server process and the test share a layer"
    ),
    pytest.mark.skipif(not os.path.exists(browser.CHROMIUM), reason="needs Debian's chromium (.ci/run installs it)"),
]
WAIT = 15_000


class ChromiumScreens(ChannelsLiveServerTestCase):
    """The harness (a live server, the world, Chromium, signed-in pages whose assets must load);
    the tests are in its subclasses."""

    serve_static = False  # the app serves its own static files (WhiteNoise), as in every deployment

    @classmethod
    def tearDownClass(cls):
        # Channels joins its server process without a timeout: a child that outlives SIGTERM
        # (a handler inherited from the test process) would hang the suite. Bounded, then killed.
        process = cls._server_process
        process.terminate()
        process.join(15)
        if process.is_alive():
            process.kill()
            process.join(15)
        super().tearDownClass()

    def setUp(self):
        from playwright.sync_api import sync_playwright

        self.world = in_thread(world_build)
        in_thread(pump_live)  # the world's own events are history, not news
        self.pages = []
        # Started per test and stopped in tearDown: Playwright's sync API holds an event loop in
        # this thread while it runs, and the database flush after each test must not see one.
        self._pw = sync_playwright().start()
        self.browser = browser.launch(self._pw)

    def tearDown(self):
        try:
            for _page, watch in self.pages:
                watch.check()
        finally:
            self.browser.close()
            self._pw.stop()

    def open_as(self, role: str):
        context = self.browser.new_context(viewport=browser.VIEWPORT)
        page = context.new_page()
        watch = AssetWatch(page)
        self.pages.append((page, watch))
        sign_in(page, self.live_server_url, self.world.users[role].username, PASSWORD)
        return page

    def go(self, page, path: str, *, live: bool = False):
        page.goto(self.live_server_url + path)
        if live:
            page.wait_for_selector("#live-status.live", timeout=WAIT)
        return page


class ScreensInChromium(ChromiumScreens):
    """Every role's screens, the console live, the kill switch, a case, a rule, a dropped socket."""

    def test_each_role_signs_in_and_sees_its_home_and_screens(self):
        expected = {
            "trader": (["Console"], ["Alerts", "Rules", "Audit trail"]),
            "risk": (["Console"], ["Alerts", "Rules"]),
            "officer": (["Console", "Alerts", "Rules", "Reports", "Audit trail", "Admin"], []),
            "auditor": (["Console", "Alerts", "Rules", "Reports", "Audit trail"], ["Admin"]),
        }
        for role, (shown, hidden) in expected.items():
            page = self.open_as(role)
            nav = page.inner_text("nav")
            for label in shown:
                self.assertIn(label, nav, role)
            for label in hidden:
                self.assertNotIn(label, nav, role)
            tiles = page.inner_text("#attention")
            if role in ("officer", "auditor"):
                self.assertIn("Open alerts", tiles)
            else:
                # No word of surveillance's alerts (no tipping off); a risk manager's and a trader's
                # only "alert" is the operator alerts' tile (the platform about itself:
                # trading/console/alerts.py).
                operator_tile = "operator alerts of high severity in the last hour"
                self.assertEqual(operator_tile in tiles.lower(), role in ("risk", "trader"))
                self.assertNotIn("alert", tiles.lower().replace(operator_tile, ""))
                self.assertIn("Kill switches engaged", tiles)
            shoot(page, f"home-{role}")
            for link in page.eval_on_selector_all("nav a", "links => links.map(a => a.getAttribute('href'))"):
                self.go(page, link)
                self.assertNotIn("Server Error", page.title())
                shoot(page, f"{role}-{link.strip('/').replace('/', '-') or 'home'}")
        # the admin, through the same sign-in page, styled by its own stylesheet
        page = self.open_as("officer")
        self.go(page, "/admin/")
        self.assertIn("Site administration", page.inner_text("body"))
        color = page.eval_on_selector("#header", "el => getComputedStyle(el).backgroundColor")
        self.assertNotEqual(color, "rgba(0, 0, 0, 0)")  # base.css applied: the admin is styled
        shoot(page, "admin-styled")

    def test_a_position_change_arrives_after_a_fill(self):
        page = self.go(self.open_as("trader"), "/console/", live=True)
        key = f'#accounts tr[data-key="{self.world.accounts[0].pk}:EURUSD"]'
        self.assertEqual(page.inner_text(f'{key} [data-field="net"]'), "1.25")

        def fill_and_push():
            order = order_filled(
                account=self.world.accounts[0],
                instrument=self.world.instrument,
                quantity=D("0.5"),
                price=D("1.10200"),
                arrival_bid=D("1.10196"),
                arrival_ask=D("1.10200"),
            )
            return order, pump_live()

        order, pushed = in_thread(fill_and_push)
        self.assertGreater(pushed, 0)
        page.wait_for_function(
            "sel => document.querySelector(sel).textContent === '1.75'", arg=f'{key} [data-field="net"]', timeout=WAIT
        )
        fills = page.inner_text("#fills-table tbody")
        self.assertIn("1.10200", fills)  # price to the instrument's 5 digits
        self.assertIn("0.50", fills)  # lots to its 0.01 volume step
        self.assertIn("Alpha fund", page.inner_text("#orders-table tbody"))  # the account by name
        shoot(page, "console-after-fill")
        # the live row reads as the server renders it after a reload: the touch beside the mid
        cells = "rows => rows.map(r => [...r.cells].map(c => [c.textContent, c.className]))"
        row = "#fills-table tbody tr:first-child"
        live = page.eval_on_selector_all(row, cells)
        self.assertIn(["1.10196 / 1.10200", "num"], live[0])
        self.assertIn(order.client_order_id, live[0][2][0])
        page.reload()
        self.assertEqual(page.eval_on_selector_all(row, cells), live)

    def test_the_kill_switch_is_engaged_with_a_reason_and_released_by_a_risk_manager(self):
        trader = self.go(self.open_as("trader"), "/console/", live=True)
        risk = self.go(self.open_as("risk"), "/console/", live=True)
        trader.select_option("#kill-scope", "account")
        trader.fill("#kill-value", str(self.world.accounts[0].pk))
        trader.fill("#kill-engage-form textarea[name=reason]", "runaway algorithm on Alpha")
        trader.click("#kill-engage-form button[type=submit]")  # the confirmation is required first
        self.assertEqual(trader.locator("#kill-engaged").count(), 0)
        trader.check("#kill-engage-form input[name=confirm]")
        trader.click("#kill-engage-form button[type=submit]")
        trader.wait_for_selector("#kill-engaged", timeout=WAIT)
        self.assertIn("a risk manager releases", trader.inner_text("#kill-engaged-table"))
        # the engage reloaded the trader's page: its new socket is live before the release is pushed
        trader.wait_for_selector("#live-status.live", timeout=WAIT)
        in_thread(pump_live)
        risk.wait_for_selector("#kill-engaged", timeout=WAIT)  # pushed to the other screen, live
        shoot(risk, "kill-switch-engaged")
        risk.fill("#kill-engaged-table input[name=reason]", "algorithm fixed and checked")
        risk.click("#kill-engaged-table button[type=submit]")
        risk.wait_for_selector("#kill-none", timeout=WAIT)
        risk.wait_for_selector("#live-status.live", timeout=WAIT)  # reloaded by the release, like the trader's
        in_thread(pump_live)
        trader.wait_for_selector("#kill-none", timeout=WAIT)
        # the banner is a fragment of its own, refreshed beside the table: gone too
        trader.wait_for_selector("#kill-engaged", state="detached", timeout=WAIT)
        self.assertEqual(trader.locator("#kill-engaged").count(), 0)

    def test_two_officers_review_escalate_and_close_a_case(self):
        case = f"/compliance/cases/{self.world.case.pk}/"
        olga = self.go(self.open_as("officer"), case, live=True)
        self.assertIn("spoofing", olga.inner_text("body"))
        olga.wait_for_selector("#timeline-chart")
        olga.click("text=Start review")
        olga.wait_for_selector("#case-status.in_review", timeout=WAIT)
        olga.fill(
            "form[action$='/escalate/'] textarea", "Large sell orders two levels away, cancelled after our buy fill."
        )
        olga.click("form[action$='/escalate/'] button")
        olga.wait_for_selector("#case-status.escalated", timeout=WAIT)
        olga.fill(
            "form[action$='/request-close/'] textarea", "Client hedging a known exposure; orders match its mandate."
        )
        olga.click("form[action$='/request-close/'] button")
        olga.wait_for_selector("#four-eyes-note", timeout=WAIT)  # she cannot approve her own request
        shoot(olga, "case-four-eyes-pending")
        oscar = self.go(self.open_as("officer2"), case, live=True)
        oscar.fill("form[action$='/approve/'] textarea", "Agreed: no reasonable suspicion.")
        oscar.click("form[action$='/approve/'] button.primary")
        oscar.wait_for_selector("#case-status.closed", timeout=WAIT)
        steps = oscar.inner_text("#case-steps")
        for step in ("review started", "escalated", "close requested", "close approved"):
            self.assertIn(step, steps)
        shoot(oscar, "case-closed")
        in_thread(pump_live)  # olga's screen hears of it
        olga.wait_for_selector("#case-status.closed", timeout=WAIT)

    def test_a_rule_is_approved_by_a_second_officer_and_refused_to_its_proposer(self):
        path = "/compliance/rules/max-order-value-firm/"
        olga = self.go(self.open_as("officer"), path)
        self.assertIn("You proposed this version", olga.inner_text("#four-eyes-note"))
        # the proposer is offered Withdraw only: an Approve button would lead to a refusal
        self.assertEqual(olga.locator("#decide button").all_inner_texts(), ["Withdraw v2"])
        # forced anyway (a stale page, a crafted post): refused in words, the version still pending
        olga.evaluate(
            """() => { const f = document.querySelector('#decide form');
                 f.action = f.action.replace('/reject/', '/approve/'); }"""
        )
        olga.fill("#decide textarea[name=reason]", "approving my own change")
        olga.click("#decide button")
        self.assertIn("Refused (four eyes)", olga.inner_text(".messages"))
        self.assertIn("a second compliance officer must approve it", olga.inner_text(".messages"))
        self.assertIn("pending approval", olga.inner_text("#rule-versions").lower())
        oscar = self.go(self.open_as("officer2"), path)
        self.assertIn(
            "changed", oscar.eval_on_selector_all("#rule-versions td.changed", "c => c.length ? 'changed' : ''")
        )
        shoot(oscar, "rule-side-by-side")
        oscar.fill("#decide textarea[name=reason]", "halving agreed at the risk committee")
        oscar.click("#decide button.primary")
        self.assertIn("approved: it is in force now", oscar.inner_text(".messages"))
        from compliance.models import ComplianceRule

        statuses = in_thread(lambda: dict(ComplianceRule.objects.values_list("version", "status")))
        self.assertEqual(statuses, {1: "superseded", 2: "active"})

    def test_a_dropped_websocket_reconnects_and_catches_up_without_a_reload(self):
        page = self.go(self.open_as("trader"), "/console/", live=True)
        page.evaluate("window.__sameDocument = true")
        page.evaluate("TradeopsLive.current.drop(4000)")  # the network goes away for 4 s
        page.wait_for_selector("#live-status.down", timeout=WAIT)

        def trade_while_away():
            order = order_filled(
                account=self.world.accounts[1], instrument=self.world.instrument, side="SELL", quantity=D("0.3")
            )
            pump_live()  # pushed while the screen is away: it misses these
            return order.client_order_id

        missed = in_thread(trade_while_away)
        page.wait_for_selector(f'#orders-table tr[data-key="{missed}"]', timeout=WAIT)
        self.assertTrue(page.evaluate("window.__sameDocument === true"))  # no reload
        self.assertGreaterEqual(page.evaluate("TradeopsLive.current.state.caughtUp"), 1)
        self.assertIn("Beta book", page.inner_text(f'#orders-table tr[data-key="{missed}"]'))
        shoot(page, "console-caught-up")

    def test_what_is_pushed_between_the_render_and_the_socket_joining_is_not_missed(self):
        """The page is rendered, then an order fills and is pushed before its socket has joined
        the group (held here by holding live.js back): the first connection catches up from
        when the page was rendered (data-since), so the order appears without a reload."""
        page = self.open_as("trader")
        held = []
        page.route("**/static/js/live*.js", lambda route: held.append(route))
        page.goto(self.live_server_url + "/console/", wait_until="commit")
        page.wait_for_selector("#live-status[data-since]", state="attached", timeout=WAIT)
        deadline = WAIT / 1000
        while not held and deadline > 0:  # live.js asked for, not served: no socket yet
            page.wait_for_timeout(100)
            deadline -= 0.1
        self.assertTrue(held, "the page never asked for live.js")

        def trade_before_the_socket():
            order = order_filled(
                account=self.world.accounts[1], instrument=self.world.instrument, side="SELL", quantity=D("0.2")
            )
            self.assertGreater(pump_live(), 0)  # pushed to the group before the page joined it
            return order.client_order_id

        missed = in_thread(trade_before_the_socket)
        for route in held:
            route.continue_()
        page.wait_for_selector("#live-status.live", timeout=WAIT)
        page.wait_for_selector(f'#orders-table tr[data-key="{missed}"]', timeout=WAIT)
        self.assertEqual(page.evaluate("TradeopsLive.current.state.reconnects"), 0)
        self.assertGreaterEqual(page.evaluate("TradeopsLive.current.state.caughtUp"), 1)
        shoot(page, "console-caught-up-from-render")
