"""Streams: categories, then a category's streams (the stream catalogue, newest first), then a
stream's events (newest first), and search by type and time range or by correlation id. Every
list is a page of an index query, never a scan."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from events import catalogue
from events.errors import NotFound
from events.items import from_item
from events.log_index import decode_token
from processors.console.context import Context
from processors.console.web import Page, PageError
from projections.unit import InvalidQuery, page_limit, time_bound

STREAMS_PAGE = 50
EVENTS_PAGE = 50
SEARCH_PAGE = 50


def categories(ctx: Context) -> Page:
    by_category: dict[str, list[str]] = {}
    for event_type in catalogue.BY_TYPE.values():
        by_category.setdefault(event_type.category, []).append(event_type.type)
    rows = [{"category": name, "types": sorted(types)} for name, types in sorted(by_category.items())]
    return ctx.page("streams.html", section="streams", title="Streams", categories=rows, **_search_form(ctx))


def category(ctx: Context) -> Page:
    name = ctx.params["category"]
    if name not in catalogue.CATEGORIES:
        raise NotFound(f"stream category {name!r}")
    limit = page_limit(ctx.query, STREAMS_PAGE, 500)
    page = ctx.deps.store.list_streams(name, limit, ctx.query.get("next") or None)
    return ctx.page("category.html", section="streams", title=f"{name} streams", category=name,
                    streams=page.items, next_token=page.next_token, limit=limit)


def stream(ctx: Context) -> Page:
    name = f"{ctx.params['category']}:{ctx.params['key']}"
    catalogue.stream_category(name)  # 400 for a malformed id or an unknown category
    head = ctx.deps.store.stream_version(name)
    if head == 0:
        raise NotFound(f"stream {name!r}")
    limit = page_limit(ctx.query, EVENTS_PAGE, 500)
    upto = _version(ctx.query.get("to"), head) if ctx.query.get("to") else head
    start = max(1, upto - limit + 1)
    events = list(reversed(ctx.deps.store.read_stream(name, start, upto)))
    return ctx.page("stream.html", section="streams", title=name, stream=name, category=ctx.params["category"],
                    key=ctx.params["key"], head=head, events=events, limit=limit,
                    older=start - 1 if start > 1 else None, newer=min(head, upto + limit) if upto < head else None)


def _version(text: str | None, head: int) -> int:
    if not text or not text.isascii() or not text.isdigit() or not 1 <= int(text) <= head:
        raise PageError(400, f"version {str(text)[:20]!r} is not one of this stream's (1-{head})")
    return int(text)


def search(ctx: Context) -> Page:
    """By order number (or id) or by SKU (that stream's events), by correlation id (every event one
    request caused), or by type within a time range (the by-type-time index); newest first, one
    page at a time."""
    form = _search_form(ctx)
    query = ctx.query
    limit = page_limit(query, SEARCH_PAGE, 500)
    token = query.get("next") or None
    if token:
        decode_token(token)  # a forged token is a 400, before any query
    order, sku = query.get("order", "").strip(), query.get("sku", "").strip()
    correlation, event_type = query.get("correlation", "").strip(), query.get("type", "").strip()
    about = ""
    if order or sku:
        about, events = _order_events(ctx, order) if order else (f"sku:{sku}", ctx.deps.store.read_stream(f"sku:{sku}"))
        if not events:
            raise NotFound(f"SKU {sku!r}")
        return ctx.page("search.html", section="streams", title="Search", events=list(reversed(events))[:limit],
                        next_token=None, params={}, about=about, total=len(events), **form)
    if correlation:
        page = ctx.deps.index.by_correlation(correlation, limit=limit, token=token, newest_first=True)
    elif event_type:
        if event_type not in form["types"]:
            raise InvalidQuery(f"unknown event type {event_type[:120]!r}")
        start = time_bound(query["from"], "from") if query.get("from") else "0"
        end = time_bound(query["to"], "to") if query.get("to") else time_bound(ctx.now + timedelta(minutes=1))
        page = ctx.deps.index.by_type(event_type, start, end, limit=limit, token=token, newest_first=True)
    else:
        raise InvalidQuery("search needs an order number, a SKU, a correlation id, or an event type "
                           "(and optionally a time range)")
    events = [from_item(item) for item in page.items]
    return ctx.page("search.html", section="streams", title="Search", events=events, next_token=page.next_token,
                    params={k: v for k, v in query.items() if k != "next"}, about=about, total=None, **form)


def _order_events(ctx: Context, ref: str) -> tuple[str, list[Any]]:
    """An order by its InFlow number or its id (the order explainer's lookup: the by-order-number index)."""
    order_id, events = ctx.deps.services.support().orders.history(ref)
    return f"order:{order_id}", events


def _search_form(ctx: Context) -> dict[str, Any]:
    return {"types": catalogue.stored_types(), "chosen": {name: ctx.query.get(name, "") for name in
                                                          ("type", "from", "to", "correlation", "order", "sku")}}
