"""The console's budgets (issue 20), printed as ms and ratios, never asserted:

- cold import: importing the ConsoleFunction entry point (jinja2, the router) in fresh processes,
  against `import boto3` (goal: at most 1.3x);
- each page's p50 on the demo's data, through the local console server as a browser asks (goal:
  300 ms);
- the Streams pages with 100,000 events in the log: a category's streams (the catalogue's 16
  bucket queries), a long stream's newest events, a search by type (never a scan).

    python -m benchmarks console [--endpoint-url URL]
"""

from __future__ import annotations

import http.cookiejar
import os
import secrets
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from datetime import datetime, timezone
from functools import partial
from typing import Any

from benchmarks.common import fresh, report

IMPORT_GOAL, PAGE_GOAL_MS = 1.3, 300.0
LARGE_LOG = 100_000
PAGES = ("health", "streams", "streams/sku", "streams/sku/PROD-001", "streams/sku/PROD-001/1",
         "search?type=dynafold.alerts.raised.v1", "views", "views/alerts", "views/delivery-status")

_TIMED_IMPORT = """
import time
t = time.process_time()
{statement}
print((time.process_time() - t) * 1000)
"""


def _import_ms(statement: str) -> float:
    # S603: our own interpreter timing one import statement of ours
    done = subprocess.run([sys.executable, "-c", _TIMED_IMPORT.format(statement=statement)],  # noqa: S603
                          capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": "."})
    return float(done.stdout.strip().splitlines()[-1])


# The first page a cold container renders (sign-in: no table read): what the import defers to it.
_FIRST_PAGE = """import processors.functions.console
from datetime import datetime, timezone
from functools import partial
from types import SimpleNamespace
from processors.adapters.secrets import Secrets
from processors.console.app import dispatch
from processors.local.http_server import api_gateway_event
deps = SimpleNamespace(secrets=Secrets.of(admin_api_key="k"), clock=lambda: datetime.now(timezone.utc))
assert dispatch(api_gateway_event("GET", "/console/login", {}, b"", "192.0.2.1"), deps)[1].status == 200"""


def cold_import(runs: int = 7) -> tuple[float, float, float]:
    """Median ms CPU in fresh processes (interleaved) of: the console entry point's import, that
    import and the first page rendered, and `import boto3`."""
    console, first, boto = [], [], []
    for _ in range(runs):
        console.append(_import_ms("import processors.functions.console"))
        first.append(_import_ms(_FIRST_PAGE))
        boto.append(_import_ms("import boto3"))
    return statistics.median(console), statistics.median(first), statistics.median(boto)


def p50_ms(fetch: Callable[[], Any], runs: int = 15) -> float:
    fetch()  # warm: templates compiled, clients built
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fetch()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def _read(opener: urllib.request.OpenerDirector, url: str) -> bytes:
    return bytes(opener.open(url).read())


def demo_pages(endpoint_url: str) -> dict[str, float]:
    """Each page's p50 through the local console server on the demo's data (signed in)."""
    from processors.cli.context import Context
    from processors.local.demo import DemoServing, run_demo

    key = secrets.token_urlsafe(24)
    timings: dict[str, float] = {}

    def serve(demo: DemoServing) -> None:
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        opener.open(demo.console_url + "login", urllib.parse.urlencode({"api_key": key}).encode()).read()
        for page in PAGES:
            timings[page] = p50_ms(partial(_read, opener, demo.console_url + page))

    with open(os.devnull, "w") as quiet:
        stdout, sys.stdout = sys.stdout, quiet
        try:
            run_demo(Context(endpoint_url, "benchconsole-", True), None, serve, admin_api_key=key)
        finally:
            sys.stdout = stdout
    return timings


def large_log(endpoint_url: str, events: int = LARGE_LOG) -> dict[str, float]:
    """The Streams pages over ``events`` events, loaded directly (each stream's first event with
    its stream-catalogue key, as an append writes it)."""
    from benchmarks.rebuild import history_items
    from events.stream_catalogue import CATALOGUE_ATTR, catalogue_key
    from events.log_index import EventIndex
    from events.store import EventStore
    from processors.adapters.secrets import Secrets
    from processors.console import session as sessions
    from processors.console.app import dispatch
    from processors.console.deps import ConsoleDeps, ConsoleServices
    from processors.local.http_server import api_gateway_event
    from projections.queries import ViewQueries
    from projections.view_tables import BulkWriter

    bench = fresh(endpoint_url)
    items = history_items(events, 10) + history_items(500, 500, seed=9)  # one stream of 500 events too
    streams = set()
    with BulkWriter(bench.client, workers=8) as writer:
        for item in items:
            first = item["version"]["N"] == "1"
            writer.put_item(bench.names.events, {**item, CATALOGUE_ATTR: {"S": catalogue_key(item["stream"]["S"])}}
                            if first else item)
            streams.add(item["stream"]["S"])
    key = "bench-key"

    def unused() -> Any:
        raise AssertionError("the Streams pages ask no service")

    no_services = ConsoleServices(unused, unused, unused, unused, unused, unused)
    deps = ConsoleDeps(EventStore.over(bench.client, bench.names), EventIndex(bench.client, bench.names.events),
                       ViewQueries(bench.client, {}), {}, Secrets.of(admin_api_key=key), no_services)
    cookie = sessions.new_cookie(key, datetime.now(timezone.utc), 1)
    long_stream = items[-1]["stream"]["S"]

    def get(path: str) -> Callable[[], None]:
        def fetch() -> None:
            event = api_gateway_event("GET", path, {"cookie": f"{sessions.COOKIE}={cookie}"}, b"", "192.0.2.1")
            _, page = dispatch(event, deps)
            assert page.status == 200, (path, page.status, page.body[:300])  # noqa: S101 - a benchmark's sanity check
        return fetch

    category, _, rest = long_stream.partition(":")
    third = deps.store.list_streams("sku", 50, deps.store.list_streams("sku", 50).next_token).next_token
    return {
        f"streams/sku (of {len(streams):,} streams)": p50_ms(get("/console/streams/sku")),
        "streams/sku, the third page": p50_ms(get("/console/streams/sku?" + urllib.parse.urlencode({"next": third}))),
        f"a {int(items[-1]['version']['N'])}-event stream, newest page": p50_ms(
            get(f"/console/streams/{category}/{urllib.parse.quote(rest, safe='')}")),
        "search by type": p50_ms(get("/console/search?type=dynafold.inventory.stock_adjusted.v2")),
    }


def run(endpoint_url: str, events: int = LARGE_LOG) -> None:
    """Everything above, printed."""
    console_ms, first_ms, boto_ms = cold_import()
    report("console cold import (CPU, median of fresh processes)", [
        ("import processors.functions.console", f"{console_ms:.0f} ms: {console_ms / boto_ms:.2f}x "
                                                f"`import boto3` (goal <= {IMPORT_GOAL}x)"),
        ("import and the first page (sign-in)", f"{first_ms:.0f} ms: {first_ms / boto_ms:.2f}x"),
        ("import boto3", f"{boto_ms:.0f} ms"),
    ])
    pages = demo_pages(endpoint_url)
    report(f"console pages on the demo's data, p50 (goal <= {PAGE_GOAL_MS:.0f} ms)",
           [(page, f"{ms:.1f} ms") for page, ms in pages.items()])
    started = time.perf_counter()
    large = large_log(endpoint_url, events)
    report(f"console Streams pages with {events:,} events (loaded in {time.perf_counter() - started:.0f} s), p50",
           [(page, f"{ms:.1f} ms") for page, ms in large.items()])
