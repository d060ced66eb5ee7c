"""The console in a real browser: Debian's chromium driven by Playwright, on the demo's data.

One demo per module (its own DynamoDB Local, the whole scenario through the HTTP API, as `make run`)
with XSS payloads planted in event data, the console served on it; each test gets a fresh browser
context (no cookies). Screenshots go to .dynafold/test-artifacts/console/ (and, with
DYNAFOLD_README_SCREENSHOTS=1, to docs/console/ for the README).
"""

from __future__ import annotations

import os
import queue
import secrets
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from events.envelope import NewEvent
from processors.cli.context import Context
from processors.local.demo import DemoServing, run_demo

CHROMIUM = os.environ.get("DYNAFOLD_CHROMIUM", "/usr/bin/chromium")
# What works in this sandbox (no GPU, no sandboxing, no network but loopback).
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / ".dynafold" / "test-artifacts" / "console"
README_SHOTS = ROOT / "docs" / "console"
README_PAGES = ("health", "streams-sku", "event-delivery", "views")  # the README shows these

SCRIPT_PAYLOAD = "<script>window.__xss = 'script'</script>"
ATTRIBUTE_SKU = "\"'><img src=x onerror=\"window.__xss='attribute'\">"
JAVASCRIPT_URL = "javascript:window.__xss='url'"


@dataclass
class Demo:
    url: str  # .../console/
    key: str
    serving: DemoServing
    planted_alert: str

    @property
    def origin(self) -> str:
        parts = urllib.parse.urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}"


def plant(serving: DemoServing) -> str:
    """Attacker-controlled event data: a SKU that breaks out of attributes (through the HTTP API,
    as a webhook would bring it), and an alert whose text carries a script and a javascript: URL."""
    status, body = serving.api.admin("PUT", f"/inventory/{urllib.parse.quote(ATTRIBUTE_SKU, safe='')}/count",
                                     {"physical": 2})
    assert status == 200, body
    alert_id = "xss-" + secrets.token_hex(4)
    serving.stack.store.append(f"alert:{alert_id}", [NewEvent("dynafold.alerts.raised.v1", {
        "alert_id": alert_id, "alert_type": "stock_low", "severity": "critical", "subject": JAVASCRIPT_URL,
        "sku": ATTRIBUTE_SKU, "message": SCRIPT_PAYLOAD})])
    serving.stack.drain()
    return alert_id


@pytest.fixture(scope="module")
def demo() -> Iterator[Demo]:
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} is missing: `make browser` installs Debian's chromium")
    ready: queue.Queue[Any] = queue.Queue()
    stop = threading.Event()
    key = secrets.token_urlsafe(24)

    def serve(serving: DemoServing) -> None:
        try:
            ready.put(Demo(serving.console_url, key, serving, plant(serving)))
        except BaseException as error:  # noqa: BLE001 - handed to the test thread, which raises it
            ready.put(error)
            return
        stop.wait()

    def main() -> None:
        try:
            run_demo(Context(None, "dynafold-", True), None, serve, admin_api_key=key)
        except BaseException as error:  # noqa: BLE001 - handed to the test thread, which raises it
            ready.put(error)

    thread = threading.Thread(target=main, name="demo", daemon=True)
    thread.start()
    found = ready.get(timeout=240)
    if isinstance(found, BaseException):
        raise found
    yield found
    stop.set()
    thread.join(timeout=60)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # Playwright gives every launch a fresh, temporary --user-data-dir of its own.
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any, demo: Demo) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(10_000)
    tab.violations = []  # CSP violations and console errors the page reported
    tab.on("console", lambda message: message.type == "error" and tab.violations.append(message.text))
    tab.on("pageerror", lambda error: tab.violations.append(str(error)))
    tab.add_init_script("document.addEventListener('securitypolicyviolation', e => "
                        "console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI))")
    yield tab
    context.close()


def screenshot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    target = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(target), full_page=True)
    if os.environ.get("DYNAFOLD_README_SCREENSHOTS") == "1" and name in README_PAGES:
        README_SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(README_SHOTS / f"{name}.png"), full_page=False)
    assert target.stat().st_size > 0


def axe_source() -> str:
    from processors.operations.npm_assets import AXE_CORE, cached_package

    return (cached_package(AXE_CORE) / "axe.min.js").read_text()
