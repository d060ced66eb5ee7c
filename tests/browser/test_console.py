"""The console in Debian's chromium on the demo's data: every page and action, keyboard use,
accessible names (axe-core in the page), the Content-Security-Policy, inert XSS payloads, and
sign-in and CSRF refusals. Bounded: one demo, one browser, a page each."""

from __future__ import annotations

import re
import urllib.parse
from typing import Any

import pytest

from tests.browser.conftest import ATTRIBUTE_SKU, Demo, axe_source, screenshot

pytestmark = [pytest.mark.integration, pytest.mark.browser]


def sign_in(page: Any, demo: Demo, key: str | None = None) -> Any:
    page.goto(demo.url + "health")
    assert page.url.startswith(demo.origin + "/console/login")  # never public: sent to sign in
    page.get_by_label("Admin API key").fill(key or demo.key)
    with page.expect_response(lambda r: r.url.endswith("/console/login")) as answer:
        page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
    return answer.value


def check_page(page: Any, name: str) -> None:
    """No CSP violation or script error, axe finds nothing, the page is saved as a screenshot."""
    page.wait_for_load_state("load")
    page.evaluate(axe_source())  # through the DevTools protocol: the page's CSP stays as it is
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    problems = [(v["id"], v["help"], [n["target"] for n in v["nodes"]][:3]) for v in result["violations"]]
    assert problems == [], f"{name}: {problems}"
    assert page.violations == [], f"{name}: {page.violations}"
    assert page.evaluate("window.__xss") is None, f"{name}: a planted payload ran"
    screenshot(page, name)


def test_every_page_reads_and_renders_clean(page: Any, demo: Demo) -> None:
    assert sign_in(page, demo).status == 303
    assert page.url == demo.url + "health"
    assert page.locator("#alerts-chart canvas").count() == 1  # uPlot, served by the console, drew it
    check_page(page, "health")

    page.get_by_role("link", name="Streams", exact=True).click()
    check_page(page, "streams")
    page.get_by_role("link", name="sku", exact=True).click()
    assert page.get_by_role("link", name="sku:PROD-001").count() == 1
    check_page(page, "streams-sku")
    page.get_by_role("link", name="sku:PROD-001").click()
    check_page(page, "stream")
    page.get_by_role("link", name=re.compile(r"^sku:PROD-001 version 1$")).click()
    assert page.get_by_text("Verified: versions 1 to 1").count() == 1
    check_page(page, "event")

    page.goto(demo.url + "streams/delivery")
    page.locator("table a").first.click()
    page.locator("table a").first.click()  # newest event of the delivery: its correlation graph
    assert page.locator(".graph svg a").count() >= 2
    check_page(page, "event-delivery")

    page.locator("dd a[href*='correlation=']").click()  # the envelope's correlation id: every event of the request
    assert page.locator("table tbody tr").count() >= 2
    check_page(page, "search-correlation")
    page.goto(demo.url + "search?type=dynafold.alerts.raised.v1")
    check_page(page, "search-type")

    page.get_by_role("link", name="Views", exact=True).click()
    assert page.locator("table tbody tr").count() == 4  # every view in the registry
    check_page(page, "views")
    page.get_by_role("link", name="Category").click()
    assert "sort=category" in page.url
    page.get_by_role("link", name="pending-errors").click()
    check_page(page, "view-rows")
    page.goto(demo.url + "views/alerts")
    page.locator("table tbody tr a").first.click()
    assert page.get_by_role("heading", name="Provenance").count() == 1
    page.locator("table a[aria-label*='version 1']").first.click()
    assert "/console/streams/alert/" in page.url
    check_page(page, "row")


def test_unknown_ids_are_404_pages_and_bad_parameters_400(page: Any, demo: Demo) -> None:
    sign_in(page, demo)
    for path, status in (("streams/nope", 404), ("streams/sku/NO-SUCH-SKU", 404), ("streams/sku/PROD-001/999", 404),
                         ("views/nope", 404), ("nowhere", 404), ("streams/sku/PROD-001/x", 400),
                         ("search?type=not.a.type", 400), ("streams/sku?next=forged", 400),
                         ("views/alerts?sort=nope", 400)):
        answer = page.goto(demo.url + path)
        assert answer.status == status, path
        assert page.get_by_role("alert").count() == 1
    # Chrome reports each 4xx document above as a failed load: those are the statuses under test.
    page.violations[:] = [v for v in page.violations if not v.startswith("Failed to load resource")]
    check_page(page, "not-found")


def test_keyboard_reaches_everything_in_order(page: Any, demo: Demo) -> None:
    sign_in(page, demo)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    page.goto(demo.url + "health")
    names = []
    for _ in range(6):
        page.keyboard.press("Tab")
        names.append(page.evaluate("document.activeElement.textContent.trim()"))
    assert names[:5] == ["Skip to content", "dynafold console", "Health", "Streams", "Views"]
    page.keyboard.press("Tab")  # past Sign out, into the alerts
    page.goto(demo.url + "health")
    for _ in range(4):
        page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # on "Streams"
    page.wait_for_url(demo.url + "streams")


def test_planted_payloads_render_as_text(page: Any, demo: Demo) -> None:
    sign_in(page, demo)
    for path in ("health", f"streams/alert/{demo.planted_alert}", f"streams/alert/{demo.planted_alert}/1",
                 "streams/sku", f"streams/sku/{urllib.parse.quote(ATTRIBUTE_SKU, safe='')}", "views/alerts",
                 "views/inventory"):
        page.goto(demo.url + path)
        assert page.evaluate("window.__xss") is None, path
        assert page.locator("img").count() == 0, path  # the SKU's <img onerror> stayed text
        assert page.locator("body script:not([src]):not([type='application/json'])").count() == 0, path
        hrefs = page.eval_on_selector_all("a[href]", "links => links.map(a => new URL(a.getAttribute('href'), document.baseURI).href)")
        assert all(h.startswith(demo.origin + "/") for h in hrefs), (path, [h for h in hrefs if "javascript" in h])
        assert page.violations == [], (path, page.violations)
    page.goto(demo.url + f"streams/alert/{demo.planted_alert}/1")
    assert "<script>window.__xss" in page.locator("pre.data").inner_text()  # shown, as text
    check_page(page, "event-xss")


def test_a_wrong_key_is_401_and_sets_no_session(page: Any, demo: Demo) -> None:
    answer = sign_in(page, demo, key="not-the-key")
    assert answer.status == 401
    assert page.get_by_role("alert").inner_text() == "that is not the admin API key"
    assert page.context.cookies() == []
    assert page.goto(demo.url + "health").url.startswith(demo.origin + "/console/login")


def test_marking_an_alert_read_appends_and_needs_the_csrf_token(page: Any, demo: Demo) -> None:
    sign_in(page, demo)
    [cookie] = page.context.cookies()
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/console"
    button = page.get_by_role("button", name=re.compile("^Mark read: stock_low on javascript:"))
    form = button.locator("xpath=ancestor::form")
    form.locator("input[name=csrf]").evaluate("input => input.remove()")
    with page.expect_response(lambda r: "/read" in r.url) as refused:
        button.click()
    assert refused.value.status == 403
    page.goto(demo.url + "health")
    form = page.get_by_role("button", name=re.compile("^Mark read: stock_low on javascript:")).locator("xpath=ancestor::form")
    form.locator("input[name=csrf]").evaluate("input => input.value = 'forged'")
    with page.expect_response(lambda r: "/read" in r.url) as forged:
        form.get_by_role("button").click()
    assert forged.value.status == 403
    assert len(demo.serving.stack.store.read_stream(f"alert:{demo.planted_alert}")) == 1  # nothing appended

    page.goto(demo.url + "health")
    with page.expect_response(lambda r: "/read" in r.url) as marked:
        page.get_by_role("button", name=re.compile("^Mark read: stock_low on javascript:")).click()
    assert marked.value.status == 303
    events = demo.serving.stack.store.read_stream(f"alert:{demo.planted_alert}")
    assert [e.type for e in events] == ["dynafold.alerts.raised.v1", "dynafold.alerts.read.v1"]
    assert events[-1].source == "urn:dynafold:console"
    demo.serving.stack.drain()
    page.goto(demo.url + "health")
    assert page.get_by_role("button", name=re.compile("^Mark read: stock_low on javascript:")).count() == 0

    page.get_by_role("button", name="Sign out").click()
    assert page.url.startswith(demo.origin + "/console/login")
    assert page.goto(demo.url + "health").url.startswith(demo.origin + "/console/login")
