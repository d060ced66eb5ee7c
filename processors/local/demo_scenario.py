"""The demo's traffic: the seeds' scenarios, sent through the HTTP routes as the real senders would.

Seed 004 (SyncState): stock takes and buffers by an admin, a Shopify order (and its retry), a
damaged return, the storefront kept in sync, and its echoes ignored. Seed 000 (InFlow): one
order whose TUK discount stays wrong past the grace period (the one email), one fixed in time.
Seeds 001/002: one webhook that succeeds on its retry, one whose target stays down until it is
dead-lettered. And two requests that must be refused: a forged Shopify webhook and a message
aimed at the cloud metadata address.

Each step returns one line for the terminal; nothing here reads a view (the demo does, after).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from processors.local.api_client import Answer, ApiClient
from processors.local.shopify_admin import ShopifyStandIn
from processors.local.webhook_receiver import Reply, WebhookReceiver

ORDER_A = {"salesOrderId": "6ce880f5-47cd-4979-87ce-e5b5fa6af1f4", "orderNumber": "SO-000019",
           "remarks": "staff discount approved by M. Reyes",
           "lines": [{"productName": "TUK lounge chair", "sku": "TUK-CHAIR", "quantity": 1, "unitPrice": 420,
                      "discount": 10}],
           "customer": {"name": "kept out of the log", "email": "kept-out@example.com"}}
ORDER_B = {"salesOrderId": "0b7d2a61-1c55-4b9e-a3f6-2f0f5a1e9c10", "orderNumber": "SO-000020", "remarks": "",
           "lines": [{"productName": "Oak desk", "sku": "DESK-OAK", "quantity": 1, "unitPrice": 310, "discount": 5}]}


def script_receiver(receiver: WebhookReceiver) -> dict[str, str]:
    """The webhook targets: a flaky one, one that stays down, and the storefront."""
    receiver.script("/orders-hook", Reply.status(500), Reply.ok())
    receiver.script("/down", Reply.status(503))
    receiver.script("/storefront", Reply.ok())
    return {name: receiver.url(f"/{name}") for name in ("orders-hook", "down", "storefront")}


def _line(label: str, answer: Answer, detail: Callable[[Any], str] | None = None) -> str:
    status, body = answer
    if status >= 400:
        return f"  {label}: HTTP {status} {body.get('error', '') if isinstance(body, dict) else ''}"
    return f"  {label}: HTTP {status}" + (f" {detail(body)}" if detail else "")


def _appended(body: Any) -> str:
    if "appended" in body:
        parts = [f"{a['stream']} v{a['version']}" + (" (retry: original answer)" if a["deduplicated"] else "")
                 for a in body["appended"]]
        return ", ".join(parts) or body.get("ignored", "nothing appended")
    return f"{body['stream']} v{body['version']}" + (" (retry: original answer)" if body.get("deduplicated") else "")


# Shopify inventory item ids of the demo SKUs (as products/create would teach them), and its location.
DEMO_ITEMS = {"PROD-001": "808950810", "PROD-002": "49148385"}
DEMO_LOCATION = 487838322


def send_traffic(api: ApiClient, targets: dict[str, str]) -> Iterator[str]:
    yield "seed 004, inventory:"
    for sku, item in DEMO_ITEMS.items():
        yield _line(f"PUT /shopify/items/{item} {sku}", api.admin("PUT", f"/shopify/items/{item}", {"sku": sku}))
    yield _line("PUT /inventory/PROD-001/count 50", api.admin("PUT", "/inventory/PROD-001/count", {"physical": 50}),
                _appended)
    yield _line("PUT /inventory/PROD-001/buffer 5", api.admin("PUT", "/inventory/PROD-001/buffer", {"buffer": 5}),
                _appended)
    yield _line("PUT /inventory/PROD-002/count 4", api.admin("PUT", "/inventory/PROD-002/count", {"physical": 4}),
                _appended)
    order = {"id": 1001, "name": "#1001", "line_items": [{"sku": "PROD-001", "quantity": 2},
                                                         {"sku": "PROD-002", "quantity": 1}]}
    yield _line("Shopify orders/create #1001", api.shopify("orders/create", order, "wh-1001"), _appended)
    yield _line("Shopify orders/create #1001, delivered again", api.shopify("orders/create", order, "wh-1001"),
                _appended)
    forged = json.dumps({**order, "line_items": [{"sku": "PROD-001", "quantity": 40}]}).encode()
    yield _line("forged Shopify webhook", api.shopify("orders/create", None, "wh-forged", raw=forged,
                                                      signed=json.dumps(order).encode()))
    refund = {"id": 77, "order_id": 1001, "refund_line_items": [
        {"quantity": 1, "restock_type": "no_restock", "disposition": "DAMAGED", "line_item": {"sku": "PROD-001"}}]}
    yield _line("Shopify refunds/create (damaged)", api.shopify("refunds/create", refund, "wh-r77"), _appended)

    yield "seed 000, order error gate:"
    yield _line("InFlow SO-000019 (TUK item discounted)", api.inflow(ORDER_A, "inflow-d1"),
                lambda b: f"{b['stream'][:14]}… errors: {', '.join(e['rule'] for e in b['errors'])}")
    yield _line("InFlow SO-000020 (discount, no remark)", api.inflow(ORDER_B, "inflow-d2"),
                lambda b: f"{b['stream'][:14]}… errors: {', '.join(e['rule'] for e in b['errors'])}")
    fixed = {**ORDER_B, "remarks": "loyalty discount"}
    yield _line("InFlow SO-000020 fixed in the grace period", api.inflow(fixed, "inflow-d3"),
                lambda b: f"errors: {', '.join(e['rule'] for e in b['errors']) or 'none'}")

    yield "seeds 001/002, webhook delivery:"
    for message_id, target in (("msg-0001", "orders-hook"), ("msg-0002", "down")):
        message = {"sender_id": "user123", "message_id": message_id, "target_url": targets[target],
                   "payload": {"event": "order.paid", "order": "1001"}}
        yield _line(f"POST /messages {message_id} -> /{target}", api.admin("POST", "/messages", message),
                    lambda b: f"delivery {b['delivery_id']}")
    metadata = {"sender_id": "user123", "message_id": "msg-0003", "target_url": "http://169.254.169.254/latest/",
                "payload": {}}
    yield _line("POST /messages to the metadata address", api.admin("POST", "/messages", metadata))


def echo_storefront(api: ApiClient, receiver: WebhookReceiver) -> Iterator[str]:
    """Play Shopify: every count the storefront received comes back as inventory_levels/update."""
    for index, request in enumerate(receiver.received("/storefront")):
        pushed = request.json()
        # Shopify's real shape: item and location ids, no SKU, none of our ids
        echo = {"inventory_item_id": int(DEMO_ITEMS[pushed["sku"]]), "location_id": DEMO_LOCATION,
                "available": pushed["available"], "updated_at": f"2025-01-01T00:00:{index:02}Z"}
        yield _line(f"storefront echo of {pushed['sku']}={pushed['available']}",
                    api.shopify("inventory_levels/update", echo, f"wh-echo-{index}", event_id=f"ev-echo-{index}"),
                    _appended)


# The Shopify story (issue 11): one SKU kept in sync through the Admin API with the local Shopify.
SHOPIFY_SKU, SHOPIFY_ITEM, SHOPIFY_LOCATION = "PROD-003", "39072856", "905684977"


def shopify_story(api: ApiClient, shop: ShopifyStandIn, settle: Callable[[], object]) -> Iterator[str]:
    """Shopify shows 0 where we count 12: one push. Its inventory_levels/update echo (real shape:
    item, location, available, updated_at; none of our ids) is recognised and ignored. A merchant
    then types 30 in Shopify's admin: sync_drift, and the count is set back to 12 (compare-and-set)."""

    def deliver(label: str) -> Iterator[str]:
        for _ in range(4):  # Shopify's webhooks, then what dynafold did about them, until both are quiet
            pending = [webhook.json() for webhook in shop.pending]
            if not pending:
                return
            for body, status in zip(pending, shop.deliver(), strict=True):
                yield (f"  {label}: Shopify inventory_levels/update item {body['inventory_item_id']} "
                       f"available={body['available']} -> HTTP {status}")
            settle()
            label = "echo of our push"

    yield f"Shopify (the local stand-in, GraphQL Admin API at {shop.url}):"
    yield _line(f"PUT /shopify/items/{SHOPIFY_ITEM} {SHOPIFY_SKU}",
                api.admin("PUT", f"/shopify/items/{SHOPIFY_ITEM}", {"sku": SHOPIFY_SKU}))
    yield _line(f"PUT /inventory/{SHOPIFY_SKU}/count 12",
                api.admin("PUT", f"/inventory/{SHOPIFY_SKU}/count", {"physical": 12}), _appended)
    settle()
    shop.merchant_sets(SHOPIFY_ITEM, SHOPIFY_LOCATION, 0)
    yield from deliver("Shopify reports 0 (we count 12)")
    yield f"  Shopify now shows {shop.levels[(SHOPIFY_ITEM, SHOPIFY_LOCATION)]}; the echo changed nothing"
    shop.merchant_sets(SHOPIFY_ITEM, SHOPIFY_LOCATION, 30)
    yield from deliver("a merchant sets 30 in Shopify's admin")
    calls = [call for call in shop.calls if "inventorySetQuantities(" in call["query"]]
    yield (f"  Shopify now shows {shop.levels[(SHOPIFY_ITEM, SHOPIFY_LOCATION)]} after "
           f"{len(calls)} inventorySetQuantities call(s); see the sync_drift alert below")
