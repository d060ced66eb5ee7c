"""Looking things up by what support has in hand: an order number or id, a delivery or message id,
a SKU, an event or correlation id (the Health page's boxes), and an event by its id alone. Each
answers with a redirect to the page with a stable URL, so the address bar holds a link to paste."""

from __future__ import annotations

import urllib.parse

from events.errors import NotFound
from events.items import Item
from processors.console.context import Context
from processors.console.render import event_href, href
from processors.console.web import Page, PageError

_KINDS = {"order": "orders", "delivery": "deliveries", "sku": "skus"}


def find(ctx: Context) -> Page:
    given = [(name, ctx.query[name].strip()) for name in (*_KINDS, "event") if ctx.query.get(name, "").strip()]
    if len(given) != 1:
        raise PageError(400, "look up one thing: an order, a delivery, a SKU or an event (or correlation) id")
    [(kind, value)] = given
    if kind == "event":
        return Page.redirect(href("trace", value))
    return Page.redirect(href(_KINDS[kind], value))


def event(ctx: Context) -> Page:
    """An event by its id: its page (the by-id index, one lookup)."""
    found = ctx.deps.index.by_id(ctx.params["event_id"])
    if not found:
        raise NotFound(f"event {ctx.params['event_id']!r}")
    return Page.redirect(_page_of(found[0]))


def _page_of(item: Item) -> str:
    return event_href(item["stream"]["S"], int(item["version"]["N"]))


def trace(ctx: Context) -> Page:
    """An event id goes to its page (where its causes and effects are drawn); a correlation id to
    the events of that request."""
    ref = ctx.params["ref"]
    found = ctx.deps.index.by_id(ref)
    if found:
        return Page.redirect(_page_of(found[0]))
    if ctx.deps.index.by_correlation(ref, limit=1).items:
        return Page.redirect("/console/search?" + urllib.parse.urlencode({"correlation": ref}))
    raise NotFound(f"no event and no request with id {ref!r}")
