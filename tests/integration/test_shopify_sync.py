"""Issue 11 §4-6 end to end: the local stack against the local Shopify (DynamoDB Local + loopback).

Shopify's webhooks come from the stand-in as Shopify sends them (real body shape, HMAC, headers);
pushes go to it through the GraphQL Admin API. The story: Shopify shows 4 where we count 10 ->
one push (no alert); its echo is ignored; a merchant's manual edit to 25 is drift -> one
sync_drift alert and one correction back to 10, whose echo is ignored too; a sale in Shopify with
its orders/create webhook changes the count once (made right after our push, it is re-pushed in
case our set overwrote it; compare-and-set finds Shopify already right). And onboarding (issue 18
§1-2): a SKU two items share, never counted here, is not pushed until Shopify's level is adopted.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import pytest

from processors.adapters.secrets import Secrets
from processors.adapters.shopify_admin import ShopifyAdminSettings
from processors.api.deps import ApiSettings
from processors.cli.main import main
from processors.local.api_client import ApiClient
from processors.local.services import LocalApi
from processors.local.shopify_admin import ShopifyStandIn
from processors.local.stack import LocalStack
from processors.local.tables import local_tables
from projections.reactor.settings import ShopifySyncSettings
from tests.shopify_fixtures import named, payload

ITEM, HERE = "808950810", "487838322"
SECRETS = Secrets.of(shopify="shpss_local_app_secret", admin_api_key="key", shopify_admin_token="shpat_local")


@dataclass
class Synced:
    """The local stack with pushes on, its HTTP API and the local Shopify, wired to each other."""

    shop: ShopifyStandIn
    stack: LocalStack
    api: ApiClient

    def settle(self) -> list[int]:
        """Deliver Shopify's webhooks and run the stack until both sides are quiet; their statuses."""
        statuses = []
        for _ in range(5):
            self.stack.drain()
            if not self.shop.pending:
                return statuses
            statuses += self.shop.deliver()
        raise AssertionError("dynafold and Shopify keep talking")

    def sets(self) -> list[dict[str, Any]]:
        """The inventorySetQuantities quantities Shopify received, in order."""
        return [c["variables"]["input"]["quantities"][0] for c in self.shop.calls
                if "inventorySetQuantities(" in c["query"]]


@pytest.fixture
def synced(local_dynamo, tmp_path) -> Iterator[Synced]:
    with ShopifyStandIn(token="shpat_local", app_secret="shpss_local_app_secret") as shop:
        stack = LocalStack(local_dynamo.endpoint_url, local_tables("test-", versions={}), tmp_path,
                           access_key=local_dynamo.access_key, secrets=SECRETS,
                           shopify_sync=ShopifySyncSettings(push_location=HERE),
                           shopify_admin=ShopifyAdminSettings(shop.url))
        with LocalApi(stack, SECRETS, ApiSettings()).serve() as server:
            shop.webhook_url = f"{server.url}/webhooks/shopify"
            yield Synced(shop, stack, ApiClient(server.url, SECRETS))


def test_echoes_are_ignored_and_a_manual_edit_is_drift_corrected_once(synced):
    shop, stack, api, settle = synced.shop, synced.stack, synced.api, synced.settle
    shop.stock(ITEM, HERE, 4)
    assert api.admin("PUT", f"/shopify/items/{ITEM}", {"sku": "SKU-1"})[0] == 200
    assert api.admin("PUT", "/inventory/SKU-1/count", {"physical": 10})[0] == 200

    shop.merchant_sets(ITEM, HERE, 4)  # Shopify reports its level: it shows 4, we count 10
    assert settle() == [200, 200]  # the level, then the echo of our push
    assert shop.levels[(ITEM, HERE)] == 10

    shop.merchant_sets(ITEM, HERE, 25)  # a manual edit in Shopify's admin
    assert settle() == [200, 200]  # the edit, then the echo of the correction
    assert shop.levels[(ITEM, HERE)] == 10

    # A sale in Shopify right after our correction: its order could have been overwritten by
    # our set, so it is pushed again -- compare-and-set finds Shopify already there.
    order = {**payload("orders/create"), "line_items": [{"sku": "SKU-1", "quantity": 2}],
             "created_at": datetime.now(timezone.utc).isoformat()}
    shop.sell(ITEM, HERE, 2)
    assert api.shopify("orders/create", order, "wh-order-1", event_id="ev-order-1")[0] == 200
    assert settle() == [200]  # Shopify's level after its sale: what it should show
    drift_alerts = [a for a in api.admin("GET", "/alerts")[1]["alerts"] if a["alert_type"] == "sync_drift"]
    item = api.admin("GET", "/inventory/SKU-1")[1]

    types = [e.type.split(".")[2] for e in stack.store.read_stream("sku:SKU-1")]
    assert types == ["shopify_item_linked", "physical_count_set", "shopify_level", "shopify_push",
                     "shopify_push_settled", "shopify_level", "shopify_level", "shopify_push", "shopify_push_settled",
                     "shopify_level", "stock_adjusted", "shopify_push", "shopify_push_settled", "shopify_level"]
    assert len(drift_alerts) == 1 and "drift +15" in drift_alerts[0]["message"]
    [listed] = item["shopify_items"]
    assert (item["physical"], item["available"], listed["shopify_available"], listed["shopify_expected"]) == (8, 8, 8, 8)
    assert [(s["quantity"], s["compareQuantity"]) for s in synced.sets()] == [(10, 4), (10, 25), (8, 10)]
    outcomes = [e.data.outcome for e in stack.store.read_stream("sku:SKU-1") if e.type.endswith("push_settled.v1")]
    assert outcomes == ["applied", "applied", "already_applied"]


@pytest.fixture
def cli(local_dynamo, monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", local_dynamo.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local")

    def run(*argv: str) -> tuple[int, str, str]:
        code = main([*argv, "--endpoint-url", local_dynamo.endpoint_url, "--table-prefix", "test-"])
        out, err = capsys.readouterr()
        return code, out, err

    return run


FIRST, SECOND = "1070325021", "1070325022"  # Shopify's own products/create sample: two variants, SKU "123"


def test_a_shared_sku_never_counted_is_not_pushed_until_adopted(synced, local_dynamo, cli):
    """Issue 18 §1-2: onboarding with pushes on never zeroes a listing. On Shopify's own
    products/create sample the items are mapped and report their levels; the SKU was never counted
    here, so nothing is pushed and one uncounted_sku alert says so. The items disagree (9 and 7), so
    adopting refuses until told which to take; then the count is recorded, the other item is pushed
    the pool's count, and the alert is marked read."""
    shop, api = synced.shop, synced.api
    shop.stock(FIRST, HERE, 9)
    shop.stock(SECOND, HERE, 7)
    assert api.shopify("products/create", named("products_create_shared_sku"), "wh-p", event_id="ev-p")[0] == 200
    shop.merchant_sets(FIRST, HERE, 9)  # Shopify reports each item's level
    shop.merchant_sets(SECOND, HERE, 7)
    synced.settle()
    assert synced.sets() == []  # never zeroed
    row = api.admin("GET", "/inventory/123")[1]
    assert row["uncounted"] and [i["shopify_available"] for i in row["shopify_items"]] == [9, 7]
    [alert] = [a for a in api.admin("GET", "/alerts")[1]["alerts"] if a["alert_type"] == "uncounted_sku"]

    # The items disagree: the dry run says so and what would decide it; the real run refuses.
    code, out, _ = cli("shopify", "adopt", "--sku", "123", "--dry-run")
    assert code == 1 and f"refused: its items disagree (listings of one stock pool): {FIRST} shows 9, " \
                          f"{SECOND} shows 7; say which to take with --from-item ITEM" in out
    code, _, err = cli("shopify", "adopt", "--sku", "123")
    assert code == 2 and err.startswith("dynafold: nothing adopted: 123: its items disagree")
    code, out, _ = cli("shopify", "adopt", "--all", "--from-item", FIRST, "--dry-run", "--json")
    [would] = json.loads(out)["skus"]
    assert code == 0 and (would["physical"], would["from_item"], would["then"]) == (9, FIRST,
                                                                                   [f"{SECOND}: 7 -> 9"])
    assert local_dynamo.store().stream_version("sku:123") == 4  # nothing recorded by a dry run

    status, adopted = api.admin("POST", "/shopify/adopt", {"skus": ["123"], "from_items": [FIRST]})
    assert status == 200 and adopted["adopted"] == 1 and adopted["skus"][0]["version"] == 5
    synced.settle()  # the other listing is pushed the pool's count; the echo is ignored
    assert shop.levels == {(FIRST, HERE): 9, (SECOND, HERE): 9}
    assert [(s["inventoryItemId"], s["quantity"], s["compareQuantity"]) for s in synced.sets()] == [
        (f"gid://shopify/InventoryItem/{SECOND}", 9, 7)]
    assert [a["read"] for a in api.admin("GET", "/alerts")[1]["alerts"] if a["alert_id"] == alert["alert_id"]] == [
        True]
    assert api.admin("POST", "/shopify/adopt", {"skus": ["123"]})[0] == 400  # counted now: no second adoption
    assert api.admin("POST", "/shopify/adopt", {"skus": ["NOPE"]})[0] == 404
    assert api.admin("POST", "/shopify/adopt", {"skus": ["123"], "all": True})[0] == 400

    recorded = [e for e in local_dynamo.store().read_stream("sku:123") if e.type.endswith("count_adopted.v1")]
    [event] = recorded
    assert event.data.adopted_by.startswith("admin API (request ")
    assert [(lv.inventory_item_id, lv.location_id, lv.available) for lv in event.data.levels] == [(FIRST, HERE, 9)]
    assert [(lv.inventory_item_id, lv.available) for lv in event.data.other_items] == [(SECOND, 7)]
