"""Issue 11 §4-6 end to end: the local stack against the local Shopify (DynamoDB Local + loopback).

Shopify's webhooks come from the stand-in as Shopify sends them (real body shape, HMAC, headers);
pushes go to it through the GraphQL Admin API. The story: Shopify shows 4 where we count 10 ->
one push (no alert); its echo is ignored; a merchant's manual edit to 25 is drift -> one
sync_drift alert and one correction back to 10, whose echo is ignored too; a sale in Shopify with
its orders/create webhook changes the count once (made right after our push, it is re-pushed in
case our set overwrote it; compare-and-set finds Shopify already right).
"""

from __future__ import annotations

from datetime import datetime, timezone

from processors.adapters.secrets import Secrets
from processors.adapters.shopify_admin import ShopifyAdminSettings
from processors.api.deps import ApiSettings
from processors.local.api_client import ApiClient
from processors.local.services import LocalApi
from processors.local.shopify_admin import ShopifyStandIn
from processors.local.stack import LocalStack
from processors.local.tables import local_tables
from projections.reactor.settings import ShopifySyncSettings
from tests.shopify_fixtures import payload

ITEM, HERE = "808950810", "487838322"


def test_echoes_are_ignored_and_a_manual_edit_is_drift_corrected_once(local_dynamo, tmp_path):
    secrets = Secrets.of(shopify="shpss_local_app_secret", admin_api_key="key", shopify_admin_token="shpat_local")
    with ShopifyStandIn(token="shpat_local", app_secret="shpss_local_app_secret") as shop:
        shop.stock(ITEM, HERE, 4)
        stack = LocalStack(local_dynamo.endpoint_url, local_tables("test-", versions={}), tmp_path,
                           access_key=local_dynamo.access_key, secrets=secrets,
                           shopify_sync=ShopifySyncSettings(push_location=HERE),
                           shopify_admin=ShopifyAdminSettings(shop.url))
        with LocalApi(stack, secrets, ApiSettings()).serve() as server:
            shop.webhook_url = f"{server.url}/webhooks/shopify"
            api = ApiClient(server.url, secrets)
            assert api.admin("PUT", f"/shopify/items/{ITEM}", {"sku": "SKU-1"})[0] == 200
            assert api.admin("PUT", "/inventory/SKU-1/count", {"physical": 10})[0] == 200

            def settle() -> list[int]:
                """Deliver Shopify's webhooks and run the stack until both sides are quiet."""
                statuses = []
                for _ in range(5):
                    stack.drain()
                    if not shop.pending:
                        return statuses
                    statuses += shop.deliver()
                raise AssertionError("dynafold and Shopify keep talking")

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
    assert types == ["shopify_item_linked", "physical_count_set", "shopify_level", "shopify_push", "shopify_push_settled", "shopify_level",
                     "shopify_level", "shopify_push", "shopify_push_settled", "shopify_level",
                     "stock_adjusted", "shopify_push", "shopify_push_settled", "shopify_level"]
    assert len(drift_alerts) == 1 and "drift +15" in drift_alerts[0]["message"]
    [listed] = item["shopify_items"]
    assert (item["physical"], item["available"], listed["shopify_available"], listed["shopify_expected"]) == (8, 8, 8, 8)
    sets = [c["variables"]["input"]["quantities"][0] for c in shop.calls if "inventorySetQuantities(" in c["query"]]
    assert [(s["quantity"], s["compareQuantity"]) for s in sets] == [(10, 4), (10, 25), (8, 10)]
    outcomes = [e.data.outcome for e in stack.store.read_stream("sku:SKU-1") if e.type.endswith("push_settled.v1")]
    assert outcomes == ["applied", "applied", "already_applied"]
