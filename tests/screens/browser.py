"""Headless Chromium from Debian's packages, driven by Playwright for Python (never a browser a
test tool downloads), and the checks every browser test makes: no stylesheet or script answers
an error, and screenshots kept as artifacts (``TRADEOPS_SCREENSHOT_DIR``, default var/screenshots)."""

from __future__ import annotations

import os
import re
import shutil
import threading
from pathlib import Path

from django.conf import settings

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1440, "height": 900}


def screenshot_dir() -> Path:
    path = Path(os.environ.get("TRADEOPS_SCREENSHOT_DIR") or Path(settings.BASE_DIR) / "var" / "screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


def launch(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)


class AssetWatch:
    """Every stylesheet, script and font the page asked for, and the ones that failed."""

    def __init__(self, page):
        self.failed: list[str] = []
        self.loaded: list[str] = []
        page.on("response", self._response)
        page.on("requestfailed", lambda request: self._failed(request.url, request.resource_type, "failed"))

    def _response(self, response):
        kind = response.request.resource_type
        if kind in ("stylesheet", "script", "font", "image"):
            (self.failed if response.status >= 400 else self.loaded).append(f"{response.status} {response.url}")

    def _failed(self, url, kind, why):
        if kind in ("stylesheet", "script", "font"):
            self.failed.append(f"{why} {url}")

    def check(self):
        assert not self.failed, f"assets that did not load: {self.failed}"


def sign_in(page, base: str, username: str, password: str) -> None:
    """Through the sign-in page, as a person does."""
    page.goto(base + "/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/$"))


def shoot(page, name: str) -> Path:
    path = screenshot_dir() / f"{name}.png"
    # a full-page capture on a loaded 2-core host took over Playwright's default 30 s once
    page.screenshot(path=str(path), full_page=True, timeout=120_000)
    return path


def in_thread(fn):
    """Run ``fn`` in another thread and return its result: Playwright's sync API owns this
    thread's event loop, and the Channels layer's ``async_to_sync`` needs one of its own."""
    box: dict = {}

    def run():
        try:
            box["value"] = fn()
        except BaseException as exc:  # re-raised below, in the test's thread
            box["error"] = exc
        finally:
            from django.db import connection

            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(60)
    if "error" in box:
        raise box["error"]
    return box.get("value")
