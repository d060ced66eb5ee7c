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


def test_precompiled_templates_render_what_the_sources_render(tmp_path, monkeypatch) -> None:
    """The build compiles the templates to modules (make build-ConsoleFunction); loaded from there a
    page is the same page, and modules another Jinja2 compiled are not used."""
    import jinja2

    from processors.console import render as rendering

    assert len(rendering.precompile(tmp_path)) == len(list(rendering.TEMPLATES.glob("*.html")))
    values = {"status": 404, "title": "<t>", "reason": "<r>", "nav": NAV, "section": "", "signed_in": True,
              "csrf": "c", "next": "/console/health", "error": "<e>"}
    from_sources = rendering.render("error.html", **values)
    monkeypatch.setattr(rendering, "COMPILED", tmp_path)
    rendering.environment.cache_clear()
    try:
        assert isinstance(rendering.environment().loader, jinja2.ModuleLoader)
        assert rendering.render("error.html", **values) == from_sources
        (tmp_path / "JINJA2_VERSION").write_text("0.0")
        rendering.environment.cache_clear()
        assert isinstance(rendering.environment().loader, jinja2.FileSystemLoader)
    finally:
        rendering.environment.cache_clear()


def test_every_route_names_a_page_function() -> None:
    import importlib

    from processors.console.app import ROUTES

    for route in ROUTES:
        module, _, function = route.page.rpartition(".")
        assert callable(getattr(importlib.import_module(f"processors.console.pages.{module}"), function)), route
