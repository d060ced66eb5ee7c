"""The HTTP API over real HTTP on loopback, against DynamoDB Local: auth, validation, idempotency, reads.

Every rejected request is checked to have appended nothing (the event table's item count).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import urllib.parse
from typing import Any

import pytest

from processors.api.app import make_handler
from processors.api.deps import ApiDeps, ApiSettings
from processors.local.api_client import ApiClient
from processors.local.http_server import LocalApiServer
from processors.local.stack import LocalStack
from processors.adapters.outbound import system_resolver
from processors.adapters.secrets import Secrets
from processors.local.tables import local_tables
from tests.shopify_fixtures import named, payload

SHOPIFY, OLD_SHOPIFY, INFLOW, ADMIN = "shpss_current", "shpss_previous", "inflow-shared", "admin-key-1"
SECRETS = Secrets.of(shopify=SHOPIFY, shopify_previous=OLD_SHOPIFY, inflow=INFLOW, admin_api_key=ADMIN)
# What the API's resolver answers. `.invalid` never resolves for real (RFC 6761), so the delivery
# worker, which resolves again when it delivers, finds the target gone without touching the network.
PUBLIC = {"hooks.example.com": ["93.184.215.14"], "hooks.invalid": ["93.184.215.14"],
          "internal.example.com": ["10.0.0.7"]}


class Api(ApiClient):
    def __init__(self, url: str, local_dynamo: Any) -> None:
        super().__init__(url, SECRETS)
        self.local_dynamo = local_dynamo

    def events(self) -> int:
        names = self.local_dynamo.names
        return self.local_dynamo.client.scan(TableName=names.events, Select="COUNT")["Count"]


def _serve(local_dynamo: Any, secrets: Secrets, settings: ApiSettings | None = None):
    deps = ApiDeps.connect(local_dynamo.client, local_tables("test-", versions={}), secrets,
                           settings or ApiSettings(max_body_bytes=4096),
                           resolve=lambda host, port: PUBLIC.get(host) or system_resolver(host, port))
    return LocalApiServer(make_handler(deps))


@pytest.fixture
def api(local_dynamo):
    with _serve(local_dynamo, SECRETS) as server:
        yield Api(server.url, local_dynamo)


ORDER = {"id": 1001, "name": "#1001", "line_items": [{"sku": "PROD-1", "quantity": 2}, {"sku": "PROD-2", "quantity": 1},
                                                    {"sku": "PROD-1", "quantity": 1}, {"quantity": 5}]}


# ----------------------------------------------------------------------------- Shopify

def test_shopify_order_adjusts_stock_per_sku_once_however_often_it_is_delivered(api):
    status, first = api.shopify("orders/create", ORDER, "wh-1")
    assert status == 200
    assert [(a["stream"], a["version"]) for a in first["appended"]] == [("sku:PROD-1", 1), ("sku:PROD-2", 1)]
    assert first["skipped"] == ["line_items[3]: no sku"]
    again = api.shopify("orders/create", ORDER, "wh-1")[1]
    assert [a["event_ids"] for a in again["appended"]] == [a["event_ids"] for a in first["appended"]]
    assert all(a["deduplicated"] for a in again["appended"]) and api.events() == 2
    [event] = api.local_dynamo.store().read_stream("sku:PROD-1")
    assert (event.data.delta, event.data.reason, event.data.tx_id) == (-3, "order", "shopify-order-1001")


@pytest.mark.parametrize("case", ["tampered", "reserialised", "wrong secret", "missing header", "not base64"])
def test_shopify_signature_vectors_are_refused_and_append_nothing(api, case):
    body = json.dumps(ORDER).encode()
    if case == "tampered":
        status, reply = api.shopify("orders/create", None, "wh-x", raw=body.replace(b"2", b"9"), signed=body)
    elif case == "reserialised":  # same JSON, other bytes: the HMAC covers the bytes
        status, reply = api.shopify("orders/create", None, "wh-x", raw=json.dumps(ORDER, indent=1).encode(), signed=body)
    elif case == "wrong secret":
        status, reply = api.shopify("orders/create", ORDER, "wh-x", secret="shpss_guess")
    else:
        value = {"missing header": None, "not base64": "%%%"}[case]
        headers = {"x-shopify-topic": "orders/create", "x-shopify-webhook-id": "wh-x"}
        if value:
            headers["x-shopify-hmac-sha256"] = value
        status, reply = api.call("POST", "/webhooks/shopify", raw=body, headers=headers)
    assert status == 401 and "X-Shopify-Hmac-Sha256" in reply["error"]
    assert api.events() == 0


def test_the_previous_secret_is_accepted_during_a_rotation(api):
    assert api.shopify("orders/create", ORDER, "wh-rot", secret=OLD_SHOPIFY)[0] == 200


@pytest.mark.parametrize("topic, payload, webhook_id, fragment", [
    ("orders/create", {"id": 1, "line_items": [{"sku": "A", "quantity": -1}]}, "wh-1", "line_items.0.quantity"),
    ("refunds/create", {"id": 1, "order_id": 2, "refund_line_items": [{"quantity": 1, "line_item": {"sku": "A"},
                                                                       "disposition": "LOST"}]},
     "wh-1", "disposition"),
    ("orders/create", ORDER, "", "X-Shopify-Webhook-Id"),
    ("inventory_levels/update", {**payload("inventory_levels/update"), "available": "lots"}, "wh-1", "available"),
    ("inventory_levels/update", {**payload("inventory_levels/update"), "inventory_item_id": -4}, "wh-1",
     "inventory_item_id"),
])
def test_shopify_bad_payloads_are_400_with_a_reason(api, topic, payload, webhook_id, fragment):
    status, reply = api.shopify(topic, payload, webhook_id)
    assert status == 400 and fragment in reply["error"]
    assert api.events() == 0


def test_an_unknown_topic_is_answered_200_and_ignored(api):
    status, reply = api.shopify("customers/create", {"id": 1}, "wh-c", event_id="ev-c")
    assert status == 200 and "not used" in reply["ignored"] and api.events() == 0


def test_refunds_record_returns_with_dispositions(api):
    refund = {"id": 77, "order_id": 1001, "refund_line_items": [
        {"quantity": 1, "restock_type": "return", "line_item": {"sku": "PROD-1"}},
        {"quantity": 2, "restock_type": "no_restock", "line_item": {"sku": "PROD-1"}},
        {"quantity": 1, "disposition": "DEFECTIVE", "line_item": {"sku": "PROD-2"}}]}
    status, reply = api.shopify("refunds/create", refund, "wh-r")
    assert status == 200 and [a["versions"] for a in reply["appended"]] == [[1, 2], [1]]
    returns = [(e.data.sku, e.data.quantity, e.data.disposition, e.data.restocked)
               for s in ("sku:PROD-1", "sku:PROD-2") for e in api.local_dynamo.store().read_stream(s)]
    assert returns == [("PROD-1", 1, "SELLABLE", True), ("PROD-1", 2, "UNSELLABLE", False),
                       ("PROD-2", 1, "DEFECTIVE", False)]


# ----------------------------------------------------------------------------- Shopify's real payloads (issue 11)

def test_one_event_under_two_webhook_ids_decrements_once(api):
    """Shopify: the same event may come under several X-Shopify-Webhook-Ids (one per subscription)."""
    order = payload("orders/create")
    first = api.shopify("orders/create", order, "wh-sub-1", event_id="ev-1")[1]
    second = api.shopify("orders/create", order, "wh-sub-2", event_id="ev-1")[1]
    assert not first["deduplicated"] and second["deduplicated"]
    assert [a["event_ids"] for a in second["appended"]] == [a["event_ids"] for a in first["appended"]]
    assert api.events() == 3  # three SKUs, once each


def test_one_order_under_two_event_ids_decrements_once(api):
    """Issue 18 §3: two subscriptions to orders/create, a re-registered webhook or a replay deliver
    one order under other event ids; its effect is keyed by the order."""
    order = payload("orders/create")
    first = api.shopify("orders/create", order, "wh-a", event_id="ev-a")[1]
    status, second = api.shopify("orders/create", order, "wh-b", event_id="ev-b")
    assert status == 200 and second["deduplicated"]
    assert [a["event_ids"] for a in second["appended"]] == [a["event_ids"] for a in first["appended"]]
    assert [e.data.delta for e in api.local_dynamo.store().read_stream("sku:IPOD2008RED")] == [-1]
    assert api.events() == 3


def test_signed_but_unusable_skus_are_400_and_append_nothing(roomy_api):
    """Issue 18 §4: this inventory item was a 500 (its ItemMapped raised), and the item route took a
    SKU whose stream key could never be written (512 x U+1D11E = 2,048 bytes)."""
    api = roomy_api
    status, reply = api.shopify("inventory_items/create", {**payload("inventory_items/create"), "sku": "A\nB"},
                                "wh-i", event_id="ev-i")
    assert status == 400 and reply["field"] == "sku" and "control character" in reply["error"]
    status, reply = api.admin("PUT", "/shopify/items/808950810", {"sku": "\U0001d11e" * 512})
    assert status == 400 and "2048 bytes" in reply["error"]
    assert api.events() == 0


def test_a_webhook_rejected_on_its_third_line_appends_nothing(api):
    order = {"id": 7, "line_items": [{"sku": "A", "quantity": 1}, {"sku": "B", "quantity": 1},
                                     {"sku": "C\u0001", "quantity": 1}]}
    status, reply = api.shopify("orders/create", order, "wh-bad", event_id="ev-bad")
    assert status == 400 and reply["field"] == "line_items.2.sku" and "control character" in reply["error"]
    assert api.events() == 0


@pytest.mark.long  # DynamoDB Local takes ~15 s for one 100-item transaction; the parts logic is unit-tested
def test_a_webhook_larger_than_one_transaction_lands_in_deterministic_parts_once(local_dynamo):
    order = {"id": 8, "line_items": [{"sku": f"S{n:03}", "quantity": 1} for n in range(150)]}
    with _serve(local_dynamo, SECRETS, ApiSettings()) as server:
        api = Api(server.url, local_dynamo)
        api._timeout = 120.0
        first = api.shopify("orders/create", order, "wh-big", event_id="ev-big")[1]
        assert len(first["appended"]) == 150 and api.events() == 150
        again = api.shopify("orders/create", order, "wh-big-2", event_id="ev-big")[1]
    assert again["deduplicated"] and api.events() == 150


def test_level_updates_find_their_sku_through_the_item_map_learned_from_products(api, local_dynamo, tmp_path):
    level = payload("inventory_levels/update")  # item 808950810, location 487838322, available 9, no SKU
    status, unmapped = api.shopify("inventory_levels/update", level, "wh-l1", event_id="ev-l1")
    assert status == 200 and unmapped["unmapped_items"] == ["808950810"]
    assert api.shopify("inventory_levels/update", {**level, "available": 8}, "wh-l2", event_id="ev-l2")[0] == 200
    assert [e.type for e in api.local_dynamo.store().read_stream("shopifyitem:808950810")] == [
        "dynafold.shopify.unmapped_level.v1"] * 2  # kept, not lost

    reply = api.shopify("products/create", payload("products/create"), "wh-p", event_id="ev-p")[1]
    assert sorted(a["stream"] for a in reply["appended"]) == [
        "shopifyitem:39072856", "shopifyitem:457924702", "shopifyitem:49148385", "shopifyitem:808950810",
        "sku:IPOD2008BLACK", "sku:IPOD2008GREEN", "sku:IPOD2008PINK", "sku:IPOD2008RED"]
    assert api.shopify("products/update", payload("products/update"), "wh-p2", event_id="ev-p2")[1]["appended"] == []

    status, mapped = api.shopify("inventory_levels/update", {**level, "available": -2}, "wh-l3", event_id="ev-l3",
                                 **{"x-shopify-triggered-at": "2023-03-29T18:00:27.877041743Z"})
    assert status == 200 and mapped["appended"][0]["stream"] == "sku:IPOD2008PINK"
    LocalStack(local_dynamo.endpoint_url, local_tables("test-", versions={}), tmp_path,
               access_key=local_dynamo.access_key).drain()
    row = api.admin("GET", "/inventory/IPOD2008PINK")[1]
    [item] = row["shopify_items"]
    assert item["levels"] == [{"location_id": "487838322", "available": -2,
                               "updated_at": "2023-01-03T17:21:36.000000Z", "counted": True, "ours": False}]
    assert row["physical"] == 0  # a level never changes our count: the count is the truth
    alerts = [a for a in api.admin("GET", "/alerts")[1]["alerts"] if a["alert_type"] == "unmapped_item"]
    assert len(alerts) == 1  # one per item, not one per webhook
    # ... and the later updates of the item find it raised: no reactor record failed over it
    assert [a for a in api.admin("GET", "/alerts")[1]["alerts"] if a["alert_type"] == "record_failed"] == []


def test_two_variants_sharing_a_sku_are_two_listings_and_a_blank_sku_unmaps(api, local_dynamo, tmp_path):
    """Issue 18 §2 on Shopify's own products/create sample (shopify-api-php Product202301Test test_25:
    two variants, SKU "123"): both items are listings of SKU 123, each with its own level; the
    same items given a blank SKU (products/update) are unmapped, and their later levels kept as such."""
    created = named("products_create_shared_sku")
    assert api.shopify("products/create", created, "wh-sp", event_id="ev-sp")[0] == 200
    for item, available in (("1070325021", 9), ("1070325022", 7)):
        level = {**payload("inventory_levels/update"), "inventory_item_id": item, "available": available}
        assert api.shopify("inventory_levels/update", level, f"wh-{item}", event_id=f"ev-{item}")[0] == 200
    stack = LocalStack(local_dynamo.endpoint_url, local_tables("test-", versions={}), tmp_path,
                       access_key=local_dynamo.access_key)
    stack.drain()
    row = api.admin("GET", "/inventory/123")[1]
    assert [(i["inventory_item_id"], i["variant_id"], i["levels"][0]["available"]) for i in row["shopify_items"]] == [
        ("1070325021", "1070325021", 9), ("1070325022", "1070325022", 7)]
    assert row["uncounted"] is True  # listed in Shopify, never counted here: nothing pushed
    [uncounted] = [a for a in api.admin("GET", "/alerts")[1]["alerts"] if a["alert_type"] == "uncounted_sku"]
    assert uncounted["sku"] == "123"

    blanked = {**created, "variants": [{**variant, "sku": ""} for variant in created["variants"]]}
    assert api.shopify("products/update", blanked, "wh-sp2", event_id="ev-sp2")[0] == 200
    store = local_dynamo.store()
    assert store.read_stream("shopifyitem:1070325021")[-1].type == "dynafold.shopify.item_unmapped.v1"
    level = {**payload("inventory_levels/update"), "inventory_item_id": 1070325021, "available": 3}
    assert api.shopify("inventory_levels/update", level, "wh-l9", event_id="ev-l9")[1]["unmapped_items"] == [
        "1070325021"]
    stack.drain()
    row = api.admin("GET", "/inventory/123")[1]
    assert row["shopify_items"] == [] and row["unlisted_items"] == ["1070325021", "1070325022"]


def test_inventory_items_webhooks_and_operators_set_the_map(api):
    store = api.local_dynamo.store()
    api.shopify("inventory_items/create", payload("inventory_items/create"), "wh-i1", event_id="ev-i1")
    assert store.read_stream("shopifyitem:808950810")[-1].data.sku == "IPOD2008PINK"
    api.shopify("inventory_items/delete", payload("inventory_items/delete"), "wh-i2", event_id="ev-i2")
    assert store.read_stream("shopifyitem:808950810")[-1].type == "dynafold.shopify.item_unmapped.v1"
    assert api.admin("PUT", "/shopify/items/808950810", {"sku": "PINK"})[1]["changed"]
    assert not api.admin("PUT", "/shopify/items/808950810", {"sku": "PINK"})[1]["changed"]
    assert api.admin("PUT", "/shopify/items/abc", {"sku": "PINK"})[0] == 400
    status, bulk = api.admin("POST", "/shopify/items", {"items": [
        {"inventory_item_id": 1, "sku": "ONE"}, {"inventory_item_id": "gid://shopify/InventoryItem/2", "sku": "TWO"}]})
    assert status == 200 and bulk["changed"] == 2
    before = api.events()
    status, reply = api.admin("POST", "/shopify/items", {"items": [{"inventory_item_id": 3, "sku": "THREE"},
                                                                   {"inventory_item_id": 4}]})
    assert status == 400 and "items[1]" in reply["error"] and api.events() == before


def test_only_the_configured_locations_count(local_dynamo):
    with _serve(local_dynamo, SECRETS, ApiSettings(shopify_locations=frozenset({"655441491"}))) as server:
        api = Api(server.url, local_dynamo)
        api.admin("PUT", "/shopify/items/808950810", {"sku": "PINK"})
        api.shopify("inventory_levels/update", payload("inventory_levels/update"), "wh-x", event_id="ev-x")
    assert local_dynamo.store().read_stream("sku:PINK")[-1].data.counted is False


# ----------------------------------------------------------------------------- InFlow

INFLOW_ORDER = {"salesOrderId": "6ce880f5", "orderNumber": "SO-000019", "remarks": "",
                "lines": [{"productName": "TUK chair", "sku": "TUK-CHAIR", "quantity": 1, "discount": 10}],
                "customer": {"name": "Jane Doe", "email": "jane@example.com"}}


def test_inflow_order_is_validated_and_its_complete_error_set_appended(api):
    status, reply = api.inflow(INFLOW_ORDER, "d-1")
    assert status == 200 and reply["stream"] == "order:6ce880f5"
    assert sorted(e["rule"] for e in reply["errors"]) == ["discount_on_tuk_item", "discount_remark"]
    [event] = api.local_dynamo.store().read_stream("order:6ce880f5")
    assert "customer" not in event.data.order  # only what the rules read is kept: no customer PII in the log
    again = api.inflow(INFLOW_ORDER, "d-1")[1]
    assert again["deduplicated"] and again["event_id"] == reply["event_id"] and api.events() == 1


def test_inflow_without_a_delivery_id_never_swallows_a_state_change(api):
    """Issue 12 defect 4: BAD -> FIXED -> BAD with the same body as the first must log BAD again."""
    fixed = {**INFLOW_ORDER, "remarks": "staff discount approved",
             "lines": [{**INFLOW_ORDER["lines"][0], "discount": 0}]}
    first = api.inflow(INFLOW_ORDER)[1]
    assert api.inflow(fixed)[1]["errors"] == []
    status, again = api.inflow(INFLOW_ORDER)  # same bytes as the first delivery
    assert status == 200 and not again["deduplicated"] and again["version"] == 3
    log = api.local_dynamo.store().read_stream("order:6ce880f5")
    assert [len(e.data.errors) for e in log] == [2, 0, 2]
    assert log[-1].data.errors == log[0].data.errors and again["event_id"] != first["event_id"]
    retried = api.inflow(INFLOW_ORDER)[1]  # a plain retry of the latest: nothing changed, nothing appended
    assert retried["deduplicated"] and retried["event_id"] == again["event_id"] and api.events() == 3


@pytest.mark.parametrize("case, status, fragment", [
    ("wrong secret", 401, "does not match"),
    ("no order id", 400, "order_id"),
    ("not json", 400, "not valid JSON"),
])
def test_inflow_bad_requests_append_nothing(api, case, status, fragment):
    if case == "wrong secret":
        got = api.inflow(INFLOW_ORDER, secret="guess")
    elif case == "no order id":
        got = api.inflow({"orderNumber": "SO-1"})
    else:
        got = api.call("POST", "/webhooks/inflow/orders", raw=b"{nope", headers={
            "x-inflow-signature": "sha256=" + hmac.new(INFLOW.encode(), b"{nope", hashlib.sha256).hexdigest()})
    assert got[0] == status and fragment in got[1]["error"]
    assert api.events() == 0


def test_a_missing_secret_closes_its_routes_with_503(local_dynamo):
    with _serve(local_dynamo, Secrets.of()) as server:
        api = Api(server.url, local_dynamo)
        assert api.shopify("orders/create", ORDER, "wh-1")[0] == 503
        assert api.inflow(INFLOW_ORDER)[0] == 503
        status, reply = api.admin("PUT", "/inventory/P/count", {"physical": 1})
        assert status == 503 and "admin API key" in reply["error"]
        assert api.events() == 0


# ----------------------------------------------------------------------------- messages

MESSAGE = {"sender_id": "user123", "message_id": "msg-1", "target_url": "https://hooks.example.com/orders",
           "payload": {"event": "order.paid"}}


def test_a_message_is_accepted_once_per_sender_and_message_id(api):
    status, first = api.admin("POST", "/messages", MESSAGE)
    assert status == 202 and first["stream"] == "delivery:user123:msg-1" and first["delivery_id"] == "user123:msg-1"
    status, again = api.admin("POST", "/messages", MESSAGE)
    assert status == 200 and again["deduplicated"] and again["event_id"] == first["event_id"]
    status, reply = api.admin("POST", "/messages", {**MESSAGE, "payload": {"event": "other"}})
    assert status == 409 and "already used" in reply["error"]
    assert api.events() == 1


@pytest.mark.parametrize("change, status, fragment", [
    ({"target_url": "https://internal.example.com/x"}, 400, "private"),
    ({"target_url": "https://169.254.169.254/latest"}, 400, "link-local"),
    ({"target_url": "http://hooks.example.com/x"}, 400, "https"),
    ({"sender_id": "a:b"}, 400, "sender_id"),
    ({"payload": "text"}, 400, "payload"),
    ({"extra": 1}, 400, "extra"),
])
def test_bad_messages_are_refused_before_anything_is_appended(api, change, status, fragment):
    got = api.admin("POST", "/messages", {**MESSAGE, **change})
    assert got[0] == status and fragment in got[1]["error"]
    assert api.events() == 0


def test_api_key_is_required_and_checked(api):
    assert api.call("POST", "/messages", MESSAGE)[0] == 401
    assert api.call("POST", "/messages", MESSAGE, {"x-api-key": "nope"})[0] == 403
    assert api.call("GET", "/alerts")[0] == 401
    assert api.events() == 0


# ----------------------------------------------------------------------------- admin, limits, reads

def test_request_limits_and_unknown_routes(api):
    status, reply = api.admin("POST", "/messages", {**MESSAGE, "payload": {"blob": "x" * 5000}})
    assert status == 413 and "limit is 4096" in reply["error"]
    assert api.admin("GET", "/nowhere")[0] == 404
    status, reply = api.admin("DELETE", "/inventory/P/count")
    assert status == 405 and reply["allow"] == ["PUT"]
    assert api.events() == 0


def test_admin_writes_then_reads_over_the_views(api, local_dynamo, tmp_path):
    assert api.admin("PUT", "/inventory/PROD%2F9/count", {"physical": 40}, **{"idempotency-key": "c1"})[0] == 200
    assert api.admin("PUT", "/inventory/PROD%2F9/count", {"physical": 40}, **{"idempotency-key": "c1"})[1]["deduplicated"]
    assert api.admin("PUT", "/inventory/PROD%2F9/buffer", {"buffer": 38})[0] == 200
    assert api.admin("PUT", "/inventory/PROD%2F9/buffer", {"buffer": -1})[0] == 400
    assert api.shopify("refunds/create", {"id": 5, "order_id": 9, "refund_line_items": [
        {"quantity": 1, "restock_type": "no_restock", "line_item": {"sku": "PROD/9"}}]}, "wh-9")[0] == 200
    assert api.inflow(INFLOW_ORDER)[0] == 200
    assert api.admin("POST", "/messages", {**MESSAGE, "target_url": "https://hooks.invalid/orders"})[0] == 202
    LocalStack(local_dynamo.endpoint_url, local_tables("test-", versions={}), tmp_path,
               access_key=local_dynamo.access_key).drain()

    item = api.admin("GET", "/inventory/PROD%2F9")[1]
    assert (item["physical"], item["buffer"], item["available"]) == (40, 38, 2)
    page = api.admin("GET", "/inventory?limit=1")[1]
    assert len(page["items"]) == 1 and page["next"]  # a full page: DynamoDB cannot know nothing follows
    last = api.admin("GET", f"/inventory?limit=1&next={page['next']}")[1]
    assert last == {"items": [], "next": None}
    assert api.admin("GET", "/inventory?next=garbage")[0] == 400
    assert [r["disposition"] for r in api.admin("GET", "/inventory/PROD%2F9/returns")[1]["returns"]] == ["UNSELLABLE"]
    assert len(api.admin("GET", "/orders/6ce880f5/errors")[1]["errors"]) == 2
    assert len(api.admin("GET", "/pending-errors")[1]["errors"]) == 2
    assert api.admin("GET", "/pending-errors?older_than=30m")[1]["errors"] == []
    assert api.admin("GET", "/pending-errors?older_than=soon")[0] == 400
    [delivery] = api.admin("GET", "/messages/msg-1")[1]["deliveries"]
    assert delivery["status"] == "FAILED" and "does not resolve" in delivery["dead_letter_reason"]
    assert api.admin("GET", "/messages/unknown")[0] == 404

    alerts = api.admin("GET", "/alerts?unread=true")[1]["alerts"]
    assert {a["alert_type"] for a in alerts} == {"stock_low", "return_damaged", "delivery_dead_lettered"}
    assert api.admin("GET", "/alerts?severity=loud")[0] == 400
    alert_id = next(a["alert_id"] for a in alerts if a["alert_type"] == "stock_low")
    status, read = api.admin("POST", f"/alerts/{alert_id}/read", {"read_by": "ops"})
    assert status == 200 and not read["already_read"]
    assert api.admin("POST", f"/alerts/{alert_id}/read")[1]["already_read"]
    assert api.admin("POST", "/alerts/nope/read")[0] == 404


# ----------------------------------------------------------------------------- issue 12 defect 8: bad input is a 4xx

@pytest.fixture
def roomy_api(local_dynamo):
    """The default 256 KB body limit, so hostile bodies reach the parser."""
    with _serve(local_dynamo, SECRETS, ApiSettings()) as server:
        yield Api(server.url, local_dynamo)


def _signed_inflow(api: Api, raw: bytes, content_type: str = "application/json") -> tuple[int, Any]:
    signature = "sha256=" + hmac.new(INFLOW.encode(), raw, hashlib.sha256).hexdigest()
    return api.call("POST", "/webhooks/inflow/orders", raw=raw,
                    headers={"x-inflow-signature": signature, "content-type": content_type})


def _message(api: Api, raw: bytes, content_type: str = "application/json") -> tuple[int, Any]:
    return api.call("POST", "/messages", raw=raw, headers={"x-api-key": ADMIN, "content-type": content_type})


def _with_payload(payload_json: str) -> bytes:
    return ('{"sender_id":"u1","message_id":"m1","target_url":"https://hooks.example.com/x","payload":'
            + payload_json + "}").encode()


@pytest.mark.parametrize("raw, fragment", [
    (b"[" * 100_000 + b"]" * 100_000, "nested"),
    (_with_payload('{"a":' * 200 + "1" + "}" * 200), "nested"),
    (_with_payload('{"n":' + "9" * 5000 + "}"), "digits"),
    (_with_payload('{"s":"\\ud800"}'), "surrogate"),
    (_with_payload('{"x":NaN}'), "NaN"),
    (_with_payload('{"x":Infinity}'), "Infinity"),
    (_with_payload('{"x":-Infinity}'), "Infinity"),
    (_with_payload('{"x":1e400}'), "finite"),
], ids=["100k deep", "200 deep", "5000 digits", "lone surrogate", "NaN", "Infinity", "-Infinity", "1e400"])
def test_hostile_json_is_a_400_naming_the_problem_and_appends_nothing(roomy_api, raw, fragment):
    api = roomy_api
    status, reply = _message(api, raw)
    assert status == 400 and fragment in reply["error"], reply
    assert api.events() == 0


def test_hostile_json_on_a_signed_webhook_is_a_400_too(roomy_api):
    api = roomy_api
    status, reply = _signed_inflow(api, b'{"salesOrderId":"o1","x":' + b"1" * 5000 + b"}")
    assert status == 400 and "digits" in reply["error"]
    status, reply = _signed_inflow(api, b'{"salesOrderId":"\\udfff"}')
    assert status == 400 and "surrogate" in reply["error"]
    assert api.events() == 0


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "",
                                          "application/json; charset=latin-1"])
def test_json_routes_refuse_other_content_types_with_415(api, content_type):
    body = json.dumps(MESSAGE).encode()
    status, reply = _message(api, body, content_type)
    assert status == 415 and "application/json" in reply["error"], reply
    status, reply = _signed_inflow(api, json.dumps(INFLOW_ORDER).encode(), content_type)
    assert status == 415 and "Content-Type" in reply["error"]
    status, reply = api.call("PUT", "/inventory/P/count", raw=b'{"physical": 1}',
                             headers={"x-api-key": ADMIN, "content-type": content_type})
    assert status == 415
    assert api.events() == 0


def test_json_content_type_parameters_and_case_are_accepted(api):
    assert _message(api, json.dumps(MESSAGE).encode(), "application/json; charset=utf-8")[0] == 202
    assert _signed_inflow(api, json.dumps(INFLOW_ORDER).encode(), "Application/JSON;charset=UTF-8")[0] == 200


@pytest.mark.parametrize("query, fragment", [
    ("limit=%C2%B2", "limit"),                       # '²': str.isdigit() says yes, int() says no
    ("limit=%D9%A3", "limit"),                       # Arabic-Indic three
    ("next=eyJza3UiOiAxfQ==", "continuation token"),  # {"sku": 1}: decodes, wrong type
    ("next=eyJza3UiOnsiTiI6IjEifX0=", "continuation token"),  # {"sku": {"N": "1"}}
    ("next=eyJldmlsIjp7IlMiOiJ4In19", "continuation token"),  # {"evil": {"S": "x"}}
])
def test_bad_read_queries_are_400(api, query, fragment):
    status, reply = api.admin("GET", f"/inventory?{query}")
    assert status == 400 and fragment in reply["error"], reply


@pytest.mark.parametrize("older_than", ["10000000d", "999999999999d", "99999999999999999999s"])
def test_an_overflowing_duration_is_400(api, older_than):
    status, reply = api.admin("GET", f"/pending-errors?older_than={older_than}")
    assert status == 400 and "older_than" in reply["error"], reply


def test_keys_are_limited_in_utf8_bytes_not_characters(roomy_api):
    api = roomy_api
    wide = "\u20ac" * 700  # 700 characters, 2100 bytes: over DynamoDB's 2048-byte partition key
    quoted = urllib.parse.quote(wide, safe="")
    for method, path in [("GET", f"/inventory/{quoted}"), ("GET", f"/messages/{quoted}"),
                         ("GET", f"/orders/{quoted}/errors"), ("GET", f"/inventory/{quoted}/returns")]:
        status, reply = api.admin(method, path)
        assert status == 400 and "bytes" in reply["error"], (path[:30], reply)
    status, reply = api.admin("PUT", f"/inventory/{quoted}/count", {"physical": 1})
    assert status == 400 and "bytes" in reply["error"]
    status, reply = api.admin("GET", f"/alerts?sku={quoted}")
    assert status == 400 and "bytes" in reply["error"]
    # 512 characters pass the model's limit, but "sku:" + 2048 bytes does not fit a partition key
    order = payload("orders/create")
    order["line_items"][0]["sku"] = "\U0001f600" * 512
    status, reply = api.shopify("orders/create", order, "wh-wide")
    assert status == 400 and "bytes" in reply["error"], reply
    assert api.events() == 0
