"""Running a report in real headless Chromium: a compliance officer picks the kind (its default
period follows), types the period, runs it and lands on the new run, pending; the ``reports``
worker (this test, as the queue's consumer) generates and validates it, and the page follows
the status without a reload until it shows the run whole, waiting for a second officer."""

from __future__ import annotations

import os
from unittest import mock

import pytest
from django.conf import settings

from tests.screens import browser
from tests.screens.browser import in_thread, shoot
from tests.screens.test_browser import WAIT, ChromiumScreens

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not settings.REDIS_URL, reason="needs Redis (REDIS_URL): the server process and the test share a layer"
    ),
    pytest.mark.skipif(not os.path.exists(browser.CHROMIUM), reason="needs Debian's chromium (.ci/run installs it)"),
]


class ReportRunInChromium(ChromiumScreens):
    @classmethod
    def setUpClass(cls):
        # The server process is forked from this one: the queue it sends the run to is held here
        # (nothing leaves for the shared Redis broker), and this test plays the reports worker.
        import multiprocessing

        from compliance.reports.tasks import report_run_execute_queued

        assert multiprocessing.get_start_method() == "fork", "the server must inherit the patched queue"

        cls._queue = mock.patch.object(report_run_execute_queued, "delay")
        cls._queue.start()
        try:
            super().setUpClass()
        except BaseException:
            cls._queue.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls._queue.stop()

    def test_an_officer_runs_a_report_and_follows_it_to_validated(self):
        from compliance.reports.models import ReportRun, RunStatus
        from compliance.reports.tasks import report_run_execute_queued

        page = self.go(self.open_as("officer"), "/compliance/reports/")
        form = page.locator("#run-form")
        self.assertEqual(form.locator("select[name=kind]").input_value(), "transaction")
        page.select_option("#run-kind", "alerts_summary")
        week = page.eval_on_selector("#run-from", "el => el.value")
        self.assertNotEqual(week, "")  # the kind's default period (the week before) followed it
        page.fill("#run-from", "2026-01-05")
        page.fill("#run-to", "2026-01-11")
        shoot(page, "report-run-form")
        page.click("#run-form button[type=submit]")
        page.wait_for_url("**/compliance/reports/ALS-20260105-20260111-0001/", timeout=WAIT)
        self.assertIn("ALS-20260105-20260111-0001 opened", page.inner_text(".messages"))
        self.assertEqual(page.inner_text("#run-status"), "Pending")
        run = in_thread(lambda: ReportRun.objects.get(reference="ALS-20260105-20260111-0001"))
        self.assertEqual((run.status, run.generated_by_label), (RunStatus.PENDING, "user:olga"))
        shoot(page, "report-run-pending")

        self.assertEqual(in_thread(lambda: report_run_execute_queued(run.pk)), RunStatus.VALIDATED)
        page.wait_for_function(
            "() => document.getElementById('run-status').textContent === 'Validated'"
            " && !document.getElementById('run-progress')",
            timeout=WAIT,
        )
        self.assertIn("a second compliance officer must approve it", page.inner_text("main"))
        self.assertIn("JSON", page.inner_text("main"))  # the file, to download
        shoot(page, "report-run-validated")
