"""The console's templates escape everything an event can carry, and links stay on the console."""

from __future__ import annotations

from processors.console.context import NAV
from processors.console.render import event_href, href, render

PAYLOADS = ("<script>alert(1)</script>", "\"'><img src=x onerror=alert(1)>", "javascript:alert(1)")


def test_payloads_render_as_text_in_a_page() -> None:
    for payload in PAYLOADS:
        page = render("error.html", status=400, title=payload, reason=payload, nav=NAV, section="",
                      signed_in=True, csrf=payload, next="/console/health", error=payload)
        assert "<script>alert" not in page and "<img" not in page
        assert "&lt;" in page or "&#34;" in page or payload.startswith("javascript")


def test_links_quote_every_segment_and_never_leave_the_console() -> None:
    assert href("streams", "sku", "a/b?c") == "/console/streams/sku/a%2Fb%3Fc"
    assert event_href("sku:javascript:alert(1)", 3) == "/console/streams/sku/javascript%3Aalert%281%29/3"
    assert href("search", type=None, correlation="x y") == "/console/search?correlation=x+y"
