"""The console in a real browser: Debian's chromium driven by Playwright, on the demo's data.

One demo per session (the whole scenario through the HTTP API, as `make run`, on the session's
DynamoDB Local under its own table prefix) with data planted for what the demo does not show: XSS
payloads in event data, a webhook target disabled after 410 Gone, a SKU Shopify lists but nobody
counted. The console is served on it; each test gets a fresh browser context, signed in by a
cookie unless it tests signing in. Screenshots go to .dynafold/test-artifacts/console/ (and, with
DYNAFOLD_README_SCREENSHOTS=1, to docs/console/ for the README).
"""

from __future__ import annotations

import functools
import http.cookiejar
import os
import queue
import secrets
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from events.envelope import NewEvent
from processors.cli.context import Context
from processors.local.demo import DemoServing, run_demo
from processors.local.demo_scenario import SHOPIFY_LOCATION
from processors.local.engine import LocalEngine

CHROMIUM = os.environ.get("DYNAFOLD_CHROMIUM", "/usr/bin/chromium")
# What works in this sandbox (no GPU, no sandboxing, no network but loopback).
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / ".dynafold" / "test-artifacts" / "console"
README_SHOTS = ROOT / "docs" / "console"
README_PAGES = ("health", "delivery", "sku", "event-delivery")  # the README shows these

SCRIPT_PAYLOAD = "<script>window.__xss = 'script'</script>"
ATTRIBUTE_SKU = "\"'><img src=x onerror=\"window.__xss='attribute'\">"
JAVASCRIPT_URL = "javascript:window.__xss='url'"
UNCOUNTED_SKU, UNCOUNTED_ITEM = "PROD-900", "77001"
DEAD_DELIVERY = "user123:msg-0002"  # the demo's delivery to a target that stays down


@dataclass
class Demo:
    url: str  # .../console/
    key: str
    serving: DemoServing
    planted_alert: str
    cookie: dict[str, Any]  # a signed-in session, for contexts that do not test signing in

    @property
    def origin(self) -> str:
        parts = urllib.parse.urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}"


def plant(serving: DemoServing) -> str:
    """Attacker-controlled event data: a SKU that breaks out of attributes (through the HTTP API,
    as a webhook would bring it), and an alert whose text carries a script and a javascript: URL.
    And what the demo's story does not reach: its dead delivery's target disabled (a 410 Gone, as
    the reactor records it), and a SKU Shopify lists (mapped, a level reported) that nobody counted."""
    api, store = serving.api, serving.stack.store
    status, body = api.admin("PUT", f"/inventory/{urllib.parse.quote(ATTRIBUTE_SKU, safe='')}/count", {"physical": 2})
    assert status == 200, body
    alert_id = "xss-" + secrets.token_hex(4)
    store.append(f"alert:{alert_id}", [NewEvent("dynafold.alerts.raised.v1", {
        "alert_id": alert_id, "alert_type": "stock_low", "severity": "critical", "subject": JAVASCRIPT_URL,
        "sku": ATTRIBUTE_SKU, "message": SCRIPT_PAYLOAD})])
    [target] = {e.data.target_url for e in store.read_stream(f"delivery:{DEAD_DELIVERY}")[:1]}
    from events.delivery_policy import target_stream

    store.append(target_stream(target), [NewEvent("dynafold.delivery.target_disabled.v1", {
        "target_url": target, "reason": "410 Gone", "status_code": 410, "cause_stream": f"delivery:{DEAD_DELIVERY}"})])
    status, body = api.admin("PUT", f"/shopify/items/{UNCOUNTED_ITEM}", {"sku": UNCOUNTED_SKU})
    assert status == 200, body
    status, body = api.shopify("inventory_levels/update", {
        "inventory_item_id": int(UNCOUNTED_ITEM), "location_id": int(SHOPIFY_LOCATION), "available": 7,
        "updated_at": "2026-01-02T10:00:00-05:00"}, webhook_id=secrets.token_hex(8))
    assert status == 200, body
    serving.stack.drain()
    return alert_id


def session_cookie(url: str, key: str) -> dict[str, Any]:
    """Sign in over HTTP once; the cookie it sets, as Playwright takes it."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    opener.open(url + "login", urllib.parse.urlencode({"api_key": key}).encode()).read()
    [cookie] = list(jar)
    return {"name": cookie.name, "value": cookie.value, "domain": urllib.parse.urlsplit(url).hostname,
            "path": cookie.path, "httpOnly": True, "sameSite": "Strict"}


@pytest.fixture(scope="session")
def demo(dynamodb_local: LocalEngine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} is missing: `make browser` installs Debian's chromium")
    ready: queue.Queue[Any] = queue.Queue()
    stop = threading.Event()
    key = secrets.token_urlsafe(24)
    prefix = f"console{secrets.token_hex(3)}-"  # its own tables on the session's engine

    def serve(serving: DemoServing) -> None:
        try:
            alert = plant(serving)
            ready.put(Demo(serving.console_url, key, serving, alert, session_cookie(serving.console_url, key)))
        except BaseException as error:  # noqa: BLE001 - handed to the test thread, which raises it
            ready.put(error)
            return
        stop.wait()

    def main() -> None:
        try:
            # Its own state folder: the Health page's metrics and positions are this run's alone.
            run_demo(Context(dynamodb_local.endpoint_url, prefix, True, state_dir=tmp_path_factory.mktemp("demo"),
                             state_dir_given=True), serve=serve, admin_api_key=key)
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


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # Playwright gives every launch a fresh, temporary --user-data-dir of its own.
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield chromium
        chromium.close()


def new_tab(browser: Any, demo: Demo, signed_in: bool) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    if signed_in:
        context.add_cookies([demo.cookie])
    tab = context.new_page()
    tab.set_default_timeout(10_000)
    tab.violations = []  # CSP violations and console errors the page reported
    tab.on("console", lambda message: message.type == "error" and tab.violations.append(message.text))
    tab.on("pageerror", lambda error: tab.violations.append(str(error)))
    tab.add_init_script("document.addEventListener('securitypolicyviolation', e => "
                        "console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI))")
    yield tab
    context.close()


@pytest.fixture
def page(browser: Any, demo: Demo) -> Iterator[Any]:
    """A tab in a fresh context, signed in."""
    yield from new_tab(browser, demo, signed_in=True)


@pytest.fixture
def anonymous(browser: Any, demo: Demo) -> Iterator[Any]:
    """A tab in a fresh context with no cookie."""
    yield from new_tab(browser, demo, signed_in=False)


def screenshot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    target = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(target), full_page=True)
    if os.environ.get("DYNAFOLD_README_SCREENSHOTS") == "1" and name in README_PAGES:
        README_SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(README_SHOTS / f"{name}.png"), full_page=False)
    assert target.stat().st_size > 0


@functools.cache
def axe_source() -> str:
    from processors.operations.npm_assets import AXE_CORE, cached_package

    return (cached_package(AXE_CORE) / "axe.min.js").read_text()
