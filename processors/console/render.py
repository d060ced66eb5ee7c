"""Templates: Jinja2 with autoescaping on for every template and undefined names an error.

Event data is attacker-controlled (webhook bodies, Shopify payloads): every value reaches the page
through autoescaping, JSON for scripts only through ``tojson`` inside a non-executed
``application/json`` block, and links only through ``href`` (which refuses any scheme but ours).
"""

from __future__ import annotations

import json
import urllib.parse
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jinja2 import Environment

TEMPLATES = Path(__file__).resolve().parent / "templates"


def quote(value: Any) -> str:
    """One path segment: every reserved character escaped (stream keys may hold '/' or ':')."""
    return urllib.parse.quote(str(value), safe="")


def href(*parts: Any, **query: Any) -> str:
    """A console URL from path segments (each quoted) and query parameters (None left out)."""
    path = "/console/" + "/".join(quote(part) for part in parts)
    params = {name: value for name, value in query.items() if value not in (None, "")}
    return path + ("?" + urllib.parse.urlencode(params) if params else "")


def stream_href(stream: str) -> str:
    category, _, key = stream.partition(":")
    return href("streams", category, key)


def event_href(stream: str, version: int) -> str:
    category, _, key = stream.partition(":")
    return href("streams", category, key, version)


# A stream's category -> the console page that answers support's question about it.
_SUPPORT_PAGES = {"sku": "skus", "order": "orders", "delivery": "deliveries"}


def subject_href(subject: str | None) -> str:
    """The page about a stream id (an alert's subject, an explanation's): a SKU, order or delivery
    page, else the stream's own page; "" for text that names no stream of a known category."""
    from events.catalogue import CATEGORIES

    category, colon, key = (subject or "").partition(":")
    if not colon or not key or category not in CATEGORIES:
        return ""
    return href(_SUPPORT_PAGES[category], key) if category in _SUPPORT_PAGES else stream_href(subject or "")


def event_id_href(event_id: str) -> str:
    """An event by its id (the console finds its stream and version)."""
    return href("events", event_id)


def pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


@cache
def environment() -> Environment:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined  # on the first page, not at cold start

    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    env.globals.update(href=href, stream_href=stream_href, event_href=event_href, subject_href=subject_href,
                       event_id_href=event_id_href)
    env.filters["pretty"] = pretty
    return env


def render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)
