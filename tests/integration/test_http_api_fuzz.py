"""Fuzzing every route (issue 12 defect 8): whatever arrives, no 5xx, and a rejection appends nothing.

Each route gets arbitrary bytes, arbitrary JSON and mutations of a valid body; arbitrary headers,
query strings and path segments; with and without credentials (webhook HMACs are computed over
the fuzzed bytes, so authenticated cases reach the parser and the append). The handler is the one
Lambda runs, called in-process, against DynamoDB Local.

50 examples a route by default; DYNAFOLD_FUZZ_EXAMPLES=N sets another number, and
``pytest -m long`` runs the 1000-a-route version.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from processors.local.stack import LocalStack
from processors.local.tables import local_tables
from processors.api.app import ROUTES, make_handler
from processors.api.routing import Route, public
from processors.api.auth import require_api_key, verify_inflow, verify_shopify
from processors.api.deps import ApiDeps, ApiSettings
from processors.local.stream_runner import LambdaContext
from processors.adapters.secrets import Secrets

SHOPIFY, INFLOW, ADMIN = "shpss_fuzz", "inflow-fuzz", "admin-fuzz"
SECRETS = Secrets.of(shopify=SHOPIFY, inflow=INFLOW, admin_api_key=ADMIN)
EXAMPLES = int(os.environ.get("DYNAFOLD_FUZZ_EXAMPLES", "50"))

VALID: dict[str, list[dict[str, Any]]] = {  # bodies that pass, to mutate one field at a time
    "/webhooks/inflow/orders": [{"salesOrderId": "o-1", "orderNumber": "SO-1", "remarks": "",
                                 "lines": [{"productName": "TUK chair", "sku": "TUK-CHAIR", "quantity": 1,
                                            "discount": 10}]}],
    "/webhooks/shopify": [{"id": 1, "line_items": [{"sku": "P-1", "quantity": 2}]},
                          {"id": 2, "order_id": 1, "refund_line_items": [{"quantity": 1, "restock_type": "return",
                                                                          "line_item": {"sku": "P-1"}}]},
                          {"sku": "P-1", "available": 3, "inventory_item_id": 9}],
    "/messages": [{"sender_id": "s1", "message_id": "m1", "target_url": "https://hooks.example.com/x",
                   "payload": {"event": "order.paid"}}],
    "/alerts/{alert_id}/read": [{"read_by": "ops"}],
    "/alerts/read": [{"severity": "warning", "before": "2030-01-01T00:00:00Z"}, {"type": "stock_low", "dry_run": True}],
    "/inventory/{sku}/count": [{"physical": 1}],
    "/inventory/{sku}/buffer": [{"buffer": 1}],
}
QUERY_NAMES = ["limit", "next", "older_than", "unread", "severity", "sku", "window", "lag_threshold", "x"]
HEADER_NAMES = ["x-shopify-topic", "x-shopify-webhook-id", "x-inflow-delivery-id", "idempotency-key",
                "content-type", "x-api-key", "x-shopify-hmac-sha256", "x-inflow-signature", "x-other"]
CONTENT_TYPES = ["application/json", "application/json; charset=utf-8", "text/plain", "", "application/JSON",
                 "application/json; charset=iso-8859-1"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12)
header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=60)  # HTTP: latin-1
segment = st.text(st.characters(exclude_categories=["Cs"]), min_size=0, max_size=40)
id_like = st.from_regex(r"[A-Za-z0-9._-]{1,12}", fullmatch=True) | segment


def _mostly(value: bool, otherwise: float = 1 / 4) -> st.SearchStrategy[bool]:
    """``value`` most of the time (integers(0, n) == 0 would not do: Hypothesis favours boundaries)."""
    every = round(1 / otherwise)
    return st.sampled_from([value] * (every - 1) + [not value])


@st.composite
def body_bytes(draw: st.DrawFn, route: Route) -> bytes:
    kinds = ["bytes", "json", "mutated", "mutated", "valid", "valid"] if route.template in VALID else ["bytes", "json"]
    kind = draw(st.sampled_from(kinds))  # valid and mutated bodies get past validation to the append
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    if kind == "json":
        return json.dumps(draw(json_values)).encode()
    body = dict(draw(st.sampled_from(VALID[route.template])))
    if kind == "mutated":
        key = draw(st.sampled_from([*body, draw(st.text(max_size=10))]))
        body[key] = draw(json_values)
    return json.dumps(body, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")


@st.composite
def requests(draw: st.DrawFn, route: Route) -> dict[str, Any]:
    path = route.template
    for name in route.path_names:
        value = draw(id_like)
        raw = draw(_mostly(False))  # mostly percent-encoded, as clients send them
        path = path.replace("{" + name + "}", value if raw else urllib.parse.quote(value, safe=""))
    if draw(_mostly(False, 1 / 20)):
        path = "/" + draw(segment)
    method = route.method if draw(_mostly(True)) else draw(st.sampled_from(["GET", "POST", "PUT", "DELETE",
                                                                                 "HEAD", "OPTIONS", "PATCH"]))
    body = draw(body_bytes(route)) if route.body or draw(st.booleans()) else b""
    headers = draw(st.dictionaries(st.sampled_from(HEADER_NAMES), header_text, max_size=4))
    headers["content-type"] = draw(st.sampled_from(CONTENT_TYPES[:1] * 4 + CONTENT_TYPES))
    if route.template == "/webhooks/shopify" and draw(st.booleans()):
        headers["x-shopify-topic"] = draw(st.sampled_from(["orders/create", "refunds/create", "inventory_levels/update"]))
        headers["x-shopify-webhook-id"] = draw(header_text.filter(bool))
    authenticated = draw(_mostly(True))
    if authenticated and route.auth is require_api_key:
        headers["x-api-key"] = ADMIN
    elif authenticated and route.auth is verify_shopify:
        headers["x-shopify-hmac-sha256"] = base64.b64encode(hmac.new(SHOPIFY.encode(), body, hashlib.sha256).digest()).decode()
    elif authenticated and route.auth is verify_inflow:
        headers["x-inflow-signature"] = "sha256=" + hmac.new(INFLOW.encode(), body, hashlib.sha256).hexdigest()
    query = draw(st.dictionaries(st.sampled_from(QUERY_NAMES), segment, max_size=3))
    return {"version": "2.0", "routeKey": "$default", "rawPath": path,
            "rawQueryString": urllib.parse.urlencode(query, errors="surrogatepass"),
            "headers": headers, "queryStringParameters": query or None,
            "requestContext": {"http": {"method": method, "path": path, "sourceIp": "192.0.2.1"},
                               "requestId": "fuzz", "routeKey": "$default", "stage": "$default"},
            "body": base64.b64encode(body).decode("ascii"), "isBase64Encoded": True}


def _fuzz(local_dynamo: Any, route: Route, examples: int, state_dir: Path) -> None:
    tables = local_tables("test-", versions={})
    # GET /status and the privacy routes read through the services the composition root builds
    # (here the local stack's, empty).
    stack = LocalStack(local_dynamo.endpoint_url, tables, state_dir, access_key=local_dynamo.access_key)
    deps = ApiDeps.connect(local_dynamo.client, tables, SECRETS, ApiSettings(max_body_bytes=4096),
                           resolve=lambda host, port: ["93.184.215.14"], status=lambda: stack.root.status,
                           personal_data=lambda: stack.root.personal_data)
    handler = make_handler(deps)
    context = LambdaContext.local("dynafold-ingest", 30, "fuzz")

    def events() -> int:
        return local_dynamo.client.scan(TableName=local_dynamo.names.events, Select="COUNT")["Count"]

    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(requests(route))
    def check(event: dict[str, Any]) -> None:
        before = events()
        response = handler(event, context)
        status = response["statusCode"]
        assert status < 500, (status, response["body"][:300])
        assert "error" in json.loads(response["body"]) or status < 400
        if status >= 400:
            assert events() == before, f"a {status} appended something"
        if status == 405:
            assert response["headers"]["allow"]

    check()


@pytest.mark.parametrize("route", ROUTES, ids=[f"{r.method} {r.template}" for r in ROUTES])
def test_no_route_answers_5xx_and_rejections_append_nothing(local_dynamo, route, tmp_path):
    _fuzz(local_dynamo, route, EXAMPLES, tmp_path)


@pytest.mark.long
@pytest.mark.parametrize("route", ROUTES, ids=[f"{r.method} {r.template}" for r in ROUTES])
def test_no_route_answers_5xx_long(local_dynamo, route, request, tmp_path):
    if "long" not in (request.config.option.markexpr or ""):
        pytest.skip("1000 examples a route: run with -m long")
    _fuzz(local_dynamo, route, 1000, tmp_path)


def test_every_route_is_fuzzed_with_its_auth():
    assert {r.auth for r in ROUTES} == {require_api_key, verify_shopify, verify_inflow, public}
