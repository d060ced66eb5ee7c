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
# The templates compiled to Python modules at build time (`make build-ConsoleFunction`): on Lambda
# a cold page imports its template's bytecode instead of lexing, parsing and generating it (up to
# 20 ms for the Health page). Never in the source tree, so a local run always renders what it sees.
COMPILED = Path(__file__).resolve().parent / "compiled"
_COMPILED_BY = "JINJA2_VERSION"  # in COMPILED: the Jinja2 that compiled them


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
    import jinja2  # on the first page, not at cold start

    compiled = COMPILED / _COMPILED_BY
    # Modules compiled by another Jinja2 than the one running would call a runtime they were not
    # written for: then the templates are compiled here, as in the source tree.
    if compiled.is_file() and compiled.read_text() == jinja2.__version__:
        return make_environment(jinja2.ModuleLoader(str(COMPILED)))
    return make_environment(jinja2.FileSystemLoader(TEMPLATES))


def make_environment(loader: Any) -> Environment:
    """Autoescaping on for every template, undefined names an error, the console's globals."""
    from jinja2 import Environment, StrictUndefined

    env = Environment(loader=loader, autoescape=True, undefined=StrictUndefined, trim_blocks=True,
                      lstrip_blocks=True)
    env.globals.update(href=href, stream_href=stream_href, event_href=event_href, subject_href=subject_href,
                       event_id_href=event_id_href)
    env.filters["pretty"] = pretty
    return env


def precompile(target: Path) -> list[str]:
    """Every template compiled into ``target`` as a Python module (what ``environment`` loads when
    it finds them); the templates' names. A template that does not compile fails the build."""
    import jinja2

    env = make_environment(jinja2.FileSystemLoader(TEMPLATES))
    names = env.list_templates()
    env.compile_templates(str(target), zip=None, ignore_errors=False, log_function=None)
    (target / _COMPILED_BY).write_text(jinja2.__version__)
    return names


def render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)


if __name__ == "__main__":  # python -m processors.console.render DIR: the build's precompile step
    import sys

    print(f"compiled {len(precompile(Path(sys.argv[1])))} console templates into {sys.argv[1]}")
