"""The console in Debian's chromium on the demo's data: every page and action, every support question
answered by clicking from Health, keyboard use, accessible names (axe-core in the page), the
Content-Security-Policy, inert XSS payloads, and sign-in and CSRF refusals. Bounded: one demo, one
browser, each page checked once."""

from __future__ import annotations

import re
import urllib.parse
from typing import Any

import pytest

from tests.browser.conftest import (
    ATTRIBUTE_SKU,
    DEAD_DELIVERY,
    UNCOUNTED_ITEM,
    UNCOUNTED_SKU,
    Demo,
    axe_source,
    screenshot,
)

pytestmark = [pytest.mark.integration, pytest.mark.browser]


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


def ask(page: Any, box: str, value: str, button: str) -> None:
    """One of Health's look-up boxes: fill it, press its button."""
    page.get_by_label(box, exact=True).fill(value)
    page.get_by_role("button", name=button, exact=True).click()
    page.wait_for_load_state()


def expected_failures(page: Any, *statuses: int) -> None:
    """Chrome reports a 4xx document as a failed load: drop those the test asked for."""
    page.violations[:] = [v for v in page.violations
                          if not any(v.startswith(f"Failed to load resource: the server responded with a status of "
                                                  f"{status} ") for status in statuses)]


def post(page: Any, button: Any) -> Any:
    """Click a form's button; the POST's answer (a redirect when the action was taken)."""
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        button.click()
    page.wait_for_load_state()
    return answer.value


def test_every_operating_question_is_answered_by_clicking_from_health(page: Any, demo: Demo) -> None:
    """Issue 19 §A's questions: status, order, delivery, SKU, trace, alerts: each from the Health page."""
    page.goto(demo.url)
    assert page.url == demo.url + "health"
    # Is everything caught up and healthy? The readers' lag over the hour, drawn by uPlot.
    assert page.locator("#lag-chart canvas").count() == 1
    assert page.get_by_text(re.compile(r"^projector: ")).count() == 1
    assert page.get_by_role("heading", name=re.compile("^Alarms in ALARM")).count() == 1
    check_page(page, "health")

    # Why wasn't order SO-000019 sent? Its errors and the notification.
    ask(page, "Order number or id", "SO-000019", "Explain order")
    assert page.url == demo.url + "orders/SO-000019"
    assert page.get_by_role("heading", name="Notification").count() == 1
    assert page.get_by_text(re.compile("discount_on_tuk_item")).count() >= 1
    check_page(page, "order")

    # Did this webhook get delivered? Next retry, retries left, when it gives up: from the dead letters.
    page.goto(demo.url + "health")
    page.get_by_role("link", name=DEAD_DELIVERY, exact=True).click()
    assert page.url == demo.url + "deliveries/" + urllib.parse.quote(DEAD_DELIVERY, safe="")
    for said in ("Next retry: none", "Retries left: none.", "Gives up: it already gave up"):
        assert page.get_by_text(said, exact=False).count() >= 1, said
    assert page.locator("svg.timeline .failed").count() >= 2  # the attempts on the time line
    check_page(page, "delivery")

    # Why does Shopify show 3 when we have 5? From an alert's subject: the SKU, its levels over time.
    page.goto(demo.url + "health")
    page.get_by_role("link", name="sku:PROD-003", exact=True).first.click()
    assert page.url == demo.url + "skus/PROD-003"
    assert page.locator("#stock-chart canvas").count() == 1
    assert page.get_by_role("heading", name="Drift").count() == 1
    assert page.locator("table tbody tr").filter(has_text="applied").count() >= 1  # the pushes and outcomes
    check_page(page, "sku")

    # What did this event cause, and what caused it? A level's event id, traced: the drift it led to.
    [drift] = [e for e in demo.serving.stack.store.read_stream("sku:PROD-003")
               if e.type == "dynafold.inventory.shopify_level.v1" and e.data.available == 30]  # the merchant's 30
    page.goto(demo.url + "health")
    ask(page, "Event or correlation id", drift.id, "Trace")
    assert page.url == demo.url + "streams/sku/PROD-003/" + str(drift.version)
    caused = page.locator("table").filter(has=page.locator("caption", has_text="What it caused"))
    assert caused.locator("tbody tr").filter(has_text="shopify_push").count() >= 1
    assert page.locator(".graph svg a").count() >= 2
    check_page(page, "event")

    # Alerts: every one, filtered (marking them read is the actions' test).
    page.goto(demo.url + "health")
    page.get_by_role("link", name="All alerts, and mark read by filter").click()
    page.get_by_label("Severity").select_option("warning")
    page.get_by_role("button", name="Filter").click()
    assert page.url.startswith(demo.url + "alerts?") and "severity=warning" in page.url
    assert page.get_by_role("button", name=re.compile("^Mark the [0-9]+ unread matching")).count() == 1
    check_page(page, "alerts")


def test_streams_search_event_and_views(page: Any, demo: Demo) -> None:
    page.goto(demo.url + "health")
    page.get_by_role("link", name="Streams", exact=True).click()
    check_page(page, "streams")
    page.get_by_role("link", name="sku", exact=True).click()
    assert page.get_by_role("link", name="sku:PROD-001").count() == 1
    check_page(page, "streams-sku")
    page.get_by_role("link", name="sku:PROD-001").click()
    check_page(page, "stream")
    page.get_by_role("link", name=re.compile(r"^sku:PROD-001 version 1$")).click()
    assert page.get_by_text("Verified: versions 1 to 1").count() == 1

    page.goto(demo.url + "streams/delivery")
    page.get_by_role("link", name="delivery:" + DEAD_DELIVERY).click()
    page.locator("table a").first.click()  # the delivery's newest event: its trace back to the message
    causes = page.locator("table").filter(has=page.locator("caption", has_text="What caused it"))
    assert causes.locator("tbody tr").filter(has_text="message_received").count() == 1
    check_page(page, "event-delivery")
    page.locator("dd a[href*='correlation=']").click()  # every event of the request
    assert page.locator("table tbody tr").count() >= 2
    check_page(page, "search-correlation")

    page.goto(demo.url + "streams")
    page.get_by_label("Order number or id").fill("SO-000020")
    page.get_by_role("button", name="Search").click()
    assert page.get_by_role("link", name=re.compile("^order:")).count() >= 1
    assert page.get_by_role("link", name="Explain this order").count() == 1
    check_page(page, "search-order")
    page.goto(demo.url + "search?" + urllib.parse.urlencode({"sku": "PROD-002"}))
    assert page.locator("table tbody tr").count() >= 3
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


def test_each_action_appends_events_and_needs_the_csrf_token(page: Any, demo: Demo) -> None:
    store, drain = demo.serving.stack.store, demo.serving.stack.drain
    [cookie] = page.context.cookies()
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"

    # Mark one alert read: a missing or a forged token is a 403 and appends nothing.
    page.goto(demo.url + "health")
    button = page.get_by_role("button", name=re.compile("^Mark read: stock_low on javascript:"))
    button.locator("xpath=ancestor::form").locator("input[name=csrf]").evaluate("input => input.remove()")
    assert post(page, button).status == 403
    page.goto(demo.url + "health")
    button = page.get_by_role("button", name=re.compile("^Mark read: stock_low on javascript:"))
    button.locator("xpath=ancestor::form").locator("input[name=csrf]").evaluate("input => input.value = 'forged'")
    assert post(page, button).status == 403
    assert len(store.read_stream(f"alert:{demo.planted_alert}")) == 1  # nothing appended
    expected_failures(page, 403)
    page.goto(demo.url + "health")
    assert post(page, page.get_by_role("button", name=re.compile("^Mark read: stock_low on javascript:"))).status == 303
    events = store.read_stream(f"alert:{demo.planted_alert}")
    assert [e.type for e in events] == ["dynafold.alerts.raised.v1", "dynafold.alerts.read.v1"]
    assert events[-1].source == "urn:dynafold:console"

    # Mark read by filter: every unread warning.
    page.goto(demo.url + "alerts?severity=warning")
    assert post(page, page.get_by_role("button", name=re.compile("^Mark the [1-9][0-9]* unread matching"))).status == 303
    assert page.get_by_text(re.compile(r"^Marked [1-9][0-9]* alert\(s\) read")).count() == 1
    drain()
    assert demo.serving.stack.root.queries.alerts.find(unread=True, severity="warning") == []
    check_page(page, "alerts-marked")

    # Enable the disabled target, then redrive the dead letter.
    page.goto(demo.url + "deliveries/" + DEAD_DELIVERY)
    assert page.get_by_role("button", name="Redrive").count() == 0  # its target is disabled
    assert post(page, page.get_by_role("button", name="Enable the target")).status == 303
    assert page.get_by_text("The target is enabled again.").count() == 1
    assert post(page, page.get_by_role("button", name="Redrive")).status == 303
    assert page.get_by_text("Redrive requested").count() == 1
    delivery = store.read_stream(f"delivery:{DEAD_DELIVERY}")
    assert delivery[-1].type == "dynafold.delivery.redrive_requested.v1" and delivery[-1].source == "urn:dynafold:console"
    check_page(page, "delivery-redriven")

    # Adopt Shopify's level as the first count of a SKU nobody counted.
    page.goto(demo.url + "skus/" + UNCOUNTED_SKU)
    assert page.get_by_text("uncounted", exact=False).count() >= 1
    assert post(page, page.get_by_role("button", name="Adopt as the first count")).status == 303
    adopted = store.read_stream(f"sku:{UNCOUNTED_SKU}")[-1]
    assert adopted.type == "dynafold.inventory.shopify_count_adopted.v1"
    assert (adopted.data.physical, adopted.data.from_item, adopted.source) == (7, UNCOUNTED_ITEM, "urn:dynafold:console")
    drain()
    page.goto(demo.url + "skus/" + UNCOUNTED_SKU)
    assert page.get_by_role("button", name="Adopt as the first count").count() == 0

    page.get_by_role("button", name="Sign out").click()
    assert page.url.startswith(demo.origin + "/console/login")
    assert page.goto(demo.url + "health").url.startswith(demo.origin + "/console/login")


def test_unknown_ids_are_404_pages_and_bad_parameters_400(page: Any, demo: Demo) -> None:
    for path, status in (("streams/nope", 404), ("streams/sku/NO-SUCH-SKU", 404), ("streams/sku/PROD-001/999", 404),
                         ("views/nope", 404), ("nowhere", 404), ("orders/SO-999999", 404), ("skus/NOPE", 404),
                         ("deliveries/nobody:nothing", 404), ("events/no-such-event", 404), ("trace/nope", 404),
                         ("streams/sku/PROD-001/x", 400), ("search?type=not.a.type", 400),
                         ("streams/sku?next=forged", 400), ("views/alerts?sort=nope", 400),
                         ("alerts?severity=loud", 400), ("find?order=&sku=", 400)):
        answer = page.goto(demo.url + path)
        assert answer.status == status, path
        assert page.get_by_role("alert").count() == 1
    expected_failures(page, 400, 404)
    check_page(page, "not-found")


def test_keyboard_reaches_everything_in_order(page: Any, demo: Demo) -> None:
    page.goto(demo.url + "health")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    page.goto(demo.url + "health")
    names = []
    for _ in range(5):
        page.keyboard.press("Tab")
        names.append(page.evaluate("document.activeElement.textContent.trim()"))
    assert names == ["Skip to content", "dynafold console", "Health", "Streams", "Views"]
    page.keyboard.press("Tab")  # Sign out
    page.keyboard.press("Tab")  # the first look-up box
    assert page.evaluate("document.activeElement.id") == "f-order"
    page.keyboard.type("SO-000019")
    page.keyboard.press("Enter")
    page.wait_for_url(demo.url + "orders/SO-000019")


def test_planted_payloads_render_as_text(page: Any, demo: Demo) -> None:
    quoted = urllib.parse.quote(ATTRIBUTE_SKU, safe="")
    for path in ("health", "alerts?show=all", f"streams/alert/{demo.planted_alert}",
                 f"streams/alert/{demo.planted_alert}/1", "streams/sku", f"streams/sku/{quoted}", f"skus/{quoted}",
                 f"search?sku={quoted}", "views/alerts", "views/inventory"):
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


def test_a_wrong_key_is_401_and_sets_no_session(anonymous: Any, demo: Demo) -> None:
    page = anonymous
    page.goto(demo.url + "health")
    assert page.url.startswith(demo.origin + "/console/login")  # never public: sent to sign in
    page.get_by_label("Admin API key").fill("not-the-key")
    with page.expect_response(lambda r: r.url.endswith("/console/login")) as answer:
        page.get_by_role("button", name="Sign in").click()
    assert answer.value.status == 401
    assert page.get_by_role("alert").inner_text() == "that is not the admin API key"
    assert page.context.cookies() == []
    expected_failures(page, 401)
    page.get_by_label("Admin API key").fill(demo.key)
    with page.expect_response(lambda r: r.url.endswith("/console/login")) as answer:
        page.get_by_role("button", name="Sign in").click()
    assert answer.value.status == 303
    assert page.url == demo.url + "health"
    check_page(page, "signed-in")
