"""The console's budgets (issue 20), printed as ms and ratios, never asserted:

- cold start, in fresh processes (CPU ms), against `import boto3` (goal: the import at most 1.3x):
  the ConsoleFunction entry point's import; the import and the first page a cold container answers
  (sign-in), through the real handler and the AWS composition root built from a Lambda
  environment; and the import and a signed-in page that reads the log and the views (a SKU's
  page) on DynamoDB Local. The pages are timed with the templates compiled at first render (the
  source tree) and precompiled (the build's artifact: `make build-ConsoleFunction`);
- each page's p50 on the demo's data, through the local console server as a browser asks (goal:
  300 ms);
- the Streams pages with 100,000 events in the log: a category's streams (the catalogue's 16
  bucket queries), its third page, a long stream's newest events, a search by type (never a scan).

    python -m benchmarks console [--endpoint-url URL]
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any

from benchmarks.common import fresh, report

IMPORT_GOAL, PAGE_GOAL_MS = 1.3, 300.0
LARGE_LOG = 100_000
DEMO_PREFIX = "benchconsole-"
PAGES = ("health", "alerts?show=all", "orders/SO-000019", "deliveries/user123:msg-0002", "skus/PROD-003",
         "streams", "streams/sku", "streams/sku/PROD-001", "streams/sku/PROD-001/1",
         "search?type=dynafold.alerts.raised.v1", "search?sku=PROD-001", "views", "views/alerts",
         "views/delivery-status")

# One cold start in a fresh process: the import, then (optionally) one request through the real
# handler, ConsoleFunction's, built by the AWS root from the environment the process was given.
_COLD = """
import json, sys, time
from pathlib import Path
started = time.process_time()
{statement}
imported = time.process_time()
answer = {{}}
request = json.loads(sys.argv[1]) if len(sys.argv) > 1 else None
if request is not None:
    import processors.console.render as rendering
    rendering.COMPILED = Path(request["compiled"]) if request["compiled"] else Path("/nonexistent")
    from processors.local.http_server import api_gateway_event
    class Context:
        function_name, memory_limit_in_mb, aws_request_id = "console", 512, "bench"
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:console"
    event = api_gateway_event("GET", request["path"], dict(request["headers"]), b"", "192.0.2.1")
    answer = processors.functions.console.handler(event, Context())
print(json.dumps({{"import": (imported - started) * 1000, "total": (time.process_time() - started) * 1000,
                  "status": answer.get("statusCode")}}))
"""


def _cold(statement: str, request: Mapping[str, Any] | None = None,
          env: Mapping[str, str] | None = None) -> dict[str, Any]:
    argv = [sys.executable, "-c", _COLD.format(statement=statement)] + ([json.dumps(request)] if request else [])
    # S603: our own interpreter timing our own import and handler
    inherited = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    done = subprocess.run(argv, capture_output=True, text=True, check=True,  # noqa: S603
                          env={**inherited, "PYTHONPATH": ".", **(env or {})})
    answer: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return answer


def lambda_environment(endpoint_url: str, prefix: str, key: str) -> dict[str, str]:
    """What ConsoleFunction's environment holds (template.yaml), over DynamoDB Local's tables; the
    admin key given as a value (on AWS it is read from SSM: one GetParameter more)."""
    views = {family: f"{prefix}{family}-v1" for family in
             ("inventory", "inventory-returns", "pending-errors", "delivery-status", "alerts")}
    return {"EVENTS_TABLE": f"{prefix}events", "IDEMPOTENCY_TABLE": f"{prefix}idempotency",
            "CHECKPOINTS_TABLE": f"{prefix}checkpoints", "VIEW_TABLES": json.dumps(views),
            "VIEW_VERSIONS_PARAMETER": f"/{prefix}view-versions", "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL_DYNAMODB": endpoint_url,  # the local key: the demo's database
            "DYNAFOLD_ADMIN_API_KEY": key, "POWERTOOLS_SERVICE_NAME": "console",
            "DELIVERY_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/jobs",
            "DELIVERY_DEAD_LETTER_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/dead"}


def cold_start(endpoint_url: str, runs: int = 7) -> list[tuple[str, str]]:
    """Median CPU ms of each cold start (interleaved), and each against `import boto3`."""
    from processors.console import session as sessions
    from processors.console.render import precompile

    key = "bench-key"
    cookie = sessions.new_cookie(key, datetime.now(timezone.utc), 1)
    env = lambda_environment(endpoint_url, DEMO_PREFIX, key)
    signed_in = {"cookie": f"{sessions.COOKIE}={cookie}"}
    with tempfile.TemporaryDirectory(prefix="console-templates-") as compiled:
        precompile(Path(compiled))
        cases: dict[str, Callable[[], dict[str, Any]]] = {
            "import boto3": partial(_cold, "import boto3"),
            "import processors.functions.console": partial(_cold, "import processors.functions.console"),
            "+ sign-in page, templates compiled at first render": partial(
                _cold, "import processors.functions.console", {"path": "/console/login", "headers": {}, "compiled": ""},
                env),
            "+ sign-in page, precompiled templates (the artifact)": partial(
                _cold, "import processors.functions.console",
                {"path": "/console/login", "headers": {}, "compiled": compiled}, env),
            "+ a SKU's page (log and views on DynamoDB Local), compiled at first render": partial(
                _cold, "import processors.functions.console",
                {"path": "/console/skus/PROD-003", "headers": signed_in, "compiled": ""}, env),
            "+ a SKU's page (log and views on DynamoDB Local), precompiled": partial(
                _cold, "import processors.functions.console",
                {"path": "/console/skus/PROD-003", "headers": signed_in, "compiled": compiled}, env),
        }
        samples: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(runs):
            for name, case in cases.items():
                answer = case()
                if answer["status"] not in (None, 200):
                    raise RuntimeError(f"{name}: HTTP {answer['status']}")
                samples[name].append(answer["total"])
    boto = statistics.median(samples["import boto3"])
    rows = []
    for name, values in samples.items():
        ms = statistics.median(values)
        goal = f" (goal <= {IMPORT_GOAL}x)" if name == "import processors.functions.console" else ""
        rows.append((name, f"{ms:.0f} ms" + ("" if name == "import boto3" else f": {ms / boto:.2f}x{goal}")))
    return rows


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
    """Each page's p50 through the local console server on the demo's data (signed in); the demo's
    tables stay on the engine for the cold starts."""
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

    with open(os.devnull, "w") as quiet, tempfile.TemporaryDirectory(prefix="console-demo-") as state:
        stdout, sys.stdout = sys.stdout, quiet
        try:
            run_demo(Context(endpoint_url, DEMO_PREFIX, True, state_dir=Path(state), state_dir_given=True),
                     serve=serve, admin_api_key=key)
        finally:
            sys.stdout = stdout
    return timings


def large_log(endpoint_url: str, events: int = LARGE_LOG) -> dict[str, float]:
    """The Streams pages over ``events`` events, loaded directly (each stream's first event with
    its stream-catalogue key, as an append writes it)."""
    from benchmarks.rebuild import history_items
    from events.log_index import EventIndex
    from events.store import EventStore
    from events.stream_catalogue import CATALOGUE_ATTR, catalogue_key
    from processors.adapters.secrets import Secrets
    from processors.console import session as sessions
    from processors.console.app import dispatch
    from processors.console.deps import ConsoleDeps, ConsoleReads, ConsoleServices
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

    reads = ConsoleReads(EventStore.over(bench.client, bench.names), EventIndex(bench.client, bench.names.events),
                         ViewQueries(bench.client, {}), {})
    deps = ConsoleDeps(lambda: reads, Secrets.of(admin_api_key=key),
                       ConsoleServices(unused, unused, unused, unused, unused, unused))
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
    pages = demo_pages(endpoint_url)
    report("console cold start (CPU, median of fresh processes)", cold_start(endpoint_url))
    report(f"console pages on the demo's data, p50 (goal <= {PAGE_GOAL_MS:.0f} ms)",
           [(page, f"{ms:.1f} ms") for page, ms in pages.items()])
    started = time.perf_counter()
    large = large_log(endpoint_url, events)
    report(f"console Streams pages with {events:,} events (loaded in {time.perf_counter() - started:.0f} s), p50",
           [(page, f"{ms:.1f} ms") for page, ms in large.items()])
