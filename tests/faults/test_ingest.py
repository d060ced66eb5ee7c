"""Ingest under faults: a webhook or message whose request failed (a 5xx, a dead function, a lost
response after the write happened) is retried by its sender until it is answered, and lands once.

The sender's side is API Gateway's: a 5xx or an invocation error is retried with the same body and
headers (Shopify and InFlow retry on any non-2xx; a message sender retries its POST). Asserted after
the retries: every request appended exactly once, the retry that succeeded got the original answer
(the same event ids), the views equal a clean fold, and the log is intact.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
from pathlib import Path
from typing import Any

import pytest

from events.store import EventStore
from processors.adapters.outbound import TargetPolicy
from processors.adapters.secrets import Secrets
from processors.services.delivery_worker import DeliverySettings
from processors.api.deps import ApiSettings
from processors.local.services import LocalApi
from processors.local.stream_runner import LambdaContext
from tests.faults.harness import assert_log_intact, assert_views_equal_clean_fold, faulty_stack, log_by_stream
from tests.faults.injector import Crash, Fault, FaultPlan, transient_faults
from tests.shopify_fixtures import payload

pytestmark = pytest.mark.integration

INFLOW, SHOPIFY, ADMIN = "inflow-secret", "shopify-secret", "admin-key"
SECRETS = Secrets.of(inflow=INFLOW, shopify=SHOPIFY, admin_api_key=ADMIN)
MAX_TRIES = 8
LOOPBACK = TargetPolicy(allow_http=True, allow_networks=(ipaddress.ip_network("127.0.0.1/32"),))


def request(method: str, path: str, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    """An API Gateway HTTP API (payload 2.0) event."""
    return {"version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "",
            "headers": {"content-type": "application/json", **headers},
            "requestContext": {"http": {"method": method, "path": path, "sourceIp": "192.0.2.1"},
                               "requestId": "req", "routeKey": "$default", "stage": "$default"},
            "body": base64.b64encode(body).decode("ascii"), "isBase64Encoded": True}


def inflow_order(order_id: str, bad: bool) -> dict[str, Any]:
    body = json.dumps({"order_id": order_id, "order_number": f"SO-{order_id}", "customer_email": "a@example.com",
                       "lines": [{"sku": "P-1", "quantity": 0 if bad else 1, "unit_price": 5}]}).encode()
    signature = "sha256=" + hmac.new(INFLOW.encode(), body, hashlib.sha256).hexdigest()
    return request("POST", "/webhooks/inflow/orders", body,
                   {"x-inflow-signature": signature, "x-inflow-delivery-id": f"d-{order_id}"})


def shopify_order(delivery: str = "1") -> dict[str, Any]:
    """Shopify's real order; another ``delivery`` is the same order under other ids (a second
    subscription, a replay), which must not change the count again."""
    body = json.dumps(payload("orders/create")).encode()
    signature = base64.b64encode(hmac.new(SHOPIFY.encode(), body, hashlib.sha256).digest()).decode()
    return request("POST", "/webhooks/shopify", body, {
        "x-shopify-hmac-sha256": signature, "x-shopify-topic": "orders/create",
        "x-shopify-webhook-id": f"wh-{delivery}", "x-shopify-event-id": f"ev-{delivery}"})


def message(message_id: str) -> dict[str, Any]:
    # A loopback target nothing listens on: deliveries fail and are rescheduled, nothing leaves the machine.
    body = json.dumps({"sender_id": "shop", "message_id": message_id, "target_url": "http://127.0.0.1:9/hook",
                       "payload": {"n": 1}}).encode()
    return request("POST", "/messages", body, {"x-api-key": ADMIN})


def send_until_answered(handler: Any, event: dict[str, Any]) -> tuple[int, dict[str, Any], int]:
    """(status, body, tries): the sender's retries until a non-5xx answer."""
    for tries in range(1, MAX_TRIES + 1):
        try:
            response = handler(event, LambdaContext.local("dynafold-ingest", 29))
        except (Crash, Exception):  # noqa: BLE001 - the invocation failed: API Gateway answers 5xx, the sender retries
            continue
        if response["statusCode"] < 500:
            return response["statusCode"], json.loads(response["body"]), tries
    raise AssertionError(f"still failing after {MAX_TRIES} tries")


def event_ids(answer: dict[str, Any]) -> list[str]:
    appended = answer.get("appended", answer)
    found: list[str] = []
    for entry in appended if isinstance(appended, list) else [appended]:
        found.extend(entry.get("event_ids", []))
    return found


@pytest.mark.parametrize("seed", [1, 2])
def test_every_request_retried_through_faults_lands_once(local_dynamo, tmp_path: Path, monkeypatch, seed: int):
    plan = FaultPlan.seeded(seed, rate=0.3, budget=4, faults=lambda method: [
        *transient_faults(method), Fault("crash", after=True), Fault("crash")])
    stack = faulty_stack(local_dynamo, tmp_path, plan, monkeypatch,
                         delivery=DeliverySettings(targets=LOOPBACK, timeout_seconds=0.5))
    handler = LocalApi(stack, SECRETS, ApiSettings(targets=LOOPBACK)).handler
    requests = [inflow_order("o1", bad=True), inflow_order("o2", bad=False), shopify_order(),
                message("m1"), message("m2"), shopify_order("2")]
    first = []
    for event in requests:
        status, body, _ = send_until_answered(handler, event)
        assert status in (200, 202), body
        first.append(body)
    plan.armed = False
    assert plan.injected, "the plan injected nothing: the test would prove nothing"
    for event, body in zip(requests, first, strict=True):  # a later retry gets the original answer
        status, again, tries = send_until_answered(handler, event)
        assert status in (200, 202) and tries == 1
        assert event_ids(again) == event_ids(body), (event["rawPath"], plan.injected)
    stack.drain()
    store = EventStore.over(stack.clean_client, stack.tables)
    by_stream = log_by_stream(store)
    # exactly once: one validation per order, one message_received per message, one order per SKU line
    assert len(by_stream["order:o1"]) >= 1 and by_stream["order:o1"][0].type.endswith("validated.v1")
    assert sum(e.type.endswith("message_received.v1") for e in by_stream["delivery:shop:m1"]) == 1
    assert sum(e.type.endswith("message_received.v1") for e in by_stream["delivery:shop:m2"]) == 1
    decided = [e for stream, events in by_stream.items() if stream.startswith("sku:") for e in events]
    assert len({e.id for e in decided}) == len(decided)
    assert sum(len(event_ids(body)) for body in first[2:3]) == len(
        [e for e in decided if e.type.endswith("stock_adjusted.v2")])
    assert event_ids(first[5]) == event_ids(first[2])  # the order again, under other ids: its first effect
    assert_log_intact(store, by_stream)
    assert_views_equal_clean_fold(stack.clean_client, stack, by_stream)
